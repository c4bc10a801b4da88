// The "tiktok" destination: a customer-file audience of TikTok's Business API (v1.3), fed through
// the segment API. It finds the audience by id, or finds or creates it by name for an advertiser,
// and sends adds and removes to /segment/mapping/ with a positional id_schema. TikTok returns
// errors as HTTP 200 with a non-zero `code`, which the classifier maps onto the engine's error
// classes. docs/platforms/tiktok.md describes its settings and behaviour.
#ifndef ACTIVATION_PLATFORMS_TIKTOK_TIKTOK_DESTINATION_HPP_
#define ACTIVATION_PLATFORMS_TIKTOK_TIKTOK_DESTINATION_HPP_

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

namespace activation::platforms::tiktok {

inline constexpr const char* kDefaultBaseUrl = "https://business-api.tiktok.com/open_api/v1.3";
// TikTok documents no cap per mapping request; 1,000 members is what its connectors send.
inline constexpr std::size_t kDefaultMembersPerRequest = 1'000;
inline constexpr std::size_t kMaxMembersPerRequest = 10'000;
inline constexpr std::size_t kMaxAudienceNameChars = 128;

struct TikTokSettings {
  std::string advertiser_id;
  // Exactly one of these names the audience: an existing id, or a name to find or create.
  std::string audience_id;
  std::string audience_name;
  std::size_t max_members_per_request = kDefaultMembersPerRequest;
  std::string maid_schema = "AAID_SHA256";  // Or "IDFA_SHA256".
  HttpSettings http;

  std::string access_token;
  std::string access_token_variable;
};

// Reads and checks the settings and secrets of `config`. Errors are kInvalidArgument naming
// "destination '<name>': settings.<key>", or the kNotFound of a missing secret.
Result<TikTokSettings> parse_tiktok_settings(
    const DestinationConfig& config, const std::function<Result<std::string>(std::string_view)>& secret);

// Classifies a TikTok response. HTTP 200 with `code` 0 is a success. Other codes: 40100, 40132
// and 40133 are throttled; 40102, 40104 and 40105 are token errors and 40001 and 40003 permission
// errors (auth); 40200 to 40202, 50000 to 50002 and 51000 to 51003 are transient (platform_5xx);
// every other code is an invalid request. Other HTTP statuses are classified by status.
ResponseClassification classify_tiktok_response(const HttpResponse& response);

// The id_schema of a run: EMAIL_SHA256, PHONE_SHA256 and the MAID schema, for the mapped fields.
std::vector<std::string> id_schema_of(const std::vector<std::pair<Field, int>>& field_slots,
                                      const std::string& maid_schema);

// Appends the batch_data rows of `operation` for `schema` to `rows`: one row per value of the
// field with the most values, each row holding {"id", "audience_ids"} or {} per schema position.
// Returns the number of rows appended (0 when the member has no identifier the schema takes).
std::size_t append_rows(const MemberOperation& operation, const std::vector<std::string>& schema,
                        const std::string& maid_schema, const std::string& audience_id, nlohmann::json& rows);

Result<std::unique_ptr<DestinationAdapter>> make_tiktok_destination(
    const DestinationConfig& config, const DestinationEnvironment& environment);

}  // namespace activation::platforms::tiktok

#endif  // ACTIVATION_PLATFORMS_TIKTOK_TIKTOK_DESTINATION_HPP_
