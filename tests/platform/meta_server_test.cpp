// The Meta emulator, started as a real process on loopback and driven through the curl transport.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "activation/platform_errors.hpp"
#include "activation/rate_limiter.hpp"
#include "platform/meta_client.hpp"
#include "platform/server_process.hpp"

using activation::PlatformErrorClass;
using activation::HttpMethod;
using activation::HttpRequest;
using activation::TransportErrorKind;
using activation::testing::body_of;
using activation::testing::form_encode;
using activation::testing::hashed_row;
using activation::testing::hmac_sha256_of;
using activation::testing::Json;
using activation::testing::MetaClient;
using activation::testing::ServerProcess;
using activation::testing::session;
using activation::testing::sha256_of;

namespace {

const std::vector<std::string> kBasicArguments = {"--token", "test-token"};

Json rows_for(int first, int count) {
  Json rows = Json::array();
  for (int i = first; i < first + count; ++i) {
    rows.push_back(
        hashed_row("member" + std::to_string(i) + "@example.com", std::to_string(15550000000 + i)));
  }
  return rows;
}

}  // namespace

TEST_CASE("meta server creates, lists and reads audiences") {
  ServerProcess server(kBasicArguments);
  MetaClient client(server);

  std::string first = client.create_audience("act_100", "Loyal customers");
  std::string second = client.create_audience("act_100", "Lapsed customers");
  CHECK(first != second);

  auto again = client.send(HttpMethod::kPost, "/act_100/customaudiences",
                           Json{{"name", "Loyal customers"},
                                {"subtype", "CUSTOM"},
                                {"customer_file_source", "USER_PROVIDED_ONLY"},
                                {"enable_fetch_or_create", true}});
  CHECK(body_of(again)["id"] == first);

  auto listed = body_of(client.get("/act_100/customaudiences?fields=id,name&limit=1"));
  REQUIRE(listed["data"].size() == 1);
  CHECK(listed["data"][0]["name"] == "Loyal customers");
  CHECK(listed["paging"]["cursors"]["after"] == first);
  auto next = body_of(client.get("/act_100/customaudiences?fields=id,name&limit=1&after=" + first));
  REQUIRE(next["data"].size() == 1);
  CHECK(next["data"][0]["id"] == second);

  auto read =
      body_of(client.get("/" + first + "?fields=id,name,operation_status,approximate_count_lower_bound"));
  CHECK(read["name"] == "Loyal customers");
  CHECK(read["operation_status"]["code"] == 200);
  CHECK(read["approximate_count_lower_bound"] == 0);

  auto unknown_field = client.get("/" + first + "?fields=colour");
  REQUIRE(unknown_field.has_response());
  CHECK(unknown_field.response().status == 400);
  CHECK(body_of(unknown_field)["error"]["code"] == 100);

  auto missing = client.get("/99999?fields=id");
  REQUIRE(missing.has_response());
  auto classified = activation::classify_meta_response(missing.response());
  CHECK(classified.error_class == PlatformErrorClass::kInvalidRequest);
  CHECK(classified.subcode == 33);

  auto bad_create =
      client.send(HttpMethod::kPost, "/act_100/customaudiences", Json{{"name", "x"}, {"subtype", "CUSTOM"}});
  CHECK(body_of(bad_create)["error"]["message"] ==
        "(#100) customer_file_source must be USER_PROVIDED_ONLY, PARTNER_PROVIDED_ONLY or "
        "BOTH_USER_AND_PARTNER_PROVIDED, got ''");
}

