#include "platforms/google/google_settings.hpp"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace activation::platforms::google {
namespace {

using Json = nlohmann::json;

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::chrono::milliseconds seconds_to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

// Typed access to one JSON object; errors read "<where>.<key>: expected ..., got ...".
class Reader {
 public:
  Reader(std::string where, const Json& object) : where_(std::move(where)), object_(object) {}

  Status check_keys(const std::vector<const char*>& known) const {
    for (const auto& [key, value] : object_.items()) {
      if (std::any_of(known.begin(), known.end(), [&](const char* name) { return key == name; })) continue;
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

  // A Google Ads customer id: ten digits, written with or without dashes ("123-456-7890").
  Result<std::string> customer(const char* key) const {
    const Json* value = find(key);
    if (value == nullptr) return std::string();
    std::string text = value->is_string() ? value->get<std::string>()
                                          : (value->is_number_unsigned() ? value->dump() : std::string());
    text.erase(std::remove(text.begin(), text.end(), '-'), text.end());
    if (!all_digits(text) || text.size() > 20)
      return error(key, "a customer id such as \"123-456-7890\"", *value);
    return text;
  }

  const std::string& where() const { return where_; }

 private:
  std::string where_;
  const Json& object_;
};

Result<RateLimitPolicy> parse_rate_limit(const Reader& settings, const char* key, const Json& value,
                                         std::string_view platform) {
  std::string where = settings.where() + "." + key;
  if (!value.is_object()) {
    return invalid_argument(where +
                            ": expected an object such as {\"algorithm\": \"sliding_window\", "
                            "\"window_limit\": 300, \"window_seconds\": 60}");
  }
  Reader reader(where, value);
  ACT_RETURN_IF_ERROR(
      reader.check_keys({"algorithm", "rate_per_second", "burst", "window_limit", "window_seconds"}));
  RateLimitPolicy policy = default_rate_limit_policy(platform).value_or(RateLimitPolicy{});
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
  policy.min_rate_per_second = std::min(policy.min_rate_per_second, policy.rate_per_second);
  if (policy.algorithm == RateLimitAlgorithm::kSlidingWindow) {
    double default_limit = policy.window_limit > 0 ? policy.window_limit : 0;
    if (reader.find("window_limit") == nullptr && default_limit <= 0) {
      return invalid_argument(
          where + ".window_limit: missing; the sliding window needs the requests allowed per window");
    }
    ACT_ASSIGN_OR_RETURN(policy.window_limit, reader.number("window_limit", default_limit, 1, 1e9));
    double default_seconds = std::chrono::duration<double>(policy.window).count();
    ACT_ASSIGN_OR_RETURN(double window_seconds,
                         reader.number("window_seconds", default_seconds, 0.001, 86400 * 7));
    policy.window = seconds_to_ms(window_seconds);
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

Result<std::string> consent_value(const Reader& reader, const char* key) {
  ACT_ASSIGN_OR_RETURN(std::string value, reader.text(key, ""));
  std::string upper = value;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
  if (upper.empty() || upper == "GRANTED" || upper == "DENIED" || upper == "UNSPECIFIED") return upper;
  return reader.error(key, "\"granted\", \"denied\" or \"unspecified\"", Json(value));
}

Status parse_list(const Reader& reader, GoogleSettings& out) {
  if (const Json* id = reader.find("user_list_id")) {
    out.user_list_id =
        id->is_string() ? id->get<std::string>() : (id->is_number_unsigned() ? id->dump() : "");
    if (!all_digits(out.user_list_id) || out.user_list_id.size() > 20) {
      return reader.error("user_list_id", "the numeric id of a Customer Match user list", *id);
    }
  }
  if (out.api == GoogleApi::kAds) {
    ACT_ASSIGN_OR_RETURN(out.user_list_name, reader.text("user_list_name", ""));
    ACT_ASSIGN_OR_RETURN(out.user_list_description, reader.text("user_list_description", ""));
    ACT_ASSIGN_OR_RETURN(out.membership_life_span_days,
                         reader.integer("membership_life_span_days", 540, 0, 540));
    if (out.user_list_id.empty() && out.user_list_name.empty()) {
      return invalid_argument(reader.where() +
                              ": expected user_list_id (an existing Customer Match list) or user_list_name "
                              "(the list to find or create by name)");
    }
    if (!out.user_list_id.empty() && !out.user_list_name.empty()) {
      return invalid_argument(reader.where() + ": set user_list_id or user_list_name, not both");
    }
  } else if (out.user_list_id.empty()) {
    return invalid_argument(reader.where() +
                            ".user_list_id: missing; expected the numeric id of the Customer Match user list "
                            "(the Data Manager API does not create lists)");
  }

  ACT_ASSIGN_OR_RETURN(std::string key_type, reader.text("upload_key_type", "CONTACT_INFO"));
  if (key_type == "CONTACT_INFO") {
    out.upload_key_type = UploadKeyType::kContactInfo;
  } else if (key_type == "CRM_ID") {
    out.upload_key_type = UploadKeyType::kCrmId;
  } else if (key_type == "MOBILE_ADVERTISING_ID") {
    out.upload_key_type = UploadKeyType::kMobileAdvertisingId;
  } else {
    return reader.error("upload_key_type", "CONTACT_INFO, CRM_ID or MOBILE_ADVERTISING_ID", Json(key_type));
  }

  if (const Json* consent = reader.find("consent")) {
    if (!consent->is_object())
      return reader.error("consent", "an object such as {\"ad_user_data\": \"granted\"}", *consent);
    Reader fields(reader.where() + ".consent", *consent);
    ACT_RETURN_IF_ERROR(fields.check_keys({"ad_user_data", "ad_personalization"}));
    ACT_ASSIGN_OR_RETURN(out.consent.ad_user_data, consent_value(fields, "ad_user_data"));
    ACT_ASSIGN_OR_RETURN(out.consent.ad_personalization, consent_value(fields, "ad_personalization"));
  }
  ACT_ASSIGN_OR_RETURN(out.accept_terms_of_service, reader.boolean("accept_terms_of_service", true));
  return Status::ok();
}

Status parse_url(const Reader& reader, const char* key, std::string& url, const char* example) {
  ACT_ASSIGN_OR_RETURN(url, reader.text(key, url));
  while (!url.empty() && url.back() == '/') url.pop_back();
  bool scheme = url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0;
  bool clean = url.find_first_of(" \t\r\n?#") == std::string::npos;
  if (!scheme || !clean || url.size() <= std::string_view("https://").size()) {
    return reader.error(
        key, fmt::format("an http:// or https:// URL without a query, such as \"{}\"", example), Json(url));
  }
  return Status::ok();
}

Status parse_endpoint(const Reader& reader, GoogleSettings& out) {
  bool ads = out.api == GoogleApi::kAds;
  out.base_url = ads ? kAdsBaseUrl : kDataManagerBaseUrl;
  out.api_version = ads ? kAdsVersion : kDataManagerVersion;
  ACT_RETURN_IF_ERROR(parse_url(reader, "base_url", out.base_url, ads ? kAdsBaseUrl : kDataManagerBaseUrl));
  ACT_RETURN_IF_ERROR(parse_url(reader, "token_url", out.token_url, kDefaultTokenUrl));
  ACT_ASSIGN_OR_RETURN(out.api_version, reader.text("api_version", out.api_version));
  if (out.api_version.size() < 2 || out.api_version[0] != 'v' || !all_digits(out.api_version.substr(1))) {
    return reader.error("api_version", ads ? "a version such as \"v22\"" : "a version such as \"v1\"",
                        Json(out.api_version));
  }
  ACT_ASSIGN_OR_RETURN(double timeout, reader.number("timeout_seconds", 60, 0.1, 3600));
  out.timeout = seconds_to_ms(timeout);
  ACT_ASSIGN_OR_RETURN(out.ca_file, reader.text("ca_file", ""));
  ACT_ASSIGN_OR_RETURN(out.proxy, reader.text("proxy", ""));
  ACT_ASSIGN_OR_RETURN(out.no_proxy, reader.text("no_proxy", ""));
  if (ads) {
    ACT_ASSIGN_OR_RETURN(out.login_customer_id, reader.customer("login_customer_id"));
  }
  if (!ads) {
    ACT_ASSIGN_OR_RETURN(out.login_customer_id, reader.customer("login_account_id"));
    ACT_ASSIGN_OR_RETURN(out.account_type, reader.text("account_type", out.account_type));
    const char* types[] = {"GOOGLE_ADS", "DISPLAY_VIDEO_ADVERTISER", "DISPLAY_VIDEO_PARTNER", "DATA_PARTNER"};
    if (std::find(std::begin(types), std::end(types), out.account_type) == std::end(types)) {
      return reader.error("account_type",
                          "GOOGLE_ADS, DISPLAY_VIDEO_ADVERTISER, DISPLAY_VIDEO_PARTNER or DATA_PARTNER",
                          Json(out.account_type));
    }
  }
  return Status::ok();
}

Status parse_limits(const Reader& reader, GoogleSettings& out) {
  bool ads = out.api == GoogleApi::kAds;
  std::size_t maximum = ads ? kMaxAdsIdentifiersPerRequest / 20 * 20 : kMaxDataManagerMembers;
  std::size_t fallback = ads ? kDefaultAdsOperationsPerRequest : kMaxDataManagerMembers;
  const char* key = ads ? "max_operations_per_request" : "max_members_per_request";
  ACT_ASSIGN_OR_RETURN(std::int64_t members, reader.integer(key, static_cast<std::int64_t>(fallback), 1,
                                                            static_cast<std::int64_t>(maximum)));
  out.max_members_per_request = static_cast<std::size_t>(members);
  ACT_ASSIGN_OR_RETURN(double throttle_wait, reader.number("max_throttle_wait_seconds", 900, 0.001, 86400));
  out.max_throttle_wait = seconds_to_ms(throttle_wait);
  std::string_view platform = ads ? "google_ads" : "google_data_manager";
  if (const Json* limit = reader.find("rate_limit")) {
    ACT_ASSIGN_OR_RETURN(out.rate_limit, parse_rate_limit(reader, "rate_limit", *limit, platform));
  }
  if (const Json* limit = reader.find("daily_rate_limit")) {
    std::string daily = std::string(platform) + "_daily";
    ACT_ASSIGN_OR_RETURN(out.daily_rate_limit, parse_rate_limit(reader, "daily_rate_limit", *limit, daily));
  }
  if (const Json* breaker = reader.find("circuit_breaker")) {
    ACT_ASSIGN_OR_RETURN(out.circuit_breaker, parse_circuit_breaker(reader, *breaker));
  }

  ACT_ASSIGN_OR_RETURN(double interval, reader.number("poll_interval_seconds", 30, 0.001, 86400));
  ACT_ASSIGN_OR_RETURN(double max_interval, reader.number("poll_max_interval_seconds",
                                                          std::max(interval, 600.0), interval, 86400));
  ACT_ASSIGN_OR_RETURN(double timeout, reader.number("poll_timeout_seconds", 6 * 3600, 0.001, 7 * 86400));
  out.poll_interval = seconds_to_ms(interval);
  out.poll_max_interval = seconds_to_ms(max_interval);
  out.poll_timeout = seconds_to_ms(timeout);
  if (!ads) {
    ACT_ASSIGN_OR_RETURN(std::string polling, reader.text("status_polling", "at_finish"));
    if (polling == "at_finish") {
      out.status_polling = StatusPolling::kAtFinish;
    } else if (polling == "each_batch") {
      out.status_polling = StatusPolling::kEachBatch;
    } else if (polling == "off") {
      out.status_polling = StatusPolling::kOff;
    } else {
      return reader.error("status_polling", "at_finish, each_batch or off", Json(polling));
    }
    ACT_ASSIGN_OR_RETURN(std::int64_t pending, reader.integer("max_pending_requests", 100, 1, 10'000));
    out.max_pending_requests = static_cast<std::size_t>(pending);
  }
  return Status::ok();
}

Status read_secrets(const DestinationConfig& config,
                    const std::function<Result<std::string>(std::string_view)>& secret, GoogleSettings& out) {
  const std::string where = "destination '" + config.name + "'";
  bool ads = out.api == GoogleApi::kAds;
  for (const auto& [name, variable] : config.secret_env) {
    bool known = name == "client_id" || name == "client_secret" || name == "refresh_token" ||
                 (ads && name == "developer_token");
    if (!known) {
      return invalid_argument(where + ": secrets." + name +
                              ": unknown secret; expected client_id, client_secret, " +
                              (ads ? "refresh_token or developer_token" : "or refresh_token"));
    }
  }
  if (!secret) return internal_error(where + ": no secret reader was given to the Google adapter");
  struct Required {
    const char* name;
    std::string* value;
    std::string* variable;
    const char* example;
  };
  const Required required[] = {
      {"client_id", &out.client_id, &out.client_id_variable, "GOOGLE_CLIENT_ID"},
      {"client_secret", &out.client_secret, &out.client_secret_variable, "GOOGLE_CLIENT_SECRET"},
      {"refresh_token", &out.refresh_token, &out.refresh_token_variable, "GOOGLE_REFRESH_TOKEN"},
  };
  for (const Required& item : required) {
    auto variable = config.secret_env.find(item.name);
    if (variable == config.secret_env.end()) {
      return invalid_argument(fmt::format(
          "{}: secrets.{}: missing; name the environment variable that contains the OAuth {}, such as "
          "{{\"{}\": \"{}\"}}",
          where, item.name, item.name, item.name, item.example));
    }
    *item.variable = variable->second;
    ACT_ASSIGN_OR_RETURN(*item.value, secret(item.name));
  }
  if (ads && config.secret_env.count("developer_token") != 0) {
    ACT_ASSIGN_OR_RETURN(out.developer_token, secret("developer_token"));
  }
  return Status::ok();
}

}  // namespace

std::string_view upload_key_type_name(UploadKeyType type) noexcept {
  switch (type) {
    case UploadKeyType::kContactInfo: return "CONTACT_INFO";
    case UploadKeyType::kCrmId: return "CRM_ID";
    case UploadKeyType::kMobileAdvertisingId: return "MOBILE_ADVERTISING_ID";
  }
  return "UNKNOWN";
}

Result<GoogleSettings> parse_google_settings(
    const DestinationConfig& config, GoogleApi api,
    const std::function<Result<std::string>(std::string_view)>& secret) {
  const std::string where = "destination '" + config.name + "'";
  Json settings = Json::parse(config.settings, nullptr, false);
  if (settings.is_discarded() || !settings.is_object())
    return invalid_argument(where + ": settings must be a JSON object");
  const char* type = api == GoogleApi::kAds ? "google_ads" : "google";
  if (config.profile && *config.profile != Platform::kGoogle) {
    return invalid_argument(fmt::format("{}: profile: the {} destination needs the google profile, got {}",
                                        where, type, platform_name(*config.profile)));
  }

  Reader reader(where + ": settings", settings);
  std::vector<const char*> keys = {"customer_id",
                                   "user_list_id",
                                   "upload_key_type",
                                   "consent",
                                   "accept_terms_of_service",
                                   "base_url",
                                   "token_url",
                                   "api_version",
                                   "timeout_seconds",
                                   "max_throttle_wait_seconds",
                                   "rate_limit",
                                   "daily_rate_limit",
                                   "circuit_breaker",
                                   "ca_file",
                                   "proxy",
                                   "no_proxy",
                                   "poll_interval_seconds",
                                   "poll_max_interval_seconds",
                                   "poll_timeout_seconds"};
  if (api == GoogleApi::kAds) {
    keys.insert(keys.end(), {"login_customer_id", "user_list_name", "user_list_description",
                             "membership_life_span_days", "max_operations_per_request"});
  } else {
    keys.insert(keys.end(), {"login_account_id", "account_type", "max_members_per_request", "status_polling",
                             "max_pending_requests"});
  }
  ACT_RETURN_IF_ERROR(reader.check_keys(keys));

  GoogleSettings out;
  out.api = api;
  ACT_ASSIGN_OR_RETURN(out.customer_id, reader.customer("customer_id"));
  if (out.customer_id.empty()) {
    return invalid_argument(
        where +
        ": settings.customer_id: missing; expected the Google Ads customer id of the list, "
        "such as \"123-456-7890\"");
  }
  ACT_RETURN_IF_ERROR(parse_list(reader, out));
  ACT_RETURN_IF_ERROR(parse_endpoint(reader, out));
  ACT_RETURN_IF_ERROR(parse_limits(reader, out));
  ACT_RETURN_IF_ERROR(read_secrets(config, secret, out));
  return out;
}

}  // namespace activation::platforms::google
