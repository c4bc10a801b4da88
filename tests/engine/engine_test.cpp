#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "activation/engine.hpp"
#include "activation/identifiers.hpp"
#include "engine_test_util.hpp"

using namespace activation;
using activation::testing::ScratchDir;
using activation::testing::write_file;

namespace {

const std::vector<ColumnMapping> kMapping = {{"ID", Field::kExternalId},
                                             {"EMAIL", Field::kEmail},
                                             {"PHONE1", Field::kPhone},
                                             {"PHONE2", Field::kPhone},
                                             {"COUNTRY", Field::kCountry}};

std::string audience_csv(int rows, int changed_from = -1) {
  std::string text = "ID,EMAIL,PHONE1,PHONE2,COUNTRY\n";
  for (int i = 0; i < rows; ++i) {
    std::string email = "user" + std::to_string(i) +
                        (i >= changed_from && changed_from >= 0 ? "@new.example.com" : "@example.com");
    text += "c" + std::to_string(i) + "," + email + ",,," + "US\n";
  }
  return text;
}

std::string sha(const std::string& text) {
  return sha256_hex(text);
}

// A configuration of the engine over `dir` with one audience, "people": `rows` rows of
// audience_csv() in dir/audience.csv.
Config people_config(const ScratchDir& dir, int rows) {
  std::string csv = dir.file("audience.csv");
  write_file(csv, audience_csv(rows));
  Config config = activation::testing::make_config(dir);
  config.audiences.push_back(activation::testing::csv_audience("people", csv, kMapping));
  return config;
}

}  // namespace

TEST_CASE("add run writes accepted hashes to files") {
  ScratchDir dir("engine-add");
  std::string csv = dir.file("audience.csv");
  write_file(csv,
             "ID,EMAIL,PHONE1,PHONE2,COUNTRY\n"
             "1, Alice@Example.com ,,,US\n"
             "2,not-an-email,,,US\n"
             "3,,,,\n"
             "4,bob@example.com,+1 415 555 0100,,US\n"
             "\"5,bad\"quote,,,,\n");
  Config config = activation::testing::make_config(dir);
  // Without the ID column: an external id alone would make every row valid.
  std::vector<ColumnMapping> mapping(kMapping.begin() + 1, kMapping.end());
  config.audiences.push_back(activation::testing::csv_audience("people", csv, mapping));
  config.destinations.push_back(activation::testing::file_destination("out", dir.file("out"), "hashed_csv"));
  auto engine = DistributionEngine::open(config);
  REQUIRE(engine.is_ok());

  std::vector<std::string> destinations = {"out"};
  auto queued = (*engine)->distribute("people", destinations);
  REQUIRE(queued.is_ok());
  CHECK(queued->status == DistributionStatus::kQueued);

  auto job = activation::testing::run_job(**engine, queued->id);
  INFO("last error: ", job.last_error);
  CHECK(job.status == DistributionStatus::kCompleted);
  const DestinationProgress* out = activation::testing::find_destination(job, "out");
  REQUIRE(out != nullptr);
  CHECK(out->counters.rows_read == 5);
  CHECK(out->counters.outcome(RowOutcome::kAccepted) == 2);
  CHECK(out->counters.outcome(RowOutcome::kInvalid) == 3);
  CHECK(out->counters.fields[static_cast<int>(Field::kEmail)].valid == 2);
  CHECK(out->counters.fields[static_cast<int>(Field::kEmail)].dropped == 1);

  auto job_dir = std::filesystem::path(dir.file("out")) / ("job-" + std::to_string(job.id));
  auto rows = activation::testing::csv_rows(job_dir, "add");
  REQUIRE(rows.size() == 2);
  std::string first = *rows.begin() + *std::next(rows.begin());
  CHECK(first.find(sha("alice@example.com")) != std::string::npos);
  CHECK(first.find(sha("bob@example.com")) != std::string::npos);
  CHECK(std::filesystem::exists(job_dir / "manifest.json"));

  std::ostringstream rejects;
  REQUIRE((*engine)->export_row_outcomes_csv(job.id, rejects).is_ok());
  std::string text = rejects.str();
  CHECK(text.rfind("destination,line,operation,outcome,reason_code,reason,member_key\n", 0) == 0);
  CHECK(text.find("out,3,,invalid,no_usable_identifier,") != std::string::npos);
  CHECK(text.find("out,4,,invalid,no_identifier,") != std::string::npos);
  CHECK(text.find("out,6,,invalid,bad_quoting,") != std::string::npos);
}

