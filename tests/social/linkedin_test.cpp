// The LinkedIn adapter against the test server on loopback, alone and through the engine: the
// segment's creation and ready delay, per-element statuses, exact adds, removes and mirrors,
// throttling and 5xx responses, a sunset version and an expired token.
#include <doctest/doctest.h>

#include "social/social_test_support.hpp"

namespace activation::testing {
namespace {

using Json = nlohmann::json;

DestinationRun linkedin_run(std::int64_t job_id) {
  DestinationRun run;
  run.job_id = job_id;
  run.audience = "people";
  run.destination = "li";
  run.mode = SyncMode::kAdd;
  run.field_slots = {{Field::kEmail, 1}};
  return run;
}

}  // namespace

TEST_CASE("linkedin segment is created once and waited for") {
  set_env(kSocialTokenVariable, "li-token");
  ServerProcess server({"--linkedin-ready-delay-ms", "400"});
  InspectionClient client(server);

  SUBCASE("the adapter waits out the delay after creating the segment") {
    auto adapter = make_test_adapter(
        linkedin_destination(server, "li", "buyers", Json{{"segment_ready_delay_seconds", 0.5}}));
    REQUIRE(adapter.is_ok());
    REQUIRE((*adapter)->begin(linkedin_run(1)).is_ok());
    Batch batch;
    batch.number = 1;
    batch.operations.push_back(email_operation(OperationType::kAdd, sha256_hex("a@example.com")));
    BatchResult result = (*adapter)->send(batch);
    REQUIRE_MESSAGE(result.transport.is_ok(), result.transport.to_string());
    CHECK(result.results[0].outcome == RowOutcome::kAccepted);

    std::string id = inspected_id(client, "linkedin", "buyers");
    Json segment = inspect_audience(client, "linkedin", id);
    CHECK(segment["member_count"] == 1);
    CHECK(segment["counters"]["not_ready"] == 0);

    // A second run finds the segment by name instead of creating another.
    auto again = make_test_adapter(linkedin_destination(server, "li", "buyers"));
    REQUIRE(again.is_ok());
    REQUIRE((*again)->begin(linkedin_run(2)).is_ok());
    CHECK(client.get("/__inspect/linkedin/audiences")["audiences"].size() == 1);
  }
  SUBCASE("without the delay the server refuses and the batch is deferred for a retry") {
    auto adapter = make_test_adapter(
        linkedin_destination(server, "li", "eager", Json{{"segment_ready_delay_seconds", 0}}));
    REQUIRE(adapter.is_ok());
    REQUIRE((*adapter)->begin(linkedin_run(3)).is_ok());
    Batch batch;
    batch.number = 1;
    batch.operations.push_back(email_operation(OperationType::kAdd, sha256_hex("b@example.com")));
    BatchResult refused = (*adapter)->send(batch);
    CHECK(refused.transport.code() == StatusCode::kUnavailable);
    CHECK(refused.transport.message().find("is not ready yet") != std::string::npos);
    REQUIRE(refused.retry_after.has_value());

    std::this_thread::sleep_for(std::chrono::milliseconds(450));
    BatchResult accepted = (*adapter)->send(batch);
    REQUIRE_MESSAGE(accepted.transport.is_ok(), accepted.transport.to_string());
    Json segment = inspect_audience(client, "linkedin", inspected_id(client, "linkedin", "eager"));
    CHECK(segment["member_count"] == 1);
    CHECK(segment["counters"]["not_ready"] == 1);
  }
}

TEST_CASE("linkedin element failures become rejected rows") {
  set_env(kSocialTokenVariable, "li-token");
  ServerProcess server({"--linkedin-ready-delay-ms", "0"});
  InspectionClient client(server);
  auto adapter = make_test_adapter(linkedin_destination(server, "li", "elements"));
  REQUIRE(adapter.is_ok());
  REQUIRE((*adapter)->begin(linkedin_run(4)).is_ok());

  Batch batch;
  batch.number = 1;
  batch.operations.push_back(email_operation(OperationType::kAdd, sha256_hex("a@example.com")));
  batch.operations.push_back(email_operation(OperationType::kAdd, "Not-A-Hash"));
  batch.operations.push_back(email_operation(OperationType::kAdd, sha256_hex("c@example.com")));
  MemberOperation nameless;
  nameless.member_key = "nameless";
  nameless.identifiers.push_back({Field::kFirstName, "Ann"});
  batch.operations.push_back(nameless);

  BatchResult result = (*adapter)->send(batch);
  REQUIRE_MESSAGE(result.transport.is_ok(), result.transport.to_string());
  REQUIRE(result.results.size() == 4);
  CHECK(result.results[0].outcome == RowOutcome::kAccepted);
  CHECK(result.results[2].outcome == RowOutcome::kAccepted);
  CHECK(result.results[1].outcome == RowOutcome::kRejected);
  CHECK(result.results[1].reason.code == "linkedin_rejected");
  CHECK(result.results[1].reason.message ==
        "LinkedIn rejected the element (status 400): /userIds: SHA256_EMAIL must be 64 lowercase hexadecimal "
        "characters");
  CHECK(result.results[3].outcome == RowOutcome::kRejected);
  CHECK(result.results[3].reason.code == "linkedin_no_key");

  Json segment = inspect_audience(client, "linkedin", inspected_id(client, "linkedin", "elements"));
  CHECK(segment["member_count"] == 2);
  CHECK(segment["counters"]["rejected_elements"] == 1);
}

TEST_CASE("linkedin add, mirror and remove land exactly") {
  set_env(kSocialTokenVariable, "li-token");
  ServerProcess server({"--linkedin-ready-delay-ms", "200"});
  InspectionClient client(server);
  ScratchDir dir("linkedin-mirror");
  std::string csv = dir.file("people.csv");
  auto engine = open_engine(people_config(dir, csv, linkedin_destination(server, "li", "people")));

  std::vector<Person> first = make_people(1, 300);
  write_people(csv, first);
  DistributionJob added = run_to_end(*engine, queue_job(*engine, "people", "li"));
  REQUIRE_MESSAGE(added.status == DistributionStatus::kCompleted, added.last_error);
  std::string id = inspected_id(client, "linkedin", "people");
  CHECK(received_emails("linkedin", inspect_audience(client, "linkedin", id)) == email_hashes(first));

  // 50 members leave, 30 change their email, 40 join.
  std::vector<Person> second(first.begin() + 50, first.end());
  for (int i = 0; i < 30; ++i) second[i].email = "changed" + std::to_string(second[i].id) + "@example.com";
  for (const auto& person : make_people(1001, 40)) second.push_back(person);
  write_people(csv, second);
  DistributionJob mirrored = run_to_end(*engine, queue_job(*engine, "people", "li", SyncMode::kMirror));
  REQUIRE_MESSAGE(mirrored.status == DistributionStatus::kCompleted, mirrored.last_error);
  Json segment = inspect_audience(client, "linkedin", id);
  CHECK(received_emails("linkedin", segment) == email_hashes(second));
  CHECK(segment["counters"]["unmatched_removes"] == 0);
  CHECK(segment["counters"]["removes"] == 80);

  std::vector<Person> leaving(second.begin() + 30, second.begin() + 50);
  write_people(csv, leaving);
  DistributionJob removal = run_to_end(*engine, queue_job(*engine, "people", "li", SyncMode::kRemove));
  REQUIRE_MESSAGE(removal.status == DistributionStatus::kCompleted, removal.last_error);
  std::vector<Person> staying(second.begin(), second.begin() + 30);
  staying.insert(staying.end(), second.begin() + 50, second.end());
  Json after = inspect_audience(client, "linkedin", id);
  CHECK(received_emails("linkedin", after) == email_hashes(staying));
  CHECK(after["counters"]["unmatched_removes"] == 0);
}

TEST_CASE("linkedin replace is rejected when queued") {
  set_env(kSocialTokenVariable, "li-token");
  ServerProcess server({});
  ScratchDir dir("linkedin-replace");
  std::string csv = dir.file("people.csv");
  write_people(csv, make_people(1, 10));
  auto engine = open_engine(people_config(dir, csv, linkedin_destination(server, "li", "people")));

  for (bool dry_run : {false, true}) {
    DistributeOptions options;
    options.mode = SyncMode::kReplace;
    options.dry_run = dry_run;
    std::vector<std::string> destinations = {"li"};
    auto job = engine->distribute("people", destinations, options);
    REQUIRE_FALSE(job.is_ok());
    CHECK(job.status().code() == StatusCode::kInvalidArgument);
    CHECK(job.status().message().find("destination 'li': mode replace is not available") != std::string::npos);
    CHECK(job.status().message().find("use mode mirror") != std::string::npos);
  }
  auto queued = engine->history("people", 10);
  REQUIRE(queued.is_ok());
  CHECK(queued->empty());
}

TEST_CASE("linkedin job survives throttling and 5xx") {
  set_env(kSocialTokenVariable, "li-token");
  ServerProcess server({"--linkedin-ready-delay-ms", "0", "--error-rate", "0.15", "--drop-rate", "0.03",
                        "--rate-limit", "10", "--rate-window-ms", "1000", "--seed", "5"});
  InspectionClient client(server);
  ScratchDir dir("linkedin-faults");
  std::string csv = dir.file("people.csv");
  std::vector<Person> people = make_people(1, 2000);
  write_people(csv, people);
  Config config = test_engine_config(dir);
  config.engine.batch_size = 50;
  config.audiences.push_back(csv_audience("people", csv, people_mapping()));
  // The limiter allows more than the server, so the server throttles with HTTP 429.
  config.destinations.push_back(linkedin_destination(
      server, "li", "faults",
      Json{{"ad_account_id", "600001"},
           {"rate_limit", {{"algorithm", "token_bucket"}, {"rate_per_second", 40}, {"burst", 4}}}}));
  auto engine = open_engine(config);

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "li"));
  REQUIRE_MESSAGE(job.status == DistributionStatus::kCompleted, job.last_error);
  const DestinationProgress* progress = progress_of(job, "li");
  REQUIRE(progress != nullptr);
  CHECK(progress->counters.outcome(RowOutcome::kAccepted) == 2000);

  Json stats = client.stats();
  CAPTURE(stats.dump());
  CHECK(platform_faults(stats, "linkedin") >= 3);
  CHECK(stats["accounts"]["linkedin:urn:li:sponsoredAccount:600001"]["throttled"].get<int>() > 0);
  Json segment = inspect_audience(client, "linkedin", inspected_id(client, "linkedin", "faults"));
  CHECK(received_emails("linkedin", segment) == email_hashes(people));
}

