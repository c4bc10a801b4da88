#include "platforms/platform_services.hpp"

#include <map>
#include <mutex>
#include <vector>

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
  // A lock of its own: listeners run under a breaker's lock, and destination_circuit_state() takes
  // breaker locks after `mutex`, so taking `mutex` inside a listener could deadlock.
  std::mutex observers_mutex;
  std::map<std::uint64_t, CircuitListener> observers;
  std::uint64_t next_observer = 1;
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

  CircuitListener listener = [logger, &shared](const CircuitTransition& transition) {
    LogLevel level = transition.to == CircuitState::kClosed ? LogLevel::kInfo : LogLevel::kWarn;
    logger.log(level, "circuit", "destination {}: circuit {} -> {}: {}", transition.destination,
               circuit_state_name(transition.from), circuit_state_name(transition.to), transition.reason);
    std::vector<CircuitListener> observers;
    {
      std::lock_guard observers_lock(shared.observers_mutex);
      for (const auto& [id, observer] : shared.observers) observers.push_back(observer);
    }
    for (const auto& observer : observers) observer(transition);
  };
  ACT_ASSIGN_OR_RETURN(auto created, CircuitBreaker::create(key, options, real_clock(), std::move(listener)));
  std::shared_ptr<CircuitBreaker> breaker(std::move(created));
  shared.breakers.emplace(key, breaker);
  return breaker;
}

std::uint64_t observe_circuits(CircuitListener observer) {
  Services& shared = services();
  std::lock_guard lock(shared.observers_mutex);
  std::uint64_t id = shared.next_observer++;
  shared.observers.emplace(id, std::move(observer));
  return id;
}

void stop_observing_circuits(std::uint64_t id) {
  Services& shared = services();
  std::lock_guard lock(shared.observers_mutex);
  shared.observers.erase(id);
}

std::string_view circuit_destination(std::string_view breaker_key) {
  return breaker_key.substr(0, breaker_key.find('@'));
}

std::optional<CircuitState> destination_circuit_state(std::string_view destination) {
  std::vector<std::shared_ptr<CircuitBreaker>> matching;
  {
    Services& shared = services();
    std::lock_guard lock(shared.mutex);
    for (const auto& [key, breaker] : shared.breakers) {
      if (circuit_destination(key) == destination) matching.push_back(breaker);
    }
  }
  std::optional<CircuitState> worst;
  auto rank = [](CircuitState state) {
    return state == CircuitState::kOpen ? 2 : state == CircuitState::kHalfOpen ? 1 : 0;
  };
  for (const auto& breaker : matching) {
    CircuitState state = breaker->state();
    if (!worst || rank(state) > rank(*worst)) worst = state;
  }
  return worst;
}

}  // namespace activation::platforms
