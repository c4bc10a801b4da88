// A clock for tests whose time moves only when the test advances it; sleeping advances it too.
#ifndef ACTIVATION_TESTS_PLATFORM_FAKE_CLOCK_HPP_
#define ACTIVATION_TESTS_PLATFORM_FAKE_CLOCK_HPP_

#include <chrono>
#include <mutex>

#include "activation/clock.hpp"

namespace activation::testing {

class FakeClock final : public Clock {
 public:
  TimePoint now() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return now_;
  }

  void sleep_until(TimePoint deadline) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (deadline > now_) now_ = deadline;
  }

  void advance(std::chrono::nanoseconds duration) {
    std::lock_guard<std::mutex> lock(mutex_);
    now_ += duration;
  }

  // Returns the time elapsed since the clock was created.
  std::chrono::nanoseconds elapsed() const { return now() - TimePoint(std::chrono::hours(1000)); }

 private:
  mutable std::mutex mutex_;
  TimePoint now_{std::chrono::hours(1000)};
};

}  // namespace activation::testing

#endif  // ACTIVATION_TESTS_PLATFORM_FAKE_CLOCK_HPP_
