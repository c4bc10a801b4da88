// Rate limiters: how many requests may go to a platform account, and when.
//
// Quotas belong to the platform account, not to the job, so the process keeps one limiter per
// (platform, account) in a RateLimiterRegistry and every job sending to that account shares it.
// Three algorithms are available:
//
// - Token bucket, implemented as GCRA (the generic cell rate algorithm): a sustained rate with a
//   burst allowance, spacing requests evenly. One timestamp per key.
// - Sliding window: at most `window_limit` tokens in any window of length `window`, matching
//   platforms that count requests per minute or per hour.
// - Adaptive: a token bucket whose rate falls when the platform throttles or reports usage near
//   its quota, and climbs back slowly while responses are clean.
//
// Thread safety: every RateLimiter and the RateLimiterRegistry may be used from many threads at
// once; keys are independent of each other.
#ifndef ACTIVATION_RATE_LIMITER_HPP_
#define ACTIVATION_RATE_LIMITER_HPP_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "activation/clock.hpp"
#include "activation/export.hpp"
#include "activation/status.hpp"

namespace activation {

enum class RateLimitAlgorithm : int { kTokenBucket = 0, kSlidingWindow, kAdaptive };

// Returns "token_bucket", "sliding_window" or "adaptive".
ACT_EXPORT std::string_view rate_limit_algorithm_name(RateLimitAlgorithm algorithm) noexcept;
ACT_EXPORT std::optional<RateLimitAlgorithm> parse_rate_limit_algorithm(std::string_view name) noexcept;

struct RateLimitPolicy {
  RateLimitAlgorithm algorithm = RateLimitAlgorithm::kTokenBucket;

  // Token bucket and adaptive: the sustained rate (for adaptive, the maximum it climbs back to)
  // and the number of tokens that may be taken at once after an idle period.
  double rate_per_second = 10.0;
  double burst = 1.0;

  // Sliding window: at most `window_limit` tokens are granted in any window of `window`.
  double window_limit = 0.0;
  std::chrono::nanoseconds window = std::chrono::seconds(1);
  // When true, a grant keeps counting until the caller calls release() (at most `max_in_flight`
  // after it was granted), and then for a further `window`. The platform receives a request
  // between its grant and its release, so with releases the platform never receives more than
  // `window_limit` requests in any window, however the network delays them. When false, a grant
  // counts for `window` from the moment it was granted.
  bool count_until_release = false;
  std::chrono::nanoseconds max_in_flight = std::chrono::minutes(5);

  // Adaptive: the rate starts at `initial_rate_per_second` (zero means `rate_per_second`). It is
  // multiplied by `throttle_decrease` on a throttled response, and by `usage_decrease` when the
  // reported usage reaches `usage_high_percent`. It never falls below `min_rate_per_second`, and
  // it falls at most once per `decrease_cooldown`, because the responses to requests already in
  // flight report the same overload. After `increase_interval` without a decrease it grows by
  // `increase_fraction * rate_per_second`, up to `rate_per_second`.
  double initial_rate_per_second = 0.0;
  double min_rate_per_second = 0.1;
  double throttle_decrease = 0.5;
  double usage_high_percent = 90.0;
  double usage_decrease = 0.8;
  double increase_fraction = 0.05;
  std::chrono::nanoseconds increase_interval = std::chrono::seconds(10);
  std::chrono::nanoseconds decrease_cooldown = std::chrono::seconds(1);
};

// Returns OK, or kInvalidArgument naming the first field that is out of range and what it must be.
ACT_EXPORT Status validate_rate_limit_policy(const RateLimitPolicy& policy);

// Returns the default policy of a platform ("meta", "google_data_manager", "google_ads",
// "linkedin", "tiktok", "snapchat"), or of a daily quota ("google_data_manager_daily" counts
// requests, "google_ads_daily" operations), or nullopt for a destination without a quota ("file",
// "webhook") or an unknown name. docs/rate-limits.md gives each value and its source.
ACT_EXPORT std::optional<RateLimitPolicy> default_rate_limit_policy(std::string_view platform);

// Quota information from a platform's response, built from a classified response by
// rate_feedback() in activation/platform_errors.hpp.
struct RateFeedback {
  bool throttled = false;
  std::optional<double> usage_percent;  // The highest usage figure the platform reported, 0 to 100.
  std::optional<std::chrono::nanoseconds> retry_after;  // How long the platform asked to wait.
};

// Tokens reserved for one request.
struct RateGrant {
  Clock::TimePoint at{};             // When the request may be sent.
  std::chrono::nanoseconds wait{0};  // `at` minus the time of the reservation.
  double tokens = 0.0;
  std::uint64_t id = 0;  // Identifies the grant to release().
};

class ACT_EXPORT RateLimiter {
 public:
  virtual ~RateLimiter() = default;

