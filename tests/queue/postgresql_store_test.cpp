// The PostgreSQL store: opening and its errors, a server restart, and worker processes sharing the
// queue. These cases run only in the PostgreSQL run of the suite (ACTIVATION_TEST_STORE=postgresql,
// which scripts/with-postgres.sh and ctest's queue_postgresql test set up); the shared cases of the
// other files run there as well.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "activation/checkpointer.hpp"
#include "storage/postgresql/pg_schema.hpp"
#include "queue_test_support.hpp"
#include "worker_process.hpp"

namespace activation {
namespace {

using namespace std::chrono_literals;
using testing::enqueue_ok;
using testing::eventually;
using testing::job_spec;
using testing::make_queue;
using testing::open_store;
using testing::postgres_exec;
using testing::ScratchDir;
using testing::WorkerProcess;

// The PostgreSQL run needs a server. Without one it ends here, before any test, with exit code 77,
// which ctest reports as skipped rather than passed.
const bool kServerChecked = [] {
  if (testing::testing_postgresql() && testing::postgres_conninfo().empty()) {
    std::fprintf(stderr,
                 "queue_postgresql: SKIPPED: ACTIVATION_TEST_POSTGRES is not set; run the tests through "
                 "scripts/with-postgres.sh (scripts/test.sh does) or set it to a libpq conninfo\n");
    std::exit(77);
  }
  return true;
}();

#define PG_TEST_CASE(name) \
  TEST_CASE(name* doctest::test_suite("postgresql") * doctest::skip(!testing::testing_postgresql()))

// Restarts the test server with the script of scripts/with-postgres.sh.
void restart_server() {
  const char* script = std::getenv("ACTIVATION_TEST_POSTGRES_RESTART");
  REQUIRE_MESSAGE(script != nullptr,
                  "ACTIVATION_TEST_POSTGRES_RESTART is not set; run under scripts/with-postgres.sh");
  REQUIRE(std::system(script) == 0);
}

PG_TEST_CASE("opening rejects a malformed connection string") {
  auto store = open_postgresql_store("host=127.0.0.1 colour=blue");
  REQUIRE_FALSE(store.is_ok());
  CHECK(store.status().code() == StatusCode::kInvalidArgument);
  CHECK(store.status().message().rfind("PostgreSQL connection string is invalid: ", 0) == 0);
  CHECK(store.status().message().find("colour") != std::string::npos);

  PostgresStoreOptions options;
  options.pool_size = 0;
  auto bad_pool = open_postgresql_store(testing::postgres_conninfo(), options);
  REQUIRE_FALSE(bad_pool.is_ok());
  CHECK(bad_pool.status().message() == "pool_size is 0; expected 1 to 64");
}

PG_TEST_CASE("an unreachable server fails without showing the password") {
  PostgresStoreOptions options;
  options.reconnect_timeout = 0ms;
  for (const std::string conninfo :
       {"host=127.0.0.1 port=1 dbname=d user=u password=s3cret-pw connect_timeout=5",
        "postgresql://u:s3cret-pw@127.0.0.1:1/d?connect_timeout=5"}) {
    CAPTURE(conninfo);
    auto store = open_postgresql_store(conninfo, options);
    REQUIRE_FALSE(store.is_ok());
    CHECK(store.status().code() == StatusCode::kUnavailable);
    CHECK(store.status().message().rfind("cannot connect to store postgresql://127.0.0.1:1/d as u: ", 0) ==
          0);
    CHECK(store.status().message().find("s3cret-pw") == std::string::npos);
  }
}

PG_TEST_CASE("open_store picks the store by its location") {
  CHECK(is_postgresql_url("postgresql://h/db"));
  CHECK(is_postgresql_url("postgres://h/db"));
  CHECK_FALSE(is_postgresql_url("/var/lib/activation/postgresql://x"));
  CHECK_FALSE(is_postgresql_url("activation.db"));

  ScratchDir dir;
  auto mapped = open_store(dir.file("q.db"));
  CHECK(mapped->backend_name() == "postgresql");  // This run maps paths to schemas.
  auto opened = activation::open_store(dir.file("plain.db"));
  REQUIRE(opened.is_ok());
  CHECK((*opened)->backend_name() == "sqlite");
}

PG_TEST_CASE("a schema from a newer version is rejected and left as it was") {
  ScratchDir dir;
  const std::string path = dir.file("q.db");
  { open_store(path); }
  const std::string schema = testing::schema_for_path(path);
  REQUIRE(postgres_exec(fmt::format("INSERT INTO \"{}\".activation_schema (version) VALUES (99)", schema)).empty());

  auto store = testing::open_test_store(path);
  REQUIRE_FALSE(store.is_ok());
  CHECK(store.status().code() == StatusCode::kDataLoss);
  CHECK(store.status().message().find(
            fmt::format("schema version 99 is newer than version {} that this library supports",
                        internal::kPostgresSchemaVersion)) != std::string::npos);
  // Still version 99, with its tables: the failed open changed nothing.
  CHECK(postgres_exec(
            fmt::format("DO $$ BEGIN IF (SELECT max(version) FROM \"{0}\".activation_schema) <> 99 "
                        "THEN RAISE EXCEPTION 'version changed'; END IF; PERFORM 1 FROM \"{0}\".jobs; END $$",
                        schema))
            .empty());
}

PG_TEST_CASE("a schema with tables of another application is rejected") {
  ScratchDir dir;
  const std::string path = dir.file("q.db");
  const std::string schema = testing::schema_for_path(path);
  {
    std::lock_guard lock(testing::schemas_mutex());
    testing::opened_paths().insert(path);  // So that ScratchDir drops it.
  }
  REQUIRE(postgres_exec(fmt::format("CREATE SCHEMA \"{0}\"; CREATE TABLE \"{0}\".customers (id int)", schema))
              .empty());

  auto store = testing::open_test_store(path);
  REQUIRE_FALSE(store.is_ok());
  CHECK(store.status().code() == StatusCode::kFailedPrecondition);
  CHECK(store.status().message().find("holds 1 tables of another application") != std::string::npos);
}

PG_TEST_CASE("a store keeps working across a server restart") {
  ScratchDir dir;
  auto store = open_store(dir.file("q.db"));
  auto queue = make_queue(store);
  const JobId before = enqueue_ok(*queue, job_spec("t"));

  restart_server();

  // The pooled connection died with the server; the store reconnects on its own.
  const JobId after = enqueue_ok(*queue, job_spec("t"));
  auto first = testing::claim_ok(*queue);
  auto second = testing::claim_ok(*queue);
  CHECK(first.job.id == before);
  CHECK(second.job.id == after);
  CHECK(queue->complete(first.lease).is_ok());
  CHECK(queue->complete(second.lease).is_ok());
  CHECK(queue->metrics()->completed == 2);
}

PG_TEST_CASE("four worker processes complete 20,000 jobs exactly once") {
  ScratchDir dir;
  const std::string store = dir.file("q.db");
  const std::string log = dir.file("runs.log");
  auto queue = make_queue(open_store(store));
  constexpr int kJobs = 20000;
  std::vector<JobSpec> specs(kJobs, job_spec("sleep", R"({"ms":0})"));
  auto ids = queue->enqueue_bulk(specs);
  REQUIRE(ids.is_ok());

  std::vector<std::unique_ptr<WorkerProcess>> workers;
  for (int i = 0; i < 4; ++i) {
    workers.push_back(
        std::make_unique<WorkerProcess>(std::vector<std::string>{"pool", store, log, "4", "10000", "2000"},
                                        dir.file(fmt::format("w{}.out", i))));
  }
  REQUIRE(eventually([&] { return queue->metrics()->completed == kJobs; }, 600s));
  for (auto& worker : workers) {
    worker->signal(SIGTERM);
    CHECK(worker->wait_exit(60s) == 0);
  }

  std::map<JobId, int> starts, dones;
  std::set<std::string> processes;
  for (const auto& line : testing::read_lines(log)) {
    std::istringstream fields(line);
    std::string event, pid;
    JobId id = 0;
    fields >> event >> id;
    if (event == "start") ++starts[id];
    if (event == "done") {
      ++dones[id];
      fields >> pid;
      processes.insert(pid);
    }
  }
  CHECK(dones.size() == kJobs);
  int twice = 0;
  for (const auto& result : *ids) twice += starts[result.id] == 1 && dones[result.id] == 1 ? 0 : 1;
  CHECK_MESSAGE(twice == 0, twice, " jobs did not run exactly once");
  // Every process took part, or the test proved nothing about sharing the queue.
  CHECK(processes.size() == 4);
}

// Enqueues distribution jobs of `members` members each, one audience per job.
std::vector<JobId> enqueue_distributions(JobQueue& queue, int jobs, int members) {
  std::vector<JobId> ids;
  for (int i = 0; i < jobs; ++i) {
    JobSpec spec = job_spec(
        "distribute", fmt::format(R"({{"audience":"a{}","members":{},"batch":20,"ms":15}})", i, members));
    spec.max_attempts = 10;
    ids.push_back(enqueue_ok(queue, spec));
  }
  return ids;
}

// Checks that every job completed and every member of its audience is in the ledger once.
void check_every_member_delivered(Store& store, JobQueue& queue, const std::vector<JobId>& ids, int members) {
  auto ledger = Ledger::create(queue.store());
  REQUIRE(ledger.is_ok());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    CAPTURE(ids[i]);
    CHECK(testing::state_of(queue, ids[i]) == JobState::kCompleted);
    auto count = (*ledger)->count(fmt::format("a{}", i), "dest");
    REQUIRE(count.is_ok());
    CHECK(*count == members);
  }
  (void)store;
}

int count_batches(const std::string& log) {
  return testing::count_lines_with_prefix(log, "batch ");
}

PG_TEST_CASE("a worker killed mid-distribution loses no member") {
  ScratchDir dir;
  const std::string store_path = dir.file("q.db");
  const std::string log = dir.file("runs.log");
  auto store = open_store(store_path);
  auto queue = make_queue(store);
  constexpr int kMembers = 600;
  const auto ids = enqueue_distributions(*queue, 6, kMembers);

  std::vector<std::unique_ptr<WorkerProcess>> workers;
  const std::vector<std::string> args{"pool", store_path, log, "2", "1000", "200"};
  {
    // It starts two jobs and commits some of their batches, then dies without a word.
    WorkerProcess doomed(args, dir.file("doomed.out"));
    REQUIRE(eventually([&] { return count_batches(log) >= 6; }, 60s));
    doomed.kill_hard();
  }
  for (int i = 0; i < 3; ++i)
    workers.push_back(std::make_unique<WorkerProcess>(args, dir.file(fmt::format("w{}.out", i))));
  REQUIRE(eventually([&] { return queue->metrics()->completed == 6; }, 180s));
  for (auto& worker : workers) {
    worker->signal(SIGTERM);
    CHECK(worker->wait_exit(60s) == 0);
  }

  check_every_member_delivered(*store, *queue, ids, kMembers);
  // The killed worker's jobs resumed from their checkpoints on the other workers.
  int resumed = 0;
  for (const auto& line : testing::read_lines(log)) {
    if (line.rfind("start ", 0) == 0 && line.find(" from 0") == std::string::npos) ++resumed;
  }
  CHECK(resumed >= 1);
}

PG_TEST_CASE("a server restart during a distribution is survived") {
  ScratchDir dir;
  const std::string store_path = dir.file("q.db");
  const std::string log = dir.file("runs.log");
  auto store = open_store(store_path);
  auto queue = make_queue(store);
  constexpr int kMembers = 1000;
  const auto ids = enqueue_distributions(*queue, 6, kMembers);

  std::vector<std::unique_ptr<WorkerProcess>> workers;
  for (int i = 0; i < 4; ++i) {
    workers.push_back(
        std::make_unique<WorkerProcess>(std::vector<std::string>{"pool", store_path, log, "2", "3000", "500"},
                                        dir.file(fmt::format("w{}.out", i))));
  }
  REQUIRE(eventually([&] { return count_batches(log) >= 20; }, 60s));
  restart_server();
  const int batches_at_restart = count_batches(log);

  REQUIRE(eventually(
      [&] {
        auto metrics = queue->metrics();
        return metrics.is_ok() && metrics->completed == 6;
      },
      300s));
  // The workers lived through the restart and went on sending.
  CHECK(count_batches(log) > batches_at_restart);
  for (auto& worker : workers) {
    worker->signal(SIGTERM);
    CHECK(worker->wait_exit(60s) == 0);
  }
  check_every_member_delivered(*store, *queue, ids, kMembers);
}

}  // namespace
}  // namespace activation
