// The token bucket as GCRA, and the adaptive limiter built on it.
//
// GCRA keeps one "theoretical arrival time" (TAT) per key: the time at which the bucket would be
// full again if nothing else were taken. Taking n tokens moves the TAT n emission intervals
// (1 / rate) later, and is allowed once the TAT minus the burst allowance (burst intervals) is
// not in the future. This is an exact token bucket without a refill timer.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <string>

#include <fmt/format.h>

#include "activation/rate_limiter.hpp"
#include "ratelimit/limiters.hpp"

namespace activation::ratelimit {

namespace {

using std::chrono::nanoseconds;
using TimePoint = Clock::TimePoint;

nanoseconds interval_of(double tokens, double rate_per_second) {
  return nanoseconds(static_cast<std::int64_t>(std::ceil(tokens * 1e9 / rate_per_second)));
}

std::atomic<std::uint64_t> next_grant_id{1};

struct BucketState {
  TimePoint tat{};
  double rate = 0.0;
  TimePoint blocked_until{};  // Set by a platform's Retry-After; adaptive only.
  TimePoint last_decrease{};
  TimePoint last_change{};
  bool decreased_once = false;
};

class TokenBucketLimiter : public RateLimiter {
 public:
  TokenBucketLimiter(const RateLimitPolicy& policy, std::shared_ptr<Clock> clock)
      : policy_(policy), clock_(std::move(clock)) {}

  Result<RateGrant> reserve(std::string_view key, double tokens, nanoseconds max_wait) override {
    ACT_RETURN_IF_ERROR(check_tokens(tokens));
    std::lock_guard<std::mutex> lock(mutex_);
    TimePoint now = clock_->now();
    BucketState& state = state_for(key, now);

    auto [allowed_at, new_tat] = schedule(state, tokens, now);
    nanoseconds wait = std::max(nanoseconds::zero(), allowed_at - now);
    if (wait > max_wait) {
      return Status(
          StatusCode::kResourceExhausted,
          fmt::format("rate limit for '{}': {} token(s) available in {} ms, more than the {} ms allowed", key,
                      tokens, wait.count() / 1'000'000, max_wait.count() / 1'000'000));
    }
    state.tat = new_tat;
    return RateGrant{now + wait, wait, tokens, next_grant_id.fetch_add(1)};
  }

  nanoseconds time_until_available(std::string_view key, double tokens) override {
    std::lock_guard<std::mutex> lock(mutex_);
    TimePoint now = clock_->now();
    BucketState& state = state_for(key, now);
    auto [allowed_at, new_tat] = schedule(state, tokens, now);
    return std::max(nanoseconds::zero(), allowed_at - now);
  }

  double current_rate(std::string_view key) const override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = states_.find(key);
    return it == states_.end() ? initial_rate() : it->second.rate;
  }

  const RateLimitPolicy& policy() const noexcept override { return policy_; }
  Clock& clock() const noexcept override { return *clock_; }

 protected:
  virtual double initial_rate() const { return policy_.rate_per_second; }

  BucketState& state_for(std::string_view key, TimePoint now) {
    auto it = states_.find(key);
    if (it != states_.end()) return it->second;
    BucketState fresh;
    fresh.tat = now;
    fresh.rate = initial_rate();
    fresh.last_change = now;
    return states_.emplace(std::string(key), fresh).first->second;
  }

  // Returns when `tokens` may be taken and the TAT after taking them.
  std::pair<TimePoint, TimePoint> schedule(const BucketState& state, double tokens, TimePoint now) const {
    TimePoint start = std::max({state.tat, now, state.blocked_until});
    TimePoint new_tat = start + interval_of(tokens, state.rate);
    TimePoint allowed_at = new_tat - interval_of(policy_.burst, state.rate);
    return {std::max({allowed_at, now, state.blocked_until}), new_tat};
  }

  RateLimitPolicy policy_;
  std::shared_ptr<Clock> clock_;
  mutable std::mutex mutex_;
  std::map<std::string, BucketState, std::less<>> states_;

 private:
  Status check_tokens(double tokens) const {
    if (std::isfinite(tokens) && tokens > 0.0 && tokens <= policy_.burst) return Status::ok();
    return invalid_argument(
        fmt::format("rate limiter: tokens must be greater than 0 and at most the burst ({}), got {}",
                    policy_.burst, tokens));
  }
};

class AdaptiveLimiter final : public TokenBucketLimiter {
 public:
  using TokenBucketLimiter::TokenBucketLimiter;

  void on_feedback(std::string_view key, const RateFeedback& feedback) override {
    std::lock_guard<std::mutex> lock(mutex_);
    TimePoint now = clock_->now();
    BucketState& state = state_for(key, now);

    if (feedback.retry_after && *feedback.retry_after > nanoseconds::zero()) {
      state.blocked_until = std::max(state.blocked_until, now + *feedback.retry_after);
    }
    if (feedback.throttled) {
      decrease(state, policy_.throttle_decrease, now);
      return;
    }
    if (feedback.usage_percent && *feedback.usage_percent >= policy_.usage_high_percent) {
      decrease(state, policy_.usage_decrease, now);
      return;
    }
    if (now - state.last_change >= policy_.increase_interval && state.rate < policy_.rate_per_second) {
      state.rate =
          std::min(policy_.rate_per_second, state.rate + policy_.increase_fraction * policy_.rate_per_second);
      state.last_change = now;
    }
  }

 protected:
  double initial_rate() const override {
    return policy_.initial_rate_per_second > 0.0 ? policy_.initial_rate_per_second : policy_.rate_per_second;
  }

 private:
  void decrease(BucketState& state, double factor, TimePoint now) {
    if (state.decreased_once && now - state.last_decrease < policy_.decrease_cooldown) return;
    // Requests already scheduled keep their times; the slower spacing applies from the next
    // reservation on.
    state.rate = std::max(policy_.min_rate_per_second, state.rate * factor);
    state.decreased_once = true;
    state.last_decrease = now;
    state.last_change = now;
  }
};

}  // namespace

std::shared_ptr<RateLimiter> make_token_bucket(const RateLimitPolicy& policy, std::shared_ptr<Clock> clock) {
  return std::make_shared<TokenBucketLimiter>(policy, std::move(clock));
}

std::shared_ptr<RateLimiter> make_adaptive(const RateLimitPolicy& policy, std::shared_ptr<Clock> clock) {
  return std::make_shared<AdaptiveLimiter>(policy, std::move(clock));
}

}  // namespace activation::ratelimit
