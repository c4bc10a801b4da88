// The emulator of an OAuth 2.0 token endpoint (refresh-token grant) at /oauth2/token, shared by
// the platforms whose APIs take short-lived bearer tokens (Google, Snapchat). It issues access
// tokens, expires them after a lifetime or a number of uses, and rejects revoked refresh tokens
// with `invalid_grant`. Platform emulators call check_access_token() on each request.
//
// Control endpoints: POST /__inspect/oauth/revoke {"refresh_token": "..."} revokes a refresh token
// and the access tokens issued for it; POST /__inspect/oauth/expire expires every issued access
// token at once.
#ifndef ACTIVATION_PLATFORM_SERVER_OAUTH_EMULATOR_HPP_
#define ACTIVATION_PLATFORM_SERVER_OAUTH_EMULATOR_HPP_

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "server_core.hpp"

namespace platform_server {

struct OAuthOptions {
  std::chrono::seconds token_lifetime{3599};  // The expires_in of issued access tokens.
  std::int64_t expire_after_uses = 0;  // An access token expires after this many API requests; 0 is off.
  std::set<std::string> revoked_refresh_tokens;
  std::map<std::string, std::string> clients;  // Client id -> secret; empty accepts any client.
};

enum class TokenCheck { kValid, kMissing, kUnknown, kExpired, kRevoked };

// Thread safety: one mutex serializes the token table.
class OAuthEmulator final : public PlatformEmulator {
 public:
  OAuthEmulator(ServerCore& core, OAuthOptions options);

  std::string name() const override { return "oauth"; }
  void register_routes(httplib::Server& server) override;
  Json inspect_audiences() const override { return Json{{"audiences", Json::array()}}; }
  Json inspect_audience(const std::string&, bool) const override { return nullptr; }
  Json stats() const override;
  void reset() override;

  // Checks the bearer token of an API request and counts one use of it.
  TokenCheck check_access_token(const std::string& authorization_header);

 private:
  struct Issued {
    std::string refresh_token;
    std::chrono::steady_clock::time_point expires_at;
    std::int64_t uses = 0;
    bool expired = false;
  };

  void token(const httplib::Request& request, httplib::Response& response);

  ServerCore& core_;
  const OAuthOptions initial_;
  mutable std::mutex mutex_;
  OAuthOptions options_;
  std::map<std::string, Issued> issued_;  // Access token -> its record.
  std::int64_t next_token_ = 1;
  std::int64_t refreshes_ = 0;
  std::int64_t invalid_grants_ = 0;
  std::int64_t invalid_clients_ = 0;
  std::int64_t expired_rejections_ = 0;
};

}  // namespace platform_server

#endif  // ACTIVATION_PLATFORM_SERVER_OAUTH_EMULATOR_HPP_
