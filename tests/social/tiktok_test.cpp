// The TikTok adapter against the test server on loopback: a bad row isolated from its batch, exact adds,
// removes and mirrors, throttling (code 40100) and 5xx responses, and an expired token.
#include <doctest/doctest.h>

#include "social/social_test_support.hpp"

namespace activation::testing {
namespace {

using Json = nlohmann::json;

DestinationRun tiktok_run(std::int64_t job_id) {
  DestinationRun run;
  run.job_id = job_id;
  run.audience = "people";
  run.destination = "tt";
  run.mode = SyncMode::kAdd;
  run.field_slots = {{Field::kEmail, 1}, {Field::kPhone, 2}};
  return run;
}

// EMAIL_SHA256 value -> the number of rows of the audience with it.
std::map<std::string, int> audience_emails(const Json& audience) {
  std::map<std::string, int> emails;
  for (const auto& member : audience["members"]) {
    if (member.contains("EMAIL_SHA256")) ++emails[member["EMAIL_SHA256"].get<std::string>()];
  }
  return emails;
}

// The rows TikTok holds for each person: one per phone.
std::map<std::string, int> expected_rows(const std::vector<Person>& people) {
  std::map<std::string, int> rows;
  for (const auto& person : people) rows[sha256_hex(person.email)] = person.phone2.empty() ? 1 : 2;
  return rows;
}

}  // namespace

TEST_CASE("tiktok bad row is isolated and rejected") {
  set_env(kSocialTokenVariable, "tt-token");
  ServerProcess server({});
  InspectionClient client(server);
  auto adapter = make_test_adapter(tiktok_destination(server, "tt", "isolated"));
  REQUIRE(adapter.is_ok());
  REQUIRE((*adapter)->begin(tiktok_run(1)).is_ok());

  Batch batch;
  batch.number = 1;
  for (int i = 0; i < 20; ++i) {
    batch.operations.push_back(
        email_operation(OperationType::kAdd, sha256_hex("p" + std::to_string(i) + "@x.com")));
  }
  batch.operations[13].identifiers[0].value = "not-hashed@x.com";
  BatchResult result = (*adapter)->send(batch);
  REQUIRE_MESSAGE(result.transport.is_ok(), result.transport.to_string());
  int rejected = 0;
  for (const auto& row : result.results) rejected += row.outcome == RowOutcome::kRejected ? 1 : 0;
  CHECK(rejected == 1);
  CHECK(result.results[13].outcome == RowOutcome::kRejected);
  CHECK(result.results[13].reason.code == "tiktok_rejected");
  const std::string expected =
      "TikTok rejected the request: invalid_request: (#40062) batch_data[0][0]: the EMAIL_SHA256 value is "
      "not hashed. (request_id ";
  CHECK(result.results[13].reason.message.substr(0, expected.size()) == expected);

  Json audience = inspect_audience(client, "tiktok", inspected_id(client, "tiktok", "isolated"));
  CHECK(audience["member_count"] == 19);
  // The first request and the halving down to the bad row: far fewer than one request per row.
  CHECK(audience["counters"]["requests"].get<int>() <= 10);
}

TEST_CASE("tiktok add, mirror and remove land exactly") {
  set_env(kSocialTokenVariable, "tt-token");
  ServerProcess server({});
  InspectionClient client(server);
  ScratchDir dir("tiktok-mirror");
  std::string csv = dir.file("people.csv");
  auto engine = open_engine(people_config(dir, csv, tiktok_destination(server, "tt", "people")));

  std::vector<Person> first = make_people(1, 300);
  write_people(csv, first);
  DistributionJob added = run_to_end(*engine, queue_job(*engine, "people", "tt"));
  REQUIRE_MESSAGE(added.status == DistributionStatus::kCompleted, added.last_error);
  std::string id = inspected_id(client, "tiktok", "people");
  CHECK(audience_emails(inspect_audience(client, "tiktok", id)) == expected_rows(first));

  std::vector<Person> second(first.begin() + 50, first.end());
  for (int i = 0; i < 30; ++i) second[i].email = "changed" + std::to_string(second[i].id) + "@example.com";
  for (const auto& person : make_people(1001, 40)) second.push_back(person);
  write_people(csv, second);
  DistributionJob mirrored = run_to_end(*engine, queue_job(*engine, "people", "tt", SyncMode::kMirror));
  REQUIRE_MESSAGE(mirrored.status == DistributionStatus::kCompleted, mirrored.last_error);
  Json audience = inspect_audience(client, "tiktok", id);
  CHECK(audience_emails(audience) == expected_rows(second));
  CHECK(audience["counters"]["unmatched_removes"] == 0);

  std::vector<Person> leaving(second.begin() + 30, second.begin() + 50);
  write_people(csv, leaving);
  DistributionJob removal = run_to_end(*engine, queue_job(*engine, "people", "tt", SyncMode::kRemove));
  REQUIRE_MESSAGE(removal.status == DistributionStatus::kCompleted, removal.last_error);
  std::vector<Person> staying(second.begin(), second.begin() + 30);
  staying.insert(staying.end(), second.begin() + 50, second.end());
  Json after = inspect_audience(client, "tiktok", id);
  CHECK(audience_emails(after) == expected_rows(staying));
  CHECK(after["counters"]["unmatched_removes"] == 0);
}

TEST_CASE("tiktok job survives throttling and 5xx") {
  set_env(kSocialTokenVariable, "tt-token");
  ServerProcess server({"--error-rate", "0.15", "--drop-rate", "0.03", "--rate-limit", "10",
                        "--rate-window-ms", "1000", "--seed", "9"});
  InspectionClient client(server);
  ScratchDir dir("tiktok-faults");
  std::string csv = dir.file("people.csv");
  std::vector<Person> people = make_people(1, 2000);
  write_people(csv, people);
  Config config = test_engine_config(dir);
  config.engine.batch_size = 50;
  config.audiences.push_back(csv_audience("people", csv, people_mapping()));
  config.destinations.push_back(tiktok_destination(
      server, "tt", "faults",
      Json{{"advertiser_id", "7000000000000000001"},
           {"rate_limit", {{"algorithm", "token_bucket"}, {"rate_per_second", 40}, {"burst", 4}}}}));
  auto engine = open_engine(config);

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "tt"));
  REQUIRE_MESSAGE(job.status == DistributionStatus::kCompleted, job.last_error);
  const DestinationProgress* progress = progress_of(job, "tt");
  REQUIRE(progress != nullptr);
  CHECK(progress->counters.outcome(RowOutcome::kAccepted) == 2000);

  Json stats = client.stats();
  CAPTURE(stats.dump());
  CHECK(platform_faults(stats, "tiktok") >= 3);
  CHECK(stats["accounts"]["tiktok:7000000000000000001"]["throttled"].get<int>() > 0);
  CHECK(stats["platforms"]["tiktok"]["errors_by_code"]["40100"].get<int>() > 0);
  Json audience = inspect_audience(client, "tiktok", inspected_id(client, "tiktok", "faults"));
  CHECK(audience_emails(audience) == expected_rows(people));
}

TEST_CASE("tiktok expired token pauses the destination") {
  set_env(kSocialTokenVariable, "tt-token");
  ServerProcess server({"--token-expire-after", "4"});
  ScratchDir dir("tiktok-token");
  std::string csv = dir.file("people.csv");
  write_people(csv, make_people(1, 1000));
  Config config = test_engine_config(dir);
  config.engine.batch_size = 100;
  config.audiences.push_back(csv_audience("people", csv, people_mapping()));
  config.destinations.push_back(tiktok_destination(server, "tt", "expiring"));
  auto engine = open_engine(config);

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "tt"));
  CHECK(job.status == DistributionStatus::kFailed);
  CHECK(job.attempts == 1);
  CHECK(job.last_error.find("TikTok rejected the access token in the environment variable " +
                            std::string(kSocialTokenVariable) + " (secret access_token)") !=
        std::string::npos);
  CHECK(job.last_error.find("(#40102) Access token has expired.") != std::string::npos);
}

}  // namespace activation::testing
