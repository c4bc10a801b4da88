// The settings of the "google" (Data Manager API) and "google_ads" (Google Ads API) destinations,
// read from a configuration's `settings` object and secrets. docs/platforms/google.md lists every
// key with its default.
#ifndef ACTIVATION_PLATFORMS_GOOGLE_GOOGLE_SETTINGS_HPP_
#define ACTIVATION_PLATFORMS_GOOGLE_GOOGLE_SETTINGS_HPP_

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "activation/circuit_breaker.hpp"
#include "activation/config.hpp"
#include "activation/rate_limiter.hpp"
#include "activation/status.hpp"

namespace activation::platforms::google {

enum class GoogleApi : int { kDataManager = 0, kAds };

inline constexpr const char* kDefaultTokenUrl = "https://oauth2.googleapis.com/token";
inline constexpr const char* kDataManagerBaseUrl = "https://datamanager.googleapis.com";
inline constexpr const char* kDataManagerVersion = "v1";
inline constexpr const char* kAdsBaseUrl = "https://googleads.googleapis.com";
inline constexpr const char* kAdsVersion = "v22";
// The Data Manager API takes at most 10,000 audience members per request.
inline constexpr std::size_t kMaxDataManagerMembers = 10'000;
// The Google Ads API takes at most 100,000 user identifiers per addOperations request. Google's
// API team recommends about 10,000, which is the default number of operations per request.
inline constexpr std::size_t kMaxAdsIdentifiersPerRequest = 100'000;
inline constexpr std::size_t kDefaultAdsOperationsPerRequest = 10'000;

// The kind of key a Customer Match list matches on. A list takes one kind only.
enum class UploadKeyType : int { kContactInfo = 0, kCrmId, kMobileAdvertisingId };

std::string_view upload_key_type_name(UploadKeyType type) noexcept;

// Consent as Google takes it: "GRANTED", "DENIED" or "UNSPECIFIED". Empty sends no consent.
struct Consent {
  std::string ad_user_data;
  std::string ad_personalization;

  bool empty() const noexcept { return ad_user_data.empty() && ad_personalization.empty(); }
};

// When the Data Manager adapter reads the processing status of its requests.
enum class StatusPolling : int {
  kAtFinish = 0,  // finish() waits until every request of the run is processed.
  kEachBatch,     // send() waits for its own requests, so a failed request rejects its rows.
  kOff,           // Never; the run ends once Google accepted every request.
};

struct GoogleSettings {
  GoogleApi api = GoogleApi::kDataManager;
  std::string customer_id;                  // The operating account: digits only.
  std::string login_customer_id;            // A manager account acting for it; digits only, or empty.
  std::string account_type = "GOOGLE_ADS";  // Data Manager's operatingAccount.accountType.
  // The Customer Match list. The Ads API adapter may create it by name instead.
  std::string user_list_id;
  std::string user_list_name;
  std::string user_list_description;
  std::int64_t membership_life_span_days = 540;
  UploadKeyType upload_key_type = UploadKeyType::kContactInfo;
  Consent consent;
  bool accept_terms_of_service = true;

  std::string base_url;  // Without a trailing slash.
  std::string api_version;
  std::string token_url = kDefaultTokenUrl;
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  // Data Manager: audience members per request. Ads API: operations per addOperations request.
  std::size_t max_members_per_request = kMaxDataManagerMembers;
  std::chrono::milliseconds max_throttle_wait{std::chrono::minutes(15)};
  std::optional<RateLimitPolicy> rate_limit;        // nullopt: the platform's default.
  std::optional<RateLimitPolicy> daily_rate_limit;  // nullopt: the platform's daily default.
  CircuitBreakerOptions circuit_breaker;
  std::string ca_file;
  std::string proxy;
  std::string no_proxy;

  // Polling of Data Manager requests and Ads API jobs: the first wait, doubled up to the maximum,
  // and the time after which polling gives up.
  StatusPolling status_polling = StatusPolling::kAtFinish;
  std::chrono::milliseconds poll_interval{std::chrono::seconds(30)};
  std::chrono::milliseconds poll_max_interval{std::chrono::minutes(10)};
  std::chrono::milliseconds poll_timeout{std::chrono::hours(6)};
  // Data Manager: unprocessed requests kept in the session state before send() polls the oldest.
  std::size_t max_pending_requests = 100;

  // Secrets, with their environment variables for messages that name what to fix.
  std::string client_id;
  std::string client_secret;
  std::string refresh_token;
  std::string developer_token;  // Ads API only; optional since Google stopped requiring it.
  std::string client_id_variable;
  std::string client_secret_variable;
  std::string refresh_token_variable;
};

// Reads and checks the settings and secrets of `config` for `api`. Errors are kInvalidArgument
// naming "destination '<name>': settings.<key>" and what was expected, or the kNotFound of a
// missing secret.
Result<GoogleSettings> parse_google_settings(
    const DestinationConfig& config, GoogleApi api,
    const std::function<Result<std::string>(std::string_view)>& secret);

}  // namespace activation::platforms::google

#endif  // ACTIVATION_PLATFORMS_GOOGLE_GOOGLE_SETTINGS_HPP_
