#include "platforms/meta/meta_settings.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <initializer_list>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace activation::platforms::meta {
namespace {

using Json = nlohmann::json;

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Reads typed keys of one JSON object and words errors as "<where>.<key>: expected ..., got ...".
class Reader {
 public:
  Reader(std::string where, const Json& object) : where_(std::move(where)), object_(object) {}

  Status check_keys(std::initializer_list<const char*> known) const {
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

  const Json* find(const char* key) const {
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }

  Status error(const char* key, std::string_view expected, const Json& got) const {
    return invalid_argument(fmt::format("{}.{}: expected {}, got {}", where_, key, expected, got.dump()));
  }

  Result<std::string> text(const char* key, std::string fallback) const {
    const Json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_string()) return error(key, "a string", *value);
    return value->get<std::string>();
  }

  Result<double> number(const char* key, double fallback, double minimum, double maximum) const {
    const Json* value = find(key);
    if (value == nullptr) return fallback;
    std::string expected = fmt::format("a number from {} to {}", minimum, maximum);
    if (!value->is_number()) return error(key, expected, *value);
    double number = value->get<double>();
    if (!std::isfinite(number) || number < minimum || number > maximum) return error(key, expected, *value);
    return number;
  }

  Result<std::int64_t> integer(const char* key, std::int64_t fallback, std::int64_t minimum,
                               std::int64_t maximum) const {
    const Json* value = find(key);
    if (value == nullptr) return fallback;
    std::string expected = fmt::format("an integer from {} to {}", minimum, maximum);
    if (!value->is_number_integer()) return error(key, expected, *value);
    auto number = value->get<std::int64_t>();
    if (number < minimum || number > maximum) return error(key, expected, *value);
    return number;
  }

  Result<bool> boolean(const char* key, bool fallback) const {
    const Json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_boolean()) return error(key, "true or false", *value);
    return value->get<bool>();
  }

  const std::string& where() const { return where_; }

 private:
  std::string where_;
  const Json& object_;
};

std::chrono::milliseconds seconds_to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

Result<RateLimitPolicy> parse_rate_limit(const Reader& settings, const Json& value) {
  std::string where = settings.where() + ".rate_limit";
  if (!value.is_object()) {
    return invalid_argument(where +
                            ": expected an object such as {\"algorithm\": \"sliding_window\", "
                            "\"window_limit\": 100, \"window_seconds\": 60}");
  }
  Reader reader(where, value);
  ACT_RETURN_IF_ERROR(
      reader.check_keys({"algorithm", "rate_per_second", "burst", "window_limit", "window_seconds",
                         "count_until_release", "initial_rate_per_second", "min_rate_per_second"}));
  RateLimitPolicy policy = default_rate_limit_policy("meta").value_or(RateLimitPolicy{});
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
    if (reader.find("window_limit") == nullptr) {
      return invalid_argument(where +
                              ".window_limit: missing; the sliding window needs the requests allowed per "
                              "window");
    }
    ACT_ASSIGN_OR_RETURN(policy.window_limit, reader.number("window_limit", 0, 1, 1e9));
    ACT_ASSIGN_OR_RETURN(double window_seconds, reader.number("window_seconds", 60, 0.001, 86400));
    policy.window = seconds_to_ms(window_seconds);
    // Counting each request until its response is back keeps the platform's own window under the
    // limit however the network delays requests; see docs/rate-limits.md.
    ACT_ASSIGN_OR_RETURN(policy.count_until_release, reader.boolean("count_until_release", true));
  }

  Status valid = validate_rate_limit_policy(policy);
  if (!valid.is_ok()) return invalid_argument(where + ": " + valid.message());
  return policy;
}

