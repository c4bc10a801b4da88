#include "platforms/google/google_client.hpp"

#include <algorithm>
#include <cstdlib>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "platforms/platform_services.hpp"

namespace activation::platforms::google {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// The maximum time a request waits for a rate limiter inside one call. A longer wait is handed
// back as retry_after, so that the engine waits where a cancellation can interrupt it.
constexpr nanoseconds kMaxLimiterWait = std::chrono::seconds(5);
// The wait after a throttled response that names no time, before the max_throttle_wait cap.
constexpr nanoseconds kDefaultThrottleWait = std::chrono::seconds(30);
// call_with_retries() gives up after waiting this long in total for throttling and rate limiters.
constexpr nanoseconds kMaxTotalWait = std::chrono::minutes(30);
// CONCURRENT_MODIFICATION clears once the other writer is done; retried up to this many times.
constexpr int kMaxConcurrentModificationRetries = 8;

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

// Parses a protobuf Duration in JSON form, such as "30s" or "1.5s".
std::optional<nanoseconds> parse_duration(const Json& value) {
  if (!value.is_string()) return std::nullopt;
  std::string text = value.get<std::string>();
  if (text.empty() || text.back() != 's') return std::nullopt;
  char* end = nullptr;
  double seconds = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() - 1 || !(seconds >= 0)) return std::nullopt;
  return std::chrono::duration_cast<nanoseconds>(std::chrono::duration<double>(seconds));
}

