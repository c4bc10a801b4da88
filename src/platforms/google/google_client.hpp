// The HTTP side of the Google adapters. It sends JSON requests to the Data Manager API or the
// Google Ads API with an OAuth access token, paced by the Cloud project's rate limiters (per
// request and per day) and guarded by the destination's circuit breaker. It classifies each
// response by Google's error envelope.
#ifndef ACTIVATION_PLATFORMS_GOOGLE_GOOGLE_CLIENT_HPP_
#define ACTIVATION_PLATFORMS_GOOGLE_GOOGLE_CLIENT_HPP_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "activation/backend/transport.hpp"
#include "activation/circuit_breaker.hpp"
#include "activation/log.hpp"
#include "activation/platform_errors.hpp"
#include "activation/rate_limiter.hpp"
#include "platforms/google/google_settings.hpp"
#include "platforms/oauth/oauth_client.hpp"

namespace activation::platforms::google {

// One error of a Google Ads `GoogleAdsFailure`, or one field violation of a Data Manager
// `BadRequest`, with the index of the operation or audience member it concerns.
struct GoogleError {
  std::optional<std::size_t> index;  // Operation or member index; nullopt for request-level errors.
  std::string code;                  // "offlineUserDataJobError: INVALID_SHA256_FORMAT", or a reason.
  std::string message;
};

// Reads the per-item errors of an error envelope or of a `partialFailureError` status: the
// GoogleAdsFailure errors with their `location.fieldPathElements[0].index`, and the BadRequest
// field violations whose field starts with `audience_members[i]` or `operations[i]`.
std::vector<GoogleError> read_google_errors(const nlohmann::json& status);

// Classifies a response of a Google API: 429 or RESOURCE_EXHAUSTED throttled, 401 and 403 auth,
// 409 ABORTED and 5xx platform_5xx, other 4xx invalid_request. The wait comes from Retry-After,
// a RetryInfo detail or a Google Ads quotaErrorDetails.retryDelay.
ResponseClassification classify_google_response(const HttpResponse& response);

// The outcome of one request.
struct GoogleResponse {
  // False when the circuit breaker, the rate limiter or the token endpoint kept the request back.
  bool sent = false;
  // Why it was not sent: kUnavailable (open circuit, token endpoint down), kResourceExhausted
  // (rate limiter), kUnauthenticated (refresh token or client rejected).
  Status not_sent;
  ResponseClassification classification;
  nlohmann::json body;  // The JSON body: the result on success, the error envelope on failure.
  std::optional<std::chrono::milliseconds> retry_after;
  // The Google Ads API refused the request because another request changed the same job or list
  // at the same time (databaseError CONCURRENT_MODIFICATION). Sending it again later succeeds.
  bool concurrent_modification = false;

  bool ok() const noexcept { return sent && classification.ok(); }
  PlatformErrorClass error_class() const noexcept {
    return sent ? classification.error_class : PlatformErrorClass::kNone;
  }
};

// Thread safety: not thread-safe; one client serves one adapter. The OAuth client, limiters and
// breaker it uses are shared with the other clients of the process.
class GoogleClient {
 public:
  // Creates the transport and the OAuth client and finds the limiters and the breaker. Fails with
  // kInvalidArgument for settings that they reject.
  static Result<std::unique_ptr<GoogleClient>> create(const GoogleSettings& settings, std::string destination,
                                                      const Logger& logger);

  // Sends one request to `path` (such as "/audienceMembers:ingest", relative to the base URL and
  // the API version). An empty `json_body` sends no body. `daily_units` is what the request
  // counts against the daily quota (requests for Data Manager, operations for Google Ads). A
  // response of HTTP 401 invalidates the access token, and the request goes once more with a new
  // one.
  GoogleResponse call(HttpMethod method, const std::string& path, const std::string& json_body,
                      double daily_units = 1.0);

  // Sends like call() and retries what the error classes allow: throttled responses and
  // requests the rate limiter kept back after their wait, CONCURRENT_MODIFICATION after a backoff,
  // network and 5xx failures (and token endpoint outages) up to `max_retries` times with backoff.
  // An open circuit and auth errors return at once.
  GoogleResponse call_with_retries(HttpMethod method, const std::string& path, const std::string& json_body,
                                   double daily_units = 1.0, int max_retries = 4);

  // The Status of a failed response, with a message that starts with `what`. Auth errors are
  // kUnauthenticated or kPermissionDenied and name the secret to fix, throttling is
  // kResourceExhausted, network and 5xx failures and CONCURRENT_MODIFICATION kUnavailable, and
  // invalid requests kInvalidArgument.
  Status failure_status(const GoogleResponse& response, std::string_view what) const;

  const std::string& destination() const noexcept { return destination_; }
  oauth::OAuthClient& oauth() noexcept { return *oauth_; }

 private:
  GoogleClient(const GoogleSettings& settings, std::string destination, const Logger& logger);

  GoogleResponse send_once(HttpMethod method, const std::string& url, const std::string& json_body,
                           const std::string& token);
  std::optional<std::chrono::milliseconds> capped(std::optional<std::chrono::nanoseconds> wait) const;
  const char* api_name() const noexcept;

  const GoogleSettings settings_;
  std::string destination_;
  Logger logger_;
  std::string limiter_key_;
  std::unique_ptr<Transport> transport_;
  std::shared_ptr<oauth::OAuthClient> oauth_;
  std::shared_ptr<RateLimiter> limiter_;
  std::shared_ptr<RateLimiter> daily_limiter_;
  std::shared_ptr<CircuitBreaker> breaker_;
};

}  // namespace activation::platforms::google

#endif  // ACTIVATION_PLATFORMS_GOOGLE_GOOGLE_CLIENT_HPP_
