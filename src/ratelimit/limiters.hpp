// Constructors of the rate limiter implementations, for make_rate_limiter().
#ifndef ACTIVATION_SRC_RATELIMIT_LIMITERS_HPP_
#define ACTIVATION_SRC_RATELIMIT_LIMITERS_HPP_

#include <memory>

#include "activation/rate_limiter.hpp"

namespace activation::ratelimit {

// REQUIRES: validate_rate_limit_policy(policy) is OK and the algorithm matches.
std::shared_ptr<RateLimiter> make_token_bucket(const RateLimitPolicy& policy, std::shared_ptr<Clock> clock);
std::shared_ptr<RateLimiter> make_adaptive(const RateLimitPolicy& policy, std::shared_ptr<Clock> clock);
std::shared_ptr<RateLimiter> make_sliding_window(const RateLimitPolicy& policy, std::shared_ptr<Clock> clock);

// Checks a request of `tokens` against a sliding window's policy: more than 0 and at most
// window_limit. Fails with kInvalidArgument otherwise.
Status check_window_tokens(const RateLimitPolicy& policy, double tokens);
// Returns a sliding window's rate: window_limit per window, in tokens per second.
double window_rate(const RateLimitPolicy& policy);

}  // namespace activation::ratelimit

#endif  // ACTIVATION_SRC_RATELIMIT_LIMITERS_HPP_
