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

}  // namespace activation

#endif  // ACTIVATION_STORE_RATE_LIMITER_HPP_
