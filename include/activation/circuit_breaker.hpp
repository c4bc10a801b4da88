// A circuit breaker per destination: stops sending to a platform that keeps failing, and lets one
// probe request through after a pause to find out whether it has recovered.
//
// States: closed lets requests through and counts consecutive failures. Open rejects requests
// until the open period ends. Half-open admits exactly one probe request: its success closes the
// circuit, and its failure opens it again for twice the previous period, up to a maximum.
// Record only the failures that show the platform is unhealthy, which are network errors and 5xx
// responses (counts_against_circuit() in platform_errors.hpp), not throttling or bad requests.
//
// Thread safety: all methods may be called from many threads at once. The listener runs on the
// thread whose call caused the transition, while the breaker's lock is held, so it must not call
// back into the same breaker.
#ifndef ACTIVATION_CIRCUIT_BREAKER_HPP_
#define ACTIVATION_CIRCUIT_BREAKER_HPP_

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "activation/clock.hpp"
#include "activation/export.hpp"
#include "activation/status.hpp"

namespace activation {

enum class CircuitState : int { kClosed = 0, kOpen, kHalfOpen };

// Returns "closed", "open" or "half_open".
ACT_EXPORT std::string_view circuit_state_name(CircuitState state) noexcept;

struct CircuitBreakerOptions {
  int failure_threshold = 5;  // Consecutive failures that open a closed circuit.
  std::chrono::nanoseconds open_duration = std::chrono::seconds(30);  // The first open period.
  std::chrono::nanoseconds max_open_duration = std::chrono::minutes(10);
  // A probe that reports neither success nor failure within this time is presumed lost, and the
  // next caller becomes the probe.
  std::chrono::nanoseconds probe_timeout = std::chrono::minutes(2);
};

// Returns OK, or kInvalidArgument naming the field that is out of range.
ACT_EXPORT Status validate_circuit_breaker_options(const CircuitBreakerOptions& options);

struct CircuitTransition {
  std::string destination;
  CircuitState from = CircuitState::kClosed;
  CircuitState to = CircuitState::kClosed;
  std::string reason;  // Why: the last failure's message, "probe succeeded", "open period ended".
  Clock::TimePoint at{};
};

using CircuitListener = std::function<void(const CircuitTransition&)>;

// The decision of CircuitBreaker::admit().
struct CircuitAdmission {
  bool allowed = false;
  bool probe = false;  // This request is the half-open probe; report its outcome without fail.
  std::chrono::nanoseconds retry_after{0};  // When rejected: the time until a probe may go.
  std::string last_failure;  // When rejected: the message of the failure that opened the circuit.
};

class ACT_EXPORT CircuitBreaker {
 public:
  // REQUIRES: validate_circuit_breaker_options(options) is OK (create() checks it).
  CircuitBreaker(std::string destination, CircuitBreakerOptions options, std::shared_ptr<Clock> clock,
                 CircuitListener listener = {});

  // Creates a breaker, or fails with kInvalidArgument for options out of range.
  static Result<std::unique_ptr<CircuitBreaker>> create(std::string destination,
                                                        CircuitBreakerOptions options,
                                                        std::shared_ptr<Clock> clock = real_clock(),
                                                        CircuitListener listener = {});

  // Decides whether a request may be sent now. An open circuit whose period has ended turns
  // half-open here and admits the caller as the probe.
  CircuitAdmission admit();

  // Report the outcome of an admitted request.
  void record_success();
  void record_failure(std::string_view reason);

  CircuitState state() const;
  // Returns the time until an open circuit admits its probe; zero when it is not open.
  std::chrono::nanoseconds time_until_probe() const;
  const std::string& destination() const noexcept { return destination_; }

 private:
  void transition(CircuitState to, std::string reason);

  const std::string destination_;
  const CircuitBreakerOptions options_;
  const std::shared_ptr<Clock> clock_;
  const CircuitListener listener_;

  mutable std::mutex mutex_;
  CircuitState state_ = CircuitState::kClosed;
  int consecutive_failures_ = 0;
  std::chrono::nanoseconds current_open_duration_{0};
  Clock::TimePoint opened_at_{};
  bool probe_in_flight_ = false;
  Clock::TimePoint probe_started_at_{};
  std::string last_failure_;
};

}  // namespace activation

#endif  // ACTIVATION_CIRCUIT_BREAKER_HPP_
