#include "platforms/common/http_settings.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace activation::platforms {
namespace {

using Json = nlohmann::json;

std::chrono::milliseconds seconds_to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

Result<RateLimitPolicy> parse_rate_limit(const SettingsReader& settings, const Json& value,
                                         std::string_view platform,
                                         const std::optional<RateLimitPolicy>& fallback) {
  std::string where = settings.where() + ".rate_limit";
  if (!value.is_object()) {
    return invalid_argument(where +
                            ": expected an object such as {\"algorithm\": \"sliding_window\", "
                            "\"window_limit\": 100, \"window_seconds\": 60}");
  }
  SettingsReader reader(where, value);
  ACT_RETURN_IF_ERROR(
      reader.check_keys({"algorithm", "rate_per_second", "burst", "window_limit", "window_seconds",
                         "count_until_release", "initial_rate_per_second", "min_rate_per_second"}));
  RateLimitPolicy policy =
      default_rate_limit_policy(std::string(platform)).value_or(fallback.value_or(RateLimitPolicy{}));
  ACT_ASSIGN_OR_RETURN(std::string algorithm_name,
                       reader.text("algorithm", std::string(rate_limit_algorithm_name(policy.algorithm))));
  auto algorithm = parse_rate_limit_algorithm(algorithm_name);
  if (!algorithm) {
    return invalid_argument(where + ".algorithm: expected token_bucket, sliding_window or adaptive, got \"" +
                            algorithm_name + "\"");
  }
  policy.algorithm = *algorithm;

  ACT_ASSIGN_OR_RETURN(policy.rate_per_second,
                       reader.number("rate_per_second", policy.rate_per_second, 0.001, 1e6));
  ACT_ASSIGN_OR_RETURN(policy.burst, reader.number("burst", policy.burst, 1, 1e6));
  ACT_ASSIGN_OR_RETURN(policy.initial_rate_per_second,
                       reader.number("initial_rate_per_second", policy.initial_rate_per_second, 0, 1e6));
  ACT_ASSIGN_OR_RETURN(policy.min_rate_per_second,
                       reader.number("min_rate_per_second", policy.min_rate_per_second, 0.001, 1e6));
  if (policy.min_rate_per_second > policy.rate_per_second)
    policy.min_rate_per_second = policy.rate_per_second;
  if (policy.algorithm == RateLimitAlgorithm::kSlidingWindow) {
    bool default_window = policy.window_limit > 0 && reader.find("window_limit") == nullptr;
    if (!default_window && reader.find("window_limit") == nullptr) {
      return invalid_argument(where +
                              ".window_limit: missing; the sliding window needs the requests allowed per "
                              "window");
    }
    ACT_ASSIGN_OR_RETURN(policy.window_limit, reader.number("window_limit", policy.window_limit, 1, 1e9));
    double default_seconds = default_window ? std::chrono::duration<double>(policy.window).count() : 60.0;
    ACT_ASSIGN_OR_RETURN(double window_seconds,
                         reader.number("window_seconds", default_seconds, 0.001, 86400));
    policy.window = seconds_to_ms(window_seconds);
    // Counting each request until its response is back keeps the platform's own window under the
    // limit however the network delays requests; see docs/rate-limits.md.
    ACT_ASSIGN_OR_RETURN(policy.count_until_release, reader.boolean("count_until_release", true));
  }

  Status valid = validate_rate_limit_policy(policy);
  if (!valid.is_ok()) return invalid_argument(where + ": " + valid.message());
  return policy;
}

Result<CircuitBreakerOptions> parse_circuit_breaker(const SettingsReader& settings, const Json& value) {
  std::string where = settings.where() + ".circuit_breaker";
  if (!value.is_object()) return invalid_argument(where + ": expected an object");
  SettingsReader reader(where, value);
  ACT_RETURN_IF_ERROR(
      reader.check_keys({"failure_threshold", "open_seconds", "max_open_seconds", "probe_timeout_seconds"}));
  CircuitBreakerOptions options;
  ACT_ASSIGN_OR_RETURN(std::int64_t threshold,
                       reader.integer("failure_threshold", options.failure_threshold, 1, 1000));
  options.failure_threshold = static_cast<int>(threshold);
  ACT_ASSIGN_OR_RETURN(double open, reader.number("open_seconds", 30, 0.001, 86400));
  ACT_ASSIGN_OR_RETURN(double max_open,
                       reader.number("max_open_seconds", std::max(open, 600.0), 0.001, 86400));
  ACT_ASSIGN_OR_RETURN(double probe, reader.number("probe_timeout_seconds", 120, 0.001, 86400));
  options.open_duration = seconds_to_ms(open);
  options.max_open_duration = seconds_to_ms(max_open);
  options.probe_timeout = seconds_to_ms(probe);
  Status valid = validate_circuit_breaker_options(options);
  if (!valid.is_ok()) return invalid_argument(where + ": " + valid.message());
  return options;
}

}  // namespace

Status SettingsReader::check_keys(std::initializer_list<const char*> known) const {
  for (const auto& [key, value] : object_.items()) {
    if (std::find_if(known.begin(), known.end(), [&](const char* name) { return key == name; }) !=
        known.end()) {
      continue;
    }
    std::string list;
    for (const char* name : known) list += (list.empty() ? "" : ", ") + std::string(name);
    return invalid_argument(fmt::format("{}.{}: unknown key; expected one of {}", where_, key, list));
  }
  return Status::ok();
}

const Json* SettingsReader::find(const char* key) const {
  auto it = object_.find(key);
  return it == object_.end() ? nullptr : &*it;
}

