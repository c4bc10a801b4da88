// The Meta adapter through the real engine, with a SQLite store in a scratch folder and the test
// server on loopback: faults, exact adds and removes, pacing, token expiry and replace sessions.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <thread>

#include "engine/sample.hpp"
#include "meta/meta_test_support.hpp"

namespace activation::testing {
namespace {

using Json = nlohmann::json;

std::map<std::string, int> expected_rows(const std::vector<Person>& people) {
  std::map<std::string, int> rows;
  for (const auto& person : people) rows[std::to_string(person.id)] = static_cast<int>(meta_rows(person));
  return rows;
}

std::set<std::string> id_set(const std::map<std::string, int>& rows) {
  std::set<std::string> ids;
  for (const auto& [id, count] : rows) ids.insert(id);
  return ids;
}

}  // namespace

TEST_CASE("ten thousand members arrive through faults") {
  set_test_token();
  // 10% 5xx responses, 4% dropped connections (half of each after the request took effect), added
  // latency, and a limit of 20 requests per second that the adapter's limiter exceeds.
  ServerProcess server({"--error-rate", "0.1", "--drop-rate", "0.04", "--latency-ms", "1",
                        "--latency-jitter-ms", "4", "--rate-limit", "20", "--rate-window-ms", "1000",
                        "--seed", "7"});
  MetaClient client(server);
  ScratchDir dir("meta-faults");
  std::string csv = dir.file("sample.csv");
  {
    std::ofstream out(csv);
    REQUIRE(engine::write_sample_csv(out, 10000, 11));
  }
  Config config = test_engine_config(dir);
  config.engine.batch_size = 100;
  config.audiences.push_back(csv_audience("sample", csv,
                                          {{"CUSTOMERID", Field::kExternalId},
                                           {"EMAIL", Field::kEmail},
                                           {"PHONE1", Field::kPhone},
                                           {"FIRSTNAME", Field::kFirstName},
                                           {"LASTNAME", Field::kLastName},
                                           {"COUNTRY", Field::kCountry}}));
  config.destinations.push_back(meta_destination(
      server, "fb", "faults",
      Json{{"ad_account_id", "act_3003"},
           {"rate_limit", {{"algorithm", "token_bucket"}, {"rate_per_second", 40}, {"burst", 4}}}}));
  auto engine = open_engine(config);

  JobId id = queue_job(*engine, "sample", "fb");
  DistributionJob job = run_to_end(*engine, id);
  REQUIRE_MESSAGE(job.status == DistributionStatus::kCompleted, job.last_error);
  const DestinationProgress* progress = progress_of(job, "fb");
  REQUIRE(progress != nullptr);
  std::uint64_t accepted = progress->counters.outcome(RowOutcome::kAccepted);
  CHECK(progress->counters.rows_read == 10000);
  CHECK(accepted > 9000);

  // The faults really happened.
  Json stats = client.stats();
  CAPTURE(stats.dump());
  CHECK(stats["faults"]["meta"].value("dropped_connection_after_apply", 0) +
            stats["faults"]["meta"].value("dropped_connection_before_apply", 0) >
        0);
  CHECK(platform_faults(stats, "meta") >= 5);
  CHECK(stats["accounts"]["meta:act_3003"]["throttled"].get<int>() > 0);

  // Every accepted member is on the server once, and nothing else is.
  Json audience = client.inspect(audience_id_by_name(client, "faults"));
  std::map<std::string, int> on_server = extern_ids(audience);
  CHECK(on_server.size() == accepted);
  CHECK(audience["member_count"].get<std::uint64_t>() == accepted);
  CHECK(id_set(on_server) == ledger_extern_ids(config.store_path, "sample", "fb"));
  // A fault after the request took effect makes the adapter send that request again; nothing else
  // may repeat one.
  CHECK(audience["counters"]["duplicate_batches"].get<std::int64_t>() <= faults_after_apply(stats));
}

TEST_CASE("add, mirror and remove land exactly") {
  set_test_token();
  ServerProcess server({});
  MetaClient client(server);
  ScratchDir dir("meta-mirror");
  std::string csv = dir.file("people.csv");
  Config config = test_engine_config(dir);
  config.engine.batch_size = 64;
  config.audiences.push_back(csv_audience("people", csv, people_mapping()));
  config.destinations.push_back(meta_destination(server, "fb", "people"));
  auto engine = open_engine(config);

  std::vector<Person> first = make_people(1, 300);
  write_people(csv, first);
  DistributionJob added = run_to_end(*engine, queue_job(*engine, "people", "fb"));
  REQUIRE_MESSAGE(added.status == DistributionStatus::kCompleted, added.last_error);
  std::string audience_id = audience_id_by_name(client, "people");
  CHECK(extern_ids(client.inspect(audience_id)) == expected_rows(first));

  // 50 members leave, 30 change their email, 40 join.
  std::vector<Person> second(first.begin() + 50, first.end());
  for (int i = 0; i < 30; ++i) second[i].email = "changed" + std::to_string(second[i].id) + "@example.com";
  for (const auto& person : make_people(1001, 40)) second.push_back(person);
  write_people(csv, second);
  DistributionJob mirrored = run_to_end(*engine, queue_job(*engine, "people", "fb", SyncMode::kMirror));
  REQUIRE_MESSAGE(mirrored.status == DistributionStatus::kCompleted, mirrored.last_error);

  Json audience = client.inspect(audience_id);
  CHECK(extern_ids(audience) == expected_rows(second));
  CHECK(audience["counters"]["unmatched_removes"] == 0);
  std::size_t removed_rows = 0;
  for (int i = 0; i < 80; ++i) removed_rows += meta_rows(first[i]);
  CHECK(audience["counters"]["removed"].get<std::size_t>() == removed_rows);
  CHECK(id_set(extern_ids(audience)) == ledger_extern_ids(config.store_path, "people", "fb"));

  SUBCASE("a second mirror run sends nothing") {
    std::size_t batches = audience["batches"].size();
    DistributionJob again = run_to_end(*engine, queue_job(*engine, "people", "fb", SyncMode::kMirror));
    REQUIRE(again.status == DistributionStatus::kCompleted);
    CHECK(client.inspect(audience_id)["batches"].size() == batches);
  }
  SUBCASE("a remove run removes exactly the listed members") {
    std::vector<Person> leaving(second.begin() + 30, second.begin() + 50);
    write_people(csv, leaving);
    DistributionJob removal = run_to_end(*engine, queue_job(*engine, "people", "fb", SyncMode::kRemove));
    REQUIRE_MESSAGE(removal.status == DistributionStatus::kCompleted, removal.last_error);
    std::vector<Person> staying(second.begin(), second.begin() + 30);
    staying.insert(staying.end(), second.begin() + 50, second.end());
    Json after = client.inspect(audience_id);
    CHECK(extern_ids(after) == expected_rows(staying));
    CHECK(after["counters"]["unmatched_removes"] == 0);
  }
}

TEST_CASE("limiter at the server's limit is never throttled") {
  set_test_token();
  ServerProcess server({"--rate-limit", "8", "--rate-window-ms", "1000"});
  MetaClient client(server);
  ScratchDir dir("meta-limit");
  std::string csv = dir.file("people.csv");
  write_people(csv, make_people(1, 1200));
  Config config = test_engine_config(dir);
  config.engine.batch_size = 50;
  config.audiences.push_back(csv_audience("people", csv, people_mapping()));
  config.destinations.push_back(meta_destination(
      server, "fb", "paced",
      Json{{"ad_account_id", "act_2002"},
           {"rate_limit", {{"algorithm", "sliding_window"}, {"window_limit", 8}, {"window_seconds", 1}}}}));
  auto engine = open_engine(config);

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "fb"));
  REQUIRE_MESSAGE(job.status == DistributionStatus::kCompleted, job.last_error);
  Json account = client.stats()["accounts"]["meta:act_2002"];
  CAPTURE(account.dump());
  CHECK(account["requests"].get<int>() >= 26);
  CHECK(account["throttled"] == 0);
  CHECK(account["max_in_window"].get<int>() <= 8);
}

