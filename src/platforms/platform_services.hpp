// Objects that the platform adapters of one process share: one rate limiter per platform account
// and one circuit breaker per destination. Adapters are created per (job, destination) run, but
// quotas belong to the account and health to the destination, so both outlive any one run.
//
// Thread safety: every function may be called from any thread; the returned limiters and breakers
// are thread-safe themselves.
#ifndef ACTIVATION_PLATFORMS_PLATFORM_SERVICES_HPP_
#define ACTIVATION_PLATFORMS_PLATFORM_SERVICES_HPP_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "activation/backend/store.hpp"
#include "activation/circuit_breaker.hpp"
#include "activation/log.hpp"
#include "activation/rate_limiter.hpp"
#include "activation/status.hpp"

namespace activation::platforms {

// Makes the account limiters that account_limiter() returns from now on take their tokens from
// `store` too, so that all processes on that store together stay within each account's rate.
// nullptr goes back to limiters of this process only. Limiters returned before the call keep what
// they were created with. The engine calls it when it opens a PostgreSQL store.
// A daily quota (a platform name ending in "_daily") with a sliding window is counted in the store
// alone (make_store_window_limiter). Other policies also wait for a token bucket in the store.
void share_rate_limits_through(std::shared_ptr<Store> store);
// Stops sharing through `store` when it is the store shared now; otherwise does nothing.
void stop_sharing_rate_limits(const Store* store);

// Returns the process's limiter of (platform, account). The first caller creates it, with
// `policy` when given, else with the platform's default policy. A later caller that passes a
// different policy gets the existing limiter and a warning in the log, because a limiter keeps the
// policy it was created with. While a store is shared (share_rate_limits_through), the limiter
// waits for the process's limiter and then for a token bucket of the account in the store. Fails
// with kInvalidArgument for a policy that does not validate and kNotFound for a platform without a
// default when `policy` is empty.
Result<std::shared_ptr<RateLimiter>> account_limiter(std::string_view platform, std::string_view account,
                                                     const std::optional<RateLimitPolicy>& policy,
                                                     const Logger& logger);

// Returns the process's circuit breaker called `key`, creating it with `options` on first use.
// Transitions are logged with the logger of the first caller. Fails with kInvalidArgument for
// options out of range.
Result<std::shared_ptr<CircuitBreaker>> destination_breaker(const std::string& key,
                                                            const CircuitBreakerOptions& options,
                                                            const Logger& logger);

// Breaker keys are "<destination>@<platform address>". Returns the destination part of `breaker_key`.
std::string_view circuit_destination(std::string_view breaker_key);

// Calls `observer` on every transition of every breaker of the process, on the thread and under
// the lock of the breaker that changed (see CircuitListener). Returns an id for
// stop_observing_circuits(). The engine turns transitions into events.
std::uint64_t observe_circuits(CircuitListener observer);
void stop_observing_circuits(std::uint64_t id);

// The state of the breakers of `destination` (one per platform address it sends to): open before
// half-open before closed. nullopt when the destination has no breaker, as a file destination.
std::optional<CircuitState> destination_circuit_state(std::string_view destination);

// Returns the maximum, over the open breakers of `destination`, of the time until the breaker
// admits its probe; zero when none is open.
std::chrono::nanoseconds destination_circuit_wait(std::string_view destination);

}  // namespace activation::platforms

#endif  // ACTIVATION_PLATFORMS_PLATFORM_SERVICES_HPP_
