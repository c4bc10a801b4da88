#include "platforms/platform_services.hpp"

#include <map>
#include <mutex>

#include <fmt/format.h>

namespace activation::platforms {
namespace {

// Every field of a policy, so that two destinations that configure one account differently are
// noticed.
std::string policy_fingerprint(const RateLimitPolicy& policy) {
  return fmt::format(
      "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", rate_limit_algorithm_name(policy.algorithm),
      policy.rate_per_second, policy.burst, policy.window_limit, policy.window.count(),
      policy.count_until_release, policy.max_in_flight.count(), policy.initial_rate_per_second,
      policy.min_rate_per_second, policy.throttle_decrease, policy.usage_high_percent, policy.usage_decrease,
      policy.increase_fraction, policy.increase_interval.count(), policy.decrease_cooldown.count());
}

struct Services {
  std::mutex mutex;
  RateLimiterRegistry limiters;
  std::map<std::string, std::string> limiter_fingerprints;  // "platform\naccount" -> policy.
  std::map<std::string, std::shared_ptr<CircuitBreaker>> breakers;
};

// Never destroyed: adapters running on detached threads may still use it at exit.
Services& services() {
  static Services* instance = new Services();
  return *instance;
}

}  // namespace

Result<std::shared_ptr<RateLimiter>> account_limiter(std::string_view platform, std::string_view account,
                                                     const std::optional<RateLimitPolicy>& policy,
                                                     const Logger& logger) {
  Services& shared = services();
  std::lock_guard lock(shared.mutex);
  std::string key = std::string(platform) + "\n" + std::string(account);
  auto known = shared.limiter_fingerprints.find(key);
  if (known == shared.limiter_fingerprints.end()) {
    std::optional<RateLimitPolicy> chosen = policy;
    if (!chosen) chosen = default_rate_limit_policy(platform);
    if (!chosen) return not_found(fmt::format("no default rate limit policy for platform '{}'", platform));
    ACT_RETURN_IF_ERROR(shared.limiters.set_account_policy(platform, account, *chosen));
    ACT_ASSIGN_OR_RETURN(auto limiter, shared.limiters.limiter(platform, account));
    shared.limiter_fingerprints.emplace(key, policy_fingerprint(*chosen));
    return limiter;
  }
  if (policy && policy_fingerprint(*policy) != known->second) {
    logger.log(
        LogLevel::kWarn, std::string(platform),
        "the rate limiter of account {} exists already with another policy; it keeps that policy until "
        "the process restarts",
        account);
  }
  return shared.limiters.limiter(platform, account);
}

Result<std::shared_ptr<CircuitBreaker>> destination_breaker(const std::string& key,
                                                            const CircuitBreakerOptions& options,
                                                            const Logger& logger) {
  Services& shared = services();
  std::lock_guard lock(shared.mutex);
  auto found = shared.breakers.find(key);
  if (found != shared.breakers.end()) return found->second;

  CircuitListener listener = [logger](const CircuitTransition& transition) {
    LogLevel level = transition.to == CircuitState::kClosed ? LogLevel::kInfo : LogLevel::kWarn;
    logger.log(level, "circuit", "destination {}: circuit {} -> {}: {}", transition.destination,
               circuit_state_name(transition.from), circuit_state_name(transition.to), transition.reason);
  };
  ACT_ASSIGN_OR_RETURN(auto created, CircuitBreaker::create(key, options, real_clock(), std::move(listener)));
  std::shared_ptr<CircuitBreaker> breaker(std::move(created));
  shared.breakers.emplace(key, breaker);
  return breaker;
}

}  // namespace activation::platforms