Result<CircuitBreakerOptions> parse_circuit_breaker(const Reader& settings, const Json& value) {
  std::string where = settings.where() + ".circuit_breaker";
  if (!value.is_object()) return invalid_argument(where + ": expected an object");
  Reader reader(where, value);
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

Status parse_audience(const Reader& reader, MetaSettings& out) {
  if (const Json* id = reader.find("audience_id")) {
    if (id->is_number_unsigned() || id->is_number_integer()) {
      out.audience_id = id->dump();
    } else if (id->is_string()) {
      out.audience_id = id->get<std::string>();
    }
    if (!all_digits(out.audience_id) || out.audience_id.size() > 20) {
      return reader.error("audience_id", "the numeric id of a customer-file audience", *id);
    }
  }
  ACT_ASSIGN_OR_RETURN(out.audience_name, reader.text("audience_name", ""));
  if (out.audience_id.empty() && out.audience_name.empty()) {
    return invalid_argument(
        reader.where() +
        ": expected audience_id (an existing customer-file audience) or audience_name (the "
        "audience to find or create by name)");
  }
  if (!out.audience_id.empty() && !out.audience_name.empty()) {
    return invalid_argument(reader.where() + ": set audience_id or audience_name, not both");
  }
  ACT_ASSIGN_OR_RETURN(out.audience_description, reader.text("audience_description", ""));
  ACT_ASSIGN_OR_RETURN(out.customer_file_source,
                       reader.text("customer_file_source", out.customer_file_source));
  const char* sources[] = {"USER_PROVIDED_ONLY", "PARTNER_PROVIDED_ONLY", "BOTH_USER_AND_PARTNER_PROVIDED"};
  if (std::find(std::begin(sources), std::end(sources), out.customer_file_source) == std::end(sources)) {
    return reader.error("customer_file_source",
                        "USER_PROVIDED_ONLY, PARTNER_PROVIDED_ONLY or BOTH_USER_AND_PARTNER_PROVIDED",
                        Json(out.customer_file_source));
  }
  return Status::ok();
}

Status parse_endpoint(const Reader& reader, MetaSettings& out) {
  ACT_ASSIGN_OR_RETURN(out.api_version, reader.text("api_version", out.api_version));
  const std::string& version = out.api_version;
  std::size_t dot = version.find('.');
  if (version.size() < 4 || version[0] != 'v' || dot == std::string::npos ||
      !all_digits(std::string_view(version).substr(1, dot - 1)) ||
      !all_digits(std::string_view(version).substr(dot + 1))) {
    return reader.error("api_version", "a Graph API version such as \"v24.0\"", Json(version));
  }

  ACT_ASSIGN_OR_RETURN(out.base_url, reader.text("base_url", out.base_url));
  while (!out.base_url.empty() && out.base_url.back() == '/') out.base_url.pop_back();
  const std::string& url = out.base_url;
  bool scheme = url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0;
  bool clean = url.find_first_of(" \t\r\n?#") == std::string::npos;
  if (!scheme || !clean || url.size() <= std::string_view("https://").size()) {
    return reader.error("base_url",
                        "an http:// or https:// URL without a query, such as \"https://graph.facebook.com\"",
                        Json(url));
  }

  ACT_ASSIGN_OR_RETURN(double timeout, reader.number("timeout_seconds", 60, 0.1, 3600));
  out.timeout = seconds_to_ms(timeout);
  ACT_ASSIGN_OR_RETURN(out.ca_file, reader.text("ca_file", ""));
  ACT_ASSIGN_OR_RETURN(out.proxy, reader.text("proxy", ""));
  ACT_ASSIGN_OR_RETURN(out.no_proxy, reader.text("no_proxy", ""));
  return Status::ok();
}

Status parse_limits(const Reader& reader, MetaSettings& out) {
  ACT_ASSIGN_OR_RETURN(std::int64_t rows, reader.integer("max_rows_per_request", kMaxRowsPerRequest, 1,
                                                         static_cast<std::int64_t>(kMaxRowsPerRequest)));
  out.max_rows_per_request = static_cast<std::size_t>(rows);
  // Meta discards batches that arrive more than 90 minutes after a session's first batch.
  ACT_ASSIGN_OR_RETURN(std::int64_t age, reader.integer("session_max_age_seconds", 3600, 1, 5400));
  out.session_max_age = std::chrono::seconds(age);
  ACT_ASSIGN_OR_RETURN(double throttle_wait, reader.number("max_throttle_wait_seconds", 900, 0.001, 86400));
  out.max_throttle_wait = seconds_to_ms(throttle_wait);
  if (const Json* limit = reader.find("rate_limit")) {
    ACT_ASSIGN_OR_RETURN(out.rate_limit, parse_rate_limit(reader, *limit));
  }
  if (const Json* breaker = reader.find("circuit_breaker")) {
    ACT_ASSIGN_OR_RETURN(out.circuit_breaker, parse_circuit_breaker(reader, *breaker));
  }
  return Status::ok();
}

Status read_secrets(const DestinationConfig& config,
                    const std::function<Result<std::string>(std::string_view)>& secret, MetaSettings& out) {
  const std::string where = "destination '" + config.name + "'";
  for (const auto& [name, variable] : config.secret_env) {
    if (name != "access_token" && name != "app_secret") {
      return invalid_argument(where + ": secrets." + name +
                              ": unknown secret; expected access_token or app_secret");
    }
  }
  auto token_variable = config.secret_env.find("access_token");
  if (token_variable == config.secret_env.end()) {
    return invalid_argument(
        where +
        ": secrets.access_token: missing; name the environment variable that contains the "
        "Meta access token, such as {\"access_token\": \"META_ACCESS_TOKEN\"}");
  }
  out.access_token_variable = token_variable->second;
  if (!secret) return internal_error(where + ": no secret reader was given to the meta adapter");
  ACT_ASSIGN_OR_RETURN(out.access_token, secret("access_token"));
  if (config.secret_env.count("app_secret") != 0) {
    ACT_ASSIGN_OR_RETURN(out.app_secret, secret("app_secret"));
  }
  return Status::ok();
}

}  // namespace

