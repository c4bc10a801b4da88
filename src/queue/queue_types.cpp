// Names, parsing and the backoff formula of the queue's public types.
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <random>

#include <fmt/format.h>

#include "activation/job_queue.hpp"
#include "activation/ledger.hpp"
#include "activation/worker_pool.hpp"

namespace activation {

std::string_view priority_name(Priority priority) noexcept {
  switch (priority) {
    case Priority::kLow: return "low";
    case Priority::kNormal: return "normal";
    case Priority::kHigh: return "high";
    case Priority::kCritical: return "critical";
  }
  return "unknown";
}

std::optional<Priority> parse_priority(std::string_view text) noexcept {
  for (Priority p : {Priority::kLow, Priority::kNormal, Priority::kHigh, Priority::kCritical}) {
    if (text == priority_name(p)) return p;
  }
  int value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  switch (value) {
    case 1: return Priority::kLow;
    case 5: return Priority::kNormal;
    case 10: return Priority::kHigh;
    case 20: return Priority::kCritical;
    default: return std::nullopt;
  }
}

int priority_class_index(Priority priority) noexcept {
  switch (priority) {
    case Priority::kLow: return 0;
    case Priority::kNormal: return 1;
    case Priority::kHigh: return 2;
    case Priority::kCritical: return 3;
  }
  return 1;
}

std::string_view job_state_name(JobState state) noexcept {
  switch (state) {
    case JobState::kWaiting: return "waiting";
    case JobState::kDelayed: return "delayed";
    case JobState::kActive: return "active";
    case JobState::kCompleted: return "completed";
    case JobState::kFailed: return "failed";
    case JobState::kDead: return "dead";
    case JobState::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::optional<JobState> parse_job_state(std::string_view name) noexcept {
  for (int i = 0; i < kJobStateCount; ++i) {
    auto state = static_cast<JobState>(i);
    if (name == job_state_name(state)) return state;
  }
  return std::nullopt;
}

bool is_terminal(JobState state) noexcept {
  return state == JobState::kCompleted || state == JobState::kFailed || state == JobState::kDead ||
         state == JobState::kCancelled;
}

std::string_view error_class_name(ErrorClass error_class) noexcept {
  switch (error_class) {
    case ErrorClass::kTransient: return "transient";
    case ErrorClass::kRateLimited: return "rate_limited";
    case ErrorClass::kTimeout: return "timeout";
    case ErrorClass::kPermanent: return "permanent";
  }
  return "unknown";
}

std::optional<ErrorClass> parse_error_class(std::string_view name) noexcept {
  for (ErrorClass c : {ErrorClass::kTransient, ErrorClass::kRateLimited, ErrorClass::kTimeout, ErrorClass::kPermanent}) {
    if (name == error_class_name(c)) return c;
  }
  return std::nullopt;
}

std::string_view ledger_operation_name(LedgerOperation operation) noexcept {
  return operation == LedgerOperation::kAdd ? "add" : "remove";
}

std::string_view ledger_outcome_name(LedgerOutcome outcome) noexcept {
  switch (outcome) {
    case LedgerOutcome::kAccepted: return "accepted";
    case LedgerOutcome::kRejected: return "rejected";
    case LedgerOutcome::kDeferred: return "deferred";
  }
  return "unknown";
}

const BackoffPolicy& RetryPolicy::for_class(ErrorClass error_class) const noexcept {
  switch (error_class) {
    case ErrorClass::kRateLimited: return rate_limited;
    case ErrorClass::kTimeout: return timeout;
    default: return transient;
  }
}

int PriorityLimits::for_class(Priority priority) const noexcept {
  switch (priority) {
    case Priority::kLow: return low;
    case Priority::kNormal: return normal;
    case Priority::kHigh: return high;
    case Priority::kCritical: return critical;
  }
  return normal;
}

std::optional<std::chrono::milliseconds> backoff_delay(const RetryPolicy& policy, ErrorClass error_class, int retry,
                                                       double random_unit) noexcept {
  if (error_class == ErrorClass::kPermanent) return std::nullopt;
  const BackoffPolicy& backoff = policy.for_class(error_class);
  const double base = static_cast<double>(std::max<std::int64_t>(0, backoff.base.count()));
  const double cap = static_cast<double>(std::max<std::int64_t>(0, backoff.cap.count()));

  double ceiling = base;
  if (backoff.kind == BackoffKind::kExponential) {
    // 2^(retry-1) overflows a double's useful range long before retry 1000; the cap applies anyway.
    const int exponent = std::clamp(retry - 1, 0, 62);
    ceiling = base * std::ldexp(1.0, exponent);
  }
  ceiling = std::min(ceiling, cap);

  double delay = ceiling;
  if (backoff.jitter) delay = std::clamp(random_unit, 0.0, 1.0) * ceiling;
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::floor(delay)));
}

std::string make_worker_id() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "unknown-host");
  std::random_device device;
  const std::uint64_t nonce = (static_cast<std::uint64_t>(device()) << 32) ^ device();
  return fmt::format("{}:{}:{:016x}", host, static_cast<long>(getpid()), nonce);
}

}  // namespace activation
