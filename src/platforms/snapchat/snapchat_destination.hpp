// The "snapchat" destination: a first-party audience segment (Snap Audience Match) of Snapchat's
// Marketing API. It finds the segment by id, or finds or creates it by name in an ad account, and
// adds and removes hashed identifiers under Snapchat's schema rules. Each entry names one schema
// (EMAIL_SHA256, PHONE_SHA256 or MOBILE_AD_ID_SHA256), and a request takes at most 100,000
// identifiers.
// Access tokens come from the shared OAuth 2.0 client (refresh-token grant).
// docs/platforms/snapchat.md describes its settings and behaviour.
#ifndef ACTIVATION_PLATFORMS_SNAPCHAT_SNAPCHAT_DESTINATION_HPP_
#define ACTIVATION_PLATFORMS_SNAPCHAT_SNAPCHAT_DESTINATION_HPP_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "activation/backend/destination.hpp"
#include "platforms/common/http_settings.hpp"

namespace activation {
// Declared in activation/platform_errors.hpp and activation/backend/transport.hpp. The header is
// not included here because its RetryPolicy clashes with the one of activation/job_queue.hpp.
struct ResponseClassification;
struct HttpResponse;
}  // namespace activation

namespace activation::platforms::snapchat {

inline constexpr const char* kDefaultBaseUrl = "https://adsapi.snapchat.com/v1";
inline constexpr const char* kDefaultTokenUrl = "https://accounts.snapchat.com/login/oauth2/access_token";
inline constexpr std::size_t kMaxIdentifiersPerRequest = 100'000;
inline constexpr std::size_t kDefaultMembersPerRequest = 10'000;

struct SnapchatSettings {
  std::string ad_account_id;
  // Exactly one of these names the segment: an existing id, or a name to find or create.
  std::string segment_id;
  std::string segment_name;
  std::string segment_description;
  std::int64_t retention_in_days = 9999;  // 9999 keeps members for the segment's lifetime.
  std::size_t max_members_per_request = kDefaultMembersPerRequest;
  std::size_t max_identifiers_per_request = kMaxIdentifiersPerRequest;
  std::string token_url = kDefaultTokenUrl;
  HttpSettings http;

  std::string client_id;
  std::string client_secret;
  std::string refresh_token;
  std::string client_id_variable;
  std::string client_secret_variable;
  std::string refresh_token_variable;
};

// Reads and checks the settings and secrets of `config`. Errors are kInvalidArgument naming
// "destination '<name>': settings.<key>", or the kNotFound of a missing secret.
Result<SnapchatSettings> parse_snapchat_settings(
    const DestinationConfig& config, const std::function<Result<std::string>(std::string_view)>& secret);

// Classifies a Snapchat response by HTTP status, with the code and message of the error envelope
// {"request_status": "ERROR", "error_code", "debug_message"} when there is one. HTTP 200 with
// request_status ERROR is an invalid request.
ResponseClassification classify_snapchat_response(const HttpResponse& response);

// Renders the {"users": [...]} body of `operations`: one entry per schema that has values, each
// value once, in first-seen order.
nlohmann::json render_users(const std::vector<const MemberOperation*>& operations);

Result<std::unique_ptr<DestinationAdapter>> make_snapchat_destination(
    const DestinationConfig& config, const DestinationEnvironment& environment);

}  // namespace activation::platforms::snapchat

#endif  // ACTIVATION_PLATFORMS_SNAPCHAT_SNAPCHAT_DESTINATION_HPP_
