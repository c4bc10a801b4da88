// An OAuth 2.0 client for the refresh-token grant (RFC 6749, section 6), shared by the adapters of
// platforms that issue short-lived access tokens (Google, Snapchat).
//
// The client trades the refresh token for an access token at the token endpoint and caches it. It
// fetches a new one when the cached one is within `refresh_margin` of its expiry. When the
// platform's API rejects a token, call invalidate() and then access_token() once more. A refresh
// token that the endpoint rejects (`invalid_grant`) or client credentials it rejects
// (`invalid_client`, `unauthorized_client`) give kUnauthenticated with a message that names the
// environment variable to fix. The client never retries those: the caller ends the destination's
// run, which pauses it until a person fixes the secret.
//
// Secrets: the client never logs the refresh token, the client secret or an access token, and its
// error messages quote only the endpoint's `error` and `error_description`.
//
// Thread safety: every method may be called from any thread. Concurrent callers that find no valid
// token wait for one request to the token endpoint instead of each sending their own.
#ifndef ACTIVATION_PLATFORMS_OAUTH_OAUTH_CLIENT_HPP_
#define ACTIVATION_PLATFORMS_OAUTH_OAUTH_CLIENT_HPP_

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "activation/backend/transport.hpp"
#include "activation/clock.hpp"
#include "activation/log.hpp"
#include "activation/status.hpp"

namespace activation::platforms::oauth {

struct OAuthSettings {
  // The token endpoint, such as "https://oauth2.googleapis.com/token".
  std::string token_url;
  std::string client_id;
  std::string client_secret;
  std::string refresh_token;
  // The environment variables the three secrets came from, quoted in error messages.
  std::string client_id_variable;
  std::string client_secret_variable;
  std::string refresh_token_variable;
  // Sent as the `scope` parameter when not empty. Google ignores it on a refresh.
  std::string scope;

  // The platform ("Google") and destination names, for messages and logs.
  std::string platform = "the platform";
  std::string destination;

  // A cached token is replaced when it expires within this margin, so that a request never
  // leaves with a token that expires on the way.
  std::chrono::seconds refresh_margin{std::chrono::seconds(60)};
  // The lifetime assumed when the endpoint returns no `expires_in`.
  std::chrono::seconds default_lifetime{std::chrono::seconds(3600)};
  // Transport settings of the token requests (timeouts, CA file, proxy).
  CurlTransportOptions transport;
  // Measures token lifetimes. Null uses real_clock().
  std::shared_ptr<Clock> clock;
};

// One access token as the endpoint issued it.
struct AccessToken {
  std::string value;
  Clock::TimePoint expires_at;
};

class OAuthClient {
 public:
  // Checks the settings and creates the transport; sends nothing. Fails with kInvalidArgument for
  // an empty token URL, client id, client secret or refresh token, or a URL that is not http(s).
  static Result<std::unique_ptr<OAuthClient>> create(OAuthSettings settings, const Logger& logger);

  // Returns the cached access token, or fetches a new one when none is cached or the cached one
  // expires within the refresh margin. Errors:
  // - kUnauthenticated: the endpoint rejected the refresh token or the client credentials. The
  //   message names the environment variable to fix. Do not retry.
  // - kResourceExhausted: the endpoint throttled the request (HTTP 429).
  // - kUnavailable or kDeadlineExceeded: no response, or a 5xx. Retrying later may succeed.
  // - kInvalidArgument: any other rejection, or a response without an access token.
  Result<std::string> access_token();

  // Drops the cached token when it is still `rejected_token`, so the next access_token() fetches a
  // new one. Returns true when it dropped the token, false when another caller had replaced it
  // already (then access_token() returns that newer token without a request).
  bool invalidate(std::string_view rejected_token);

  // The number of successful token requests so far, for logs and tests.
  std::int64_t refresh_count() const;

  const OAuthSettings& settings() const noexcept { return settings_; }

 private:
  OAuthClient(OAuthSettings settings, const Logger& logger, std::unique_ptr<Transport> transport);

  Result<AccessToken> request_token();
  Status endpoint_failure(const HttpResponse& response) const;

  const OAuthSettings settings_;
  Logger logger_;
  std::unique_ptr<Transport> transport_;

  mutable std::mutex mutex_;
  std::optional<AccessToken> cached_;
  std::int64_t refresh_count_ = 0;
};

// Returns the process's client for (destination, token URL, client id, refresh token), creating it
// with `settings` on first use, so that the runs of one destination share one cached access token.
// A later caller's other settings (margin, transport) are ignored. Fails like
// OAuthClient::create().
Result<std::shared_ptr<OAuthClient>> shared_oauth_client(const OAuthSettings& settings, const Logger& logger);

}  // namespace activation::platforms::oauth

#endif  // ACTIVATION_PLATFORMS_OAUTH_OAUTH_CLIENT_HPP_
