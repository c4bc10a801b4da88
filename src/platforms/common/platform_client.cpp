#include "platforms/common/platform_client.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include <fmt/format.h>

#include "platforms/platform_services.hpp"

namespace activation::platforms {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// The maximum time a request waits for the rate limiter inside one call. A longer wait is handed
// back as retry_after, so that the engine waits where a cancellation can interrupt it.
constexpr nanoseconds kMaxLimiterWait = std::chrono::seconds(5);
// The wait after a throttled response that names no time, before the max_throttle_wait cap.
constexpr nanoseconds kDefaultThrottleWait = std::chrono::seconds(60);
// call_with_retries() gives up after waiting this long in total for throttling and the limiter.
constexpr nanoseconds kMaxTotalWait = std::chrono::minutes(30);

void sleep_for(nanoseconds duration) {
  if (duration > nanoseconds::zero()) std::this_thread::sleep_for(duration);
}

}  // namespace

std::string hmac_sha256(std::string_view key, std::string_view message) {
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

Result<std::string> find_or_create(const std::function<Result<std::string>()>& find,
                                   const std::function<Result<std::string>()>& create, int rounds) {
  Status last = internal_error("find_or_create() needs at least one round");
  for (int round = 0; round < rounds; ++round) {
    ACT_ASSIGN_OR_RETURN(std::string found, find());
    if (!found.empty()) return found;
    Result<std::string> created = create();
    if (created.is_ok()) return created;
    last = created.status();
    StatusCode code = last.code();
    bool unclear = code == StatusCode::kUnavailable || code == StatusCode::kDeadlineExceeded ||
                   code == StatusCode::kResourceExhausted;
    if (!unclear) return last;
    sleep_for(std::chrono::milliseconds(500) * (round + 1));
  }
  return last;
}

std::string json_string(const nlohmann::json& object, std::initializer_list<const char*> keys) {
  if (!object.is_object()) return {};
  for (const char* key : keys) {
    auto it = object.find(key);
    if (it != object.end() && it->is_string()) return it->get<std::string>();
  }
  return {};
}

Result<std::unique_ptr<PlatformClient>> PlatformClient::create(PlatformClientOptions options) {
  std::unique_ptr<PlatformClient> client(new PlatformClient(std::move(options)));
  const PlatformClientOptions& settings = client->options_;
  const std::string where = "destination '" + settings.destination + "'";

  CurlTransportOptions transport;
  transport.total_timeout = settings.http.timeout;
  transport.connect_timeout = std::min<milliseconds>(settings.http.timeout, milliseconds(10'000));
  transport.ca_file = settings.http.ca_file;
  transport.proxy = settings.http.proxy;
  transport.no_proxy = settings.http.no_proxy;
  // A request to this machine never goes through a proxy that the environment names.
  if (transport.no_proxy.empty() && is_loopback_url(settings.http.base_url))
    transport.no_proxy = "127.0.0.1,localhost,::1";
  transport.logger = settings.logger;
  auto made = make_curl_transport(std::move(transport));
  if (!made.is_ok()) return Status(made.status().code(), where + ": " + made.status().message());
  client->transport_ = std::move(*made);

  // The base URL is part of the key so that accounts of different servers (a test server next to
  // the platform) never share a limiter.
  client->limiter_key_ = settings.account + "@" + settings.http.base_url;
  auto limiter =
      account_limiter(settings.platform, client->limiter_key_, settings.http.rate_limit, settings.logger);
  if (!limiter.is_ok()) {
    return Status(limiter.status().code(), where + ": settings.rate_limit: " + limiter.status().message());
  }
  client->limiter_ = std::move(*limiter);

  auto breaker =
      destination_breaker(settings.platform + ":" + settings.destination + "@" + settings.http.base_url,
                          settings.http.circuit_breaker, settings.logger);
  if (!breaker.is_ok()) {
    return Status(breaker.status().code(),
                  where + ": settings.circuit_breaker: " + breaker.status().message());
  }
  client->breaker_ = std::move(*breaker);
  return client;
}

std::optional<milliseconds> PlatformClient::capped(std::optional<nanoseconds> wait) const {
  if (!wait) return std::nullopt;
  nanoseconds bounded = std::min<nanoseconds>(*wait, options_.http.max_throttle_wait);
  // Rounded up, so that a wait of a fraction of a millisecond is still a wait.
  return std::chrono::ceil<milliseconds>(std::max(bounded, nanoseconds::zero()));
}

PlatformResponse PlatformClient::call(HttpRequest request) {
  PlatformResponse response;

  // The limiter first: a token taken while the circuit is open is given back at once, but a probe
  // admitted by the breaker and then kept back by the limiter would block the circuit until the
  // probe times out.
  auto grant = limiter_->acquire(limiter_key_, 1.0, kMaxLimiterWait);
  if (!grant.is_ok()) {
    const std::string prefix = "destination '" + options_.destination + "': ";
    if (grant.status().code() != StatusCode::kResourceExhausted) {
      response.not_sent = Status(grant.status().code(), prefix + grant.status().message());
      return response;
    }
    nanoseconds wait = limiter_->time_until_available(limiter_key_);
    response.not_sent =
        Status(StatusCode::kResourceExhausted,
               fmt::format("{}the rate limiter of {} account {} keeps requests back for {} ms", prefix,
                           options_.label, options_.account, std::chrono::ceil<milliseconds>(wait).count()));
    response.retry_after = std::chrono::ceil<milliseconds>(std::max(wait, nanoseconds(milliseconds(1))));
    return response;
  }
  CircuitAdmission admission = breaker_->admit();
  if (!admission.allowed) {
    limiter_->release(limiter_key_, *grant);
    auto wait = std::chrono::ceil<milliseconds>(admission.retry_after);
    response.not_sent = unavailable(
        fmt::format("destination '{}': the circuit breaker is open after repeated network or 5xx failures of "
                    "{}; it refused this request and lets a trial request through {} ms later; the last "
                    "failure: {}",
                    options_.destination, options_.label, wait.count(), admission.last_failure));
    response.retry_after = std::max(wait, milliseconds(1));
    return response;
  }

  if (request.url.rfind("http://", 0) != 0 && request.url.rfind("https://", 0) != 0) {
    request.url = options_.http.base_url + request.url;
  }
  if (request.timeout.count() == 0) request.timeout = options_.http.timeout;
  HttpResult result = transport_->send(request);
  limiter_->release(limiter_key_, *grant);

  response.sent = true;
  if (result.has_response()) {
    const HttpResponse& http = result.response();
    response.classification = options_.classifier ? options_.classifier(http) : classify_http_response(http);
    response.http_status = http.status;
    response.headers = http.headers;
    response.body = http.body.empty() ? nlohmann::json() : nlohmann::json::parse(http.body, nullptr, false);
    if (response.body.is_discarded()) response.body = nullptr;
  } else {
    response.classification = classify_transport_error(result.error());
  }

  RateFeedback feedback = rate_feedback(response.classification);
  if (feedback.retry_after)
    feedback.retry_after = std::min<nanoseconds>(*feedback.retry_after, options_.http.max_throttle_wait);
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

PlatformResponse PlatformClient::call_with_retries(const HttpRequest& request, int max_retries) {
  RequestRetryPolicy policy;
  policy.max_retries = max_retries;
  policy.base_delay = milliseconds(500);
  policy.max_delay = std::chrono::seconds(10);
  policy.default_throttle_wait = std::min<nanoseconds>(kDefaultThrottleWait, options_.http.max_throttle_wait);
  policy.max_throttle_wait = options_.http.max_throttle_wait;
  policy.max_total_throttle_wait = kMaxTotalWait;
  RetryBudget budget(policy);
  nanoseconds held_wait{0};

  while (true) {
    PlatformResponse response = call(request);
    if (response.ok()) return response;
    if (!response.sent) {
      // An open circuit ends the call: the queue retries the failed attempt with backoff.
      if (response.not_sent.code() != StatusCode::kResourceExhausted) return response;
      nanoseconds wait = response.retry_after.value_or(milliseconds(1000));
      held_wait += wait;
      if (held_wait > kMaxTotalWait) return response;
      sleep_for(wait);
      continue;
    }
    RetryDecision decision = budget.next(response.classification);
    if (decision.action != RetryAction::kRetry) return response;
    options_.logger.log(
        LogLevel::kWarn, options_.platform, "destination {}: {} {} failed ({}); retrying in {} ms",
        options_.destination, http_method_name(request.method), redact_url(request.url),
        response.classification.summary(), std::chrono::duration_cast<milliseconds>(decision.delay).count());
    sleep_for(decision.delay);
  }
}

Status PlatformClient::failure_status(const PlatformResponse& response, std::string_view what,
                                      std::string_view credential_hint) const {
  std::string prefix = fmt::format("destination '{}': {}", options_.destination, what);
  if (!response.sent) return Status(response.not_sent.code(), prefix + ": " + response.not_sent.message());
  const ResponseClassification& failure = response.classification;
  const std::string& label = options_.label;
  switch (failure.error_class) {
    case PlatformErrorClass::kNone: return Status::ok();
    case PlatformErrorClass::kThrottled:
      return Status(StatusCode::kResourceExhausted,
                    fmt::format("{}: {} throttled the request: {}", prefix, label, failure.summary()));
    case PlatformErrorClass::kNetwork:
      return unavailable(fmt::format("{}: no response from {}: {}", prefix, label, failure.summary()));
    case PlatformErrorClass::kPlatform5xx:
      return unavailable(fmt::format("{}: {} failed on its side: {}", prefix, label, failure.summary()));
    case PlatformErrorClass::kAuth:
      if (failure.http_status == 403 || failure.error_type == "permission") {
        return Status(
            StatusCode::kPermissionDenied,
            fmt::format("{}: {} lacks a permission that {} requires: {}. Grant it, then retry the job",
                        prefix, credential_hint, label, failure.summary()));
      }
      return Status(StatusCode::kUnauthenticated,
                    fmt::format("{}: {} rejected {}: {}. Replace it, then retry the job", prefix, label,
                                credential_hint, failure.summary()));
    case PlatformErrorClass::kInvalidRequest:
      return invalid_argument(
          fmt::format("{}: {} rejected the request: {}", prefix, label, failure.summary()));
  }
  return internal_error(prefix + ": unknown error class");
}

}  // namespace activation::platforms
