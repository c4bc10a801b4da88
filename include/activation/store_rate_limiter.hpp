// A token-bucket rate limiter whose state lives in a Store, so that every process using the store
// (workers on several machines sharing one PostgreSQL database, or processes sharing one SQLite
// file) takes its tokens from the same bucket and all of them together stay under the rate.
//
// Thread safety: the limiter may be used from many threads at once.
#ifndef ACTIVATION_STORE_RATE_LIMITER_HPP_
#define ACTIVATION_STORE_RATE_LIMITER_HPP_

#include <memory>
#include <string>

#include "activation/backend/store.hpp"
#include "activation/clock.hpp"
#include "activation/export.hpp"
#include "activation/rate_limiter.hpp"
#include "activation/status.hpp"

namespace activation {

// Creates a GCRA token bucket over Store::reserve_rate(): one row per key, holding the bucket's
// theoretical arrival time on the store's clock and moved atomically by each reservation. The
// store row of key K is `key_prefix + K`. `clock` only times the sleeps of acquire(). Fails with
// kInvalidArgument for a null store, a policy that does not validate, or an algorithm other than
// kTokenBucket (the sliding window and the adaptive limiter keep per-process state).
// reserve() fails like the store when the store fails (kUnavailable while the server restarts).
ACT_EXPORT Result<std::shared_ptr<RateLimiter>> make_store_rate_limiter(
    std::shared_ptr<Store> store, const RateLimitPolicy& policy, std::string key_prefix = {},
    std::shared_ptr<Clock> clock = real_clock());

// Creates a sliding window of policy.window_limit tokens per policy.window over
// Store::reserve_window(): the store keeps each grant of key K (as `key_prefix + K`) until it leaves
// the window, so all processes together are granted at most window_limit tokens in any window.
// Because a grant is recorded at the store's clock when it is made, reserve() grants only tokens
// that are free now (any positive wait fails with kResourceExhausted, even within max_wait).
// acquire() sleeps on `clock` for the reported wait and then tries the store again. release() and count_until_release have no
// effect. Fails with kInvalidArgument for a null store, a policy that does not validate, or an
// algorithm other than kSlidingWindow. Each reservation reads the key's grants still in the
// window, so it suits quotas of up to some hundred thousand requests per window, such as daily
// quotas.
ACT_EXPORT Result<std::shared_ptr<RateLimiter>> make_store_window_limiter(
    std::shared_ptr<Store> store, const RateLimitPolicy& policy, std::string key_prefix = {},
    std::shared_ptr<Clock> clock = real_clock());

}  // namespace activation

#endif  // ACTIVATION_STORE_RATE_LIMITER_HPP_
