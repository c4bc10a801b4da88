// Classification of Meta answers. The envelopes have the shape and the codes Meta's Graph API
// returns (HTTP 400 for throttling and token errors, usage headers as JSON text).
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "activation/platform_errors.hpp"

using activation::PlatformErrorClass;
using activation::HttpResponse;
using activation::ResponseClassification;
using activation::RetryAction;
using activation::RetryBudget;
using activation::RequestRetryPolicy;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

namespace {

HttpResponse meta_answer(int status, const std::string& body, activation::HttpHeaders headers = {}) {
  HttpResponse response;
  response.status = status;
  response.body = body;
  response.headers = std::move(headers);
  response.headers.push_back({"Content-Type", "application/json; charset=UTF-8"});
  return response;
}

ResponseClassification classify(int status, const std::string& body, activation::HttpHeaders headers = {}) {
  return activation::classify_meta_response(meta_answer(status, body, std::move(headers)));
}

}  // namespace

TEST_CASE("meta custom audience quota error is throttled") {
  auto result = classify(
      400,
      R"({"error":{"message":"(#80003) Too many calls to this ad account.","type":"OAuthException",)"
      R"("code":80003,"error_subcode":2446079,"is_transient":true,"fbtrace_id":"AbC123"}})",
      {{"X-Business-Use-Case-Usage",
        R"({"120330000000000":[{"type":"custom_audience","call_count":100,"total_cputime":12,"total_time":30,)"
        R"("estimated_time_to_regain_access":5,"ads_api_access_tier":"standard_access"}]})"}});
  CHECK(result.error_class == PlatformErrorClass::kThrottled);
  CHECK(result.code == 80003);
  CHECK(result.subcode == 2446079);
  CHECK(result.trace_id == "AbC123");
  CHECK(result.is_transient);
  REQUIRE(result.retry_after);
  CHECK(*result.retry_after == minutes(5));
  REQUIRE(result.usage_percent);
  CHECK(*result.usage_percent == 100.0);
  CHECK(result.summary() ==
        "throttled: (#80003) Too many calls to this ad account. "
        "[HTTP 400, subcode 2446079, fbtrace_id AbC123, retry after 300 s]");
}

TEST_CASE("meta app and user limits are throttled") {
  auto app = classify(400,
                      R"({"error":{"message":"(#4) App request limit reached","type":"OAuthException",)"
                      R"("code":4,"error_subcode":1504022,"is_transient":true,"fbtrace_id":"A1"}})",
                      {{"X-App-Usage", R"({"call_count":100,"total_cputime":25,"total_time":25})"}});
  CHECK(app.error_class == PlatformErrorClass::kThrottled);
  CHECK_FALSE(app.retry_after);  // X-App-Usage names no time.
  CHECK(*app.usage_percent == 100.0);

  auto user =
      classify(400, R"({"error":{"message":"(#17) User request limit reached","type":"OAuthException",)"
                    R"("code":17,"error_subcode":2446079,"fbtrace_id":"A2"}})");
  CHECK(user.error_class == PlatformErrorClass::kThrottled);

  auto account = classify(400, R"({"error":{"message":"(#613) Rate limit exceeded for this API",)"
                               R"("type":"OAuthException","code":613,"error_subcode":1487742}})");
  CHECK(account.error_class == PlatformErrorClass::kThrottled);

  auto insights = classify(400, R"({"error":{"message":"(#80000) too many calls","code":80000}})");
  CHECK(insights.error_class == PlatformErrorClass::kThrottled);
}

TEST_CASE("meta expired token is auth") {
  auto result = classify(400, R"({"error":{"message":"Error validating access token: the session expired )"
                              R"(on 1 January 2026.","type":"OAuthException","code":190,)"
                              R"("error_subcode":463,"fbtrace_id":"B7"}})");
  CHECK(result.error_class == PlatformErrorClass::kAuth);
  CHECK(result.code == 190);
  CHECK(result.subcode == 463);
  CHECK(result.error_type == "OAuthException");

  RetryBudget budget(RequestRetryPolicy{}, 1);
  auto decision = budget.next(result);
  CHECK(decision.action == RetryAction::kPause);
  CHECK_FALSE(decision.counted);
  CHECK(decision.reason.find("replace its access token") != std::string::npos);
  CHECK(decision.reason.find("(#190)") != std::string::npos);
}

TEST_CASE("meta permission errors are auth") {
  for (int code : {10, 200, 294, 368, 2655, 102}) {
    CAPTURE(code);
    auto result =
        classify(400, R"({"error":{"message":"missing permission","type":"OAuthException","code":)" +
                          std::to_string(code) + "}}");
    CHECK(result.error_class == PlatformErrorClass::kAuth);
  }
  auto not_linked = classify(403, R"({"error":{"message":"(#200) Ad account not linked","code":200,)"
                                  R"("error_subcode":1870050}})");
  CHECK(not_linked.error_class == PlatformErrorClass::kAuth);
}

TEST_CASE("meta validation errors are invalid requests") {
  auto missing = classify(400, R"({"error":{"message":"Unsupported post request: object 1 does not )"
                               R"(exist","type":"GraphMethodException","code":100,"error_subcode":33,)"
                               R"("fbtrace_id":"C1"}})");
  CHECK(missing.error_class == PlatformErrorClass::kInvalidRequest);

  auto data_source = classify(400, R"({"error":{"message":"(#2650) Failed to update the custom audience",)"
                                   R"("type":"OAuthException","code":2650}})");
  CHECK(data_source.error_class == PlatformErrorClass::kInvalidRequest);

  auto no_first_batch = classify(400, R"({"error":{"message":"(#2650) first batch not detected","code":2650,)"
                                      R"("error_subcode":1870147}})");
  CHECK(no_first_batch.error_class == PlatformErrorClass::kInvalidRequest);

  auto deprecated = classify(400, R"({"error":{"message":"(#2635) deprecated version","code":2635}})");
  CHECK(deprecated.error_class == PlatformErrorClass::kInvalidRequest);

  RetryBudget budget(RequestRetryPolicy{}, 1);
  auto decision = budget.next(missing);
  CHECK(decision.action == RetryAction::kFail);
  CHECK(decision.reason ==
        "invalid_request: (#100) Unsupported post request: object 1 does not exist "
        "[HTTP 400, subcode 33, fbtrace_id C1]");
}

TEST_CASE("meta replace in progress waits like throttling") {
  auto result = classify(400, R"({"error":{"message":"(#2650) audience update in progress","code":2650,)"
                              R"("error_subcode":1870145}})");
  CHECK(result.error_class == PlatformErrorClass::kThrottled);
}

TEST_CASE("meta server errors are platform 5xx") {
  auto unknown = classify(500, R"({"error":{"message":"An unknown error occurred","type":"OAuthException",)"
                               R"("code":1,"error_subcode":99,"is_transient":false}})");
  CHECK(unknown.error_class == PlatformErrorClass::kPlatform5xx);

  auto unavailable = classify(503, R"({"error":{"message":"(#2) Service temporarily unavailable",)"
                                   R"("type":"OAuthException","code":2,"is_transient":true}})");
  CHECK(unavailable.error_class == PlatformErrorClass::kPlatform5xx);

  auto alias = classify(400, R"({"error":{"message":"(#803) Alias users does not exist",)"
                             R"("code":803}})");
  CHECK(alias.error_class == PlatformErrorClass::kPlatform5xx);

  auto transient = classify(400, R"({"error":{"message":"try later","code":123456,"is_transient":true}})");
  CHECK(transient.error_class == PlatformErrorClass::kPlatform5xx);
}

TEST_CASE("meta html error page is platform 5xx") {
  HttpResponse page;
  page.status = 502;
  page.headers = {{"Content-Type", "text/html; charset=utf-8"}};
  page.body = "<!DOCTYPE html><html><head><title>Platform | Error</title></head><body>Sorry</body></html>";
  auto result = activation::classify_meta_response(page);
  CHECK(result.error_class == PlatformErrorClass::kPlatform5xx);
  CHECK(result.message ==
        "HTTP 502 with a 90-byte body of type text/html; charset=utf-8 instead of a JSON response "
        "(page title \"Platform | Error\")");
}

TEST_CASE("meta success is not an error") {
  auto result = classify(200,
                         R"({"audience_id":"1","session_id":"9","num_received":10,"num_invalid_entries":0,)"
                         R"("invalid_entry_samples":{}})",
                         {{"X-App-Usage", R"({"call_count":12,"total_cputime":3,"total_time":4})"}});
  CHECK(result.ok());
  CHECK(*result.usage_percent == 12.0);
  CHECK_FALSE(result.retry_after);
}

TEST_CASE("meta message secrets are redacted") {
  auto result =
      classify(400, R"({"error":{"message":"bad call https://graph.facebook.com/v24.0/me?access_token=)"
                    R"(EAAB123secret&fields=id","code":100}})");
  CHECK(result.message == "bad call https://graph.facebook.com/v24.0/me?access_token=REDACTED&fields=id");
}

TEST_CASE("usage headers report the highest figure") {
  activation::HttpHeaders headers = {
      {"x-app-usage", R"({"call_count":20,"total_cputime":91,"total_time":5})"},
      {"X-Ad-Account-Usage",
       R"({"acc_id_util_pct":100,"reset_time_duration":120,"ads_api_access_tier":"x"})"},
      {"X-Business-Use-Case-Usage",
       R"({"1":[{"type":"ads_management","call_count":3,"estimated_time_to_regain_access":0}],)"
       R"("2":[{"type":"custom_audience","call_count":50,"estimated_time_to_regain_access":1}]})"}};
  auto usage = activation::parse_meta_usage(headers);
  REQUIRE(usage.max_percent);
  CHECK(*usage.max_percent == 100.0);
  REQUIRE(usage.regain_after);
  CHECK(*usage.regain_after == seconds(120));

  auto empty = activation::parse_meta_usage({});
  CHECK_FALSE(empty.max_percent);  // Absent headers mean unknown.
  auto malformed = activation::parse_meta_usage({{"X-App-Usage", "not json"}});
  CHECK_FALSE(malformed.max_percent);
}

TEST_CASE("retry after accepts seconds and http dates") {
  auto now = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  CHECK(activation::parse_retry_after("120", now) == seconds(120));
  CHECK(activation::parse_retry_after(" 7 ", now) == seconds(7));
  CHECK(activation::parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now) == seconds(60));
  CHECK(activation::parse_retry_after("Sun, 06 Nov 1994 08:40:00 GMT", now) == nanoseconds(0));
  CHECK_FALSE(activation::parse_retry_after("soon", now));
  CHECK_FALSE(activation::parse_retry_after("", now));

  HttpResponse busy;
  busy.status = 429;
  busy.headers = {{"Retry-After", "30"}};
  auto result = activation::classify_http_response(busy);
  CHECK(result.error_class == PlatformErrorClass::kThrottled);
  CHECK(result.retry_after == seconds(30));
}

TEST_CASE("transport errors are network errors") {
  activation::TransportError dropped{activation::TransportErrorKind::kConnectionDropped,
                                     "Empty reply from server"};
  CHECK(activation::classify_transport_error(dropped).error_class == PlatformErrorClass::kNetwork);
  activation::TransportError bad_url{activation::TransportErrorKind::kInvalidRequest, "URL using bad format"};
  CHECK(activation::classify_transport_error(bad_url).error_class == PlatformErrorClass::kInvalidRequest);
  CHECK(activation::counts_against_circuit(PlatformErrorClass::kNetwork));
  CHECK(activation::counts_against_circuit(PlatformErrorClass::kPlatform5xx));
  CHECK_FALSE(activation::counts_against_circuit(PlatformErrorClass::kThrottled));
  CHECK_FALSE(activation::counts_against_circuit(PlatformErrorClass::kInvalidRequest));
}

TEST_CASE("full jitter stays within the doubling ceiling") {
  RequestRetryPolicy policy;
  policy.base_delay = seconds(1);
  policy.max_delay = seconds(30);
  CHECK(activation::full_jitter_delay(policy, 1, 0.999) < seconds(1));
  CHECK(activation::full_jitter_delay(policy, 3, 0.5) == seconds(2));
  CHECK(activation::full_jitter_delay(policy, 10, 0.5) == seconds(15));  // Capped at 30 s.
  CHECK(activation::full_jitter_delay(policy, 1000, 1.0) == seconds(30));
  CHECK(activation::full_jitter_delay(policy, 2, 0.0) == nanoseconds(0));
}

TEST_CASE("throttled waits do not use the retry budget") {
  RequestRetryPolicy policy;
  policy.max_retries = 3;
  RetryBudget budget(policy, 7);
  auto throttled = classify(400, R"({"error":{"message":"(#80003) too many calls","code":80003}})",
                            {{"Retry-After", "2"}});
  for (int i = 0; i < 50; ++i) {
    auto decision = budget.next(throttled);
    REQUIRE(decision.action == RetryAction::kRetry);
    CHECK(decision.delay == seconds(2));
    CHECK_FALSE(decision.counted);
  }
  CHECK(budget.retries_used() == 0);
  CHECK(budget.throttled_wait() == seconds(100));

  activation::TransportError dropped{activation::TransportErrorKind::kConnectionDropped,
                                     "Empty reply from server"};
  auto network = activation::classify_transport_error(dropped);
  for (int i = 0; i < 3; ++i) {
    auto decision = budget.next(network);
    CHECK(decision.action == RetryAction::kRetry);
    CHECK(decision.counted);
    CHECK(decision.delay <= policy.base_delay * (1 << i));
  }
  auto last = budget.next(network);
  CHECK(last.action == RetryAction::kFail);
  CHECK(last.reason == "gave up after 3 retries: network: Empty reply from server");
}

TEST_CASE("throttled default wait and total cap") {
  RequestRetryPolicy policy;
  policy.default_throttle_wait = seconds(60);
  policy.max_total_throttle_wait = minutes(3);
  RetryBudget budget(policy, 7);
  auto throttled = classify(400, R"({"error":{"message":"(#4) limit","code":4}})");
  for (int i = 0; i < 3; ++i) CHECK(budget.next(throttled).delay == seconds(60));
  auto gave_up = budget.next(throttled);
  CHECK(gave_up.action == RetryAction::kFail);
  CHECK(gave_up.reason.rfind("throttled for 180 s in total, more than the 180 s allowed", 0) == 0);
}

TEST_CASE("server retry after lengthens the backoff") {
  RequestRetryPolicy policy;
  RetryBudget budget(policy, 3);
  HttpResponse unavailable =
      meta_answer(503, R"({"error":{"message":"(#2) unavailable","code":2}})", {{"Retry-After", "45"}});
  auto decision = budget.next(activation::classify_meta_response(unavailable));
  CHECK(decision.action == RetryAction::kRetry);
  CHECK(decision.delay == seconds(45));
  CHECK(decision.counted);
}
