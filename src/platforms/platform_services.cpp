#include "platforms/platform_services.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "activation/store_rate_limiter.hpp"

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

// Returns the token bucket in the store that enforces `policy` across processes. A token bucket or
// an adaptive limiter shares its (maximum) rate and burst. A sliding window of L tokens per window W
// becomes a bucket of burst 1 and rate (L - 1) / W. A bucket grants at most burst + rate x W tokens
// in any window W, so the processes together stay within L (within 2 when L is 1).
RateLimitPolicy store_bucket_policy(const RateLimitPolicy& policy) {
  RateLimitPolicy bucket;
  bucket.algorithm = RateLimitAlgorithm::kTokenBucket;
  if (policy.algorithm == RateLimitAlgorithm::kSlidingWindow) {
    const double window_seconds = std::chrono::duration<double>(policy.window).count();
    bucket.rate_per_second = std::max(1.0, policy.window_limit - 1.0) / window_seconds;
    bucket.burst = 1.0;
  } else {
    bucket.rate_per_second = policy.rate_per_second;
    bucket.burst = policy.burst;
  }
  return bucket;
}

// The limiter of one platform account in a process that shares its store with other processes. A
// request waits for the process's own limiter, which keeps its algorithm (the adaptive rate, the
// sliding window's releases). Then it waits for the account's token bucket in the store, which all
// processes draw from. The store comes last so that its grants stay close to the moment of sending.
class SharedAccountLimiter final : public RateLimiter {
 public:
  SharedAccountLimiter(std::shared_ptr<RateLimiter> local, std::shared_ptr<RateLimiter> shared)
      : local_(std::move(local)), shared_(std::move(shared)) {}

  Result<RateGrant> reserve(std::string_view key, double tokens, std::chrono::nanoseconds max_wait) override {
    ACT_ASSIGN_OR_RETURN(RateGrant local, local_->reserve(key, tokens, max_wait));
    auto shared = shared_->reserve(key, tokens, remaining(max_wait, local.wait));
    if (!shared.is_ok()) {
      local_->release(key, local);
      return shared.status();
    }
    if (shared->at > local.at) {
      local.at = shared->at;
      local.wait = shared->wait;
    }
    return local;
  }

  Result<RateGrant> acquire(std::string_view key, double tokens, std::chrono::nanoseconds max_wait) override {
    ACT_ASSIGN_OR_RETURN(RateGrant local, local_->acquire(key, tokens, max_wait));
    auto shared = shared_->acquire(key, tokens, remaining(max_wait, local.wait));
    if (!shared.is_ok()) {
      local_->release(key, local);
      return shared.status();
    }
    local.at = shared->at;
    local.wait += shared->wait;
    return local;
  }

  std::chrono::nanoseconds time_until_available(std::string_view key, double tokens) override {
    return std::max(local_->time_until_available(key, tokens), shared_->time_until_available(key, tokens));
  }
  void release(std::string_view key, const RateGrant& grant) override { local_->release(key, grant); }
  void on_feedback(std::string_view key, const RateFeedback& feedback) override {
    local_->on_feedback(key, feedback);
  }
  double current_rate(std::string_view key) const override {
    return std::min(local_->current_rate(key), shared_->current_rate(key));
  }
  const RateLimitPolicy& policy() const noexcept override { return local_->policy(); }
  Clock& clock() const noexcept override { return local_->clock(); }

 private:
  static std::chrono::nanoseconds remaining(std::chrono::nanoseconds max_wait, std::chrono::nanoseconds waited) {
    if (max_wait == std::chrono::nanoseconds::max()) return max_wait;
    return std::max(std::chrono::nanoseconds::zero(), max_wait - waited);
  }

  std::shared_ptr<RateLimiter> local_;
  std::shared_ptr<RateLimiter> shared_;
};

bool is_daily_quota(std::string_view platform) {
  constexpr std::string_view kSuffix = "_daily";
  return platform.size() >= kSuffix.size() && platform.substr(platform.size() - kSuffix.size()) == kSuffix;
}