namespace {

struct MirrorFixture {
  ScratchDir dir{"engine-mirror"};
  std::string csv = dir.file("audience.csv");
  std::unique_ptr<DistributionEngine> engine;

  explicit MirrorFixture(const std::string& format = "hashed_csv") {
    Config config = activation::testing::make_config(dir);
    config.audiences.push_back(activation::testing::csv_audience("people", csv, kMapping));
    config.destinations.push_back(activation::testing::file_destination("out", dir.file("out"), format));
    auto opened = DistributionEngine::open(config);
    REQUIRE(opened.is_ok());
    engine = std::move(*opened);
  }

  DistributionJob run(SyncMode mode, bool dry_run = false) {
    DistributeOptions options;
    options.mode = mode;
    options.dry_run = dry_run;
    std::vector<std::string> destinations = {"out"};
    auto queued = engine->distribute("people", destinations, options);
    REQUIRE(queued.is_ok());
    auto job = activation::testing::run_job(*engine, queued->id);
    INFO("last error: ", job.last_error);
    REQUIRE(job.status == DistributionStatus::kCompleted);
    return job;
  }

  const DestinationCounters& counters(const DistributionJob& job) {
    const DestinationProgress* out = activation::testing::find_destination(job, "out");
    REQUIRE(out != nullptr);
    return out->counters;
  }

  std::filesystem::path job_dir(const DistributionJob& job) {
    return std::filesystem::path(dir.file("out")) / ("job-" + std::to_string(job.id));
  }
};

std::string email_hash(int i, bool changed = false) {
  return sha("user" + std::to_string(i) + (changed ? "@new.example.com" : "@example.com"));
}

}  // namespace

TEST_CASE("mirror sends only the difference") {
  MirrorFixture fixture;
  write_file(fixture.csv, audience_csv(300));

  auto first = fixture.run(SyncMode::kMirror);
  CHECK(fixture.counters(first).adds_sent == 300);
  CHECK(fixture.counters(first).removes_sent == 0);
  CHECK(activation::testing::csv_rows(fixture.job_dir(first), "add").size() == 300);

  SUBCASE("unchanged audience sends nothing") {
    auto second = fixture.run(SyncMode::kMirror);
    const auto& counters = fixture.counters(second);
    CHECK(counters.rows_read == 300);
    CHECK(counters.outcome(RowOutcome::kAccepted) == 300);
    CHECK(counters.unchanged == 300);
    CHECK(counters.adds_sent == 0);
    CHECK(counters.removes_sent == 0);
    CHECK(activation::testing::batch_files(fixture.job_dir(second)).empty());
  }

  SUBCASE("changed, left and new members") {
    // Rows 0-9 change their email, rows 290-299 leave, and five new members arrive.
    std::string text = "ID,EMAIL,PHONE1,PHONE2,COUNTRY\n";
    for (int i = 0; i < 290; ++i) {
      text += "c" + std::to_string(i) + ",user" + std::to_string(i) +
              (i < 10 ? "@new.example.com" : "@example.com") + ",,,US\n";
    }
    for (int i = 1000; i < 1005; ++i)
      text += "c" + std::to_string(i) + ",user" + std::to_string(i) + "@example.com,,,US\n";
    write_file(fixture.csv, text);

    auto dry = fixture.run(SyncMode::kMirror, /*dry_run=*/true);
    CHECK(fixture.counters(dry).adds_sent == 15);
    CHECK(fixture.counters(dry).removes_sent == 20);
    CHECK(fixture.counters(dry).members_left == 10);
    CHECK_FALSE(std::filesystem::exists(fixture.job_dir(dry)));

    auto third = fixture.run(SyncMode::kMirror);
    const auto& counters = fixture.counters(third);
    CHECK(counters.rows_read == 295);
    CHECK(counters.adds_sent == 15);
    CHECK(counters.removes_sent == 20);
    CHECK(counters.members_left == 10);
    CHECK(counters.unchanged == 280);
    // Two batches from the source and one of the leavers' removes, as the dry run counted.
    CHECK(counters.batches == 3);
    CHECK(fixture.counters(dry).batches == counters.batches);

    auto removed = activation::testing::csv_rows(fixture.job_dir(third), "remove");
    auto added = activation::testing::csv_rows(fixture.job_dir(third), "add");
    REQUIRE(removed.size() == 20);
    REQUIRE(added.size() == 15);
    std::string removed_text;
    for (const auto& row : removed) removed_text += row + "\n";
    std::string added_text;
    for (const auto& row : added) added_text += row + "\n";
    for (int i = 0; i < 10; ++i) {
      CHECK(removed_text.find(email_hash(i)) != std::string::npos);
      CHECK(added_text.find(email_hash(i, true)) != std::string::npos);
    }
    for (int i = 290; i < 300; ++i) CHECK(removed_text.find(email_hash(i)) != std::string::npos);
    for (int i = 1000; i < 1005; ++i) CHECK(added_text.find(email_hash(i)) != std::string::npos);

    auto fourth = fixture.run(SyncMode::kMirror);
    CHECK(fixture.counters(fourth).adds_sent == 0);
    CHECK(fixture.counters(fourth).removes_sent == 0);
  }
}

