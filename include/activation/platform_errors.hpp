// Error classes of platform responses, and the retry decisions that follow from them.
//
// Every failed exchange with a platform falls in one class, and the class alone decides what
// happens next:
//
// | class           | meaning                                   | what the caller does |
// |-----------------|-------------------------------------------|---------------------------------------------|
// | throttled       | over a quota, or the platform is busy     | waits as told; the retry budget is
// untouched | | auth            | token invalid or expired, permission gone | pauses the destination; no
// retry             | | network         | no complete response came back            | retries with backoff |
// | platform_5xx    | the platform failed on its side           | retries with backoff | | invalid_request |
// the platform rejected this request        | rejects the batch's rows with the message   |
//
// Thread safety: the functions are pure; a RetryBudget is a value owned by one request's sender.
#ifndef ACTIVATION_PLATFORM_ERRORS_HPP_
#define ACTIVATION_PLATFORM_ERRORS_HPP_

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "activation/backend/transport.hpp"
#include "activation/export.hpp"
#include "activation/rate_limiter.hpp"
#include "activation/status.hpp"

namespace activation {

enum class PlatformErrorClass : int { kNone = 0, kThrottled, kAuth, kNetwork, kPlatform5xx, kInvalidRequest };

// Returns "none", "throttled", "auth", "network", "platform_5xx" or "invalid_request".
ACT_EXPORT std::string_view platform_error_class_name(PlatformErrorClass error_class) noexcept;

// Returns true for the classes that show the platform is unhealthy (network and platform_5xx),
// which are the ones a circuit breaker should count.
ACT_EXPORT bool counts_against_circuit(PlatformErrorClass error_class) noexcept;

// What a platform's response means, read from its status, headers and error body.
struct ResponseClassification {
  PlatformErrorClass error_class = PlatformErrorClass::kNone;
  int http_status = 0;               // 0 when no response came back.
  std::optional<std::int64_t> code;  // The platform's error code (Meta's "code").
  std::optional<std::int64_t> subcode;
  std::string error_type;     // Meta's "type", such as "OAuthException".
  std::string message;        // The platform's message, or a description of the failure.
  std::string user_message;   // Meta's "error_user_msg", when present.
  std::string trace_id;       // Meta's "fbtrace_id", to quote to the platform's support.
  bool is_transient = false;  // Meta's "is_transient".
  // How long the platform asked to wait: Retry-After, or the time to regain access that the
  // usage headers report.
  std::optional<std::chrono::nanoseconds> retry_after;
  // The highest quota usage the usage headers report, in percent (0 to 100, or more).
  std::optional<double> usage_percent;

  bool ok() const noexcept { return error_class == PlatformErrorClass::kNone; }

  // Returns one line for logs and row reasons, such as
  // "throttled: (#80003) There have been too many calls ... [HTTP 400, fbtrace_id A1]".
  std::string summary() const;
};

// Quota usage that Meta reports in X-App-Usage, X-Ad-Account-Usage and
// X-Business-Use-Case-Usage. Absent headers leave the fields empty: that means unknown, not zero.
struct MetaUsage {
  std::optional<double> max_percent;
  std::optional<std::chrono::nanoseconds> regain_after;  // Largest estimated_time_to_regain_access.
};

ACT_EXPORT MetaUsage parse_meta_usage(const HttpHeaders& headers);

// Parses a Retry-After value: delay seconds, or an HTTP date compared with `now`. Returns nullopt
// for a value that is neither; a date in the past gives zero.
ACT_EXPORT std::optional<std::chrono::nanoseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// Classifies a response of Meta's Graph API by its error envelope first (Meta sends throttling and
// token errors as HTTP 400), then by its HTTP status. Secrets quoted in the message are redacted.
ACT_EXPORT ResponseClassification
classify_meta_response(const HttpResponse& response,
                       std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// Classifies a response by HTTP status and Retry-After only, for platforms without a specific
// classifier: 429 throttled, 401 and 403 auth, 408 network, 5xx platform_5xx, other 4xx and 3xx
// invalid_request, 2xx none.
ACT_EXPORT ResponseClassification
classify_http_response(const HttpResponse& response,
                       std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// Classifies a failed exchange: an unusable request is invalid_request, every other kind network.
ACT_EXPORT ResponseClassification classify_transport_error(const TransportError& error);

// Converts a classification into feedback for the account's rate limiter.
ACT_EXPORT RateFeedback rate_feedback(const ResponseClassification& classification);

// The retry rules of one platform request inside a batch. The queue's RetryPolicy (job_queue.hpp)
// retries whole jobs.
struct RequestRetryPolicy {
  int max_retries = 5;  // Retries after network and platform_5xx failures, per request.
  std::chrono::nanoseconds base_delay = std::chrono::seconds(1);
  std::chrono::nanoseconds max_delay = std::chrono::minutes(2);
  // The wait after a throttled response that names no time.
  std::chrono::nanoseconds default_throttle_wait = std::chrono::seconds(60);
  // The maximum of one throttled wait. Meta reports the time to regain access in whole minutes,
  // so a shorter cap followed by a probe often resumes sooner.
  std::chrono::nanoseconds max_throttle_wait = std::chrono::minutes(15);
  // After this much throttled waiting for one request the caller gives up on it.
  std::chrono::nanoseconds max_total_throttle_wait = std::chrono::hours(6);
};

// Returns OK, or kInvalidArgument naming the field that is out of range.
ACT_EXPORT Status validate_retry_policy(const RequestRetryPolicy& policy);

enum class RetryAction : int {
  kRetry = 0,  // Send the request again after `delay`.
  kPause,      // Stop sending to this destination until a person fixes the cause.
  kFail,       // Give up on this request; its rows are rejected or dead-lettered with `reason`.
};

struct RetryDecision {
  RetryAction action = RetryAction::kFail;
  std::chrono::nanoseconds delay{0};
  bool counted = false;  // Whether this retry used up part of the retry budget.
  std::string reason;
};

// Returns the full-jitter backoff before retry number `retry` (1 for the first): a uniform draw
// from zero to min(max_delay, base_delay * 2^(retry - 1)). `uniform` is a draw from [0, 1).
ACT_EXPORT std::chrono::nanoseconds full_jitter_delay(const RequestRetryPolicy& policy, int retry,
                                                      double uniform) noexcept;

// The retry state of one request: decides, failure by failure, whether and when to send again.
// Throttled waits never use up the budget, so a request that is only ever throttled keeps waiting
// (up to max_total_throttle_wait) instead of failing.
//
// Thread safety: not thread-safe; one object per request.
class ACT_EXPORT RetryBudget {
 public:
  // REQUIRES: validate_retry_policy(policy) is OK. `seed` makes the jitter repeatable.
  explicit RetryBudget(RequestRetryPolicy policy = {}, std::uint64_t seed = std::random_device{}());

  RetryDecision next(const ResponseClassification& failure);

  int retries_used() const noexcept { return retries_used_; }
  std::chrono::nanoseconds throttled_wait() const noexcept { return throttled_wait_; }

 private:
  RequestRetryPolicy policy_;
  std::mt19937_64 random_;
  int retries_used_ = 0;
  std::chrono::nanoseconds throttled_wait_{0};
};

}  // namespace activation

#endif  // ACTIVATION_PLATFORM_ERRORS_HPP_
