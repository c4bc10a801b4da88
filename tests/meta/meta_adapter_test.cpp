// The Meta adapter on its own, against the test server on loopback: audiences, invalid entries,
// appsecret_proof, the API version and token errors.
#include <doctest/doctest.h>

#include <cstdlib>

#include "activation/backend/destination.hpp"
#include "meta/meta_test_support.hpp"

namespace activation::testing {
namespace {

using Json = nlohmann::json;

DestinationRun email_phone_run(std::int64_t job_id, SyncMode mode = SyncMode::kAdd) {
  DestinationRun run;
  run.job_id = job_id;
  run.audience = "people";
  run.destination = "fb";
  run.mode = mode;
  run.field_slots = {{Field::kEmail, 1}, {Field::kPhone, 1}};
  return run;
}

MemberOperation add_of(const std::string& email, const std::string& phone) {
  MemberOperation operation;
  operation.type = OperationType::kAdd;
  operation.member_key = sha256_hex(email);
  if (!email.empty()) operation.identifiers.push_back({Field::kEmail, email});
  if (!phone.empty()) operation.identifiers.push_back({Field::kPhone, phone});
  return operation;
}

}  // namespace

TEST_CASE("audience is found or created by name") {
  set_test_token();
  ServerProcess server({});
  MetaClient client(server);
  auto config = meta_destination(server, "fb", "newsletter");

  for (int run = 0; run < 2; ++run) {
    auto adapter = make_test_adapter(config);
    REQUIRE(adapter.is_ok());
    REQUIRE((*adapter)->begin(email_phone_run(1)).is_ok());
  }
  Json all = client.inspect_path("/__inspect/meta/audiences");
  REQUIRE(all["audiences"].size() == 1);
  CHECK(all["audiences"][0]["name"] == "newsletter");
  CHECK(all["audiences"][0]["account_id"] == kAdAccount);
}

TEST_CASE("unknown audience id fails begin") {
  set_test_token();
  ServerProcess server({});
  auto config = meta_destination(server, "fb", "", Json{{"audience_id", "999"}});
  Json settings = Json::parse(config.settings);
  settings.erase("audience_name");
  config.settings = settings.dump();
  auto adapter = make_test_adapter(config);
  REQUIRE(adapter.is_ok());
  Status begun = (*adapter)->begin(email_phone_run(1));
  CHECK(begun.code() == StatusCode::kNotFound);
  CHECK(begun.message().find("destination 'fb': settings.audience_id: Meta has no audience 999") == 0);
}

TEST_CASE("invalid hashes become rejected rows") {
  set_test_token();
  ServerProcess server({});
  MetaClient client(server);
  auto adapter = make_test_adapter(meta_destination(server, "fb", "hashes"));
  REQUIRE(adapter.is_ok());
  REQUIRE((*adapter)->begin(email_phone_run(7)).is_ok());

  // Two valid members, one with an email that is no hash, and 150 more bad ones: more than the
  // 100 samples Meta returns.
  Batch batch;
  batch.number = 1;
  batch.operations.push_back(add_of(sha256_hex("a@example.com"), sha256_hex("14155550001")));
  batch.operations.push_back(add_of("Bad@Example.com", ""));
  batch.operations.push_back(add_of(sha256_hex("b@example.com"), ""));
  for (int i = 0; i < 150; ++i) batch.operations.push_back(add_of("bad" + std::to_string(i), ""));

  BatchResult result = (*adapter)->send(batch);
  REQUIRE(result.transport.is_ok());
  REQUIRE(result.results.size() == batch.operations.size());
  CHECK(result.results[0].outcome == RowOutcome::kAccepted);
  CHECK(result.results[2].outcome == RowOutcome::kAccepted);
  CHECK(result.results[1].outcome == RowOutcome::kRejected);
  CHECK(result.results[1].reason.code == "meta_invalid_entry");
  CHECK(result.results[1].reason.message ==
        "Meta counted an invalid entry: Invalid EMAIL: expected a SHA-256 hash as 64 lowercase hexadecimal "
        "characters");
  int rejected = 0;
  for (const auto& row : result.results) rejected += row.outcome == RowOutcome::kRejected ? 1 : 0;
  CHECK(rejected == 151);

  REQUIRE((*adapter)->finish(DestinationRunSummary{}).is_ok());
  Json audience = client.inspect(audience_id_by_name(client, "hashes"));
  CHECK(audience["member_count"] == 2);
  CHECK(audience["counters"]["invalid_entries"] == 151);
}

TEST_CASE("appsecret_proof goes with every request") {
  set_test_token();
  ::setenv("ACT_META_TEST_APP_SECRET", "s3cret", 1);
  ServerProcess server({"--app-secret", "s3cret"});
  MetaClient client(server);

  SUBCASE("with the app secret configured") {
    auto config = meta_destination(server, "fb", "proof");
    config.secret_env["app_secret"] = "ACT_META_TEST_APP_SECRET";
    auto adapter = make_test_adapter(config);
    REQUIRE(adapter.is_ok());
    REQUIRE((*adapter)->begin(email_phone_run(3)).is_ok());
    Batch batch;
    batch.number = 1;
    batch.operations.push_back(add_of(sha256_hex("a@example.com"), ""));
    BatchResult result = (*adapter)->send(batch);
    REQUIRE(result.transport.is_ok());
    CHECK(result.results[0].outcome == RowOutcome::kAccepted);
    REQUIRE((*adapter)->finish(DestinationRunSummary{}).is_ok());
    CHECK(client.inspect(audience_id_by_name(client, "proof"))["member_count"] == 1);
  }
  SUBCASE("without it the server refuses") {
    auto adapter = make_test_adapter(meta_destination(server, "fb", "proof"));
    REQUIRE(adapter.is_ok());
    Status begun = (*adapter)->begin(email_phone_run(3));
    CHECK(begun.code() == StatusCode::kInvalidArgument);
    CHECK(begun.message().find("appsecret_proof") != std::string::npos);
  }
}

TEST_CASE("graph api version comes from the settings") {
  set_test_token();
  ServerProcess server({"--min-api-version", "25"});
  MetaClient client(server);

  auto old = make_test_adapter(meta_destination(server, "fb", "versions"));
  REQUIRE(old.is_ok());
  Status refused = (*old)->begin(email_phone_run(4));
  CHECK(refused.code() == StatusCode::kInvalidArgument);
  CHECK(refused.message().find("(#2635)") != std::string::npos);

  auto adapter =
      make_test_adapter(meta_destination(server, "fb", "versions", Json{{"api_version", "v25.0"}}));
  REQUIRE(adapter.is_ok());
  REQUIRE((*adapter)->begin(email_phone_run(4)).is_ok());
  Batch batch;
  batch.number = 1;
  batch.operations.push_back(add_of(sha256_hex("a@example.com"), ""));
  REQUIRE((*adapter)->send(batch).transport.is_ok());
  Json audience = client.inspect(audience_id_by_name(client, "versions"));
  REQUIRE(audience["batches"].size() == 1);
  CHECK(audience["batches"][0]["api_version"] == "25");
  CHECK(audience["batches"][0]["token_via"] == "bearer");
  CHECK(audience["batches"][0]["body_encoding"] == "json");
}

TEST_CASE("rejected token names its environment variable") {
  set_test_token("wrong-token");
  ServerProcess server({"--token", "right-token"});
  auto adapter = make_test_adapter(meta_destination(server, "fb", "tokens"));
  REQUIRE(adapter.is_ok());
  Status begun = (*adapter)->begin(email_phone_run(5));
  CHECK(begun.code() == StatusCode::kUnauthenticated);
  CHECK(begun.message().find("Meta rejected the access token") != std::string::npos);
  CHECK(begun.message().find(std::string("environment variable ") + kTokenVariable) != std::string::npos);
  set_test_token();
}

}  // namespace activation::testing

