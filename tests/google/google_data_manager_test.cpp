// The "google" destination (Data Manager API) through the real engine, with a SQLite store in a
// scratch folder and the test server on loopback. The cases: exact adds, removes and mirrors,
// per-member rejections, throttling and faults, token expiry and a revoked refresh token.
#include <doctest/doctest.h>

#include "google/google_test_support.hpp"

namespace activation::testing {
namespace {

using Json = nlohmann::json;

// The non-accepted rows of a job as (line, reason code, message).
std::vector<RowOutcomeRecord> failed_rows(DistributionEngine& engine, JobId id) {
  std::vector<RowOutcomeRecord> rows;
  Status status = engine.export_row_outcomes(id, [&](const RowOutcomeRecord& record) {
    rows.push_back(record);
    return Status::ok();
  });
  REQUIRE(status.is_ok());
  return rows;
}

}  // namespace

TEST_CASE("data manager add, mirror and remove land exactly") {
  set_google_secrets("dm-exact");
  ServerProcess server({"--google-processing-polls", "2"});
  GoogleInspector inspector(server);
  std::string list_id = inspector.create_list("exact");
  ScratchDir dir("google-dm-exact");
  Config config = test_engine_config(dir);
  config.engine.batch_size = 7;

  std::string first = dir.file("first.csv");
  std::string second = dir.file("second.csv");
  std::string leavers = dir.file("leavers.csv");
  write_people(first, make_people(1, 40));
  write_people(second, make_people(11, 40));
  write_people(leavers, make_people(11, 10));
  config.audiences.push_back(csv_audience("people", first, google_people_mapping()));
  config.audiences.push_back(csv_audience("people_later", second, google_people_mapping()));
  config.audiences.push_back(csv_audience("leavers", leavers, google_people_mapping()));
  Json settings = {{"user_list_id", list_id},
                   {"consent", {{"ad_user_data", "granted"}, {"ad_personalization", "denied"}}}};
  config.destinations.push_back(google_destination(server, "gdm", "google", settings));
  auto engine = open_engine(config);

  SUBCASE("add then remove") {
    DistributionJob added = run_to_end(*engine, queue_job(*engine, "people", "gdm"));
    REQUIRE_MESSAGE(added.status == DistributionStatus::kCompleted, added.last_error);
    CHECK(progress_of(added, "gdm")->counters.outcome(RowOutcome::kAccepted) == 40);
    CHECK(inspector.people_in(list_id, 1, 60) == id_range(1, 40));
    Json list = inspector.list(list_id);
    CHECK(list["size"] == 40);
    REQUIRE_FALSE(list["consents"].empty());
    CHECK(list["consents"][0] == R"({"adPersonalization":"CONSENT_DENIED","adUserData":"CONSENT_GRANTED"})");

    DistributionJob removed = run_to_end(*engine, queue_job(*engine, "leavers", "gdm", SyncMode::kRemove));
    REQUIRE_MESSAGE(removed.status == DistributionStatus::kCompleted, removed.last_error);
    std::set<int> expected = id_set(1, 10);
    for (int id : id_set(21, 40)) expected.insert(id);
    CHECK(inspector.people_in(list_id, 1, 60) == ranges_text(expected));
    CHECK(inspector.list(list_id)["unmatched_removes"] == 0);
  }

  SUBCASE("mirror drops the leavers and adds the newcomers") {
    DistributionJob added = run_to_end(*engine, queue_job(*engine, "people", "gdm", SyncMode::kMirror));
    REQUIRE_MESSAGE(added.status == DistributionStatus::kCompleted, added.last_error);
    CHECK(inspector.people_in(list_id, 1, 60) == id_range(1, 40));

    config.audiences[0].source.path = second;
    engine.reset();
    engine = open_engine(config);
    DistributionJob mirrored = run_to_end(*engine, queue_job(*engine, "people", "gdm", SyncMode::kMirror));
    REQUIRE_MESSAGE(mirrored.status == DistributionStatus::kCompleted, mirrored.last_error);
    CHECK(inspector.people_in(list_id, 1, 60) == id_range(11, 50));
    CHECK(inspector.list(list_id)["size"] == 40);
  }
}

TEST_CASE("data manager rejects a member with Google's reason") {
  set_google_secrets("dm-reject");
  ServerProcess server({});
  GoogleInspector inspector(server);
  std::string list_id = inspector.create_list("reject");
  inspector.post(
      "/__inspect/google/faults",
      {{"reject_identifiers", {sha256_of("person5@example.com"), sha256_of("person17@example.com")}}});
  ScratchDir dir("google-dm-reject");
  Config config = test_engine_config(dir);
  config.engine.batch_size = 10;
  std::string csv = dir.file("people.csv");
  write_people(csv, make_people(1, 20));
  config.audiences.push_back(csv_audience("people", csv, google_people_mapping()));
  config.destinations.push_back(google_destination(server, "gdm", "google", {{"user_list_id", list_id}}));
  auto engine = open_engine(config);

  JobId id = queue_job(*engine, "people", "gdm");
  DistributionJob job = run_to_end(*engine, id);
  REQUIRE_MESSAGE(job.status == DistributionStatus::kCompleted, job.last_error);
  const DestinationProgress* progress = progress_of(job, "gdm");
  CHECK(progress->counters.outcome(RowOutcome::kAccepted) == 18);
  CHECK(progress->counters.outcome(RowOutcome::kRejected) == 2);

  std::set<int> expected = id_set(1, 20);
  expected.erase(5);
  expected.erase(17);
  CHECK(inspector.people_in(list_id, 1, 20) == ranges_text(expected));

  std::vector<RowOutcomeRecord> rows = failed_rows(*engine, id);
  REQUIRE(rows.size() == 2);
  for (const auto& row : rows) {
    CHECK(row.reason_code == "google_rejected");
    CHECK(row.reason ==
          "Google rejected the member: INVALID_FORMAT: The test server was told to reject this identifier. "
          "(field audience_members[" +
              std::to_string(row.line == 6 ? 4 : 6) + "])");
  }
}

TEST_CASE("data manager survives throttling, 5xx and dropped connections") {
  set_google_secrets("dm-faults");
  ServerProcess server({"--error-rate", "0.15", "--drop-rate", "0.05", "--rate-limit", "8",
                        "--rate-window-ms", "1000", "--seed", "11"});
  GoogleInspector inspector(server);
  std::string list_id = inspector.create_list("faults");
  ScratchDir dir("google-dm-faults");
  Config config = test_engine_config(dir);
  config.engine.batch_size = 10;
  std::string csv = dir.file("people.csv");
  write_people(csv, make_people(1, 200));
  config.audiences.push_back(csv_audience("people", csv, google_people_mapping()));
  config.destinations.push_back(google_destination(server, "gdm", "google", {{"user_list_id", list_id}}));
  auto engine = open_engine(config);

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "gdm"));
  REQUIRE_MESSAGE(job.status == DistributionStatus::kCompleted, job.last_error);
  CHECK(progress_of(job, "gdm")->counters.outcome(RowOutcome::kAccepted) == 200);
  CHECK(inspector.people_in(list_id, 1, 200) == id_range(1, 200));

  Json stats = inspector.get("/__inspect/stats");
  CHECK(stats["accounts"]["google:datamanager"]["throttled"].get<std::int64_t>() > 0);
  std::int64_t faults = 0;
  for (const auto& [kind, count] : stats["faults"]["google"].items()) faults += count.get<std::int64_t>();
  CHECK(faults > 0);
}