TEST_CASE("expired token stops the destination without retries") {
  set_test_token();
  ServerProcess server({"--token-expire-after", "6"});
  MetaClient client(server);
  ScratchDir dir("meta-token");
  std::string csv = dir.file("people.csv");
  write_people(csv, make_people(1, 2000));
  Config config = test_engine_config(dir);
  config.engine.batch_size = 100;
  config.audiences.push_back(csv_audience("people", csv, people_mapping()));
  config.destinations.push_back(meta_destination(server, "fb", "expiring"));
  auto engine = open_engine(config);

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "fb"));
  CHECK(job.status == DistributionStatus::kFailed);
  CHECK(job.attempts == 1);
  CHECK(job.last_error.find("Meta rejected the access token") != std::string::npos);
  CHECK(job.last_error.find(std::string("environment variable ") + kTokenVariable) != std::string::npos);

  // Six good requests (the audience and five batches), then exactly one refused, and no more.
  auto uses = [&client] {
    std::int64_t total = 0;
    Json stats = client.stats();
    for (const auto& [token, count] : stats["tokens_used"].items()) total += count.get<std::int64_t>();
    return total;
  };
  CHECK(uses() == 7);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(uses() == 7);
}

TEST_CASE("a failing platform opens the circuit, in events and in progress") {
  set_test_token();
  ServerProcess server({"--error-rate", "1.0", "--seed", "3"});
  ScratchDir dir("meta-circuit");
  std::string csv = dir.file("people.csv");
  write_people(csv, make_people(1, 300));
  Config config = test_engine_config(dir);
  config.engine.batch_size = 100;
  config.engine.batch_attempts = 3;
  config.engine.batch_retry_base = std::chrono::milliseconds(10);
  config.engine.max_attempts = 1;
  config.audiences.push_back(csv_audience("people", csv, people_mapping()));
  config.destinations.push_back(meta_destination(
      server, "fb-circuit", "failing",
      Json{{"ad_account_id", "act_4004"}, {"circuit_breaker", {{"failure_threshold", 2}, {"open_seconds", 1}}}}));
  auto engine = open_engine(config);
  std::mutex mutex;
  std::vector<Event> events;
  engine->events().subscribe("destination.circuit", [&](const Event& event) {
    std::lock_guard lock(mutex);
    events.push_back(event);
  });
  std::set<std::string> circuit_states;
  engine->progress().subscribe([&](const DestinationProgress& progress) {
    std::lock_guard lock(mutex);
    if (progress.destination == "fb-circuit") circuit_states.insert(progress.circuit);
  });

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "fb-circuit"));
  CHECK(job.status != DistributionStatus::kCompleted);
  std::lock_guard lock(mutex);
  REQUIRE(!events.empty());
  CHECK(events.front().destination == "fb-circuit");
  Json data = Json::parse(events.front().data);
  CHECK(data["from"] == "closed");
  CHECK(data["to"] == "open");
  CHECK(!data["reason"].get<std::string>().empty());
  CHECK(circuit_states.count("open") == 1);
  const DestinationProgress* progress = progress_of(job, "fb-circuit");
  REQUIRE(progress != nullptr);
  CHECK(!progress->circuit.empty());
}