namespace activation::testing {

TEST_CASE("circuit opens after repeated 5xx responses") {
  set_test_token();
  ServerProcess server({"--error-rate", "1"});
  MetaClient client(server);
  auto config = meta_destination(server, "fb-circuit", "circuit",
                                 Json{{"circuit_breaker", {{"failure_threshold", 2}, {"open_seconds", 60}}}});
  auto requests = [&client] { return client.stats()["requests"].get<int>(); };

  auto adapter = make_test_adapter(config);
  REQUIRE(adapter.is_ok());
  Status begun = (*adapter)->begin(email_phone_run(8));
  CHECK(begun.code() == StatusCode::kUnavailable);
  CHECK(begun.message().find("the circuit breaker is open") != std::string::npos);
  CHECK(requests() == 2);

  // Another run of the same destination finds the circuit open and sends nothing.
  auto again = make_test_adapter(config);
  REQUIRE(again.is_ok());
  CHECK((*again)->begin(email_phone_run(9)).code() == StatusCode::kUnavailable);
  CHECK(requests() == 2);
}

}  // namespace activation::testing

namespace activation::testing {

TEST_CASE("replace without members fails") {
  set_test_token();
  ServerProcess server({});
  auto adapter = make_test_adapter(meta_destination(server, "fb", "empty-replace"));
  REQUIRE(adapter.is_ok());
  REQUIRE((*adapter)->begin(email_phone_run(10, SyncMode::kReplace)).is_ok());
  Status finished = (*adapter)->finish(DestinationRunSummary{});
  CHECK(finished.code() == StatusCode::kFailedPrecondition);
  CHECK(finished.message() ==
        "destination 'fb': the replace sent no member because the source has no valid row. Meta cannot "
        "replace an "
        "audience with an empty list, so the audience was left as it was");
}

}  // namespace activation::testing