TEST_CASE("meta server keeps batches of a session in order") {
  ServerProcess server(kBasicArguments);
  MetaClient client(server);
  std::string audience = client.create_audience("act_7", "Session test");

  auto first = body_of(client.upload(audience, HttpMethod::kPost, rows_for(0, 3), session(4242, 1, false)));
  CHECK(first["num_received"] == 3);
  CHECK(first["session_id"] == "4242");
  auto second = body_of(client.upload(audience, HttpMethod::kPost, rows_for(3, 2), session(4242, 2, false)));
  CHECK(second["num_received"] == 5);  // Cumulative over the session.
  auto last = body_of(client.upload(audience, HttpMethod::kPost, rows_for(5, 1), session(4242, 3, true)));
  CHECK(last["num_received"] == 6);
  CHECK(last["num_invalid_entries"] == 0);

  auto after_last = client.upload(audience, HttpMethod::kPost, rows_for(6, 1), session(4242, 4, false));
  auto finished = activation::classify_meta_response(after_last.response());
  CHECK(finished.code == 2650);
  CHECK(finished.subcode == 1870159);

  Json inspected = client.inspect(audience);
  CHECK(inspected["member_count"] == 6);
  REQUIRE(inspected["batches"].size() == 3);
  CHECK(inspected["batches"][0]["batch_seq"] == 1);
  CHECK(inspected["batches"][1]["batch_seq"] == 2);
  CHECK(inspected["batches"][2]["batch_seq"] == 3);
  CHECK(inspected["batches"][2]["last_batch_flag"] == true);
  REQUIRE(inspected["sessions"].size() == 1);
  CHECK(inspected["sessions"][0]["stage"] == "finished");
  CHECK(inspected["sessions"][0]["batch_seqs"] == Json::array({1, 2, 3}));

  auto sessions = body_of(client.get("/" + audience + "/sessions?session_id=4242"));
  REQUIRE(sessions["data"].size() == 1);
  CHECK(sessions["data"][0]["num_received"] == "6");
}

TEST_CASE("meta server rejects a schema change within a session") {
  ServerProcess server(kBasicArguments);
  MetaClient client(server);
  std::string audience = client.create_audience("act_7", "Schema test");
  REQUIRE(
      client.upload(audience, HttpMethod::kPost, rows_for(0, 1), session(1, 1, false)).response().status ==
      200);

  Json email_only = Json::array({Json::array({sha256_of("a@example.com")})});
  auto changed =
      client.upload(audience, HttpMethod::kPost, email_only, session(1, 2, false), Json::array({"EMAIL"}));
  CHECK(body_of(changed)["error"]["message"] ==
        "(#100) The schema of this batch differs from the first batch of session 1");
}

TEST_CASE("meta server reports invalid hashes in samples") {
  ServerProcess server(kBasicArguments);
  MetaClient client(server);
  std::string audience = client.create_audience("act_7", "Invalid test");

  Json rows = rows_for(0, 2);
  rows.push_back(Json::array({"Mary@Example.com", ""}));                        // Not hashed.
  rows.push_back(Json::array({sha256_of("x@example.com").substr(0, 63), ""}));  // Too short.
  rows.push_back(Json::array({"", ""}));                                        // No identifier.
  auto result = body_of(client.upload(audience, HttpMethod::kPost, rows, session(9, 1, true)));
  CHECK(result["num_received"] == 5);
  CHECK(result["num_invalid_entries"] == 3);
  Json samples = result["invalid_entry_samples"];
  CHECK(samples.size() == 3);
  CHECK(samples["Mary@Example.com"] ==
        "Invalid EMAIL: expected a SHA-256 hash as 64 lowercase hexadecimal characters");
  CHECK(samples["[\"\",\"\"]"] == "The row has no identifier");

  CHECK(client.inspect(audience)["member_count"] == 2);
}