Status SettingsReader::error(const char* key, std::string_view expected, const Json& got) const {
  return invalid_argument(fmt::format("{}.{}: expected {}, got {}", where_, key, expected, got.dump()));
}

Result<std::string> SettingsReader::text(const char* key, std::string fallback) const {
  const Json* value = find(key);
  if (value == nullptr) return fallback;
  if (!value->is_string()) return error(key, "a string", *value);
  return value->get<std::string>();
}

Result<std::string> SettingsReader::id_text(const char* key, std::string fallback) const {
  const Json* value = find(key);
  if (value == nullptr) return fallback;
  if (value->is_number_unsigned()) return value->dump();
  if (!value->is_string()) return error(key, "a string or a non-negative integer", *value);
  return value->get<std::string>();
}

Result<double> SettingsReader::number(const char* key, double fallback, double minimum,
                                      double maximum) const {
  const Json* value = find(key);
  if (value == nullptr) return fallback;
  std::string expected = fmt::format("a number from {} to {}", minimum, maximum);
  if (!value->is_number()) return error(key, expected, *value);
  double number = value->get<double>();
  if (!std::isfinite(number) || number < minimum || number > maximum) return error(key, expected, *value);
  return number;
}

Result<std::int64_t> SettingsReader::integer(const char* key, std::int64_t fallback, std::int64_t minimum,
                                             std::int64_t maximum) const {
  const Json* value = find(key);
  if (value == nullptr) return fallback;
  std::string expected = fmt::format("an integer from {} to {}", minimum, maximum);
  if (!value->is_number_integer()) return error(key, expected, *value);
  auto number = value->get<std::int64_t>();
  if (number < minimum || number > maximum) return error(key, expected, *value);
  return number;
}

Result<bool> SettingsReader::boolean(const char* key, bool fallback) const {
  const Json* value = find(key);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) return error(key, "true or false", *value);
  return value->get<bool>();
}

Result<HttpSettings> parse_http_settings(const SettingsReader& reader, std::string_view platform,
                                         std::string_view default_base_url,
                                         const std::optional<RateLimitPolicy>& fallback_policy) {
  HttpSettings out;
  ACT_ASSIGN_OR_RETURN(out.base_url, reader.text("base_url", std::string(default_base_url)));
  while (!out.base_url.empty() && out.base_url.back() == '/') out.base_url.pop_back();
  const std::string& url = out.base_url;
  bool scheme = url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0;
  bool clean = url.find_first_of(" \t\r\n?#") == std::string::npos;
  if (!scheme || !clean || url.size() <= std::string_view("https://").size()) {
    return reader.error("base_url", "an http:// or https:// URL without a query", Json(url));
  }

  ACT_ASSIGN_OR_RETURN(double timeout, reader.number("timeout_seconds", 60, 0.1, 3600));
  out.timeout = seconds_to_ms(timeout);
  ACT_ASSIGN_OR_RETURN(double throttle_wait, reader.number("max_throttle_wait_seconds", 900, 0.001, 86400));
  out.max_throttle_wait = seconds_to_ms(throttle_wait);
  ACT_ASSIGN_OR_RETURN(out.ca_file, reader.text("ca_file", ""));
  ACT_ASSIGN_OR_RETURN(out.proxy, reader.text("proxy", ""));
  ACT_ASSIGN_OR_RETURN(out.no_proxy, reader.text("no_proxy", ""));
  if (const Json* limit = reader.find("rate_limit")) {
    ACT_ASSIGN_OR_RETURN(out.rate_limit, parse_rate_limit(reader, *limit, platform, fallback_policy));
  } else if (!default_rate_limit_policy(std::string(platform))) {
    out.rate_limit = fallback_policy;
  }
  if (const Json* breaker = reader.find("circuit_breaker")) {
    ACT_ASSIGN_OR_RETURN(out.circuit_breaker, parse_circuit_breaker(reader, *breaker));
  }
  return out;
}

Result<Json> parse_settings_object(const DestinationConfig& config) {
  Json settings = Json::parse(config.settings, nullptr, false);
  if (settings.is_discarded() || !settings.is_object()) {
    return invalid_argument("destination '" + config.name + "': settings must be a JSON object");
  }
  return settings;
}

Status check_secret_names(const DestinationConfig& config, std::initializer_list<const char*> known,
                          std::initializer_list<std::pair<const char*, const char*>> required) {
  const std::string where = "destination '" + config.name + "'";
  std::string list;
  for (const char* name : known) list += (list.empty() ? "" : " or ") + std::string(name);
  for (const auto& [name, variable] : config.secret_env) {
    if (std::find_if(known.begin(), known.end(),
                     [&](const char* known_name) { return name == known_name; }) == known.end()) {
      return invalid_argument(where + ": secrets." + name + ": unknown secret; expected " + list);
    }
  }
  for (const auto& [name, example] : required) {
    if (config.secret_env.count(name) == 0) {
      return invalid_argument(
          fmt::format("{}: secrets.{}: missing; name the environment variable that contains it, such as "
                      "{{\"{}\": \"{}\"}}",
                      where, name, name, example));
    }
  }
  return Status::ok();
}

bool is_loopback_url(std::string_view url) {
  std::size_t start = url.find("://");
  if (start == std::string_view::npos) return false;
  std::string_view host = url.substr(start + 3);
  for (std::string_view loopback : {"127.0.0.1", "localhost", "[::1]"}) {
    if (host.rfind(loopback, 0) == 0 &&
        (host.size() == loopback.size() || host[loopback.size()] == ':' || host[loopback.size()] == '/')) {
      return true;
    }
  }
  return false;
}

}  // namespace activation::platforms