bool type_ends_with(const Json& detail, std::string_view suffix) {
  std::string type = detail.value("@type", std::string());
  return type.size() >= suffix.size() &&
         type.compare(type.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Reads "audience_members[12].user_data" or "operations[3]" as 12 or 3.
std::optional<std::size_t> index_in_field(std::string_view field) {
  for (std::string_view prefix : {"audience_members[", "audienceMembers[", "operations["}) {
    if (field.rfind(prefix, 0) != 0) continue;
    std::size_t close = field.find(']', prefix.size());
    if (close == std::string_view::npos) return std::nullopt;
    std::string digits(field.substr(prefix.size(), close - prefix.size()));
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    return static_cast<std::size_t>(std::stoull(digits));
  }
  return std::nullopt;
}

// The one key of a Google Ads errorCode object and its value: "databaseError: CONCURRENT_MODIFICATION".
std::string error_code_text(const Json& code) {
  if (!code.is_object() || code.empty()) return {};
  auto first = code.begin();
  return first.key() + ": " + (first->is_string() ? first->get<std::string>() : first->dump());
}

// Visits every GoogleAdsFailure error in the details of a status object.
template <typename Visit>
void for_each_ads_error(const Json& status, Visit&& visit) {
  auto details = status.find("details");
  if (details == status.end() || !details->is_array()) return;
  for (const Json& detail : *details) {
    if (!detail.is_object() || !type_ends_with(detail, "GoogleAdsFailure")) continue;
    auto errors = detail.find("errors");
    if (errors == detail.end() || !errors->is_array()) continue;
    for (const Json& error : *errors) {
      if (error.is_object()) visit(error);
    }
  }
}

}  // namespace

std::vector<GoogleError> read_google_errors(const Json& status) {
  std::vector<GoogleError> out;
  if (!status.is_object()) return out;
  for_each_ads_error(status, [&](const Json& error) {
    GoogleError item;
    item.code = error_code_text(error.value("errorCode", Json()));
    item.message = error.value("message", std::string());
    const Json* path = nullptr;
    auto location = error.find("location");
    if (location != error.end() && location->is_object()) {
      auto elements = location->find("fieldPathElements");
      if (elements != location->end() && elements->is_array() && !elements->empty()) path = &(*elements)[0];
    }
    if (path != nullptr && path->is_object() && path->contains("index") &&
        (*path)["index"].is_number_integer()) {
      std::string field = path->value("fieldName", std::string());
      if (field == "operations" || field == "audience_members" || field == "audienceMembers")
        item.index = (*path)["index"].get<std::size_t>();
    }
    out.push_back(std::move(item));
  });

  auto details = status.find("details");
  if (details == status.end() || !details->is_array()) return out;
  for (const Json& detail : *details) {
    if (!detail.is_object() || !type_ends_with(detail, "BadRequest")) continue;
    auto violations = detail.find("fieldViolations");
    if (violations == detail.end() || !violations->is_array()) continue;
    for (const Json& violation : *violations) {
      if (!violation.is_object()) continue;
      GoogleError item;
      std::string field = violation.value("field", std::string());
      item.index = index_in_field(field);
      item.code = violation.value("reason", std::string());
      item.message = violation.value("description", std::string());
      if (!field.empty()) item.message += " (field " + field + ")";
      out.push_back(std::move(item));
    }
  }
  return out;
}

ResponseClassification classify_google_response(const HttpResponse& response) {
  ResponseClassification result;
  result.http_status = response.status;
  if (response.status >= 200 && response.status <= 299) return result;

  Json body = Json::parse(response.body, nullptr, false);
  const Json* error = nullptr;
  if (body.is_object() && body.contains("error") && body["error"].is_object()) error = &body["error"];
  std::string status = error != nullptr ? error->value("status", std::string()) : std::string();
  std::string message = error != nullptr ? error->value("message", std::string()) : std::string();

  // The first Google Ads error code and the request id make the message worth quoting.
  std::string ads_code;
  std::string request_id;
  if (error != nullptr) {
    for_each_ads_error(*error, [&](const Json& item) {
      if (ads_code.empty()) ads_code = error_code_text(item.value("errorCode", Json()));
      auto quota = item.find("details");
      if (quota != item.end() && quota->is_object() && quota->contains("quotaErrorDetails")) {
        auto delay = parse_duration((*quota)["quotaErrorDetails"].value("retryDelay", Json()));
        if (delay) result.retry_after = delay;
      }
    });
    if (auto details = error->find("details"); details != error->end() && details->is_array()) {
      for (const Json& detail : *details) {
        if (!detail.is_object()) continue;
        if (type_ends_with(detail, "RetryInfo")) {
          if (auto delay = parse_duration(detail.value("retryDelay", Json()))) result.retry_after = delay;
        } else if (type_ends_with(detail, "ErrorInfo") && ads_code.empty()) {
          ads_code = detail.value("reason", std::string());
        } else if (type_ends_with(detail, "RequestInfo")) {
          request_id = detail.value("requestId", std::string());
        } else if (type_ends_with(detail, "GoogleAdsFailure")) {
          request_id = detail.value("requestId", request_id);
        }
      }
    }
  }
  if (request_id.empty()) {
    if (auto header = response.header("request-id")) request_id = std::string(*header);
  }
  if (auto retry = response.header("Retry-After")) {
    if (auto parsed = parse_retry_after(*retry)) result.retry_after = parsed;
  }

  if (message.empty()) {
    message = error != nullptr ? "an error without a message"
                               : fmt::format("a response that is not Google's error envelope ({} bytes)",
                                             response.body.size());
  }
  result.error_type = status;
  result.message = status.empty() ? message : status + ": " + message;
  if (!ads_code.empty()) result.message += " (" + ads_code + ")";
  if (!request_id.empty()) result.message += " [request id " + request_id + "]";

  if (response.status == 429 || status == "RESOURCE_EXHAUSTED") {
    result.error_class = PlatformErrorClass::kThrottled;
  } else if (response.status == 401 || response.status == 403 || status == "UNAUTHENTICATED" ||
             status == "PERMISSION_DENIED") {
    result.error_class = PlatformErrorClass::kAuth;
  } else if (response.status == 408) {
    result.error_class = PlatformErrorClass::kNetwork;
  } else if (response.status >= 500 || response.status == 409 || status == "ABORTED") {
    result.error_class = PlatformErrorClass::kPlatform5xx;
  } else {
    result.error_class = PlatformErrorClass::kInvalidRequest;
  }
  return result;
}

GoogleClient::GoogleClient(const GoogleSettings& settings, std::string destination, const Logger& logger)
    : settings_(settings), destination_(std::move(destination)), logger_(logger) {}

const char* GoogleClient::api_name() const noexcept {
  return settings_.api == GoogleApi::kAds ? "the Google Ads API" : "the Data Manager API";
}

Result<std::unique_ptr<GoogleClient>> GoogleClient::create(const GoogleSettings& settings,
                                                           std::string destination, const Logger& logger) {
  std::unique_ptr<GoogleClient> client(new GoogleClient(settings, std::move(destination), logger));
  const std::string where = "destination '" + client->destination_ + "'";

  CurlTransportOptions options;
  options.total_timeout = settings.timeout;
  options.connect_timeout = std::min<milliseconds>(settings.timeout, milliseconds(10'000));
  options.ca_file = settings.ca_file;
  options.proxy = settings.proxy;
  options.no_proxy = settings.no_proxy;
  // A request to this machine never goes through a proxy that the environment names.
  if (options.no_proxy.empty() && is_loopback_url(settings.base_url))
    options.no_proxy = "127.0.0.1,localhost,::1";
  options.logger = logger;
  auto transport = make_curl_transport(options);
  if (!transport.is_ok())
    return Status(transport.status().code(), where + ": " + transport.status().message());
  client->transport_ = std::move(*transport);

  oauth::OAuthSettings oauth;
  oauth.token_url = settings.token_url;
  oauth.client_id = settings.client_id;
  oauth.client_secret = settings.client_secret;
  oauth.refresh_token = settings.refresh_token;
  oauth.client_id_variable = settings.client_id_variable;
  oauth.client_secret_variable = settings.client_secret_variable;
  oauth.refresh_token_variable = settings.refresh_token_variable;
  oauth.platform = "Google";
  oauth.destination = client->destination_;
  oauth.transport = options;
  if (options.no_proxy.empty() && is_loopback_url(settings.token_url))
    oauth.transport.no_proxy = "127.0.0.1,localhost,::1";
  ACT_ASSIGN_OR_RETURN(client->oauth_, oauth::shared_oauth_client(oauth, logger));

  // Google's quotas belong to the Cloud project that owns the OAuth client. The base URL is part
  // of the key so that a test server never shares a limiter with Google.
  std::string platform = settings.api == GoogleApi::kAds ? "google_ads" : "google_data_manager";
  client->limiter_key_ = settings.client_id;
  if (settings.base_url != kDataManagerBaseUrl && settings.base_url != kAdsBaseUrl)
    client->limiter_key_ += "@" + settings.base_url;
  auto limiter = account_limiter(platform, client->limiter_key_, settings.rate_limit, logger);
  if (!limiter.is_ok()) {
    return Status(limiter.status().code(), where + ": settings.rate_limit: " + limiter.status().message());
  }
  client->limiter_ = std::move(*limiter);
  auto daily = account_limiter(platform + "_daily", client->limiter_key_, settings.daily_rate_limit, logger);
  if (!daily.is_ok()) {
    return Status(daily.status().code(), where + ": settings.daily_rate_limit: " + daily.status().message());
  }
  client->daily_limiter_ = std::move(*daily);

  auto breaker =
      destination_breaker(client->destination_ + "@" + settings.base_url, settings.circuit_breaker, logger);
  if (!breaker.is_ok()) {
    return Status(breaker.status().code(),
                  where + ": settings.circuit_breaker: " + breaker.status().message());
  }
  client->breaker_ = std::move(*breaker);
  return client;
}

std::optional<milliseconds> GoogleClient::capped(std::optional<nanoseconds> wait) const {
  if (!wait) return std::nullopt;
  nanoseconds bounded = std::min<nanoseconds>(*wait, settings_.max_throttle_wait);
  return std::chrono::ceil<milliseconds>(std::max(bounded, nanoseconds::zero()));
}

GoogleResponse GoogleClient::call(HttpMethod method, const std::string& path, const std::string& json_body,
                                  double daily_units) {
  GoogleResponse response;

  // The limiters first: a token taken while the circuit is open is given back at once, but a
  // probe admitted by the breaker and then kept back by a limiter would block the circuit.
  auto kept_back = [&](RateLimiter& limiter, double units, const char* quota) {
    nanoseconds wait = limiter.time_until_available(limiter_key_, units);
    response.not_sent =
        Status(StatusCode::kResourceExhausted,
               fmt::format("destination '{}': the {} rate limiter keeps requests back for {} ms",
                           destination_, quota, std::chrono::ceil<milliseconds>(wait).count()));
    response.retry_after = std::chrono::ceil<milliseconds>(std::max(wait, nanoseconds(milliseconds(1))));
  };
  auto grant = limiter_->acquire(limiter_key_, 1.0, kMaxLimiterWait);
  if (!grant.is_ok()) {
    if (grant.status().code() != StatusCode::kResourceExhausted) {
      response.not_sent =
          Status(grant.status().code(), "destination '" + destination_ + "': " + grant.status().message());
      return response;
    }
    kept_back(*limiter_, 1.0, "per-minute");
    return response;
  }
  double units = std::max(daily_units, 1.0);
  auto daily_grant = daily_limiter_->acquire(limiter_key_, units, kMaxLimiterWait);
  if (!daily_grant.is_ok()) {
    limiter_->release(limiter_key_, *grant);
    if (daily_grant.status().code() != StatusCode::kResourceExhausted) {
      response.not_sent = Status(daily_grant.status().code(),
                                 "destination '" + destination_ + "': " + daily_grant.status().message());
      return response;
    }
    kept_back(*daily_limiter_, units, "daily");
    return response;
  }
  CircuitAdmission admission = breaker_->admit();
  if (!admission.allowed) {
    limiter_->release(limiter_key_, *grant);
    daily_limiter_->release(limiter_key_, *daily_grant);
    auto wait = std::chrono::ceil<milliseconds>(admission.retry_after);
    response.not_sent =
        unavailable(fmt::format("destination '{}': the circuit breaker is open after repeated network or 5xx "
                                "failures of {}; it refused this request and lets a trial request through {} ms "
                                "later; the last failure: {}",
                                destination_, api_name(), wait.count(), admission.last_failure));
    response.retry_after = std::max(wait, milliseconds(1));
    return response;
  }

  const std::string url = settings_.base_url + "/" + settings_.api_version + path;
  // A 401 means the access token expired or was revoked early: one new token, one more attempt.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto token = oauth_->access_token();
    if (!token.is_ok()) {
      breaker_->record_success();  // The API itself was never reached.
      response = GoogleResponse{};
      response.not_sent = token.status();
      break;
    }
    response = send_once(method, url, json_body, *token);
    if (!(response.sent && response.classification.http_status == 401) || attempt == 1) break;
    logger_.log(LogLevel::kInfo, "google",
                "destination {}: {} rejected the access token ({}); refreshing it once", destination_,
                api_name(), response.classification.summary());
    oauth_->invalidate(*token);
  }
  limiter_->release(limiter_key_, *grant);
  daily_limiter_->release(limiter_key_, *daily_grant);
  return response;
}

GoogleResponse GoogleClient::send_once(HttpMethod method, const std::string& url,
                                       const std::string& json_body, const std::string& token) {
  GoogleResponse response;
  HttpRequest request;
  request.method = method;
  request.url = url;
  request.timeout = settings_.timeout;
  request.headers.push_back({"Authorization", "Bearer " + token});
  request.headers.push_back({"Accept", "application/json"});
  if (settings_.api == GoogleApi::kAds) {
    if (!settings_.login_customer_id.empty())
      request.headers.push_back({"login-customer-id", settings_.login_customer_id});
    if (!settings_.developer_token.empty())
      request.headers.push_back({"developer-token", settings_.developer_token});
  }
  if (!json_body.empty()) {
    request.headers.push_back({"Content-Type", "application/json"});
    request.body = json_body;
  }
  HttpResult result = transport_->send(request);

  response.sent = true;
  response.classification = result.has_response() ? classify_google_response(result.response())
                                                  : classify_transport_error(result.error());
  if (result.has_response()) {
    response.body = Json::parse(result.response().body, nullptr, false);
    if (response.body.is_discarded()) response.body = nullptr;
  }
  if (response.classification.ok() && !response.body.is_object()) {
    // A success status with a body that is not a JSON object is a fault on Google's side.
    response.classification.error_class = PlatformErrorClass::kPlatform5xx;
    response.classification.message =
        fmt::format("HTTP {} with a body that is not a JSON object", result.response().status);
  }
  if (!response.classification.ok() && response.body.is_object() && response.body.contains("error")) {
    for (const GoogleError& error : read_google_errors(response.body["error"])) {
      if (error.code == "databaseError: CONCURRENT_MODIFICATION") response.concurrent_modification = true;
    }
  }

  RateFeedback feedback = rate_feedback(response.classification);
  if (feedback.retry_after)
    feedback.retry_after = std::min<nanoseconds>(*feedback.retry_after, settings_.max_throttle_wait);
  limiter_->on_feedback(limiter_key_, feedback);
  if (counts_against_circuit(response.classification.error_class) && !response.concurrent_modification) {
    breaker_->record_failure(response.classification.summary());
  } else {
    breaker_->record_success();
  }

  if (response.classification.error_class == PlatformErrorClass::kThrottled) {
    response.retry_after = capped(response.classification.retry_after.value_or(kDefaultThrottleWait));
  } else if (!response.classification.ok()) {
    response.retry_after = capped(response.classification.retry_after);
  }
  return response;
}

GoogleResponse GoogleClient::call_with_retries(HttpMethod method, const std::string& path,
                                               const std::string& json_body, double daily_units,
                                               int max_retries) {
  RequestRetryPolicy policy;
  policy.max_retries = max_retries;
  policy.base_delay = milliseconds(500);
  policy.max_delay = std::chrono::seconds(10);
  policy.default_throttle_wait = std::min<nanoseconds>(kDefaultThrottleWait, settings_.max_throttle_wait);
  policy.max_throttle_wait = settings_.max_throttle_wait;
  policy.max_total_throttle_wait = kMaxTotalWait;
  RetryBudget budget(policy);
  std::mt19937_64 random{std::random_device{}()};
  nanoseconds held_wait{0};
  int token_retries = 0;
  int concurrent_retries = 0;

  while (true) {
    GoogleResponse response = call(method, path, json_body, daily_units);
    if (response.ok()) return response;
    if (!response.sent) {
      StatusCode code = response.not_sent.code();
      if (code == StatusCode::kResourceExhausted) {
        nanoseconds wait = response.retry_after.value_or(milliseconds(1000));
        held_wait += wait;
        if (held_wait > kMaxTotalWait) return response;
        std::this_thread::sleep_for(wait);
        continue;
      }
      // The token endpoint was unreachable or failed on its side. An open circuit and a rejected
      // refresh token end the call.
      bool token_outage = (code == StatusCode::kUnavailable || code == StatusCode::kDeadlineExceeded) &&
                          response.not_sent.message().find("access token") != std::string::npos;
      if (!token_outage || ++token_retries > max_retries) return response;
      std::this_thread::sleep_for(
          full_jitter_delay(policy, token_retries, std::uniform_real_distribution<double>(0, 1)(random)));
      continue;
    }
    if (response.concurrent_modification) {
      if (++concurrent_retries > kMaxConcurrentModificationRetries) return response;
      nanoseconds delay = full_jitter_delay(policy, concurrent_retries,
                                            std::uniform_real_distribution<double>(0.5, 1)(random));
      logger_.log(LogLevel::kInfo, "google",
                  "destination {}: {} {}: CONCURRENT_MODIFICATION; retrying in {} ms", destination_,
                  http_method_name(method), path, std::chrono::duration_cast<milliseconds>(delay).count());
      std::this_thread::sleep_for(delay);
      continue;
    }
    RetryDecision decision = budget.next(response.classification);
    if (decision.action != RetryAction::kRetry) return response;
    logger_.log(LogLevel::kWarn, "google", "destination {}: {} {} failed ({}); retrying in {} ms",
                destination_, http_method_name(method), path, response.classification.summary(),
                std::chrono::duration_cast<milliseconds>(decision.delay).count());
    std::this_thread::sleep_for(decision.delay);
  }
}

Status GoogleClient::failure_status(const GoogleResponse& response, std::string_view what) const {
  std::string prefix = fmt::format("destination '{}': {}", destination_, what);
  if (!response.sent) return Status(response.not_sent.code(), prefix + ": " + response.not_sent.message());
  const ResponseClassification& failure = response.classification;
  if (response.concurrent_modification) {
    return unavailable(
        prefix + ": another request changed the same job or list at the same time: " + failure.summary());
  }
  switch (failure.error_class) {
    case PlatformErrorClass::kNone: return Status::ok();
    case PlatformErrorClass::kThrottled:
      return Status(StatusCode::kResourceExhausted,
                    fmt::format("{}: {} throttled the request: {}", prefix, api_name(), failure.summary()));
    case PlatformErrorClass::kNetwork:
      return unavailable(fmt::format("{}: no response from {}: {}", prefix, api_name(), failure.summary()));
    case PlatformErrorClass::kPlatform5xx:
      return unavailable(fmt::format("{}: {} failed on its side: {}", prefix, api_name(), failure.summary()));
    case PlatformErrorClass::kAuth:
      if (failure.http_status == 401) {
        return Status(
            StatusCode::kUnauthenticated,
            fmt::format("{}: {} rejected a freshly refreshed access token: {}. Check that the refresh token "
                        "in the environment variable {} (secret refresh_token) belongs to a user of customer "
                        "{}, then retry the job",
                        prefix, api_name(), failure.summary(), settings_.refresh_token_variable,
                        settings_.customer_id));
      }
      return Status(
          StatusCode::kPermissionDenied,
          fmt::format(
              "{}: the Google user of the refresh token in the environment variable {} lacks access "
              "to customer {}{}: {}. Grant it, then retry the job",
              prefix, settings_.refresh_token_variable, settings_.customer_id,
              settings_.login_customer_id.empty() ? "" : " through manager " + settings_.login_customer_id,
              failure.summary()));
    case PlatformErrorClass::kInvalidRequest:
      return invalid_argument(
          fmt::format("{}: {} rejected the request: {}", prefix, api_name(), failure.summary()));
  }
  return internal_error(prefix + ": unknown error class");
}

}  // namespace activation::platforms::google
