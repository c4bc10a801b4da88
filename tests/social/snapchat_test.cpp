// The Snapchat adapter against the test server on loopback, with access tokens from the server's
// OAuth token endpoint: Snapchat's schema rules, a bad value isolated, exact adds, removes and
// mirrors, throttling and 5xx responses, an expired access token refreshed once, and a revoked
// refresh token.
#include <doctest/doctest.h>

#include "platforms/snapchat/snapchat_destination.hpp"
#include "social/social_test_support.hpp"

namespace activation::testing {
namespace {

using Json = nlohmann::json;

DestinationRun snapchat_run(std::int64_t job_id) {
  DestinationRun run;
  run.job_id = job_id;
  run.audience = "people";
  run.destination = "snap";
  run.field_slots = {{Field::kEmail, 1}, {Field::kPhone, 2}};
  return run;
}

std::set<std::string> segment_identifiers(const Json& segment, const std::string& schema) {
  std::set<std::string> values;
  if (!segment["identifiers"].contains(schema)) return values;
  for (const auto& value : segment["identifiers"][schema]) values.insert(value.get<std::string>());
  return values;
}

}  // namespace

TEST_CASE("snapchat users follow its schema rules") {
  MemberOperation first = email_operation(OperationType::kAdd, sha256_hex("a@example.com"));
  first.identifiers.push_back({Field::kPhone, sha256_hex("14155550001")});
  first.identifiers.push_back({Field::kFirstName, "ann"});
  MemberOperation second = email_operation(OperationType::kAdd, sha256_hex("a@example.com"));
  second.identifiers.push_back({Field::kMaid, sha256_hex("6d92078a-8246-4ba4-ae5b-76104861e7dc")});

  Json body = platforms::snapchat::render_users({&first, &second});
  REQUIRE(body["users"].size() == 3);
  // One schema per entry, and the shared email once.
  CHECK(body["users"][0]["schema"] == Json::array({"EMAIL_SHA256"}));
  CHECK(body["users"][0]["data"] == Json::array({Json::array({sha256_hex("a@example.com")})}));
  CHECK(body["users"][1]["schema"] == Json::array({"PHONE_SHA256"}));
  CHECK(body["users"][2]["schema"] == Json::array({"MOBILE_AD_ID_SHA256"}));
}

TEST_CASE("snapchat bad value is isolated and rejected") {
  set_snapchat_secrets("refresh-isolate");
  ServerProcess server({});
  InspectionClient client(server);
  auto adapter = make_test_adapter(snapchat_destination(server, "snap", "isolated"));
  REQUIRE(adapter.is_ok());
  REQUIRE((*adapter)->begin(snapchat_run(1)).is_ok());

  Batch batch;
  batch.number = 1;
  for (int i = 0; i < 16; ++i) {
    batch.operations.push_back(
        email_operation(OperationType::kAdd, sha256_hex("s" + std::to_string(i) + "@x.com")));
  }
  batch.operations[5].identifiers[0].value = "plain@x.com";
  BatchResult result = (*adapter)->send(batch);
  REQUIRE_MESSAGE(result.transport.is_ok(), result.transport.to_string());
  CHECK(result.results[5].outcome == RowOutcome::kRejected);
  CHECK(result.results[5].reason.code == "snapchat_rejected");
  const std::string expected =
      "Snapchat rejected the request: invalid_request: E2002 users[0].data[0]: EMAIL_SHA256 must be a "
      "SHA-256 hash of 64 lowercase hexadecimal characters (request_id ";
  CHECK(result.results[5].reason.message.substr(0, expected.size()) == expected);
  int accepted = 0;
  for (const auto& row : result.results) accepted += row.outcome == RowOutcome::kAccepted ? 1 : 0;
  CHECK(accepted == 15);
  Json segment = inspect_audience(client, "snapchat", inspected_id(client, "snapchat", "isolated"));
  CHECK(segment["identifier_count"] == 15);
}

TEST_CASE("snapchat add, mirror and remove land exactly") {
  set_snapchat_secrets("refresh-mirror");
  ServerProcess server({});
  InspectionClient client(server);
  ScratchDir dir("snapchat-mirror");
  std::string csv = dir.file("people.csv");
  auto engine = open_engine(people_config(dir, csv, snapchat_destination(server, "snap", "people")));

  std::vector<Person> first = make_people(1, 300);
  write_people(csv, first);
  DistributionJob added = run_to_end(*engine, queue_job(*engine, "people", "snap"));
  REQUIRE_MESSAGE(added.status == DistributionStatus::kCompleted, added.last_error);
  std::string id = inspected_id(client, "snapchat", "people");
  CHECK(segment_identifiers(inspect_audience(client, "snapchat", id), "EMAIL_SHA256") == email_hashes(first));

  std::vector<Person> second(first.begin() + 50, first.end());
  for (int i = 0; i < 30; ++i) second[i].email = "changed" + std::to_string(second[i].id) + "@example.com";
  for (const auto& person : make_people(1001, 40)) second.push_back(person);
  write_people(csv, second);
  DistributionJob mirrored = run_to_end(*engine, queue_job(*engine, "people", "snap", SyncMode::kMirror));
  REQUIRE_MESSAGE(mirrored.status == DistributionStatus::kCompleted, mirrored.last_error);
  Json segment = inspect_audience(client, "snapchat", id);
  CHECK(segment_identifiers(segment, "EMAIL_SHA256") == email_hashes(second));

  std::vector<Person> leaving(second.begin() + 30, second.begin() + 50);
  write_people(csv, leaving);
  DistributionJob removal = run_to_end(*engine, queue_job(*engine, "people", "snap", SyncMode::kRemove));
  REQUIRE_MESSAGE(removal.status == DistributionStatus::kCompleted, removal.last_error);
  std::vector<Person> staying(second.begin(), second.begin() + 30);
  staying.insert(staying.end(), second.begin() + 50, second.end());
  Json after = inspect_audience(client, "snapchat", id);
  CHECK(segment_identifiers(after, "EMAIL_SHA256") == email_hashes(staying));
  CHECK(after["counters"]["unmatched_removes"] == 0);
}

TEST_CASE("snapchat job survives throttling and 5xx") {
  set_snapchat_secrets("refresh-faults");
  ServerProcess server({"--error-rate", "0.15", "--drop-rate", "0.03", "--rate-limit", "10",
                        "--rate-window-ms", "1000", "--seed", "11"});
  InspectionClient client(server);
  ScratchDir dir("snapchat-faults");
  std::string csv = dir.file("people.csv");
  std::vector<Person> people = make_people(1, 2000);
  write_people(csv, people);
  Config config = people_config(
      dir, csv,
      snapchat_destination(
          server, "snap", "faults",
          Json{{"ad_account_id", "faults-account"},
               {"rate_limit", {{"algorithm", "token_bucket"}, {"rate_per_second", 40}, {"burst", 4}}}}));
  config.engine.batch_size = 50;
  auto engine = open_engine(config);

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "snap"));
  REQUIRE_MESSAGE(job.status == DistributionStatus::kCompleted, job.last_error);
  Json stats = client.stats();
  CAPTURE(stats.dump());
  CHECK(platform_faults(stats, "snapchat") >= 3);
  CHECK(stats["accounts"]["snapchat:faults-account"]["throttled"].get<int>() > 0);
  Json segment = inspect_audience(client, "snapchat", inspected_id(client, "snapchat", "faults"));
  CHECK(segment_identifiers(segment, "EMAIL_SHA256") == email_hashes(people));
}

