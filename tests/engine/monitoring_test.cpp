#include <doctest/doctest.h>

#include <mutex>
#include <thread>

#include <sqlite3.h>

#include "activation/engine.hpp"
#include "engine_test_util.hpp"

using namespace activation;
using activation::testing::ScratchDir;
using activation::testing::write_file;

namespace {

struct Fixture {
  ScratchDir dir{"engine-monitoring"};
  std::unique_ptr<DistributionEngine> engine;
  std::mutex mutex;
  std::vector<Event> events;

  explicit Fixture(AlertThresholds alerts = {}) {
    write_file(dir.file("people.csv"), "ID,EMAIL\n1,a@example.com\n2,b@example.com\n");
    Config config = activation::testing::make_config(dir);
    config.engine.alerts = alerts;
    config.audiences.push_back(activation::testing::csv_audience(
        "people", dir.file("people.csv"), {{"ID", Field::kExternalId}, {"EMAIL", Field::kEmail}}));
    auto destination = activation::testing::file_destination("out", dir.file("out"), "hashed_csv");
    destination.expected_rows_per_second = 1000;
    config.destinations.push_back(destination);
    auto opened = DistributionEngine::open(config);
    REQUIRE(opened.is_ok());
    engine = std::move(*opened);
    engine->events().subscribe("alert.", [this](const Event& event) {
      std::lock_guard lock(mutex);
      events.push_back(event);
    });
  }

  std::vector<std::string> types() {
    std::lock_guard lock(mutex);
    std::vector<std::string> out;
    for (const auto& event : events) out.push_back(event.type);
    return out;
  }
};

}  // namespace

TEST_CASE("queue backlog alert raises and resolves") {
  AlertThresholds alerts;
  alerts.queue_backlog = 1;
  Fixture fixture(alerts);
  std::vector<std::string> destinations = {"out"};
  REQUIRE(fixture.engine->distribute("people", destinations).is_ok());
  REQUIRE(fixture.engine->check_alerts().is_ok());
  CHECK(fixture.types().empty());

  REQUIRE(fixture.engine->distribute("people", destinations).is_ok());
  REQUIRE(fixture.engine->check_alerts().is_ok());
  REQUIRE(fixture.engine->check_alerts().is_ok());
  CHECK(fixture.types() == std::vector<std::string>{"alert.queue_backlog"});

  REQUIRE(fixture.engine->run_until_idle(std::chrono::minutes(1)).is_ok());
  REQUIRE(fixture.engine->check_alerts().is_ok());
  CHECK(fixture.types() == std::vector<std::string>{"alert.queue_backlog", "alert.queue_backlog.resolved"});
}

TEST_CASE("error rate and slow job alerts") {
  AlertThresholds alerts;
  alerts.error_rate = 0.05;
  alerts.error_rate_min_rows = 100;
  Fixture fixture(alerts);

  DestinationProgress running;
  running.job_id = 7;
  running.destination = "out";
  running.state = RunState::kRunning;
  running.counters.rows_read = 50000;
  running.counters.outcomes[static_cast<int>(RowOutcome::kAccepted)] = 900;
  running.counters.outcomes[static_cast<int>(RowOutcome::kRejected)] = 100;
  // 50,000 rows at 100 rows/s: running for 500 s at a tenth of the expected 1,000 rows/s.
  running.rows_per_second = 100;
  fixture.engine->progress().update(running);
  REQUIRE(fixture.engine->check_alerts().is_ok());
  auto raised = fixture.types();
  REQUIRE(raised.size() == 2);
  CHECK(std::count(raised.begin(), raised.end(), "alert.error_rate") == 1);
  CHECK(std::count(raised.begin(), raised.end(), "alert.slow_job") == 1);
  {
    std::lock_guard lock(fixture.mutex);
    for (const auto& event : fixture.events) {
      CHECK(event.job_id == 7);
      CHECK(event.destination == "out");
    }
  }

  running.counters.outcomes[static_cast<int>(RowOutcome::kAccepted)] = 100000;
  running.rows_per_second = 5000;
  fixture.engine->progress().update(running);
  REQUIRE(fixture.engine->check_alerts().is_ok());
  auto all = fixture.types();
  REQUIRE(all.size() == 4);
  CHECK(std::count(all.begin(), all.end(), "alert.error_rate.resolved") == 1);
  CHECK(std::count(all.begin(), all.end(), "alert.slow_job.resolved") == 1);
}