TEST_CASE("remove uses the keys that were added") {
  MirrorFixture fixture;
  write_file(fixture.csv, audience_csv(20));
  fixture.run(SyncMode::kAdd);

  // The same members with new emails: a remove must still send the emails they were added with.
  write_file(fixture.csv, audience_csv(5, 0));
  auto removed = fixture.run(SyncMode::kRemove);
  CHECK(fixture.counters(removed).removes_sent == 5);
  auto rows = activation::testing::csv_rows(fixture.job_dir(removed), "remove");
  REQUIRE(rows.size() == 5);
  std::string text;
  for (const auto& row : rows) text += row + "\n";
  for (int i = 0; i < 5; ++i) {
    CHECK(text.find(email_hash(i)) != std::string::npos);
    CHECK(text.find(email_hash(i, true)) == std::string::npos);
  }

  // Removed members are no longer held: a mirror run of the remaining 15 sends nothing for them
  // and adds the five back.
  write_file(fixture.csv, audience_csv(20));
  auto mirror = fixture.run(SyncMode::kMirror);
  CHECK(fixture.counters(mirror).adds_sent == 5);
  CHECK(fixture.counters(mirror).removes_sent == 0);
}

TEST_CASE("duplicate member keeps last row's keys") {
  MirrorFixture fixture;
  // Member c7 comes back near the end of the first batch (100 rows) with another email. The
  // batch's ledger updates are sorted by member key before they are written; the later row must
  // still win.
  std::string text = audience_csv(98);
  text += "c7,user7@new.example.com,,,US\n";
  write_file(fixture.csv, text);
  auto added = fixture.run(SyncMode::kAdd);
  CHECK(fixture.counters(added).adds_sent == 99);
  CHECK(fixture.counters(added).batches == 1);

  // A remove sends the keys the ledger holds for the member.
  write_file(fixture.csv, "ID,EMAIL,PHONE1,PHONE2,COUNTRY\nc7,someone@example.com,,,US\n");
  auto removed = fixture.run(SyncMode::kRemove);
  CHECK(fixture.counters(removed).removes_sent == 1);
  auto rows = activation::testing::csv_rows(fixture.job_dir(removed), "remove");
  REQUIRE(rows.size() == 1);
  CHECK(rows.begin()->find(email_hash(7, true)) != std::string::npos);
  CHECK(rows.begin()->find(email_hash(7)) == std::string::npos);
}

