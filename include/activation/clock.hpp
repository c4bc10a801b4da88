// A monotonic time source that callers can replace, so that rate limiters, circuit breakers and
// retry waits can be tested with a fake clock instead of real sleeps.
//
// Thread safety: implementations must allow now() and sleep_until() from many threads at once.
#ifndef ACTIVATION_CLOCK_HPP_
#define ACTIVATION_CLOCK_HPP_

#include <chrono>
#include <memory>

#include "activation/export.hpp"

namespace activation {

class ACT_EXPORT Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::nanoseconds;

  virtual ~Clock() = default;

  virtual TimePoint now() const = 0;

  // Blocks the calling thread until `deadline`. A fake clock may advance its own time instead.
  virtual void sleep_until(TimePoint deadline) = 0;

  void sleep_for(Duration duration) { sleep_until(now() + duration); }
};

// Returns the process-wide clock backed by std::chrono::steady_clock.
ACT_EXPORT std::shared_ptr<Clock> real_clock();

}  // namespace activation

#endif  // ACTIVATION_CLOCK_HPP_