Result<MetaSettings> parse_meta_settings(const DestinationConfig& config,
                                         const std::function<Result<std::string>(std::string_view)>& secret) {
  const std::string where = "destination '" + config.name + "'";
  Json settings = Json::parse(config.settings, nullptr, false);
  if (settings.is_discarded() || !settings.is_object())
    return invalid_argument(where + ": settings must be a JSON object");
  if (config.profile && *config.profile != Platform::kMeta) {
    return invalid_argument(where + ": profile: the meta destination needs the meta profile, got " +
                            std::string(platform_name(*config.profile)));
  }

  Reader reader(where + ": settings", settings);
  ACT_RETURN_IF_ERROR(reader.check_keys(
      {"ad_account_id", "audience_id", "audience_name", "audience_description", "customer_file_source",
       "api_version", "base_url", "timeout_seconds", "max_rows_per_request", "session_max_age_seconds",
       "max_throttle_wait_seconds", "rate_limit", "circuit_breaker", "ca_file", "proxy", "no_proxy"}));
  MetaSettings out;
  const Json* account = reader.find("ad_account_id");
  if (account == nullptr) {
    return invalid_argument(
        where + ": settings.ad_account_id: missing; expected the ad account, such as \"act_1234567890\"");
  }
  std::string account_text = account->is_string()
                                 ? account->get<std::string>()
                                 : (account->is_number_unsigned() ? account->dump() : std::string());
  if (account_text.rfind("act_", 0) == 0) account_text.erase(0, 4);
  if (!all_digits(account_text) || account_text.size() > 20) {
    return reader.error("ad_account_id", "an ad account such as \"act_1234567890\"", *account);
  }
  out.ad_account_id = "act_" + account_text;

  ACT_RETURN_IF_ERROR(parse_audience(reader, out));
  ACT_RETURN_IF_ERROR(parse_endpoint(reader, out));
  ACT_RETURN_IF_ERROR(parse_limits(reader, out));
  ACT_RETURN_IF_ERROR(read_secrets(config, secret, out));
  return out;
}

}  // namespace activation::platforms::meta