  // Reserves `tokens` for `key` at the earliest time they are available and returns the grant;
  // the caller sends at grant.at. When that is more than `max_wait` away, reserves nothing and
  // fails with kResourceExhausted, whose message gives the wait. Fails with kInvalidArgument
  // when `tokens` is not positive or more than the policy can ever grant at once.
  // NOTE: with count_until_release, a reservation queued behind grants still in flight assumes
  // they are never released (it waits max_in_flight); acquire() does not have this limitation.
  virtual Result<RateGrant> reserve(std::string_view key, double tokens = 1.0,
                                    std::chrono::nanoseconds max_wait = std::chrono::nanoseconds::max()) = 0;

  // Returns how long from now `tokens` for `key` would have to wait, without reserving them.
  virtual std::chrono::nanoseconds time_until_available(std::string_view key, double tokens = 1.0) = 0;

  // Reports that the request sent under `grant` has its response or failed. Only the sliding window
  // with count_until_release uses it; the other limiters ignore it.
  virtual void release(std::string_view key, const RateGrant& grant) {}

  // Reports the quota information of a platform's response. Only the adaptive limiter uses it; the
  // others ignore it.
  virtual void on_feedback(std::string_view key, const RateFeedback& feedback) {}

  // Returns the rate currently applied to `key`, in tokens per second. For the sliding window
  // this is window_limit divided by the window.
  virtual double current_rate(std::string_view key) const = 0;

  virtual const RateLimitPolicy& policy() const noexcept = 0;
  virtual Clock& clock() const noexcept = 0;

  // Reserves without waiting: a grant with zero wait, or kResourceExhausted.
  Result<RateGrant> try_acquire(std::string_view key, double tokens = 1.0) {
    return reserve(key, tokens, std::chrono::nanoseconds::zero());
  }

  // Waits on the limiter's clock until `tokens` are granted and returns the grant, whose `wait`
  // is the time spent waiting. Fails like reserve(). The default reserves and then sleeps. The
  // sliding window with count_until_release re-checks while it waits instead, because releases
  // of grants in flight can make room sooner than a reservation made now would assume.
  virtual Result<RateGrant> acquire(std::string_view key, double tokens = 1.0,
                                    std::chrono::nanoseconds max_wait = std::chrono::nanoseconds::max()) {
    ACT_ASSIGN_OR_RETURN(RateGrant grant, reserve(key, tokens, max_wait));
    if (grant.wait > std::chrono::nanoseconds::zero()) clock().sleep_until(grant.at);
    return grant;
  }
};

// Creates a limiter for `policy`. Fails with kInvalidArgument when the policy does not validate.
ACT_EXPORT Result<std::shared_ptr<RateLimiter>> make_rate_limiter(
    const RateLimitPolicy& policy, std::shared_ptr<Clock> clock = real_clock());

// The limiters of one process: one per (platform, account), created on first use.
class ACT_EXPORT RateLimiterRegistry {
 public:
  explicit RateLimiterRegistry(std::shared_ptr<Clock> clock = real_clock());

  // Overrides the default policy of `platform`, or of one account of it. Fails with
  // kInvalidArgument for a policy that does not validate, and with kFailedPrecondition when a
  // limiter it would govern already exists (a policy applies from a limiter's creation on).
  Status set_platform_policy(std::string_view platform, const RateLimitPolicy& policy);
  Status set_account_policy(std::string_view platform, std::string_view account,
                            const RateLimitPolicy& policy);

  // Returns the policy that governs (platform, account): the account's override, else the
  // platform's, else the platform's default. kNotFound when there is none.
  Result<RateLimitPolicy> policy_for(std::string_view platform, std::string_view account) const;

  // Returns the shared limiter of (platform, account); callers pass `account` as the key.
  Result<std::shared_ptr<RateLimiter>> limiter(std::string_view platform, std::string_view account);

 private:
  Result<RateLimitPolicy> policy_for_locked(const std::string& platform, const std::string& account) const;

  std::shared_ptr<Clock> clock_;
  mutable std::mutex mutex_;
  std::map<std::string, RateLimitPolicy> platform_policies_;
  std::map<std::string, RateLimitPolicy> account_policies_;  // Keyed by "platform\naccount".
  std::map<std::string, std::shared_ptr<RateLimiter>> limiters_;
};

}  // namespace activation

#endif  // ACTIVATION_RATE_LIMITER_HPP_
