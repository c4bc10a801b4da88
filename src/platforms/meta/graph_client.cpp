#include "platforms/meta/graph_client.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include <fmt/format.h>

#include "platforms/platform_services.hpp"

namespace activation::platforms::meta {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// The maximum time a request waits for the rate limiter inside one call. A longer wait is handed back
// as retry_after, so that the engine waits where a cancellation can interrupt it.
constexpr nanoseconds kMaxLimiterWait = std::chrono::seconds(5);
// The wait after a throttled response that names no time, before the max_throttle_wait cap.
constexpr nanoseconds kDefaultThrottleWait = std::chrono::seconds(60);
// call_with_retries() gives up after waiting this long in total for throttling and for the rate
// limiter.
constexpr nanoseconds kMaxTotalWait = std::chrono::minutes(30);

std::string percent_encode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ',') {
      out.push_back(static_cast<char>(c));
    } else {
      char buffer[4];
      std::snprintf(buffer, sizeof buffer, "%%%02X", c);
      out += buffer;
    }
  }
  return out;
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

// Meta's token errors: an invalid or expired token (190), an invalid session (102), no token (104).
bool is_token_error(const ResponseClassification& classification) {
  if (!classification.code) return classification.http_status == 401;
  std::int64_t code = *classification.code;
  return code == 190 || code == 102 || code == 104;
}

void sleep_for(nanoseconds duration) {
  if (duration > nanoseconds::zero()) std::this_thread::sleep_for(duration);
}

}  // namespace

bool GraphResponse::is_error(std::int64_t code, std::optional<std::int64_t> subcode) const noexcept {
  if (!sent || classification.ok() || classification.code != code) return false;
  return !subcode || classification.subcode == subcode;
}

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  std::string hex;
  hex.reserve(length * 2);
  char buffer[3];
  for (unsigned int i = 0; i < length; ++i) {
    std::snprintf(buffer, sizeof buffer, "%02x", digest[i]);
    hex += buffer;
  }
  return hex;
}

GraphClient::GraphClient(const MetaSettings& settings, std::string destination, const Logger& logger)
    : settings_(settings), destination_(std::move(destination)), logger_(logger) {}

Result<std::unique_ptr<GraphClient>> GraphClient::create(const MetaSettings& settings,
                                                         std::string destination, const Logger& logger) {
  std::unique_ptr<GraphClient> client(new GraphClient(settings, std::move(destination), logger));
  if (!settings.app_secret.empty())
    client->appsecret_proof_ = hmac_sha256_hex(settings.app_secret, settings.access_token);

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
  client->transport_options_ = options;
  auto transport = make_curl_transport(std::move(options));
  if (!transport.is_ok()) {
    return Status(transport.status().code(),
                  "destination '" + client->destination_ + "': " + transport.status().message());
  }
  client->transport_ = std::move(*transport);

  // Quotas belong to the ad account. The base URL is part of the key so that accounts of
  // different servers (a test server next to Meta) never share a limiter.
  client->limiter_key_ = settings.ad_account_id;
  if (settings.base_url != kDefaultBaseUrl) client->limiter_key_ += "@" + settings.base_url;
  auto limiter = account_limiter("meta", client->limiter_key_, settings.rate_limit, logger);
  if (!limiter.is_ok()) {
    return Status(limiter.status().code(), "destination '" + client->destination_ +
                                               "': settings.rate_limit: " + limiter.status().message());
  }
  client->limiter_ = std::move(*limiter);

  auto breaker =
      destination_breaker(client->destination_ + "@" + settings.base_url, settings.circuit_breaker, logger);
  if (!breaker.is_ok()) {
    return Status(breaker.status().code(), "destination '" + client->destination_ +
                                               "': settings.circuit_breaker: " + breaker.status().message());
  }
  client->breaker_ = std::move(*breaker);
  return client;
}