TEST_CASE("data manager refreshes an expired access token once and goes on") {
  set_google_secrets("dm-expiry");
  ServerProcess server({"--oauth-expire-after", "4"});
  GoogleInspector inspector(server);
  std::string list_id = inspector.create_list("expiry");
  ScratchDir dir("google-dm-expiry");
  Config config = test_engine_config(dir);
  config.engine.batch_size = 5;
  std::string csv = dir.file("people.csv");
  write_people(csv, make_people(1, 30));
  config.audiences.push_back(csv_audience("people", csv, google_people_mapping()));
  config.destinations.push_back(google_destination(server, "gdm", "google", {{"user_list_id", list_id}}));
  auto engine = open_engine(config);

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "gdm"));
  REQUIRE_MESSAGE(job.status == DistributionStatus::kCompleted, job.last_error);
  CHECK(inspector.people_in(list_id, 1, 30) == id_range(1, 30));

  // Every rejection of an expired token led to exactly one new token, and nothing else did.
  Json oauth = inspector.oauth_stats();
  std::int64_t rejections = oauth["expired_token_rejections"].get<std::int64_t>();
  CHECK(rejections >= 2);
  CHECK(oauth["access_tokens_issued"].get<std::int64_t>() == rejections + 1);
  CHECK(oauth["invalid_grant"] == 0);
}

