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

}  // namespace activation::ratelimit

#endif  // ACTIVATION_SRC_RATELIMIT_LIMITERS_HPP_
