#include "activation/circuit_breaker.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace activation {

std::string_view circuit_state_name(CircuitState state) noexcept {
  switch (state) {
    case CircuitState::kClosed: return "closed";
    case CircuitState::kOpen: return "open";
    case CircuitState::kHalfOpen: return "half_open";
  }
  return "closed";
}

Status validate_circuit_breaker_options(const CircuitBreakerOptions& options) {
  if (options.failure_threshold < 1) {
    return invalid_argument(fmt::format("circuit breaker: failure_threshold must be at least 1, got {}",
                                        options.failure_threshold));
  }
  if (options.open_duration.count() <= 0) {
    return invalid_argument(fmt::format("circuit breaker: open_duration must be positive, got {} ns",
                                        options.open_duration.count()));
  }
  if (options.max_open_duration < options.open_duration) {
    return invalid_argument(fmt::format(
        "circuit breaker: max_open_duration ({} ns) must not be shorter than open_duration ({} ns)",
        options.max_open_duration.count(), options.open_duration.count()));
  }
  if (options.probe_timeout.count() <= 0) {
    return invalid_argument(fmt::format("circuit breaker: probe_timeout must be positive, got {} ns",
                                        options.probe_timeout.count()));
  }
  return Status::ok();
}

CircuitBreaker::CircuitBreaker(std::string destination, CircuitBreakerOptions options,
                               std::shared_ptr<Clock> clock, CircuitListener listener)
    : destination_(std::move(destination)),
      options_(options),
      clock_(clock ? std::move(clock) : real_clock()),
      listener_(std::move(listener)),
      current_open_duration_(options.open_duration) {}

Result<std::unique_ptr<CircuitBreaker>> CircuitBreaker::create(std::string destination,
                                                               CircuitBreakerOptions options,
                                                               std::shared_ptr<Clock> clock,
                                                               CircuitListener listener) {
  ACT_RETURN_IF_ERROR(validate_circuit_breaker_options(options));
  return std::make_unique<CircuitBreaker>(std::move(destination), options, std::move(clock),
                                          std::move(listener));
}

CircuitAdmission CircuitBreaker::admit() {
  std::lock_guard<std::mutex> lock(mutex_);
  Clock::TimePoint now = clock_->now();
  switch (state_) {
    case CircuitState::kClosed: return {true, false, std::chrono::nanoseconds::zero(), {}};

    case CircuitState::kOpen: {
      Clock::TimePoint probe_at = opened_at_ + current_open_duration_;
      if (now < probe_at) return {false, false, probe_at - now, last_failure_};
      transition(CircuitState::kHalfOpen, "open period ended");
      probe_in_flight_ = true;
      probe_started_at_ = now;
      return {true, true, std::chrono::nanoseconds::zero(), {}};
    }

    case CircuitState::kHalfOpen: {
      Clock::TimePoint probe_expires = probe_started_at_ + options_.probe_timeout;
      if (probe_in_flight_ && now < probe_expires) return {false, false, probe_expires - now, last_failure_};
      probe_in_flight_ = true;
      probe_started_at_ = now;
      return {true, true, std::chrono::nanoseconds::zero(), {}};
    }
  }
  return {false, false, std::chrono::nanoseconds::zero(), {}};
}

void CircuitBreaker::record_success() {
  std::lock_guard<std::mutex> lock(mutex_);
  consecutive_failures_ = 0;
  if (state_ == CircuitState::kHalfOpen) {
    probe_in_flight_ = false;
    current_open_duration_ = options_.open_duration;
    transition(CircuitState::kClosed, "probe succeeded");
  }
  // A success reported while open comes from a request admitted before the circuit opened. It
  // does not shorten the open period, because the failures that opened it are more recent.
}

void CircuitBreaker::record_failure(std::string_view reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  Clock::TimePoint now = clock_->now();
  if (state_ != CircuitState::kOpen) last_failure_ = std::string(reason);
  switch (state_) {
    case CircuitState::kClosed:
      ++consecutive_failures_;
      if (consecutive_failures_ >= options_.failure_threshold) {
        opened_at_ = now;
        current_open_duration_ = options_.open_duration;
        transition(CircuitState::kOpen,
                   fmt::format("{} consecutive failures, the last: {}", consecutive_failures_, reason));
      }
      return;

    case CircuitState::kHalfOpen:
      probe_in_flight_ = false;
      opened_at_ = now;
      current_open_duration_ = std::min(options_.max_open_duration, current_open_duration_ * 2);
      transition(CircuitState::kOpen, fmt::format("probe failed: {}", reason));
      return;

    case CircuitState::kOpen: return;  // A late response to a request admitted before the circuit opened.
  }
}

std::chrono::nanoseconds CircuitBreaker::time_until_probe() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ != CircuitState::kOpen) return std::chrono::nanoseconds::zero();
  return std::max(std::chrono::nanoseconds::zero(), opened_at_ + current_open_duration_ - clock_->now());
}

CircuitState CircuitBreaker::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}

void CircuitBreaker::transition(CircuitState to, std::string reason) {
  CircuitState from = state_;
  state_ = to;
  if (to == CircuitState::kClosed) consecutive_failures_ = 0;
  if (!listener_) return;
  CircuitTransition event{destination_, from, to, std::move(reason), clock_->now()};
  // A throwing listener must not leave the breaker half-updated or escape into the caller.
  try {
    listener_(event);
  } catch (...) {
  }
}

}  // namespace activation