TEST_CASE("metrics text has queue and destination families") {
  Fixture fixture;
  std::vector<std::string> destinations = {"out"};
  REQUIRE(fixture.engine->distribute("people", destinations).is_ok());
  REQUIRE(fixture.engine->run_until_idle(std::chrono::minutes(1)).is_ok());
  auto text = fixture.engine->metrics_text();
  REQUIRE(text.is_ok());
  CHECK(text->find("# TYPE activation_queue_jobs gauge\n") != std::string::npos);
  CHECK(text->find("activation_queue_jobs{state=\"completed\"} 1\n") != std::string::npos);
  CHECK(text->find("activation_queue_stalled_jobs 0\n") != std::string::npos);
  CHECK(text->find("activation_destination_rows_total{destination=\"out\",outcome=\"accepted\"} 2\n") !=
        std::string::npos);
  CHECK(text->find("activation_destination_operations_total{destination=\"out\",operation=\"add\"} 2\n") !=
        std::string::npos);
  CHECK(
      text->find("activation_identifiers_total{destination=\"out\",field=\"email\",status=\"valid\"} 2\n") !=
      std::string::npos);
}

TEST_CASE("scheduled and expiring jobs") {
  Fixture fixture;
  std::vector<std::string> destinations = {"out"};

  DistributeOptions later;
  later.scheduled_at = std::chrono::system_clock::now() + std::chrono::hours(1);
  later.priority = Priority::kHigh;
  later.metadata = {{"campaign", "spring"}};
  auto scheduled = fixture.engine->distribute("people", destinations, later);
  REQUIRE(scheduled.is_ok());
  CHECK(scheduled->status == DistributionStatus::kScheduled);
  CHECK(scheduled->priority == Priority::kHigh);
  CHECK(scheduled->metadata.at("campaign") == "spring");

  DistributeOptions expiring;
  expiring.scheduled_at = std::chrono::system_clock::now() + std::chrono::milliseconds(200);
  expiring.expires_at = std::chrono::system_clock::now() + std::chrono::milliseconds(100);
  auto expired = fixture.engine->distribute("people", destinations, expiring);
  REQUIRE(expired.is_ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(fixture.engine->queue()->run_maintenance().is_ok());
  auto job = fixture.engine->job(expired->id);
  REQUIRE(job.is_ok());
  CHECK(job->status == DistributionStatus::kCancelled);
  CHECK(job->reason == "expired");

  auto history = fixture.engine->history("people");
  REQUIRE(history.is_ok());
  CHECK(history->size() == 2);
  REQUIRE(fixture.engine->cancel(scheduled->id).is_ok());
  CHECK(fixture.engine->job(scheduled->id)->status == DistributionStatus::kCancelled);
}

TEST_CASE("sqlite source distributes in query order") {
  Fixture fixture;
  std::string db_path = fixture.dir.file("crm.db");
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(db_path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db,
                       "CREATE TABLE customers(id INTEGER PRIMARY KEY, email TEXT, opted_in INTEGER);"
                       "INSERT INTO customers VALUES (1,'a@example.com',1),(2,'b@example.com',0),(3,'bad',1),"
                       "(4,'d@example.com',1);",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);

  AudienceConfig audience;
  audience.name = "crm";
  audience.source.type = SourceType::kSqlite;
  audience.source.path = db_path;
  audience.source.query = "SELECT email FROM customers WHERE opted_in = 1 ORDER BY id";
  audience.source.mapping = {{"email", Field::kEmail}};
  REQUIRE(fixture.engine->register_audience(audience).is_ok());

  std::vector<std::string> destinations = {"out"};
  auto queued = fixture.engine->distribute("crm", destinations);
  REQUIRE(queued.is_ok());
  auto job = activation::testing::run_job(*fixture.engine, queued->id);
  REQUIRE(job.status == DistributionStatus::kCompleted);
  const auto* out = activation::testing::find_destination(job, "out");
  REQUIRE(out != nullptr);
  CHECK(out->counters.rows_read == 3);
  CHECK(out->counters.outcome(RowOutcome::kAccepted) == 2);
  CHECK(out->counters.outcome(RowOutcome::kInvalid) == 1);
  CHECK(out->percent == doctest::Approx(100.0));
}
