#include "activation/clock.hpp"

#include <thread>

namespace activation {

namespace {

class SteadyClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
  void sleep_until(TimePoint deadline) override { std::this_thread::sleep_until(deadline); }
};

}  // namespace

std::shared_ptr<Clock> real_clock() {
  static const std::shared_ptr<Clock> clock = std::make_shared<SteadyClock>();
  return clock;
}

}  // namespace activation
