// The token bucket shared through a Store.
#include "activation/store_rate_limiter.hpp"

#include <atomic>
#include <cmath>

#include <fmt/format.h>

namespace activation {
namespace {

using std::chrono::microseconds;
using std::chrono::nanoseconds;

std::atomic<std::uint64_t> next_grant_id{1};

class StoreRateLimiter final : public RateLimiter {
 public:
  StoreRateLimiter(std::shared_ptr<Store> store, const RateLimitPolicy& policy, std::string key_prefix,
                   std::shared_ptr<Clock> clock)
      : store_(std::move(store)),
        policy_(policy),
        key_prefix_(std::move(key_prefix)),
        clock_(std::move(clock)) {}

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
                         store_->reserve_rate(key_prefix_ + std::string(key), request(tokens, limit)));
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
        store_->reserve_rate(key_prefix_ + std::string(key), request(tokens, microseconds(-1)));
    // NOTE: a failing store reads as "available now"; the reservation itself then reports the error.
    if (!reservation.is_ok()) return nanoseconds::zero();
    return reservation->wait;
  }

  double current_rate(std::string_view) const override { return policy_.rate_per_second; }
  const RateLimitPolicy& policy() const noexcept override { return policy_; }
  Clock& clock() const noexcept override { return *clock_; }

 private:
  Store::RateRequest request(double tokens, microseconds max_wait) const {
    Store::RateRequest request;
    request.rate_per_second = policy_.rate_per_second;
    request.burst = policy_.burst;
    request.tokens = tokens;
    request.max_wait = max_wait;
    return request;
  }

  std::shared_ptr<Store> store_;
  RateLimitPolicy policy_;
  std::string key_prefix_;
  std::shared_ptr<Clock> clock_;
};

}  // namespace

Result<std::shared_ptr<RateLimiter>> make_store_rate_limiter(std::shared_ptr<Store> store,
                                                             const RateLimitPolicy& policy,
                                                             std::string key_prefix,
                                                             std::shared_ptr<Clock> clock) {
  if (store == nullptr) return invalid_argument("make_store_rate_limiter needs a store; got a null pointer");
  ACT_RETURN_IF_ERROR(validate_rate_limit_policy(policy));
  if (policy.algorithm != RateLimitAlgorithm::kTokenBucket) {
    return invalid_argument(
        fmt::format("a rate limiter shared through the store supports the token_bucket "
                    "algorithm only; got '{}'",
                    rate_limit_algorithm_name(policy.algorithm)));
  }
  return std::shared_ptr<RateLimiter>(std::make_shared<StoreRateLimiter>(
      std::move(store), policy, std::move(key_prefix), clock ? std::move(clock) : real_clock()));
}

}  // namespace activation