TEST_CASE("linkedin sunset version names the setting") {
  set_env(kSocialTokenVariable, "li-token");
  ServerProcess server({"--linkedin-min-version", "202601"});
  auto adapter =
      make_test_adapter(linkedin_destination(server, "li", "old", Json{{"api_version", "202503"}}));
  REQUIRE(adapter.is_ok());
  Status begun = (*adapter)->begin(linkedin_run(5));
  CHECK(begun.code() == StatusCode::kFailedPrecondition);
  CHECK(begun.message().find("LinkedIn no longer serves settings.api_version 202503") != std::string::npos);
}

TEST_CASE("linkedin expired token pauses the destination") {
  set_env(kSocialTokenVariable, "li-token");
  ServerProcess server({"--linkedin-ready-delay-ms", "0", "--token-expire-after", "5"});
  ScratchDir dir("linkedin-token");
  std::string csv = dir.file("people.csv");
  write_people(csv, make_people(1, 1000));
  Config config = test_engine_config(dir);
  config.engine.batch_size = 100;
  config.audiences.push_back(csv_audience("people", csv, people_mapping()));
  config.destinations.push_back(linkedin_destination(server, "li", "expiring"));
  auto engine = open_engine(config);

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "li"));
  CHECK(job.status == DistributionStatus::kFailed);
  CHECK(job.attempts == 1);
  CHECK(job.last_error.find("LinkedIn rejected the access token in the environment variable " +
                            std::string(kSocialTokenVariable) + " (secret access_token)") !=
        std::string::npos);
  CHECK(job.last_error.find("INVALID_ACCESS_TOKEN") != std::string::npos);
}

