// The "linkedin" destination: a DMP segment (Matched Audiences) of LinkedIn's Marketing API. It
// finds the segment by id, or finds or creates it by name in an ad account, and waits the short
// delay LinkedIn needs after a segment is created. Batches of up to 5,000 ADD and REMOVE elements
// follow, and LinkedIn's per-element statuses become the rows' outcomes. docs/platforms/linkedin.md
// describes its settings and behaviour.
#ifndef ACTIVATION_PLATFORMS_LINKEDIN_LINKEDIN_DESTINATION_HPP_
#define ACTIVATION_PLATFORMS_LINKEDIN_LINKEDIN_DESTINATION_HPP_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "activation/backend/destination.hpp"
#include "platforms/common/http_settings.hpp"

namespace activation {
// Declared in activation/platform_errors.hpp and activation/backend/transport.hpp. The header is
// not included here because its RetryPolicy clashes with the one of activation/job_queue.hpp.
struct ResponseClassification;
struct HttpResponse;
}  // namespace activation

namespace activation::platforms::linkedin {

inline constexpr const char* kDefaultBaseUrl = "https://api.linkedin.com/rest";
inline constexpr const char* kDefaultApiVersion = "202604";
// LinkedIn takes at most this many elements in one BATCH_CREATE request.
inline constexpr std::size_t kMaxElementsPerRequest = 5'000;

struct LinkedInSettings {
  std::string ad_account_id;  // The digits of urn:li:sponsoredAccount:<id>.
  // Exactly one of these names the segment: an existing id, or a name to find or create.
  std::string segment_id;
  std::string segment_name;
  std::string source_platform;  // The partner value LinkedIn issues; needed to create a segment.
  std::string api_version = kDefaultApiVersion;
  std::size_t max_elements_per_request = kMaxElementsPerRequest;
  // How long to wait after creating a segment before the first upload, and how long after creation
  // a "segment not ready" response is still retried.
  std::chrono::milliseconds segment_ready_delay{std::chrono::seconds(10)};
  std::chrono::milliseconds segment_ready_timeout{std::chrono::minutes(3)};
  std::string maid_id_type = "GOOGLE_AID";  // Or "APPLE_IDFA".
  HttpSettings http;

  std::string access_token;
  std::string access_token_variable;
};

// Reads and checks the settings and secrets of `config`. Errors are kInvalidArgument naming
// "destination '<name>': settings.<key>", or the kNotFound of a missing secret.
Result<LinkedInSettings> parse_linkedin_settings(
    const DestinationConfig& config, const std::function<Result<std::string>(std::string_view)>& secret);

// Classifies a LinkedIn response: the HTTP status decides the class, and the error body
// {"status", "serviceErrorCode", "code", "message"} gives the code and message.
ResponseClassification classify_linkedin_response(const HttpResponse& response);

// Renders one element of a BATCH_CREATE request, or null when the operation carries neither a
// user id nor a first and last name, which LinkedIn needs at the least.
nlohmann::json render_element(const MemberOperation& operation, const std::string& maid_id_type);

Result<std::unique_ptr<DestinationAdapter>> make_linkedin_destination(
    const DestinationConfig& config, const DestinationEnvironment& environment);

}  // namespace activation::platforms::linkedin

#endif  // ACTIVATION_PLATFORMS_LINKEDIN_LINKEDIN_DESTINATION_HPP_
