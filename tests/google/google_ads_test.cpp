// The "google_ads" destination (Google Ads API OfflineUserDataJob) through the real engine and
// the test server: list creation, jobs that never mix adds and removes, partial failures mapped
// back to rows, CONCURRENT_MODIFICATION, replace, faults, token expiry and the allow-list.
#include <doctest/doctest.h>

#include "google/google_test_support.hpp"

namespace activation::testing {
namespace {

using Json = nlohmann::json;

// Every job of the list ran to SUCCESS and carried one kind of operation.
void check_jobs(const Json& list) {
  for (const auto& job : list["jobs"]) {
    CAPTURE(job.dump());
    CHECK(job["status"] == "SUCCESS");
    CHECK((job["operation"] == "create" || job["operation"] == "remove"));
  }
}

struct Fixture {
  explicit Fixture(const std::string& tag, const std::vector<std::string>& server_arguments = {})
      : server(server_arguments), inspector(server), dir("google-ads-" + tag) {
    set_google_secrets("ads-" + tag);
    config = test_engine_config(dir);
    config.engine.batch_size = 8;
  }

  void add_audience(const std::string& name, int first, int count) {
    std::string path = dir.file(name + ".csv");
    write_people(path, make_people(first, count));
    config.audiences.push_back(csv_audience(name, path, google_people_mapping()));
  }

  ServerProcess server;
  GoogleInspector inspector;
  ScratchDir dir;
  Config config;
};

}  // namespace

TEST_CASE("google ads creates the list and lands add, mirror and remove exactly") {
  Fixture fixture("exact", {"--google-processing-polls", "2"});
  fixture.add_audience("first", 1, 30);
  fixture.add_audience("later", 11, 30);
  fixture.add_audience("leavers", 31, 5);
  fixture.config.destinations.push_back(
      google_destination(fixture.server, "gads", "google_ads",
                         {{"user_list_name", "Buyers"},
                          {"consent", {{"ad_user_data", "granted"}, {"ad_personalization", "granted"}}}}));
  auto engine = open_engine(fixture.config);

  DistributionJob added = run_to_end(*engine, queue_job(*engine, "first", "gads", SyncMode::kMirror));
  REQUIRE_MESSAGE(added.status == DistributionStatus::kCompleted, added.last_error);
  std::string list_id = inspected_id(fixture.inspector, "google", "Buyers");
  REQUIRE_FALSE(list_id.empty());
  CHECK(fixture.inspector.people_in(list_id, 1, 60) == id_range(1, 30));
  Json list = fixture.inspector.list(list_id);
  CHECK(list["upload_key_type"] == "CONTACT_INFO");
  CHECK(list["consents"][0] == R"({"adPersonalization":"GRANTED","adUserData":"GRANTED"})");
  CHECK(list["jobs"].size() == 1);
  check_jobs(list);

  // The audience now contains 11..40: a remove job for 1..10 runs before an add job for 31..40.
  fixture.config.audiences[0].source.path = fixture.dir.file("later.csv");
  engine.reset();
  engine = open_engine(fixture.config);
  DistributionJob mirrored = run_to_end(*engine, queue_job(*engine, "first", "gads", SyncMode::kMirror));
  REQUIRE_MESSAGE(mirrored.status == DistributionStatus::kCompleted, mirrored.last_error);
  CHECK(fixture.inspector.people_in(list_id, 1, 60) == id_range(11, 40));
  list = fixture.inspector.list(list_id);
  CHECK(list["jobs"].size() == 3);
  check_jobs(list);

  DistributionJob removed = run_to_end(*engine, queue_job(*engine, "leavers", "gads", SyncMode::kRemove));
  REQUIRE_MESSAGE(removed.status == DistributionStatus::kCompleted, removed.last_error);
  CHECK(fixture.inspector.people_in(list_id, 1, 60) == "11-30,36-40");
  CHECK(fixture.inspector.list(list_id)["unmatched_removes"] == 0);

  // A second run finds the list by name instead of creating another one.
  CHECK(fixture.inspector.get("/__inspect/google/audiences")["audiences"].size() == 1);
}

TEST_CASE("google ads partial failure rejects the row at the operation index") {
  Fixture fixture("partial");
  fixture.add_audience("people", 1, 12);
  fixture.inspector.post(
      "/__inspect/google/faults",
      {{"reject_identifiers", {sha256_of("person3@example.com"), sha256_of("person10@example.com")}}});
  fixture.config.destinations.push_back(
      google_destination(fixture.server, "gads", "google_ads", {{"user_list_name", "Partial"}}));
  auto engine = open_engine(fixture.config);

  JobId id = queue_job(*engine, "people", "gads");
  DistributionJob job = run_to_end(*engine, id);
  REQUIRE_MESSAGE(job.status == DistributionStatus::kCompleted, job.last_error);
  CHECK(progress_of(job, "gads")->counters.outcome(RowOutcome::kAccepted) == 10);
  CHECK(progress_of(job, "gads")->counters.outcome(RowOutcome::kRejected) == 2);

  std::set<int> expected = id_set(1, 12);
  expected.erase(3);
  expected.erase(10);
  CHECK(fixture.inspector.people_in(inspected_id(fixture.inspector, "google", "Partial"), 1, 12) ==
        ranges_text(expected));

  std::set<std::uint64_t> lines;
  Status exported = engine->export_row_outcomes(id, [&](const RowOutcomeRecord& row) {
    lines.insert(row.line);
    CHECK(row.reason_code == "google_rejected");
    CHECK(row.reason ==
          "Google rejected the member: offlineUserDataJobError: INVALID_SHA256_FORMAT: The SHA256 encoded "
          "value is "
          "malformed.");
    return Status::ok();
  });
  REQUIRE(exported.is_ok());
  CHECK(lines == std::set<std::uint64_t>{4, 11});
}

TEST_CASE("google ads retries CONCURRENT_MODIFICATION") {
  Fixture fixture("concurrent");
  fixture.add_audience("people", 1, 20);
  fixture.inspector.post("/__inspect/google/faults", {{"concurrent_modifications", 3}});
  fixture.config.destinations.push_back(
      google_destination(fixture.server, "gads", "google_ads", {{"user_list_name", "Busy"}}));
  auto engine = open_engine(fixture.config);

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "gads"));
  REQUIRE_MESSAGE(job.status == DistributionStatus::kCompleted, job.last_error);
  std::string list_id = inspected_id(fixture.inspector, "google", "Busy");
  CHECK(fixture.inspector.people_in(list_id, 1, 20) == id_range(1, 20));
  Json list = fixture.inspector.list(list_id);
  REQUIRE(list["jobs"].size() == 1);
  // Three batches of at most 8, and three refused calls sent again.
  CHECK(list["jobs"][0]["add_operations_calls"] == 6);
}