TEST_CASE("linkedin settings errors name the key") {
  set_env(kSocialTokenVariable, "li-token");
  ServerProcess server({});
  SUBCASE("a segment needs an id or a name") {
    DestinationConfig config = linkedin_destination(server, "li", "");
    auto adapter = make_test_adapter(config);
    REQUIRE_FALSE(adapter.is_ok());
    CHECK(adapter.status().message() ==
          "destination 'li': settings: set exactly one of segment_id (an existing DMP segment) and "
          "segment_name (the segment to find or create by name)");
  }
  SUBCASE("more than 5000 elements per request") {
    auto adapter =
        make_test_adapter(linkedin_destination(server, "li", "x", Json{{"max_elements_per_request", 5001}}));
    REQUIRE_FALSE(adapter.is_ok());
    CHECK(
        adapter.status().message() ==
        "destination 'li': settings.max_elements_per_request: expected an integer from 1 to 5000, got 5001");
  }
  SUBCASE("a missing token secret") {
    DestinationConfig config = linkedin_destination(server, "li", "x");
    config.secret_env.clear();
    auto adapter = make_test_adapter(config);
    REQUIRE_FALSE(adapter.is_ok());
    CHECK(adapter.status().message() ==
          "destination 'li': secrets.access_token: missing; name the environment variable that contains it, "
          "such as {\"access_token\": \"LINKEDIN_ACCESS_TOKEN\"}");
  }
}

}  // namespace activation::testing