TEST_CASE("snapchat expired access token is refreshed once") {
  set_snapchat_secrets("refresh-expiry");
  // Each access token expires after five API requests, so a run of 20 batches needs several.
  ServerProcess server({"--oauth-expire-after", "5"});
  InspectionClient client(server);
  ScratchDir dir("snapchat-expiry");
  std::string csv = dir.file("people.csv");
  std::vector<Person> people = make_people(1, 1000);
  write_people(csv, people);
  Config config = people_config(dir, csv, snapchat_destination(server, "snap", "expiring"));
  config.engine.batch_size = 50;
  auto engine = open_engine(config);

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "snap"));
  REQUIRE_MESSAGE(job.status == DistributionStatus::kCompleted, job.last_error);
  Json segment = inspect_audience(client, "snapchat", inspected_id(client, "snapchat", "expiring"));
  CHECK(segment_identifiers(segment, "EMAIL_SHA256") == email_hashes(people));

  // Two requests to find or create the segment and 20 uploads: 22 requests at five per token.
  // Every refresh after the first follows a 401, and each 401 is followed by exactly one refresh.
  Json stats = client.stats();
  CAPTURE(stats.dump());
  std::int64_t rejected = stats["platforms"]["snapchat"]["errors_by_code"].value("401", 0);
  std::int64_t refreshes = stats["platforms"]["oauth"].value("access_tokens_issued", 0);
  CHECK(rejected >= 4);
  CHECK(refreshes == rejected + 1);
}

TEST_CASE("snapchat revoked refresh token pauses the destination") {
  set_snapchat_secrets("refresh-revoked");
  ServerProcess server({"--oauth-revoke", "refresh-revoked"});
  ScratchDir dir("snapchat-revoked");
  std::string csv = dir.file("people.csv");
  write_people(csv, make_people(1, 100));
  auto engine = open_engine(people_config(dir, csv, snapchat_destination(server, "snap", "revoked")));

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "snap"));
  CHECK(job.status == DistributionStatus::kFailed);
  CHECK(job.attempts == 1);
  CHECK(job.last_error.find(kSnapRefreshTokenVariable) != std::string::npos);
  CHECK(job.last_error.find("invalid_grant") != std::string::npos);
}

}  // namespace activation::testing