struct Services {
  std::mutex mutex;
  RateLimiterRegistry limiters;
  std::map<std::string, std::string> limiter_fingerprints;  // "platform\naccount" -> policy.
  // The store that account limiters also draw from, or null. `shared_limiters` caches those
  // limiters by "platform\naccount" and is emptied when the store changes.
  std::shared_ptr<Store> rate_store;
  std::map<std::string, std::shared_ptr<RateLimiter>> shared_limiters;
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

void share_rate_limits_through(std::shared_ptr<Store> store) {
  Services& shared = services();
  std::lock_guard lock(shared.mutex);
  if (shared.rate_store == store) return;
  shared.rate_store = std::move(store);
  shared.shared_limiters.clear();
}

void stop_sharing_rate_limits(const Store* store) {
  Services& shared = services();
  std::lock_guard lock(shared.mutex);
  if (shared.rate_store.get() != store) return;
  shared.rate_store.reset();
  shared.shared_limiters.clear();
}

Result<std::shared_ptr<RateLimiter>> account_limiter(std::string_view platform, std::string_view account,
                                                     const std::optional<RateLimitPolicy>& policy,
                                                     const Logger& logger) {
  Services& shared = services();
  std::lock_guard lock(shared.mutex);
  std::string key = std::string(platform) + "\n" + std::string(account);
  std::shared_ptr<RateLimiter> local;
  auto known = shared.limiter_fingerprints.find(key);
  if (known == shared.limiter_fingerprints.end()) {
    std::optional<RateLimitPolicy> chosen = policy;
    if (!chosen) chosen = default_rate_limit_policy(platform);
    if (!chosen) return not_found(fmt::format("no default rate limit policy for platform '{}'", platform));
    ACT_RETURN_IF_ERROR(shared.limiters.set_account_policy(platform, account, *chosen));
    ACT_ASSIGN_OR_RETURN(local, shared.limiters.limiter(platform, account));
    shared.limiter_fingerprints.emplace(key, policy_fingerprint(*chosen));
  } else {
    if (policy && policy_fingerprint(*policy) != known->second) {
      logger.log(
          LogLevel::kWarn, std::string(platform),
          "the rate limiter of account {} exists already with another policy; it keeps that policy until "
          "the process restarts",
          account);
    }
    ACT_ASSIGN_OR_RETURN(local, shared.limiters.limiter(platform, account));
  }
  if (shared.rate_store == nullptr) return local;

  if (auto found = shared.shared_limiters.find(key); found != shared.shared_limiters.end()) return found->second;
  if (is_daily_quota(platform) && local->policy().algorithm == RateLimitAlgorithm::kSlidingWindow) {
    // A token bucket cannot hold a daily quota of L: it either lets up to 2L through in some 24
    // hours or halves the quota. The store keeps the window itself (rows "window:<platform>:<account>"),
    // and it alone limits the process too: a local window would also count the grants that the
    // store refuses.
    ACT_ASSIGN_OR_RETURN(auto window, make_store_window_limiter(shared.rate_store, local->policy(),
                                                                fmt::format("window:{}:", platform)));
    shared.shared_limiters.emplace(key, window);
    logger.log(LogLevel::kInfo, std::string(platform),
               "the daily quota of account {} is counted in store {}, shared with every process using it", account,
               shared.rate_store->location());
    return window;
  }
  // The store's row of the account is "rate:<platform>:<account>".
  ACT_ASSIGN_OR_RETURN(auto bucket, make_store_rate_limiter(shared.rate_store, store_bucket_policy(local->policy()),
                                                            fmt::format("rate:{}:", platform)));
  auto limiter = std::make_shared<SharedAccountLimiter>(std::move(local), std::move(bucket));
  shared.shared_limiters.emplace(key, limiter);
  logger.log(LogLevel::kInfo, std::string(platform),
             "the rate limiter of account {} takes its tokens from store {} as well, shared with every "
             "process using it",
             account, shared.rate_store->location());
  return std::shared_ptr<RateLimiter>(std::move(limiter));
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

std::chrono::nanoseconds destination_circuit_wait(std::string_view destination) {
  std::vector<std::shared_ptr<CircuitBreaker>> matching;
  {
    Services& shared = services();
    std::lock_guard lock(shared.mutex);
    for (const auto& [key, breaker] : shared.breakers) {
      if (circuit_destination(key) == destination) matching.push_back(breaker);
    }
  }
  std::chrono::nanoseconds longest{0};
  for (const auto& breaker : matching) longest = std::max(longest, breaker->time_until_probe());
  return longest;
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