TEST_CASE("a job retry waits for the open circuit") {
  set_test_token();
  ServerProcess server({});
  const DestinationConfig unreachable = meta_destination(
      server, "fb-down", "down",
      Json{{"ad_account_id", "act_5005"}, {"circuit_breaker", {{"failure_threshold", 1}, {"open_seconds", 1}}}});
  server.stop();  // Its port now refuses connections.
  ScratchDir dir("meta-circuit-retry");
  std::string csv = dir.file("people.csv");
  write_people(csv, make_people(1, 20));
  Config config = test_engine_config(dir);
  config.engine.max_attempts = 2;
  config.audiences.push_back(csv_audience("people", csv, people_mapping()));
  config.destinations.push_back(unreachable);
  auto engine = open_engine(config);
  std::mutex mutex;
  std::vector<std::string> states;
  engine->events().subscribe("destination.circuit", [&](const Event& event) {
    std::lock_guard lock(mutex);
    states.push_back(Json::parse(event.data)["to"].get<std::string>());
  });

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "fb-down"));
  CHECK(job.status == DistributionStatus::kFailed);
  CHECK(job.attempts == 2);
  CHECK(job.last_error.find("the last failure:") != std::string::npos);
  // The second attempt came after the open period, so the breaker let a probe through; a retry
  // before it would have been refused without one.
  std::lock_guard lock(mutex);
  CAPTURE(states.size());
  CHECK(std::count(states.begin(), states.end(), "half_open") >= 1);
}

TEST_CASE("replace never sends batch 1 twice") {
  set_test_token();
  // Dropped connections strike after the server applied the request, so a retry of the replace's
  // first batch would restart the replace. Seeds differ in where the drops fall; the loop runs
  // until the first batch itself was hit twice.
  int first_batch_hits = 0;
  for (int seed = 1; seed <= 16 && first_batch_hits < 2; ++seed) {
    CAPTURE(seed);
    ServerProcess server({"--drop-rate", "0.3", "--fault-after-apply", "1", "--seed", std::to_string(seed)});
    MetaClient client(server);
    ScratchDir dir("meta-replace");
    std::string csv = dir.file("people.csv");
    Config config = test_engine_config(dir);
    config.engine.batch_size = 20;
    config.audiences.push_back(csv_audience("people", csv, people_mapping()));
    config.destinations.push_back(meta_destination(server, "fb", "replaced"));
    auto engine = open_engine(config);

    write_people(csv, make_people(500, 30));
    REQUIRE(run_to_end(*engine, queue_job(*engine, "people", "fb")).status == DistributionStatus::kCompleted);
    std::vector<Person> people = make_people(1, 60);
    write_people(csv, people);
    DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "fb", SyncMode::kReplace));
    REQUIRE_MESSAGE(job.status == DistributionStatus::kCompleted, job.last_error);

    Json audience = client.inspect(audience_id_by_name(client, "replaced"));
    CHECK(extern_ids(audience) == expected_rows(people));
    CHECK(audience["counters"]["replace_restarts"] == 0);
    CHECK(audience["counters"]["replaces_completed"] == 1);
    int first_batches = 0;
    std::optional<std::int64_t> first_index;
    for (const auto& batch : audience["batches"]) {
      if (batch["operation"] != "replace") continue;
      if (batch["batch_seq"] == 1) {
        ++first_batches;
        first_index = batch["index"].get<std::int64_t>();
      } else if (first_index && batch["duplicate_of"] == *first_index) {
        ++first_batch_hits;  // The first batch's rows went again, as batch_seq 2 or later.
      }
    }
    CHECK(first_batches == 1);
  }
  CHECK(first_batch_hits >= 1);
}

}  // namespace activation::testing