TEST_CASE("google ads replace clears the list with removeAll") {
  Fixture fixture("replace");
  fixture.add_audience("old", 1, 20);
  fixture.add_audience("new", 11, 20);
  fixture.config.destinations.push_back(
      google_destination(fixture.server, "gads", "google_ads", {{"user_list_name", "Whole"}}));
  auto engine = open_engine(fixture.config);

  REQUIRE(run_to_end(*engine, queue_job(*engine, "old", "gads")).status == DistributionStatus::kCompleted);
  DistributionJob replaced = run_to_end(*engine, queue_job(*engine, "new", "gads", SyncMode::kReplace));
  REQUIRE_MESSAGE(replaced.status == DistributionStatus::kCompleted, replaced.last_error);
  std::string list_id = inspected_id(fixture.inspector, "google", "Whole");
  CHECK(fixture.inspector.people_in(list_id, 1, 40) == id_range(11, 30));
  Json list = fixture.inspector.list(list_id);
  REQUIRE(list["jobs"].size() == 2);
  CHECK(list["jobs"][1]["remove_all"] == true);
}

TEST_CASE("google ads survives faults, throttling and an expiring token") {
  Fixture fixture("faults", {"--error-rate", "0.15", "--drop-rate", "0.05", "--rate-limit", "6",
                             "--rate-window-ms", "1000", "--oauth-expire-after", "5", "--seed", "5"});
  fixture.add_audience("people", 1, 80);
  // The adapter's own limiter allows more than the server's 6 requests per second, so the server
  // throttles some requests.
  fixture.config.destinations.push_back(google_destination(
      fixture.server, "gads", "google_ads",
      {{"user_list_name", "Rough"},
       {"rate_limit", {{"algorithm", "token_bucket"}, {"rate_per_second", 40}, {"burst", 4}}}}));
  auto engine = open_engine(fixture.config);

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "gads"));
  REQUIRE_MESSAGE(job.status == DistributionStatus::kCompleted, job.last_error);
  std::string list_id = inspected_id(fixture.inspector, "google", "Rough");
  CHECK(fixture.inspector.people_in(list_id, 1, 80) == id_range(1, 80));
  Json stats = fixture.inspector.get("/__inspect/stats");
  CHECK(stats["accounts"]["google:ads"]["throttled"].get<std::int64_t>() > 0);
  Json oauth = stats["platforms"]["oauth"];
  CHECK(oauth["expired_token_rejections"].get<std::int64_t>() >= 1);
  CHECK(oauth["access_tokens_issued"].get<std::int64_t>() ==
        oauth["expired_token_rejections"].get<std::int64_t>() + 1);
}

TEST_CASE("google ads names the allow-list when the account lacks it") {
  Fixture fixture("allowlist", {"--google-not-allowlisted"});
  fixture.add_audience("people", 1, 5);
  fixture.config.destinations.push_back(
      google_destination(fixture.server, "gads", "google_ads", {{"user_list_name", "Closed"}}));
  auto engine = open_engine(fixture.config);

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "gads"));
  CHECK(job.status == DistributionStatus::kFailed);
  CHECK(job.last_error.find("notAllowlistedError: CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE") !=
        std::string::npos);
}

}  // namespace activation::testing