TEST_CASE("replace marks absent members removed without sending") {
  MirrorFixture fixture;
  write_file(fixture.csv, audience_csv(50));
  fixture.run(SyncMode::kAdd);

  write_file(fixture.csv, audience_csv(30));
  auto replaced = fixture.run(SyncMode::kReplace);
  CHECK(fixture.counters(replaced).adds_sent == 30);
  CHECK(fixture.counters(replaced).removes_sent == 0);
  CHECK(fixture.counters(replaced).members_left == 20);
  CHECK(activation::testing::csv_rows(fixture.job_dir(replaced), "remove").empty());

  // The ledger now contains 30 members: a mirror of the same 30 sends nothing.
  auto mirror = fixture.run(SyncMode::kMirror);
  CHECK(fixture.counters(mirror).adds_sent == 0);
  CHECK(fixture.counters(mirror).removes_sent == 0);
}

TEST_CASE("dry run writes neither files nor ledger") {
  MirrorFixture fixture;
  write_file(fixture.csv, audience_csv(40));
  auto dry = fixture.run(SyncMode::kMirror, true);
  CHECK(fixture.counters(dry).adds_sent == 40);
  CHECK(fixture.counters(dry).outcome(RowOutcome::kAccepted) == 40);
  CHECK_FALSE(std::filesystem::exists(fixture.job_dir(dry)));

  auto real = fixture.run(SyncMode::kMirror);
  CHECK(fixture.counters(real).adds_sent == 40);
}

TEST_CASE("meta json payload matches its schema") {
  MirrorFixture fixture("meta_json");
  write_file(fixture.csv,
             "ID,EMAIL,PHONE1,PHONE2,COUNTRY\n"
             "7,mary@example.com,+1 555 987 6543,,US\n");
  auto job = fixture.run(SyncMode::kAdd);
  auto files = activation::testing::batch_files(fixture.job_dir(job));
  REQUIRE(files.size() == 1);
  CHECK(files[0] == "batch-000001-add.json");
  auto payload =
      nlohmann::json::parse(activation::testing::read_file((fixture.job_dir(job) / files[0]).string()));
  auto schema = payload["payload"]["schema"];
  CHECK(schema == nlohmann::json::array({"EMAIL", "PHONE", "PHONE", "COUNTRY", "EXTERN_ID"}));
  auto row = payload["payload"]["data"][0];
  REQUIRE(row.size() == schema.size());
  CHECK(row[0] == "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79");
  CHECK(row[1] == "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e");
  CHECK(row[2] == "");
  CHECK(row[3] == sha("us"));
  CHECK(row[4] == "7");

  auto manifest = nlohmann::json::parse(
      activation::testing::read_file((fixture.job_dir(job) / "manifest.json").string()));
  REQUIRE(manifest["files"].size() == 1);
  CHECK(manifest["files"][0]["rows"] == 1);
  CHECK(manifest["files"][0]["sha256"] ==
        sha(activation::testing::read_file((fixture.job_dir(job) / files[0]).string())));
  CHECK(manifest["totals"]["accepted"] == 1);
}

TEST_CASE("google json holds audience members") {
  MirrorFixture fixture("google_json");
  write_file(fixture.csv,
             "ID,EMAIL,PHONE1,PHONE2,COUNTRY\n"
             "7,Jo.Hn+promo@gmail.com,+1 555 987 6543,,US\n");
  auto job = fixture.run(SyncMode::kAdd);
  auto files = activation::testing::batch_files(fixture.job_dir(job));
  REQUIRE(files.size() == 1);
  auto body =
      nlohmann::json::parse(activation::testing::read_file((fixture.job_dir(job) / files[0]).string()));
  CHECK(body["encoding"] == "HEX");
  CHECK(body["termsOfService"]["customerMatchTermsOfServiceStatus"] == "ACCEPTED");
  auto identifiers = body["audienceMembers"][0]["userData"]["userIdentifiers"];
  REQUIRE(identifiers.size() == 2);
  CHECK(identifiers[0]["emailAddress"] == sha("john@gmail.com"));
  CHECK(identifiers[1]["phoneNumber"] == sha("+15559876543"));
}

TEST_CASE("meta csv header uses meta column names") {
  MirrorFixture fixture("meta_csv");
  write_file(fixture.csv, "ID,EMAIL,PHONE1,PHONE2,COUNTRY\n1,a@example.com,,,US\n");
  auto job = fixture.run(SyncMode::kAdd);
  auto text = activation::testing::read_file((fixture.job_dir(job) / "batch-000001-add.csv").string());
  CHECK(text.rfind("email,phone,phone,country,extern_id\n", 0) == 0);
}

