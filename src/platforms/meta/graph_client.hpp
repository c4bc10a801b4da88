// The HTTP side of the Meta adapter: sends Graph API requests with the access token and the
// appsecret_proof, paced by the ad account's rate limiter, guarded by the destination's circuit
// breaker, and classifies each response (docs/rate-limits.md describes the classes).
#ifndef ACTIVATION_PLATFORMS_META_GRAPH_CLIENT_HPP_
#define ACTIVATION_PLATFORMS_META_GRAPH_CLIENT_HPP_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "activation/backend/transport.hpp"
#include "activation/circuit_breaker.hpp"
#include "activation/log.hpp"
#include "activation/platform_errors.hpp"
#include "activation/rate_limiter.hpp"
#include "platforms/meta/meta_settings.hpp"

namespace activation::platforms::meta {

// The outcome of one request.
struct GraphResponse {
  // False when the circuit breaker or the rate limiter kept the request back, unsent.
  bool sent = false;
  // Why it was not sent: kUnavailable (the circuit is open) or kResourceExhausted (the rate
  // limiter's wait is longer than the client waits in one call).
  Status not_sent;
  ResponseClassification classification;  // Of the response, when sent.
  nlohmann::json body;                    // The parsed JSON body of a successful response.
  // How long to wait before sending again: the circuit's open time, the limiter's wait, or the
  // platform's, capped at the settings' max_throttle_wait.
  std::optional<std::chrono::milliseconds> retry_after;

  bool ok() const noexcept { return sent && classification.ok(); }
  PlatformErrorClass error_class() const noexcept {
    return sent ? classification.error_class : PlatformErrorClass::kNone;
  }
  // True for Meta's error `code` with `subcode` (any subcode when it is nullopt).
  bool is_error(std::int64_t code, std::optional<std::int64_t> subcode = std::nullopt) const noexcept;
};

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// Thread safety: not thread-safe; one client serves one adapter. The limiter and breaker it uses
// are shared with the other clients of the process.
class GraphClient {
 public:
  // Creates the transport and finds the account's limiter and the destination's breaker. Fails
  // with kInvalidArgument for settings the transport, limiter or breaker reject.
  static Result<std::unique_ptr<GraphClient>> create(const MetaSettings& settings, std::string destination,
                                                     const Logger& logger);

  // Sends one request to `path` (such as "/act_1/customaudiences", relative to the base URL and
  // the API version). `json_body` empty sends no body.
  //
  // `fresh_connection` sends the request on a new connection. libcurl sends a request again by
  // itself when a reused keep-alive connection closes before any byte of the response arrives.
  // A request that must never arrive twice (the first batch of a replace) therefore goes on a
  // connection that was never used before.
  GraphResponse call(HttpMethod method, const std::string& path, const std::string& json_body,
                     const QueryParams& query = {}, bool fresh_connection = false);

  // Sends like call() and retries what the error classes allow. Throttled responses and requests
  // that the rate limiter kept back go again after their wait, and network and 5xx failures up
  // to `max_retries` times with backoff. An open circuit returns at once. For the requests of
  // begin() and finish(), which the engine does not retry by itself.
  GraphResponse call_with_retries(HttpMethod method, const std::string& path, const std::string& json_body,
                                  const QueryParams& query = {}, int max_retries = 4);

  // The Status of a failed response, with a message that starts with `what` ("creating audience
  // 'x'"). Auth errors are kUnauthenticated (a token) or kPermissionDenied (a permission), and
  // their message names the environment variable to fix. Throttling is kResourceExhausted,
  // network and 5xx failures kUnavailable, and invalid requests kInvalidArgument.
  Status failure_status(const GraphResponse& response, std::string_view what) const;

  const std::string& destination() const noexcept { return destination_; }

 private:
  GraphClient(const MetaSettings& settings, std::string destination, const Logger& logger);

  std::string url(const std::string& path, const QueryParams& query) const;
  HttpResult send_request(const HttpRequest& request, bool fresh_connection);
  std::optional<std::chrono::milliseconds> capped(std::optional<std::chrono::nanoseconds> wait) const;

  const MetaSettings settings_;
  std::string destination_;
  Logger logger_;
  std::string appsecret_proof_;  // Empty without an app secret.
  std::string limiter_key_;
  CurlTransportOptions transport_options_;
  std::unique_ptr<Transport> transport_;
  std::shared_ptr<RateLimiter> limiter_;
  std::shared_ptr<CircuitBreaker> breaker_;
};

// Returns the lowercase hex HMAC-SHA256 of `message` keyed with `key`: Meta's appsecret_proof
// when the key is the app secret and the message the access token.
std::string hmac_sha256_hex(std::string_view key, std::string_view message);

}  // namespace activation::platforms::meta

#endif  // ACTIVATION_PLATFORMS_META_GRAPH_CLIENT_HPP_
