// The settings of a "meta" destination, read from its configuration's `settings` object and
// secrets. docs/platforms/meta.md lists every key with its default.
#ifndef ACTIVATION_PLATFORMS_META_META_SETTINGS_HPP_
#define ACTIVATION_PLATFORMS_META_META_SETTINGS_HPP_

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "activation/circuit_breaker.hpp"
#include "activation/config.hpp"
#include "activation/rate_limiter.hpp"
#include "activation/status.hpp"

namespace activation::platforms::meta {

inline constexpr const char* kDefaultBaseUrl = "https://graph.facebook.com";
inline constexpr const char* kDefaultApiVersion = "v24.0";
// Meta takes at most this many rows in one request to the users endpoints.
inline constexpr std::size_t kMaxRowsPerRequest = 10'000;

struct MetaSettings {
  std::string ad_account_id;  // "act_<digits>".
  // Exactly one of these two names the audience: an existing id, or a name to find or create.
  std::string audience_id;
  std::string audience_name;
  std::string audience_description;
  std::string customer_file_source = "USER_PROVIDED_ONLY";
  std::string api_version = kDefaultApiVersion;
  std::string base_url = kDefaultBaseUrl;  // Without a trailing slash.
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  std::size_t max_rows_per_request = kMaxRowsPerRequest;
  // An add or remove session older than this is replaced by a new one before Meta's 90-minute
  // session lifetime discards its batches.
  std::chrono::seconds session_max_age{std::chrono::minutes(60)};
  // The maximum wait after one throttled response. Meta states the time to regain access in whole
  // minutes, so a shorter wait followed by a new attempt often resumes sooner.
  std::chrono::milliseconds max_throttle_wait{std::chrono::minutes(15)};
  std::optional<RateLimitPolicy> rate_limit;  // nullopt: the default policy of the "meta" platform.
  CircuitBreakerOptions circuit_breaker;
  std::string ca_file;
  std::string proxy;
  std::string no_proxy;

  // Secrets. The token's environment variable is kept so that error messages name what to fix.
  std::string access_token;
  std::string access_token_variable;
  std::string app_secret;  // Empty: no appsecret_proof is sent.
};

// Reads and checks the settings and secrets of `config`. Errors are kInvalidArgument naming
// "destination '<name>': settings.<key>" and what was expected, or the kNotFound of a missing
// secret.
Result<MetaSettings> parse_meta_settings(const DestinationConfig& config,
                                         const std::function<Result<std::string>(std::string_view)>& secret);

}  // namespace activation::platforms::meta

#endif  // ACTIVATION_PLATFORMS_META_META_SETTINGS_HPP_