TEST_CASE("failing destination leaves others completed") {
  ScratchDir dir("engine-fail");
  Config config = people_config(dir, 50);
  config.destinations.push_back(
      activation::testing::file_destination("good", dir.file("good"), "hashed_csv"));
  config.destinations.push_back(activation::testing::file_destination("bad", dir.file("bad"), "hashed_csv"));
  auto engine = DistributionEngine::open(config);
  REQUIRE(engine.is_ok());

  std::mutex mutex;
  std::vector<Event> events;
  (*engine)->events().subscribe("distribution.", [&](const Event& event) {
    std::lock_guard lock(mutex);
    events.push_back(event);
  });

  std::vector<std::string> destinations = {"good", "bad"};
  auto queued = (*engine)->distribute("people", destinations);
  REQUIRE(queued.is_ok());
  // The folder turns into a file after the job was queued, so the run itself fails.
  std::filesystem::remove_all(dir.file("bad"));
  write_file(dir.file("bad"), "not a folder");

  auto job = activation::testing::run_job(**engine, queued->id);
  CHECK(job.status == DistributionStatus::kCompletedWithErrors);
  const DestinationProgress* good = activation::testing::find_destination(job, "good");
  const DestinationProgress* bad = activation::testing::find_destination(job, "bad");
  REQUIRE(good != nullptr);
  REQUIRE(bad != nullptr);
  CHECK(good->state == RunState::kDone);
  CHECK(good->counters.adds_sent == 50);
  CHECK(bad->state == RunState::kFailed);
  CHECK(bad->error.find("'" + dir.file("bad") + "'") != std::string::npos);

  std::lock_guard lock(mutex);
  bool failed_event = false;
  bool completed_event = false;
  for (const auto& event : events) {
    if (event.type == "distribution.failed" && event.destination == "bad") failed_event = true;
    if (event.type == "distribution.completed") {
      completed_event = true;
      CHECK(event.data.find("completed_with_errors") != std::string::npos);
    }
  }
  CHECK(failed_event);
  CHECK(completed_event);
}