TEST_CASE("meta server rejects 10001 rows") {
  ServerProcess server(kBasicArguments);
  MetaClient client(server);
  std::string audience = client.create_audience("act_7", "Limit test");

  auto at_limit = client.upload(audience, HttpMethod::kPost, rows_for(0, 10'000), Json());
  REQUIRE(at_limit.has_response());
  CHECK(at_limit.response().status == 200);

  auto over = client.upload(audience, HttpMethod::kPost, rows_for(20'000, 10'001), Json());
  REQUIRE(over.has_response());
  CHECK(over.response().status == 500);
  auto classified = activation::classify_meta_response(over.response());
  CHECK(classified.code == 1);
  CHECK(classified.subcode == 99);
  CHECK(classified.error_class == PlatformErrorClass::kPlatform5xx);

  Json inspected = client.inspect(audience);
  CHECK(inspected["member_count"] == 10'000);
  CHECK(inspected["batches"].size() == 1);
}

TEST_CASE("meta server enforces row width") {
  ServerProcess server(kBasicArguments);
  MetaClient client(server);
  std::string audience = client.create_audience("act_7", "Width test");
  Json rows = Json::array({Json::array({sha256_of("a@example.com")})});
  auto narrow = client.upload(audience, HttpMethod::kPost, rows, Json());
  CHECK(body_of(narrow)["error"]["message"] ==
        "(#100) Row 0 of data has 1 values but the schema has 2 fields");
}

TEST_CASE("meta server accepts every way of sending the token and payload") {
  ServerProcess server(kBasicArguments);
  MetaClient client(server);
  std::string audience = client.create_audience("act_7", "Encodings");
  std::string url = client.base() + "/" + audience + "/users";
  std::string payload =
      Json{{"schema", "EMAIL_SHA256"}, {"data", Json::array({sha256_of("q@example.com")})}}.dump();
  auto& transport = client.transport();

  HttpRequest query;
  query.method = HttpMethod::kPost;
  query.url = url + "?" + form_encode({{"access_token", "test-token"}, {"payload", payload}});
  CHECK(transport.send(query).response().status == 200);

  HttpRequest form;
  form.method = HttpMethod::kPost;
  form.url = url;
  form.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
  form.body = form_encode({{"access_token", "test-token"}, {"payload", payload}});
  CHECK(transport.send(form).response().status == 200);

  HttpRequest multipart;
  multipart.method = HttpMethod::kPost;
  multipart.url = url;
  multipart.headers = {{"Content-Type", "multipart/form-data; boundary=XyZ"}};
  multipart.body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"access_token\"\r\n\r\ntest-token\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"payload\"\r\n\r\n" +
      payload + "\r\n--XyZ--\r\n";
  CHECK(transport.send(multipart).response().status == 200);

  HttpRequest json;
  json.method = HttpMethod::kPost;
  json.url = url;
  json.headers = {{"Content-Type", "application/json"}};
  json.body = Json{{"access_token", "test-token"}, {"payload", Json::parse(payload)}}.dump();
  CHECK(transport.send(json).response().status == 200);

  HttpRequest bearer = json;
  bearer.headers.push_back({"Authorization", "Bearer test-token"});
  bearer.body = Json{{"payload", Json::parse(payload)}}.dump();
  CHECK(transport.send(bearer).response().status == 200);

  Json batches = client.inspect(audience)["batches"];
  REQUIRE(batches.size() == 5);
  CHECK(batches[0]["token_via"] == "query");
  CHECK(batches[1]["token_via"] == "form");
  CHECK(batches[1]["body_encoding"] == "form");
  CHECK(batches[2]["token_via"] == "multipart");
  CHECK(batches[3]["token_via"] == "json");
  CHECK(batches[4]["token_via"] == "bearer");
  CHECK(batches[4]["duplicate_of"] == 0);

  HttpRequest anonymous = json;
  anonymous.body = Json{{"payload", Json::parse(payload)}}.dump();
  auto refused = activation::classify_meta_response(transport.send(anonymous).response());
  CHECK(refused.code == 104);
  CHECK(refused.error_class == PlatformErrorClass::kAuth);

  HttpRequest wrong = bearer;
  wrong.headers.back().value = "Bearer someone-else";
  auto wrong_token = activation::classify_meta_response(transport.send(wrong).response());
  CHECK(wrong_token.code == 190);
}

TEST_CASE("meta server reads unusual JSON bodies") {
  ServerProcess server(kBasicArguments);
  MetaClient client(server);
  std::string audience = client.create_audience("act_7", "Unusual bodies");
  auto& transport = client.transport();
  HttpRequest request;
  request.method = HttpMethod::kPost;
  request.url = client.base() + "/" + audience + "/users";
  request.headers = {{"Content-Type", "application/json"}};

  // An integer beyond 64 bits takes the body to the slower JSON parser; the upload still counts.
  request.body = R"({"access_token": "test-token", "trace": 123456789012345678901234, "payload": )"
                 R"({"schema": "EMAIL_SHA256", "data": [")" + sha256_of("big@example.com") + R"("]}})";
  auto big = transport.send(request).response();
  CHECK(big.status == 200);
  CHECK(Json::parse(big.body)["num_received"] == 1);

  // The payload as JSON text inside a JSON body.
  Json text_payload = {{"schema", "EMAIL_SHA256"}, {"data", Json::array({sha256_of("text@example.com")})}};
  request.body = Json{{"access_token", "test-token"}, {"payload", text_payload.dump()}}.dump();
  auto text = transport.send(request).response();
  CHECK(text.status == 200);
  CHECK(Json::parse(text.body)["num_received"] == 1);

  // A payload that is neither an object nor its text is rejected with Meta's message.
  request.body = R"({"access_token": "test-token", "payload": [1, 2]})";
  auto wrong = transport.send(request).response();
  CHECK(wrong.status == 400);
  CHECK(wrong.body.find("Param payload must be a JSON object") != std::string::npos);

  CHECK(client.inspect(audience)["members"].size() == 2);
}

TEST_CASE("meta server removes only members with the same keys") {
  ServerProcess server(kBasicArguments);
  MetaClient client(server);
  std::string audience = client.create_audience("act_7", "Removal test");
  Json added =
      Json::array({hashed_row("a@example.com", "15550000001"), hashed_row("b@example.com", "15550000002")});
  REQUIRE(client.upload(audience, HttpMethod::kPost, added, Json()).response().status == 200);

  Json other_keys = Json::array({hashed_row("a@example.com", "")});
  REQUIRE(client.upload(audience, HttpMethod::kDelete, other_keys, Json()).response().status == 200);
  Json exact = Json::array({hashed_row("b@example.com", "15550000002")});
  REQUIRE(client.upload(audience, HttpMethod::kDelete, exact, Json()).response().status == 200);

  Json inspected = client.inspect(audience);
  CHECK(inspected["member_count"] == 1);
  CHECK(inspected["counters"]["removed"] == 1);
  CHECK(inspected["counters"]["unmatched_removes"] == 1);
  CHECK(inspected["members"][0]["keys"]["EMAIL"] == sha256_of("a@example.com"));

  // POST with method=DELETE is the same removal.
  Json body = {{"method", "DELETE"},
               {"payload", {{"schema", Json::array({"EMAIL", "PHONE"})}, {"data", Json::array({added[0]})}}}};
  REQUIRE(client.send(HttpMethod::kPost, "/" + audience + "/users", body).response().status == 200);
  CHECK(client.inspect(audience)["member_count"] == 0);
}

TEST_CASE("meta server refuses a second data source shape") {
  ServerProcess server(kBasicArguments);
  MetaClient client(server);
  std::string audience = client.create_audience("act_7", "Shape test");
  REQUIRE(client.upload(audience, HttpMethod::kPost, rows_for(0, 1), Json()).response().status == 200);
  Json single = Json::array({sha256_of("z@example.com")});
  auto mismatch = client.upload(audience, HttpMethod::kPost, single, Json(), "EMAIL_SHA256");
  auto classified = activation::classify_meta_response(mismatch.response());
  CHECK(classified.code == 2650);
  CHECK(classified.error_class == PlatformErrorClass::kInvalidRequest);
}

TEST_CASE("meta server replace follows the session rules") {
  ServerProcess server(kBasicArguments);
  MetaClient client(server);
  std::string audience = client.create_audience("act_7", "Replace test");
  REQUIRE(client.upload(audience, HttpMethod::kPost, rows_for(0, 5), Json()).response().status == 200);

  auto without_first = client.replace(audience, rows_for(100, 2), 77, 2, false);
  CHECK(activation::classify_meta_response(without_first.response()).subcode == 1870147);

  REQUIRE(client.replace(audience, rows_for(100, 2), 77, 1, false).response().status == 200);
  // Add and remove wait while the replace runs.
  auto blocked = client.upload(audience, HttpMethod::kPost, rows_for(0, 1), Json());
  auto busy = activation::classify_meta_response(blocked.response());
  CHECK(busy.subcode == 1870145);
  CHECK(busy.error_class == PlatformErrorClass::kThrottled);
  CHECK(body_of(client.get("/" + audience + "?fields=operation_status"))["operation_status"]["code"] == 300);

  REQUIRE(client.replace(audience, rows_for(102, 2), 77, 2, false).response().status == 200);
  auto last = body_of(client.replace(audience, rows_for(104, 1), 77, 3, true));
  CHECK(last["num_received"] == 5);

  Json inspected = client.inspect(audience);
  CHECK(inspected["member_count"] == 5);
  CHECK(inspected["counters"]["replaces_completed"] == 1);
  CHECK(inspected["counters"]["replace_restarts"] == 0);
  CHECK(inspected["replace_in_progress"].is_null());

  auto after_finish = client.replace(audience, rows_for(105, 1), 77, 4, false);
  CHECK(activation::classify_meta_response(after_finish.response()).subcode == 1870159);

  // A second batch 1 in the same session restarts the replace, which the inspection counts.
  REQUIRE(client.replace(audience, rows_for(200, 1), 78, 1, false).response().status == 200);
  REQUIRE(client.replace(audience, rows_for(201, 1), 78, 1, true).response().status == 200);
  inspected = client.inspect(audience);
  CHECK(inspected["counters"]["replace_restarts"] == 1);
  CHECK(inspected["member_count"] == 1);
}

TEST_CASE("meta server expires sessions after their lifetime") {
  ServerProcess server({"--session-lifetime-seconds", "1"});
  MetaClient client(server);
  std::string added = client.create_audience("act_7", "Lifetime add");
  std::string replaced = client.create_audience("act_7", "Lifetime replace");
  REQUIRE(client.upload(added, HttpMethod::kPost, rows_for(0, 2), session(31, 1, false)).response().status ==
          200);
  REQUIRE(client.upload(replaced, HttpMethod::kPost, rows_for(0, 4), Json()).response().status == 200);
  REQUIRE(client.replace(replaced, rows_for(50, 3), 32, 1, false).response().status == 200);

  std::this_thread::sleep_for(std::chrono::milliseconds(1200));

  auto late = client.upload(added, HttpMethod::kPost, rows_for(2, 2), session(31, 2, false));
  CHECK(activation::classify_meta_response(late.response()).subcode == 1870158);
  CHECK(client.inspect(added)["member_count"] == 2);

  // The timed-out replace is applied with the batches it received.
  auto late_replace = client.replace(replaced, rows_for(53, 1), 32, 2, true);
  CHECK(activation::classify_meta_response(late_replace.response()).subcode == 1870158);
  Json inspected = client.inspect(replaced);
  CHECK(inspected["member_count"] == 3);
  CHECK(inspected["replace_in_progress"].is_null());
}

TEST_CASE("meta server throttles above the rate with usage headers") {
  ServerProcess server({"--rate-limit", "3", "--rate-window-ms", "60000"});
  MetaClient client(server);
  std::string audience = client.create_audience("act_55", "Throttle test");
  for (int i = 0; i < 2; ++i) {
    auto fine = client.get("/" + audience + "?fields=id");
    REQUIRE(fine.has_response());
    CHECK(fine.response().status == 200);
  }

  auto throttled = client.get("/" + audience + "?fields=id");
  REQUIRE(throttled.has_response());
  CHECK(throttled.response().status == 400);
  auto usage = throttled.response().header("X-Business-Use-Case-Usage");
  REQUIRE(usage);
  Json entry = Json::parse(std::string(*usage))["55"][0];
  CHECK(entry["type"] == "custom_audience");
  CHECK(entry["call_count"] == 100);
  CHECK(entry["estimated_time_to_regain_access"] == 1);
  CHECK(throttled.response().header("X-App-Usage"));

  auto classified = activation::classify_meta_response(throttled.response());
  CHECK(classified.error_class == PlatformErrorClass::kThrottled);
  CHECK(classified.code == 80003);
  CHECK(classified.retry_after == std::chrono::minutes(1));
  CHECK(classified.usage_percent == 100.0);

  Json stats = client.stats();
  CHECK(stats["accounts"]["meta:act_55"]["throttled"] == 1);
  CHECK(stats["accounts"]["meta:act_55"]["max_in_window"] == 3);
}

TEST_CASE("meta server expires the token after n requests") {
  ServerProcess server({"--token", "test-token", "--token-expire-after", "3"});
  MetaClient client(server);
  std::string audience = client.create_audience("act_7", "Expiry test");
  CHECK(client.get("/" + audience + "?fields=id").response().status == 200);
  CHECK(client.get("/" + audience + "?fields=id").response().status == 200);

  auto expired = client.get("/" + audience + "?fields=id");
  auto classified = activation::classify_meta_response(expired.response());
  CHECK(classified.code == 190);
  CHECK(classified.subcode == 463);
  CHECK(classified.error_class == PlatformErrorClass::kAuth);

  activation::RetryBudget budget(activation::RequestRetryPolicy{}, 1);
  CHECK(budget.next(classified).action == activation::RetryAction::kPause);
  // Still expired afterwards: the token does not come back by itself.
  CHECK(activation::classify_meta_response(client.get("/" + audience).response()).code == 190);
}

TEST_CASE("meta server verifies appsecret_proof") {
  ServerProcess server({"--token", "test-token", "--app-secret", "s3cr3t"});
  MetaClient client(server);
  auto& transport = client.transport();
  auto create = [&](const std::map<std::string, std::string>& extra) {
    std::map<std::string, std::string> fields = {{"access_token", "test-token"},
                                                 {"name", "Proof"},
                                                 {"subtype", "CUSTOM"},
                                                 {"customer_file_source", "USER_PROVIDED_ONLY"}};
    fields.insert(extra.begin(), extra.end());
    HttpRequest request;
    request.method = HttpMethod::kPost;
    request.url = client.base() + "/act_7/customaudiences";
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    request.body = form_encode(fields);
    return transport.send(request);
  };

  auto missing = create({});
  CHECK(body_of(missing)["error"]["message"] ==
        "This app requires an appsecret_proof parameter with every server call.");

  std::string proof = hmac_sha256_of("s3cr3t", "test-token");
  CHECK(create({{"appsecret_proof", proof}}).response().status == 200);

  std::string timed = hmac_sha256_of("s3cr3t", "test-token|1700000000");
  CHECK(create({{"appsecret_proof", timed}, {"appsecret_time", "1700000000"}}).response().status == 200);

  auto wrong = create({{"appsecret_proof", hmac_sha256_of("other-secret", "test-token")}});
  CHECK(body_of(wrong)["error"]["message"] ==
        "The appsecret_proof parameter does not match the access token.");
  auto wrong_time = create({{"appsecret_proof", timed}, {"appsecret_time", "1700000001"}});
  CHECK(body_of(wrong_time)["error"]["code"] == 100);
}

TEST_CASE("meta server injects 5xx answers that classify as platform errors") {
  SUBCASE("json") {
    ServerProcess server({"--error-rate", "1", "--html-error-share", "0", "--fault-after-apply", "0"});
    MetaClient client(server);
    auto result = client.get("/act_7/customaudiences");
    REQUIRE(result.has_response());
    CHECK(result.response().status >= 500);
    CHECK(activation::classify_meta_response(result.response()).error_class == PlatformErrorClass::kPlatform5xx);
    CHECK(client.stats()["faults"]["meta"]["json_5xx_before_apply"] == 1);
  }
  SUBCASE("html") {
    ServerProcess server({"--error-rate", "1", "--html-error-share", "1"});
    MetaClient client(server);
    auto result = client.get("/act_7/customaudiences");
    REQUIRE(result.has_response());
    auto classified = activation::classify_meta_response(result.response());
    CHECK(classified.error_class == PlatformErrorClass::kPlatform5xx);
    CHECK(classified.message.find("Error | Platform test server") != std::string::npos);
  }
}

TEST_CASE("meta server dropped connections are transport errors") {
  ServerProcess server({"--drop-rate", "1", "--fault-after-apply", "1"});
  MetaClient client(server);
  Json body = {{"name", "Dropped"}, {"subtype", "CUSTOM"}, {"customer_file_source", "USER_PROVIDED_ONLY"}};
  auto result = client.send(HttpMethod::kPost, "/act_7/customaudiences", body);
  REQUIRE_FALSE(result.has_response());
  CHECK(result.error().kind == TransportErrorKind::kConnectionDropped);
  CHECK(activation::classify_transport_error(result.error()).error_class == PlatformErrorClass::kNetwork);

  // The drop came after the request took effect: the audience exists although no response came.
  Json audiences = client.inspect_path("/__inspect/meta/audiences")["audiences"];
  REQUIRE(audiences.size() == 1);
  CHECK(audiences[0]["name"] == "Dropped");
}

TEST_CASE("meta server faults repeat with the same seed") {
  auto statuses = [](const std::string& seed) {
    ServerProcess server({"--seed", seed, "--error-rate", "0.3"});
    MetaClient client(server);
    std::vector<int> out;
    for (int i = 0; i < 40; ++i) out.push_back(client.get("/act_1/customaudiences").response().status);
    return out;
  };
  std::vector<int> first = statuses("9");
  std::vector<int> second = statuses("9");
  std::vector<int> other = statuses("10");
  CHECK(first == second);
  CHECK(first != other);
  CHECK(std::count(first.begin(), first.end(), 200) < 40);
  CHECK(std::count(first.begin(), first.end(), 200) > 0);
}

TEST_CASE("meta server fails the first call after creation with 803 when asked") {
  ServerProcess server({"--new-audience-alias-error"});
  MetaClient client(server);
  std::string audience = client.create_audience("act_7", "Alias test");
  auto first = client.upload(audience, HttpMethod::kPost, rows_for(0, 1), Json());
  auto classified = activation::classify_meta_response(first.response());
  CHECK(classified.code == 803);
  CHECK(classified.error_class == PlatformErrorClass::kPlatform5xx);
  CHECK(client.upload(audience, HttpMethod::kPost, rows_for(0, 1), Json()).response().status == 200);
}

TEST_CASE("meta server inspection shows members, duplicates and reset") {
  ServerProcess server(kBasicArguments);
  MetaClient client(server);
  std::string audience = client.create_audience("act_7", "Inspection");
  Json rows = rows_for(0, 3);
  REQUIRE(client.upload(audience, HttpMethod::kPost, rows, session(5, 1, false)).response().status == 200);
  REQUIRE(client.upload(audience, HttpMethod::kPost, rows, session(5, 2, true)).response().status == 200);

  Json inspected = client.inspect(audience);
  CHECK(inspected["member_count"] == 3);
  CHECK(inspected["counters"]["duplicate_adds"] == 3);
  CHECK(inspected["counters"]["duplicate_batches"] == 1);
  CHECK(inspected["batches"][1]["duplicate_of"] == 0);
  for (const Json& member : inspected["members"]) CHECK(member["times_added"] == 2);
  CHECK(inspected["members"][0]["keys"].size() == 2);

  Json without_members = client.inspect_path("/__inspect/meta/audiences/" + audience + "?members=0");
  CHECK_FALSE(without_members.contains("members"));

  HttpRequest reset;
  reset.method = HttpMethod::kPost;
  reset.url = server.base_url() + "/__inspect/reset";
  REQUIRE(client.transport().send(reset).response().status == 200);
  CHECK(client.inspect_path("/__inspect/meta/audiences")["audiences"].empty());
}

TEST_CASE("sliding window limiter at the server limit is never throttled") {
  ServerProcess server({"--rate-limit", "10", "--rate-window-ms", "500"});
  activation::RateLimitPolicy policy;
  policy.algorithm = activation::RateLimitAlgorithm::kSlidingWindow;
  policy.window_limit = 10;
  policy.window = std::chrono::milliseconds(500);
  policy.count_until_release = true;
  auto limiter = activation::make_rate_limiter(policy);
  REQUIRE(limiter.is_ok());

  std::atomic<int> sent{0};
  std::atomic<int> failures{0};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&] {
      MetaClient client(server);
      while (std::chrono::steady_clock::now() < deadline) {
        auto grant = (*limiter)->acquire("act_9");
        if (!grant.is_ok()) {
          ++failures;
          return;
        }
        auto result = client.get("/act_9/customaudiences");
        (*limiter)->release("act_9", *grant);
        if (!result.has_response() || result.response().status != 200) ++failures;
        ++sent;
      }
    });
  }
  for (std::thread& sender : senders) sender.join();

  MetaClient client(server);
  Json account = client.stats()["accounts"]["meta:act_9"];
  CHECK(failures.load() == 0);
  CHECK(account["throttled"] == 0);
  CHECK(account["max_in_window"] == 10);
  CHECK(sent.load() >= 40);
}
