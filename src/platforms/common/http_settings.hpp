// Settings that every HTTP destination other than Meta reads the same way: a typed reader of the
// `settings` object whose errors name the key, and the endpoint, limiter and breaker settings.
#ifndef ACTIVATION_PLATFORMS_COMMON_HTTP_SETTINGS_HPP_
#define ACTIVATION_PLATFORMS_COMMON_HTTP_SETTINGS_HPP_

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "activation/circuit_breaker.hpp"
#include "activation/config.hpp"
#include "activation/rate_limiter.hpp"
#include "activation/status.hpp"

namespace activation::platforms {

// Reads typed keys of one JSON object and words errors as "<where>.<key>: expected ..., got ...".
//
// Thread safety: a value bound to one JSON object; not thread-safe.
class SettingsReader {
 public:
  SettingsReader(std::string where, const nlohmann::json& object)
      : where_(std::move(where)), object_(object) {}

  // Fails with kInvalidArgument naming the first key of the object that is not in `known`.
  Status check_keys(std::initializer_list<const char*> known) const;

  const nlohmann::json* find(const char* key) const;
  Status error(const char* key, std::string_view expected, const nlohmann::json& got) const;

  Result<std::string> text(const char* key, std::string fallback) const;
  // A string, or a non-negative integer given as a number, returned as its digits.
  Result<std::string> id_text(const char* key, std::string fallback) const;
  Result<double> number(const char* key, double fallback, double minimum, double maximum) const;
  Result<std::int64_t> integer(const char* key, std::int64_t fallback, std::int64_t minimum,
                               std::int64_t maximum) const;
  Result<bool> boolean(const char* key, bool fallback) const;

  const std::string& where() const { return where_; }

 private:
  std::string where_;
  const nlohmann::json& object_;
};

// The transport, limiter and breaker settings of one HTTP destination.
struct HttpSettings {
  std::string base_url;  // Without a trailing slash.
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  // The maximum wait after one throttled response; a platform's longer Retry-After is cut to it.
  std::chrono::milliseconds max_throttle_wait{std::chrono::minutes(15)};
  std::optional<RateLimitPolicy> rate_limit;  // nullopt: the platform's default policy.
  CircuitBreakerOptions circuit_breaker;
  std::string ca_file;
  std::string proxy;
  std::string no_proxy;
};

// The keys parse_http_settings() reads, for check_keys() lists.
#define ACT_HTTP_SETTINGS_KEYS                                                                            \
  "base_url", "timeout_seconds", "max_throttle_wait_seconds", "rate_limit", "circuit_breaker", "ca_file", \
      "proxy", "no_proxy"

// Reads base_url (default `default_base_url`), timeout_seconds, max_throttle_wait_seconds,
// rate_limit (defaults taken from `platform`'s default policy, or `fallback_policy` when the
// platform has none), circuit_breaker, ca_file, proxy and no_proxy.
Result<HttpSettings> parse_http_settings(
    const SettingsReader& reader, std::string_view platform, std::string_view default_base_url,
    const std::optional<RateLimitPolicy>& fallback_policy = std::nullopt);

// Parses the destination's `settings` text as a JSON object. Fails with kInvalidArgument naming
// the destination.
Result<nlohmann::json> parse_settings_object(const DestinationConfig& config);

// Checks that the secrets of `config` are among `known` and that each of `required` is named.
// A required entry is (secret, example variable); the example completes the message of a missing
// secret, such as {"access_token", "LINKEDIN_ACCESS_TOKEN"}.
Status check_secret_names(const DestinationConfig& config, std::initializer_list<const char*> known,
                          std::initializer_list<std::pair<const char*, const char*>> required);

// Returns true for a URL whose host is 127.0.0.1, localhost or [::1].
bool is_loopback_url(std::string_view url);

}  // namespace activation::platforms

#endif  // ACTIVATION_PLATFORMS_COMMON_HTTP_SETTINGS_HPP_