TEST_CASE("retry reruns failed destinations") {
  ScratchDir dir("engine-retry-partial");
  Config config = people_config(dir, 30);
  config.destinations.push_back(activation::testing::file_destination("good", dir.file("good"), "hashed_csv"));
  config.destinations.push_back(activation::testing::file_destination("bad", dir.file("bad"), "hashed_csv"));
  auto engine = DistributionEngine::open(config);
  REQUIRE(engine.is_ok());

  DistributeOptions options;
  options.metadata = {{"owner", "crm"}};
  std::vector<std::string> destinations = {"good", "bad"};
  auto queued = (*engine)->distribute("people", destinations, options);
  REQUIRE(queued.is_ok());
  std::filesystem::remove_all(dir.file("bad"));
  write_file(dir.file("bad"), "not a folder");
  auto first = activation::testing::run_job(**engine, queued->id);
  REQUIRE(first.status == DistributionStatus::kCompletedWithErrors);

  // With the cause fixed, the retry is a new job of the failed destination alone.
  std::filesystem::remove(dir.file("bad"));
  auto retried = (*engine)->retry(first.id);
  REQUIRE(retried.is_ok());
  CHECK(retried->id != first.id);
  CHECK(retried->destinations == std::vector<std::string>{"bad"});
  CHECK(retried->metadata.at("retry_of") == std::to_string(first.id));
  CHECK(retried->metadata.at("owner") == "crm");
  auto second = activation::testing::run_job(**engine, retried->id);
  CHECK(second.status == DistributionStatus::kCompleted);
  const DestinationProgress* bad = activation::testing::find_destination(second, "bad");
  REQUIRE(bad != nullptr);
  CHECK(bad->counters.adds_sent == 30);

  // A job that completed has nothing to retry.
  auto again = (*engine)->retry(second.id);
  REQUIRE_FALSE(again.is_ok());
  CHECK(again.status().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("retried job reports curable failure") {
  // Two destinations fail on the first attempt: "denied" for good (its folder is a file), then
  // "blocked" for now (its first batch cannot be written). The job is retried, and records the
  // failure that the retry can cure, not the first one.
  ScratchDir dir("engine-retry-error");
  Config config = people_config(dir, 20);
  config.destinations.push_back(activation::testing::file_destination("denied", dir.file("denied"), "hashed_csv"));
  config.destinations.push_back(activation::testing::file_destination("blocked", dir.file("blocked"), "hashed_csv"));

  // The engine logs each failed destination; the block is lifted after the first failure of
  // "blocked", so that its second attempt succeeds.
  std::filesystem::path blocker;
  std::atomic<bool> lifted{false};
  EngineOptions options;
  options.logger = Logger(
      [&](LogLevel, std::string_view, std::string_view message) {
        if (message.find("destination blocked failed") == std::string_view::npos || lifted.exchange(true)) return;
        std::filesystem::remove_all(blocker);
      },
      LogLevel::kError);
  auto engine = DistributionEngine::open(config, options);
  REQUIRE(engine.is_ok());

  std::vector<std::string> destinations = {"denied", "blocked"};
  auto queued = (*engine)->distribute("people", destinations);
  REQUIRE(queued.is_ok());
  std::filesystem::remove_all(dir.file("denied"));
  write_file(dir.file("denied"), "not a folder");
  // A folder where the first batch's temporary file goes makes creating that file fail. It is not
  // empty, so the destination's clean-up of a fresh run's folder leaves it there.
  blocker = std::filesystem::path(dir.file("blocked")) / ("job-" + std::to_string(queued->id)) /
            ".batch-000001-add.csv.tmp";
  std::filesystem::create_directories(blocker);
  write_file((blocker / "keep").string(), "x");

  auto job = activation::testing::run_job(**engine, queued->id);
  CHECK(lifted.load());
  CHECK(job.status == DistributionStatus::kCompletedWithErrors);
  CHECK(job.attempts == 2);
  CHECK(job.last_error.find(".batch-000001-add.csv.tmp") != std::string::npos);
  CHECK(job.last_error.find("destination 'denied'") == std::string::npos);
  const DestinationProgress* blocked = activation::testing::find_destination(job, "blocked");
  REQUIRE(blocked != nullptr);
  CHECK(blocked->state == RunState::kDone);
  CHECK(blocked->counters.adds_sent == 20);
}

TEST_CASE("progress publishes milestones in order") {
  ScratchDir dir("engine-events");
  Config config = people_config(dir, 2000);
  config.destinations.push_back(activation::testing::file_destination("out", dir.file("out"), "hashed_csv"));
  auto engine = DistributionEngine::open(config);
  REQUIRE(engine.is_ok());

  std::mutex mutex;
  std::vector<std::string> types;
  std::vector<int> milestones;
  std::atomic<int> updates{0};
  (*engine)->events().subscribe("distribution.", [&](const Event& event) {
    std::lock_guard lock(mutex);
    types.push_back(event.type);
    if (event.type == "distribution.milestone") {
      milestones.push_back(nlohmann::json::parse(event.data)["percent"].get<int>());
    }
  });
  (*engine)->progress().subscribe([&](const DestinationProgress&) { ++updates; });

  std::vector<std::string> destinations = {"out"};
  auto queued = (*engine)->distribute("people", destinations);
  REQUIRE(queued.is_ok());
  auto job = activation::testing::run_job(**engine, queued->id);
  CHECK(job.status == DistributionStatus::kCompleted);

  std::lock_guard lock(mutex);
  CHECK(milestones == std::vector<int>{25, 50, 75, 90, 95, 100});
  REQUIRE(types.size() >= 2);
  CHECK(types.front() == "distribution.started");
  CHECK(types.back() == "distribution.completed");
  CHECK(updates.load() >= 2);
}

TEST_CASE("bad input fails before queuing") {
  ScratchDir dir("engine-bad");
  Config config = people_config(dir, 5);
  const std::string csv = dir.file("audience.csv");
  auto unknown_column = kMapping;
  unknown_column.push_back({"PHONE3", Field::kPhone});
  config.audiences.push_back(activation::testing::csv_audience("typo", csv, unknown_column));
  config.audiences.push_back(activation::testing::csv_audience("missing", dir.file("nope.csv"), kMapping));
  config.destinations.push_back(activation::testing::file_destination("out", dir.file("out"), "hashed_csv"));
  write_file(dir.file("blocker"), "a file where a folder should be");
  config.destinations.push_back(
      activation::testing::file_destination("blocked", dir.file("blocker/out"), "hashed_csv"));
  auto engine = DistributionEngine::open(config);
  REQUIRE(engine.is_ok());

  auto attempt = [&](const std::string& audience, const std::string& destination) {
    std::vector<std::string> destinations = {destination};
    auto job = (*engine)->distribute(audience, destinations);
    REQUIRE_FALSE(job.is_ok());
    return job.status().message();
  };
  CHECK(attempt("missing", "out") ==
        "audience 'missing': audience file '" + dir.file("nope.csv") + "' does not exist");
  CHECK(attempt("typo", "out") ==
        "audience 'typo': audience file '" + csv +
            "': column 'PHONE3' of the mapping is not in the header (columns: ID, EMAIL, "
            "PHONE1, PHONE2, COUNTRY)");
  CHECK(attempt("people", "nowhere") ==
        "destination 'nowhere' is not configured (destinations: out, blocked)");
  CHECK(attempt("nobody", "out") == "audience 'nobody' is not configured (audiences: people, typo, missing)");
  CHECK(attempt("people", "blocked")
            .rfind("destination 'blocked': directory '" + dir.file("blocker/out") + "' cannot be created: ",
                   0) == 0);

  auto jobs = (*engine)->jobs();
  REQUIRE(jobs.is_ok());
  CHECK(jobs->empty());
}

TEST_CASE("cancelled job resumes from its checkpoint") {
  ScratchDir dir("engine-resume");
  std::string csv = dir.file("audience.csv");
  write_file(csv, audience_csv(20000));
  Config config = activation::testing::make_config(dir);
  // A cancellation reaches a running job with its next heartbeat.
  config.engine.heartbeat_interval = std::chrono::milliseconds(50);
  config.audiences.push_back(activation::testing::csv_audience("people", csv, kMapping));
  config.destinations.push_back(activation::testing::file_destination("out", dir.file("out"), "hashed_csv"));
  auto engine = DistributionEngine::open(config);
  REQUIRE(engine.is_ok());

  DistributeOptions options;
  options.batch_size = 50;
  std::vector<std::string> destinations = {"out"};
  auto queued = (*engine)->distribute("people", destinations, options);
  REQUIRE(queued.is_ok());
  auto job_dir = std::filesystem::path(dir.file("out")) / ("job-" + std::to_string(queued->id));

  REQUIRE((*engine)->start_workers().is_ok());
  // Bounded wait for the first files, then cancel in the middle.
  for (int i = 0; i < 2000 && activation::testing::batch_files(job_dir).size() < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE((*engine)->cancel(queued->id).is_ok());
  DistributionJob cancelled;
  for (int i = 0; i < 2000; ++i) {
    cancelled = *(*engine)->job(queued->id);
    if (cancelled.status == DistributionStatus::kCancelled) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE((*engine)->stop_workers(std::chrono::seconds(5)).is_ok());
  REQUIRE(cancelled.status == DistributionStatus::kCancelled);
  std::size_t files_at_cancel = activation::testing::batch_files(job_dir).size();
  CHECK(files_at_cancel < 400);

  REQUIRE((*engine)->retry(queued->id).is_ok());
  auto job = activation::testing::run_job(**engine, queued->id);
  REQUIRE(job.status == DistributionStatus::kCompleted);
  auto rows = activation::testing::csv_rows(job_dir, "add");
  std::set<std::string> unique(rows.begin(), rows.end());
  CHECK(unique.size() == 20000);
  CHECK(rows.size() - unique.size() <= 50);
  CHECK(activation::testing::find_destination(job, "out")->counters.rows_read == 20000);
}
