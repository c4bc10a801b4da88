// The HTTP side shared by the LinkedIn, TikTok, Snapchat and webhook adapters. It sends a request
// paced by the account's rate limiter and guarded by the destination's circuit breaker, and
// classifies the response with the platform's classifier. Failures become Status values whose
// message names the setting or secret to fix.
#ifndef ACTIVATION_PLATFORMS_COMMON_PLATFORM_CLIENT_HPP_
#define ACTIVATION_PLATFORMS_COMMON_PLATFORM_CLIENT_HPP_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "activation/backend/transport.hpp"
#include "activation/circuit_breaker.hpp"
#include "activation/log.hpp"
#include "activation/platform_errors.hpp"
#include "activation/rate_limiter.hpp"
#include "platforms/common/http_settings.hpp"

namespace activation::platforms {

// The outcome of one request.
struct PlatformResponse {
  // False when the circuit breaker or the rate limiter kept the request back, unsent.
  bool sent = false;
  // Why it was not sent: kUnavailable (the circuit is open) or kResourceExhausted (the limiter's
  // wait is longer than one call waits).
  Status not_sent;
  ResponseClassification classification;  // Of the response, when sent.
  int http_status = 0;
  HttpHeaders headers;
  nlohmann::json body;  // The parsed JSON body, or null when the body is empty or not JSON.
  // How long to wait before sending again: the circuit's open time, the limiter's wait, or the
  // platform's, capped at the settings' max_throttle_wait.
  std::optional<std::chrono::milliseconds> retry_after;

  bool ok() const noexcept { return sent && classification.ok(); }
  PlatformErrorClass error_class() const noexcept {
    return sent ? classification.error_class : PlatformErrorClass::kNone;
  }
};

// Classifies one response. Platforms that send errors inside HTTP 200 (TikTok) read the body here.
using ResponseClassifier = std::function<ResponseClassification(const HttpResponse&)>;

struct PlatformClientOptions {
  std::string platform;  // Limiter platform and log tag: "linkedin", "tiktok", "snapchat", "webhook".
  std::string label;     // For messages: "LinkedIn", "TikTok", "Snapchat", "the webhook receiver".
  std::string destination;
  std::string account;  // The quota owner: the limiter is shared by every run with the same account.
  HttpSettings http;
  ResponseClassifier classifier;  // Empty uses classify_http_response().
  Logger logger;
};

// Thread safety: not thread-safe; one client serves one adapter. The limiter and breaker it uses
// are shared with the other clients of the process.
class PlatformClient {
 public:
  // Creates the transport and finds the account's limiter and the destination's breaker. Fails
  // with kInvalidArgument naming settings.rate_limit or settings.circuit_breaker when they are
  // rejected.
  static Result<std::unique_ptr<PlatformClient>> create(PlatformClientOptions options);

  // Sends `request` once. A relative `request.url` ("/dmpSegments") is appended to the base URL.
  PlatformResponse call(HttpRequest request);

  // Sends like call() and retries what the error classes allow: throttled responses and requests
  // the limiter kept back after their wait, network and 5xx failures up to `max_retries` times
  // with backoff. An open circuit returns at once. For requests outside the engine's batch retries
  // (finding or creating the audience).
  PlatformResponse call_with_retries(const HttpRequest& request, int max_retries = 4);

  // The Status of a failed response, with a message that starts with "destination '<name>':
  // <what>". Auth errors are kUnauthenticated, or kPermissionDenied for HTTP 403 and for a
  // classification whose error_type is "permission" (TikTok's 40001), and their
  // message names `credential_hint` (such as "the access token in the environment variable X").
  // Throttling is kResourceExhausted, network and 5xx failures kUnavailable, other invalid
  // requests kInvalidArgument.
  Status failure_status(const PlatformResponse& response, std::string_view what,
                        std::string_view credential_hint) const;

  const std::string& destination() const noexcept { return options_.destination; }
  const std::string& label() const noexcept { return options_.label; }
  const HttpSettings& http() const noexcept { return options_.http; }

 private:
  explicit PlatformClient(PlatformClientOptions options) : options_(std::move(options)) {}

  std::optional<std::chrono::milliseconds> capped(std::optional<std::chrono::nanoseconds> wait) const;

  const PlatformClientOptions options_;
  std::string limiter_key_;
  std::unique_ptr<Transport> transport_;
  std::shared_ptr<RateLimiter> limiter_;
  std::shared_ptr<CircuitBreaker> breaker_;
};

// Finds a list (segment, audience) by name with `find`, which returns "" when there is none, or
// else creates it with `create`. A create that failed without a clear answer (kUnavailable,
// kDeadlineExceeded, kResourceExhausted) may have made the list, so the next round looks it up
// again before it creates; after `rounds` rounds the last failure is returned. Returns the id.
Result<std::string> find_or_create(const std::function<Result<std::string>()>& find,
                                   const std::function<Result<std::string>()>& create, int rounds = 4);

// Returns the lowercase hex HMAC-SHA256 of `message` keyed with `key`.
std::string hmac_sha256(std::string_view key, std::string_view message);

// Returns the first string among `keys` of a JSON object, or "".
std::string json_string(const nlohmann::json& object, std::initializer_list<const char*> keys);

}  // namespace activation::platforms

#endif  // ACTIVATION_PLATFORMS_COMMON_PLATFORM_CLIENT_HPP_