TEST_CASE("data manager pauses on a revoked refresh token") {
  set_google_secrets("dm-revoked", "refresh-revoked");
  ServerProcess server({"--oauth-revoke", "refresh-revoked"});
  GoogleInspector inspector(server);
  std::string list_id = inspector.create_list("revoked");
  ScratchDir dir("google-dm-revoked");
  Config config = test_engine_config(dir);
  std::string csv = dir.file("people.csv");
  write_people(csv, make_people(1, 10));
  config.audiences.push_back(csv_audience("people", csv, google_people_mapping()));
  config.destinations.push_back(google_destination(server, "gdm", "google", {{"user_list_id", list_id}}));
  auto engine = open_engine(config);

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "gdm"));
  CHECK(job.status == DistributionStatus::kFailed);
  CHECK(job.last_error.find(
            "Google rejected the refresh token (invalid_grant: Token has been expired or revoked. "
            "[HTTP 400])") != std::string::npos);
  CHECK(job.last_error.find(std::string("environment variable ") + kRefreshTokenVariable +
                            " (secret refresh_token)") != std::string::npos);
  // One attempt, no retry loop.
  CHECK(inspector.oauth_stats()["invalid_grant"] == 1);
  CHECK(inspector.list(list_id)["size"] == 0);
}

TEST_CASE("data manager rejects the rows of a request Google failed to process") {
  set_google_secrets("dm-failure");
  ServerProcess server({});
  GoogleInspector inspector(server);
  std::string list_id = inspector.create_list("failure");
  inspector.post("/__inspect/google/faults", {{"fail_requests", 1}});
  ScratchDir dir("google-dm-failure");
  Config config = test_engine_config(dir);
  config.engine.batch_size = 5;
  std::string csv = dir.file("people.csv");
  write_people(csv, make_people(1, 15));
  config.audiences.push_back(csv_audience("people", csv, google_people_mapping()));

  SUBCASE("polled after each batch") {
    config.destinations.push_back(google_destination(
        server, "gdm", "google", {{"user_list_id", list_id}, {"status_polling", "each_batch"}}));
    auto engine = open_engine(config);
    JobId id = queue_job(*engine, "people", "gdm");
    DistributionJob job = run_to_end(*engine, id);
    REQUIRE_MESSAGE(job.status == DistributionStatus::kCompleted, job.last_error);
    CHECK(progress_of(job, "gdm")->counters.outcome(RowOutcome::kRejected) == 5);
    CHECK(inspector.people_in(list_id, 1, 15) == id_range(6, 15));
    for (const auto& row : failed_rows(*engine, id)) {
      CHECK(row.reason_code == "google_processing_failed");
      CHECK(row.reason.find("INTERNAL_ERROR (5 records)") != std::string::npos);
    }
  }

  SUBCASE("polled at the end of the run") {
    config.destinations.push_back(google_destination(server, "gdm", "google", {{"user_list_id", list_id}}));
    auto engine = open_engine(config);
    DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "gdm"));
    CHECK(job.status != DistributionStatus::kCompleted);
    CHECK(job.last_error.find("Google failed to process 1 request(s) after accepting them") !=
          std::string::npos);
  }
}

TEST_CASE("google settings errors name the setting") {
  set_google_secrets("dm-settings");
  ServerProcess server({});
  struct Case {
    Json settings;
    std::string message;
  };
  const Case cases[] = {
      {{{"user_list_id", nullptr}},
       "destination 'gdm': settings.user_list_id: expected the numeric id of a Customer Match user list, got "
       "null"},
      {{{"customer_id", "12x"}, {"user_list_id", "1"}},
       "destination 'gdm': settings.customer_id: expected a customer id such as \"123-456-7890\", got "
       "\"12x\""},
      {{{"user_list_id", "1"}, {"status_polling", "sometimes"}},
       "destination 'gdm': settings.status_polling: expected at_finish, each_batch or off, got "
       "\"sometimes\""},
      {{{"user_list_id", "1"}, {"consent", {{"ad_user_data", "yes"}}}},
       "destination 'gdm': settings.consent.ad_user_data: expected \"granted\", \"denied\" or "
       "\"unspecified\", got \"yes\""},
      {{{"user_list_id", "1"}, {"max_members_per_request", 10001}},
       "destination 'gdm': settings.max_members_per_request: expected an integer from 1 to 10000, got 10001"},
  };
  for (const Case& item : cases) {
    CAPTURE(item.message);
    DestinationConfig destination = google_destination(server, "gdm", "google", item.settings);
    auto factory = find_destination_type("google");
    REQUIRE(factory.has_value());
    DestinationEnvironment environment;
    environment.secret = [](std::string_view name) -> Result<std::string> {
      return std::string("value-of-") + std::string(name);
    };
    auto adapter = (*factory)(destination, environment);
    REQUIRE_FALSE(adapter.is_ok());
    CHECK(adapter.status().message() == item.message);
  }
}

}  // namespace activation::testing
