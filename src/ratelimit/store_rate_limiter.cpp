// The token bucket and the sliding window shared through a Store.
#include "activation/store_rate_limiter.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>

#include <fmt/format.h>

#include "ratelimit/limiters.hpp"

namespace activation {
namespace {

using std::chrono::microseconds;
using std::chrono::nanoseconds;

std::atomic<std::uint64_t> next_grant_id{1};

// The base of the limiters kept in a Store: the store, the policy, the prefix of their store keys
// and the clock of their sleeps.
class StoreLimiterBase : public RateLimiter {
 public:
  StoreLimiterBase(std::shared_ptr<Store> store, const RateLimitPolicy& policy, std::string key_prefix,
                   std::shared_ptr<Clock> clock)
      : store_(std::move(store)),
        policy_(policy),
        key_prefix_(std::move(key_prefix)),
        clock_(std::move(clock)) {}

  const RateLimitPolicy& policy() const noexcept override { return policy_; }
  Clock& clock() const noexcept override { return *clock_; }

 protected:
  std::string store_key(std::string_view key) const { return key_prefix_ + std::string(key); }

  std::shared_ptr<Store> store_;
  RateLimitPolicy policy_;
  std::string key_prefix_;
  std::shared_ptr<Clock> clock_;
};

class StoreRateLimiter final : public StoreLimiterBase {
 public:
  using StoreLimiterBase::StoreLimiterBase;

  Result<RateGrant> reserve(std::string_view key, double tokens, nanoseconds max_wait) override {
    if (!std::isfinite(tokens) || tokens <= 0.0 || tokens > policy_.burst) {
      return invalid_argument(
          fmt::format("rate limiter: tokens must be greater than 0 and at most the burst ({}), got {}",
                      policy_.burst, tokens));
    }
    // Microseconds are the store's unit; a wait of up to 999 ns more than max_wait is allowed.
    const microseconds limit =
        std::chrono::duration_cast<microseconds>(std::max(nanoseconds::zero(), max_wait));
    const Clock::TimePoint now = clock_->now();
    ACT_ASSIGN_OR_RETURN(const Store::RateReservation reservation,
                         store_->reserve_rate(store_key(key), request(tokens, limit)));
    if (!reservation.granted) {
      return Status(
          StatusCode::kResourceExhausted,
          fmt::format("rate limit for '{}': {} token(s) available in {} ms, more than the {} ms allowed", key,
                      tokens, reservation.wait.count() / 1000, limit.count() / 1000));
    }
    const nanoseconds wait = reservation.wait;
    return RateGrant{now + wait, wait, tokens, next_grant_id.fetch_add(1)};
  }

  nanoseconds time_until_available(std::string_view key, double tokens) override {
    // A negative max_wait makes the store report the wait without reserving anything.
    auto reservation =
        store_->reserve_rate(store_key(key), request(tokens, microseconds(-1)));
    // NOTE: a failing store reads as "available now"; the reservation itself then reports the error.
    if (!reservation.is_ok()) return nanoseconds::zero();
    return reservation->wait;
  }

  double current_rate(std::string_view) const override { return policy_.rate_per_second; }

 private:
  Store::RateRequest request(double tokens, microseconds max_wait) const {
    Store::RateRequest request;
    request.rate_per_second = policy_.rate_per_second;
    request.burst = policy_.burst;
    request.tokens = tokens;
    request.max_wait = max_wait;
    return request;
  }
};

// The sliding window shared through a Store. The store records each grant at its own clock and
// cannot hold one for later, so reserve() grants only tokens that are free now. acquire() sleeps
// until the store reports room, then tries again.
class StoreWindowLimiter final : public StoreLimiterBase {
 public:
  using StoreLimiterBase::StoreLimiterBase;

  Result<RateGrant> reserve(std::string_view key, double tokens, nanoseconds max_wait) override {
    ACT_RETURN_IF_ERROR(check_tokens(tokens));
    const Clock::TimePoint now = clock_->now();
    ACT_ASSIGN_OR_RETURN(const Store::RateReservation reservation,
                         store_->reserve_window(store_key(key), request(tokens, true)));
    if (reservation.granted) return RateGrant{now, nanoseconds::zero(), tokens, next_grant_id.fetch_add(1)};
    if (reservation.wait > max_wait) return exhausted(key, tokens, reservation.wait, max_wait);
    return Status(StatusCode::kResourceExhausted,
                  fmt::format("rate limit for '{}': {} token(s) available in {} ms; a window shared through the "
                              "store grants only tokens that are free now, and acquire() waits for them",
                              key, tokens, reservation.wait.count() / 1000));
  }