std::string GraphClient::url(const std::string& path, const QueryParams& query) const {
  std::string out = settings_.base_url + "/" + settings_.api_version + path;
  char separator = '?';
  auto append = [&](std::string_view name, std::string_view value) {
    out += separator;
    separator = '&';
    out += percent_encode(name);
    out += '=';
    out += percent_encode(value);
  };
  for (const auto& [name, value] : query) append(name, value);
  if (!appsecret_proof_.empty()) append("appsecret_proof", appsecret_proof_);
  return out;
}

std::optional<milliseconds> GraphClient::capped(std::optional<nanoseconds> wait) const {
  if (!wait) return std::nullopt;
  nanoseconds bounded = std::min<nanoseconds>(*wait, settings_.max_throttle_wait);
  // Rounded up, so that a wait of a fraction of a millisecond is still a wait.
  return std::chrono::ceil<milliseconds>(std::max(bounded, nanoseconds::zero()));
}

GraphResponse GraphClient::call(HttpMethod method, const std::string& path, const std::string& json_body,
                                const QueryParams& query, bool fresh_connection) {
  GraphResponse response;

  // The limiter first: a token taken while the circuit is open is given back at once, but a probe
  // admitted by the breaker and then kept back by the limiter would block the circuit until the probe
  // times out.
  auto grant = limiter_->acquire(limiter_key_, 1.0, kMaxLimiterWait);
  if (!grant.is_ok()) {
    if (grant.status().code() != StatusCode::kResourceExhausted) {
      response.not_sent =
          Status(grant.status().code(), "destination '" + destination_ + "': " + grant.status().message());
      return response;
    }
    nanoseconds wait = limiter_->time_until_available(limiter_key_);
    response.not_sent = Status(
        StatusCode::kResourceExhausted,
        fmt::format("destination '{}': the rate limiter of {} keeps requests back for {} ms", destination_,
                    settings_.ad_account_id, std::chrono::ceil<milliseconds>(wait).count()));
    response.retry_after =
        std::chrono::ceil<milliseconds>(std::max(wait, nanoseconds(std::chrono::milliseconds(1))));
    return response;
  }
  CircuitAdmission admission = breaker_->admit();
  if (!admission.allowed) {
    limiter_->release(limiter_key_, *grant);
    auto wait = std::chrono::ceil<milliseconds>(admission.retry_after);
    response.not_sent =
        unavailable(fmt::format("destination '{}': the circuit breaker is open after repeated network or 5xx "
                                "failures of Meta; it refused this request and lets a trial request through {} "
                                "ms later; the last failure: {}",
                                destination_, wait.count(), admission.last_failure));
    response.retry_after = std::max(wait, milliseconds(1));
    return response;
  }

  HttpRequest request;
  request.method = method;
  request.url = url(path, query);
  request.timeout = settings_.timeout;
  request.headers.push_back({"Authorization", "Bearer " + settings_.access_token});
  request.headers.push_back({"Accept", "application/json"});
  if (!json_body.empty()) {
    request.headers.push_back({"Content-Type", "application/json"});
    request.body = json_body;
  }
  HttpResult result = send_request(request, fresh_connection);
  limiter_->release(limiter_key_, *grant);

  response.sent = true;
  response.classification = result.has_response() ? classify_meta_response(result.response())
                                                  : classify_transport_error(result.error());
  if (response.classification.ok()) {
    response.body = nlohmann::json::parse(result.response().body, nullptr, false);
    if (response.body.is_discarded()) {
      // A success status with a body that is not JSON is a fault on Meta's side, not an response.
      response.classification.error_class = PlatformErrorClass::kPlatform5xx;
      response.classification.message =
          fmt::format("HTTP {} with a body that is not JSON", result.response().status);
      response.body = nullptr;
    }
  }

  RateFeedback feedback = rate_feedback(response.classification);
  if (feedback.retry_after)
    feedback.retry_after = std::min<nanoseconds>(*feedback.retry_after, settings_.max_throttle_wait);
  limiter_->on_feedback(limiter_key_, feedback);
  if (counts_against_circuit(response.classification.error_class)) {
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

HttpResult GraphClient::send_request(const HttpRequest& request, bool fresh_connection) {
  if (!fresh_connection) return transport_->send(request);
  // A transport of its own has no connection to reuse.
  auto transport = make_curl_transport(transport_options_);
  if (!transport.is_ok()) {
    return TransportError{TransportErrorKind::kOther,
                          "creating a transport failed: " + transport.status().message()};
  }
  return (*transport)->send(request);
}

GraphResponse GraphClient::call_with_retries(HttpMethod method, const std::string& path,
                                             const std::string& json_body, const QueryParams& query,
                                             int max_retries) {
  RequestRetryPolicy policy;
  policy.max_retries = max_retries;
  policy.base_delay = milliseconds(500);
  policy.max_delay = std::chrono::seconds(10);
  policy.default_throttle_wait = std::min<nanoseconds>(kDefaultThrottleWait, settings_.max_throttle_wait);
  policy.max_throttle_wait = settings_.max_throttle_wait;
  policy.max_total_throttle_wait = kMaxTotalWait;
  RetryBudget budget(policy);
  nanoseconds held_wait{0};

  while (true) {
    GraphResponse response = call(method, path, json_body, query);
    if (response.ok()) return response;
    if (!response.sent) {
      // An open circuit ends the call: waiting out open periods here would hold the job without
      // a heartbeat of progress, while a failed attempt is retried by the queue with backoff.
      if (response.not_sent.code() != StatusCode::kResourceExhausted) return response;
      nanoseconds wait = response.retry_after.value_or(milliseconds(1000));
      held_wait += wait;
      if (held_wait > kMaxTotalWait) return response;
      sleep_for(wait);
      continue;
    }
    RetryDecision decision = budget.next(response.classification);
    if (decision.action != RetryAction::kRetry) return response;
    logger_.log(LogLevel::kWarn, "meta", "destination {}: {} {} failed ({}); retrying in {} ms", destination_,
                http_method_name(method), path, response.classification.summary(),
                std::chrono::duration_cast<milliseconds>(decision.delay).count());
    sleep_for(decision.delay);
  }
}

Status GraphClient::failure_status(const GraphResponse& response, std::string_view what) const {
  std::string prefix = fmt::format("destination '{}': {}", destination_, what);
  if (!response.sent) return Status(response.not_sent.code(), prefix + ": " + response.not_sent.message());
  const ResponseClassification& failure = response.classification;
  switch (failure.error_class) {
    case PlatformErrorClass::kNone: return Status::ok();
    case PlatformErrorClass::kThrottled:
      return Status(StatusCode::kResourceExhausted,
                    prefix + ": Meta throttled the request: " + failure.summary());
    case PlatformErrorClass::kNetwork:
      return unavailable(prefix + ": no response from Meta: " + failure.summary());
    case PlatformErrorClass::kPlatform5xx:
      return unavailable(prefix + ": Meta failed on its side: " + failure.summary());
    case PlatformErrorClass::kAuth:
      if (is_token_error(failure)) {
        return Status(
            StatusCode::kUnauthenticated,
            fmt::format("{}: Meta rejected the access token: {}. Put a valid token in the environment "
                        "variable {} (secret access_token), then retry the job",
                        prefix, failure.summary(), settings_.access_token_variable));
      }
      return Status(StatusCode::kPermissionDenied,
                    fmt::format("{}: the access token in the environment variable {} lacks a permission or "
                                "agreement that Meta requires: {}. Grant it, then retry the job",
                                prefix, settings_.access_token_variable, failure.summary()));
    case PlatformErrorClass::kInvalidRequest:
      return invalid_argument(prefix + ": Meta rejected the request: " + failure.summary());
  }
  return internal_error(prefix + ": unknown error class");
}

}  // namespace activation::platforms::meta
