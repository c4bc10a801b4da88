#include <chrono>
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "activation/rate_limiter.hpp"
#include "ratelimit/limiters.hpp"

namespace activation {

std::string_view rate_limit_algorithm_name(RateLimitAlgorithm algorithm) noexcept {
  switch (algorithm) {
    case RateLimitAlgorithm::kTokenBucket: return "token_bucket";
    case RateLimitAlgorithm::kSlidingWindow: return "sliding_window";
    case RateLimitAlgorithm::kAdaptive: return "adaptive";
  }
  return "token_bucket";
}

std::optional<RateLimitAlgorithm> parse_rate_limit_algorithm(std::string_view name) noexcept {
  if (name == "token_bucket" || name == "gcra") return RateLimitAlgorithm::kTokenBucket;
  if (name == "sliding_window") return RateLimitAlgorithm::kSlidingWindow;
  if (name == "adaptive") return RateLimitAlgorithm::kAdaptive;
  return std::nullopt;
}

namespace {

Status check_positive(double value, std::string_view field) {
  if (std::isfinite(value) && value > 0.0) return Status::ok();
  return invalid_argument(
      fmt::format("rate limit policy: {} must be a positive number, got {}", field, value));
}

Status check_fraction(double value, std::string_view field) {
  if (std::isfinite(value) && value > 0.0 && value < 1.0) return Status::ok();
  return invalid_argument(
      fmt::format("rate limit policy: {} must be greater than 0 and less than 1, got {}", field, value));
}

Status check_duration(std::chrono::nanoseconds value, std::string_view field) {
  if (value.count() > 0) return Status::ok();
  return invalid_argument(
      fmt::format("rate limit policy: {} must be a positive duration, got {} ns", field, value.count()));
}

Status validate_token_bucket(const RateLimitPolicy& policy) {
  ACT_RETURN_IF_ERROR(check_positive(policy.rate_per_second, "rate_per_second"));
  ACT_RETURN_IF_ERROR(check_positive(policy.burst, "burst"));
  if (policy.burst < 1.0) {
    return invalid_argument(fmt::format("rate limit policy: burst must be at least 1, got {}", policy.burst));
  }
  return Status::ok();
}

Status validate_adaptive(const RateLimitPolicy& policy) {
  ACT_RETURN_IF_ERROR(validate_token_bucket(policy));
  ACT_RETURN_IF_ERROR(check_positive(policy.min_rate_per_second, "min_rate_per_second"));
  if (policy.min_rate_per_second > policy.rate_per_second) {
    return invalid_argument(
        fmt::format("rate limit policy: min_rate_per_second ({}) must not exceed rate_per_second ({})",
                    policy.min_rate_per_second, policy.rate_per_second));
  }
  double initial = policy.initial_rate_per_second;
  if (!std::isfinite(initial) || initial < 0.0 ||
      (initial > 0.0 && (initial < policy.min_rate_per_second || initial > policy.rate_per_second))) {
    return invalid_argument(fmt::format(
        "rate limit policy: initial_rate_per_second must be 0 or between min_rate_per_second ({}) and "
        "rate_per_second ({}), got {}",
        policy.min_rate_per_second, policy.rate_per_second, initial));
  }
  ACT_RETURN_IF_ERROR(check_fraction(policy.throttle_decrease, "throttle_decrease"));
  ACT_RETURN_IF_ERROR(check_fraction(policy.usage_decrease, "usage_decrease"));
  ACT_RETURN_IF_ERROR(check_fraction(policy.increase_fraction, "increase_fraction"));
  if (!(policy.usage_high_percent > 0.0 && policy.usage_high_percent <= 100.0)) {
    return invalid_argument(
        fmt::format("rate limit policy: usage_high_percent must be greater than 0 and at most 100, got {}",
                    policy.usage_high_percent));
  }
  ACT_RETURN_IF_ERROR(check_duration(policy.increase_interval, "increase_interval"));
  if (policy.decrease_cooldown.count() < 0) {
    return invalid_argument(
        fmt::format("rate limit policy: decrease_cooldown must not be negative, got {} ns",
                    policy.decrease_cooldown.count()));
  }
  return Status::ok();
}

Status validate_sliding_window(const RateLimitPolicy& policy) {
  ACT_RETURN_IF_ERROR(check_positive(policy.window_limit, "window_limit"));
  ACT_RETURN_IF_ERROR(check_duration(policy.window, "window"));
  ACT_RETURN_IF_ERROR(check_duration(policy.max_in_flight, "max_in_flight"));
  return Status::ok();
}

RateLimitPolicy sliding_window(double limit, std::chrono::nanoseconds window) {
  RateLimitPolicy policy;
  policy.algorithm = RateLimitAlgorithm::kSlidingWindow;
  policy.window_limit = limit;
  policy.window = window;
  policy.rate_per_second = limit / std::chrono::duration<double>(window).count();
  return policy;
}

RateLimitPolicy adaptive(double rate_per_second) {
  RateLimitPolicy policy;
  policy.algorithm = RateLimitAlgorithm::kAdaptive;
  policy.rate_per_second = rate_per_second;
  policy.burst = 1.0;
  policy.min_rate_per_second = std::min(0.1, rate_per_second);
  return policy;
}

}  // namespace

Status validate_rate_limit_policy(const RateLimitPolicy& policy) {
  switch (policy.algorithm) {
    case RateLimitAlgorithm::kTokenBucket: return validate_token_bucket(policy);
    case RateLimitAlgorithm::kSlidingWindow: return validate_sliding_window(policy);
    case RateLimitAlgorithm::kAdaptive: return validate_adaptive(policy);
  }
  return invalid_argument("rate limit policy: unknown algorithm");
}

// The sources of these figures are listed in docs/rate-limits.md. Where a platform documents no
// figure the value is an estimate, marked so there, and the adaptive limiter corrects it from the
// platform's throttling responses.
std::optional<RateLimitPolicy> default_rate_limit_policy(std::string_view platform) {
  using std::chrono::seconds;
  if (platform == "meta") {
    // Standard-access custom_audience quota: 190,000 calls per ad account per hour (the
    // per-audience allowance on top is ignored), which is 52.8 per second.
    return adaptive(190'000.0 / 3600.0);
  }
  if (platform == "google_data_manager") {
    // Ingestion quota of the Cloud project: 300 requests per minute.
    return sliding_window(300.0, seconds(60));
  }
  if (platform == "google_data_manager_daily") {
    // Daily ingestion quota of the Cloud project: 100,000 requests per day.
    return sliding_window(100'000.0, std::chrono::hours(24));
  }
  if (platform == "google_ads") {
    // No per-second figure is documented; daily operation quotas depend on the access level.
    return adaptive(5.0);
  }
  if (platform == "google_ads_daily") {
    // Daily operations of a Cloud project with Basic access: 15,000. Test access allows the same
    // number on test accounts only, Explorer access 2,880, and Standard access more.
    return sliding_window(15'000.0, std::chrono::hours(24));
  }
  if (platform == "linkedin") {
    // 500 requests per minute per member on the DMP segment user endpoints. Pages document 500
    // or 600, and the lower figure is taken.
    return sliding_window(500.0, seconds(60));
  }
  if (platform == "tiktok" || platform == "snapchat") {
    // No figure is documented; an estimate that the adaptive limiter corrects.
    return adaptive(10.0);
  }
  return std::nullopt;
}

Result<std::shared_ptr<RateLimiter>> make_rate_limiter(const RateLimitPolicy& policy,
                                                       std::shared_ptr<Clock> clock) {
  ACT_RETURN_IF_ERROR(validate_rate_limit_policy(policy));
  if (!clock) return invalid_argument("make_rate_limiter: clock must not be null");
  switch (policy.algorithm) {
    case RateLimitAlgorithm::kTokenBucket: return ratelimit::make_token_bucket(policy, std::move(clock));
    case RateLimitAlgorithm::kSlidingWindow: return ratelimit::make_sliding_window(policy, std::move(clock));
    case RateLimitAlgorithm::kAdaptive: return ratelimit::make_adaptive(policy, std::move(clock));
  }
  return invalid_argument("rate limit policy: unknown algorithm");
}

}  // namespace activation