  Result<RateGrant> acquire(std::string_view key, double tokens, nanoseconds max_wait) override {
    ACT_RETURN_IF_ERROR(check_tokens(tokens));
    const Clock::TimePoint start = clock_->now();
    while (true) {
      ACT_ASSIGN_OR_RETURN(const Store::RateReservation reservation,
                           store_->reserve_window(store_key(key), request(tokens, true)));
      const Clock::TimePoint now = clock_->now();
      const nanoseconds waited = now - start;
      if (reservation.granted) return RateGrant{now, waited, tokens, next_grant_id.fetch_add(1)};
      // Another process may take the room first, so the wait is read again after each sleep.
      const nanoseconds wait = std::max<nanoseconds>(reservation.wait, std::chrono::milliseconds(1));
      if (max_wait != nanoseconds::max() && waited + wait > max_wait) {
        return exhausted(key, tokens, reservation.wait, max_wait - std::min(max_wait, waited));
      }
      clock_->sleep_until(now + wait);
    }
  }

  nanoseconds time_until_available(std::string_view key, double tokens) override {
    auto reservation = store_->reserve_window(store_key(key), request(tokens, false));
    // NOTE: a failing store reads as "available now", and the reservation then reports the error.
    if (!reservation.is_ok()) return nanoseconds::zero();
    return reservation->wait;
  }

  double current_rate(std::string_view) const override { return ratelimit::window_rate(policy_); }

 private:
  Status check_tokens(double tokens) const { return ratelimit::check_window_tokens(policy_, tokens); }

  static Status exhausted(std::string_view key, double tokens, microseconds wait, nanoseconds max_wait) {
    return Status(StatusCode::kResourceExhausted,
                  fmt::format("rate limit for '{}': {} token(s) available in {} ms, more than the {} ms allowed", key,
                              tokens, wait.count() / 1000,
                              std::chrono::duration_cast<std::chrono::milliseconds>(max_wait).count()));
  }

  Store::WindowRequest request(double tokens, bool take) const {
    Store::WindowRequest request;
    request.limit = policy_.window_limit;
    request.window = std::chrono::duration_cast<microseconds>(policy_.window);
    request.tokens = tokens;
    request.take = take;
    return request;
  }
};

// Checks what both factories need, then creates the limiter of type `Limiter`. `wrong_algorithm`
// is the message for a policy of another algorithm, with {} for that algorithm's name.
template <typename Limiter>
Result<std::shared_ptr<RateLimiter>> make_store_limiter(const char* factory, RateLimitAlgorithm algorithm,
                                                        const char* wrong_algorithm, std::shared_ptr<Store> store,
                                                        const RateLimitPolicy& policy, std::string key_prefix,
                                                        std::shared_ptr<Clock> clock) {
  if (store == nullptr) return invalid_argument(fmt::format("{} needs a store; got a null pointer", factory));
  ACT_RETURN_IF_ERROR(validate_rate_limit_policy(policy));
  if (policy.algorithm != algorithm) {
    return invalid_argument(fmt::format(fmt::runtime(wrong_algorithm), rate_limit_algorithm_name(policy.algorithm)));
  }
  return std::shared_ptr<RateLimiter>(std::make_shared<Limiter>(std::move(store), policy, std::move(key_prefix),
                                                                clock ? std::move(clock) : real_clock()));
}

}  // namespace

Result<std::shared_ptr<RateLimiter>> make_store_window_limiter(std::shared_ptr<Store> store,
                                                               const RateLimitPolicy& policy,
                                                               std::string key_prefix,
                                                               std::shared_ptr<Clock> clock) {
  return make_store_limiter<StoreWindowLimiter>(
      "make_store_window_limiter", RateLimitAlgorithm::kSlidingWindow,
      "a sliding window shared through the store needs the sliding_window algorithm; got '{}'", std::move(store),
      policy, std::move(key_prefix), std::move(clock));
}

Result<std::shared_ptr<RateLimiter>> make_store_rate_limiter(std::shared_ptr<Store> store,
                                                             const RateLimitPolicy& policy,
                                                             std::string key_prefix,
                                                             std::shared_ptr<Clock> clock) {
  return make_store_limiter<StoreRateLimiter>(
      "make_store_rate_limiter", RateLimitAlgorithm::kTokenBucket,
      "a rate limiter shared through the store supports the token_bucket algorithm only; got '{}'",
      std::move(store), policy, std::move(key_prefix), std::move(clock));
}

}  // namespace activation
