#include <string>

#include <fmt/format.h>

#include "activation/rate_limiter.hpp"

namespace activation {

namespace {

std::string account_key(std::string_view platform, std::string_view account) {
  std::string key(platform);
  key.push_back('\n');
  key.append(account);
  return key;
}

}  // namespace

RateLimiterRegistry::RateLimiterRegistry(std::shared_ptr<Clock> clock)
    : clock_(clock ? std::move(clock) : real_clock()) {}

Status RateLimiterRegistry::set_platform_policy(std::string_view platform, const RateLimitPolicy& policy) {
  ACT_RETURN_IF_ERROR(validate_rate_limit_policy(policy));
  std::lock_guard<std::mutex> lock(mutex_);
  std::string prefix = account_key(platform, "");
  for (const auto& [key, limiter] : limiters_) {
    if (key.compare(0, prefix.size(), prefix) == 0) {
      return failed_precondition(fmt::format(
          "rate limiter registry: limiters of platform '{}' exist already; set its policy before first use",
          platform));
    }
  }
  platform_policies_[std::string(platform)] = policy;
  return Status::ok();
}

Status RateLimiterRegistry::set_account_policy(std::string_view platform, std::string_view account,
                                               const RateLimitPolicy& policy) {
  ACT_RETURN_IF_ERROR(validate_rate_limit_policy(policy));
  std::lock_guard<std::mutex> lock(mutex_);
  std::string key = account_key(platform, account);
  if (limiters_.count(key) != 0) {
    return failed_precondition(
        fmt::format("rate limiter registry: the limiter of {} account '{}' exists already; set its policy "
                    "before first use",
                    platform, account));
  }
  account_policies_[key] = policy;
  return Status::ok();
}

Result<RateLimitPolicy> RateLimiterRegistry::policy_for(std::string_view platform,
                                                        std::string_view account) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return policy_for_locked(std::string(platform), std::string(account));
}

Result<RateLimitPolicy> RateLimiterRegistry::policy_for_locked(const std::string& platform,
                                                               const std::string& account) const {
  auto account_it = account_policies_.find(account_key(platform, account));
  if (account_it != account_policies_.end()) return account_it->second;
  auto platform_it = platform_policies_.find(platform);
  if (platform_it != platform_policies_.end()) return platform_it->second;
  std::optional<RateLimitPolicy> fallback = default_rate_limit_policy(platform);
  if (fallback) return *fallback;
  return not_found(
      fmt::format("rate limiter registry: no rate limit policy for platform '{}'; expected one of meta, "
                  "google_data_manager, "
                  "google_ads, linkedin, tiktok, snapchat, or a policy set with set_platform_policy",
                  platform));
}

Result<std::shared_ptr<RateLimiter>> RateLimiterRegistry::limiter(std::string_view platform,
                                                                  std::string_view account) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string key = account_key(platform, account);
  auto it = limiters_.find(key);
  if (it != limiters_.end()) return it->second;

  ACT_ASSIGN_OR_RETURN(RateLimitPolicy policy,
                       policy_for_locked(std::string(platform), std::string(account)));
  ACT_ASSIGN_OR_RETURN(std::shared_ptr<RateLimiter> created, make_rate_limiter(policy, clock_));
  limiters_.emplace(std::move(key), created);
  return created;
}

}  // namespace activation
