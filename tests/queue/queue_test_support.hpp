// Helpers for the queue suite: a scratch directory per test and a store opened in it.
//
// The suite runs once per store. With ACTIVATION_TEST_STORE=postgresql, open_store(path) opens the
// PostgreSQL store of ACTIVATION_TEST_POSTGRES (a libpq conninfo) in a schema named after the
// path, so that each test, and each worker process it starts with that path, gets its own tables;
// ScratchDir drops those schemas at scope exit. Otherwise it opens the SQLite file at `path`.
#ifndef ACTIVATION_TESTS_QUEUE_QUEUE_TEST_SUPPORT_HPP_
#define ACTIVATION_TESTS_QUEUE_QUEUE_TEST_SUPPORT_HPP_

#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "activation/backend/store.hpp"
#include "activation/checkpointer.hpp"
#include "activation/job_queue.hpp"
#include "activation/ledger.hpp"
#include "activation/worker_pool.hpp"

namespace activation::testing {

// True when this run of the suite tests the PostgreSQL store.
inline bool testing_postgresql() {
  const char* store = std::getenv("ACTIVATION_TEST_STORE");
  return store != nullptr && std::string(store) == "postgresql";
}

inline std::string postgres_conninfo() {
  const char* conninfo = std::getenv("ACTIVATION_TEST_POSTGRES");
  return conninfo != nullptr ? conninfo : "";
}

// The schema that stands for the store file `path` in the PostgreSQL run.
inline std::string schema_for_path(const std::string& path) {
  return "t" + std::to_string(std::hash<std::string>()(path));
}

// Runs SQL on the test database outside the library; returns the error message, empty on success.
inline std::string postgres_exec(const std::string& sql) {
  PGconn* conn = PQconnectdb(postgres_conninfo().c_str());
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);  // "drop cascades to ..." notices.
  std::string error;
  if (PQstatus(conn) != CONNECTION_OK) {
    error = PQerrorMessage(conn);
  } else {
    PGresult* result = PQexec(conn, sql.c_str());
    if (PQresultStatus(result) != PGRES_COMMAND_OK && PQresultStatus(result) != PGRES_TUPLES_OK) {
      error = PQresultErrorMessage(result);
    }
    PQclear(result);
  }
  PQfinish(conn);
  return error;
}

// The PostgreSQL schemas opened by this process, by the path they stand for.
inline std::mutex& schemas_mutex() {
  static std::mutex mutex;
  return mutex;
}
inline std::set<std::string>& opened_paths() {
  static std::set<std::string> paths;
  return paths;
}

// A directory under the system temp directory, removed with its contents at scope exit. In the
// PostgreSQL run, the schemas of the stores opened under it are dropped as well.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "act-queue-XXXXXX").string();
    char* made = ::mkdtemp(pattern.data());
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~ScratchDir() {
    if (testing_postgresql()) drop_schemas();
    std::error_code ignored;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ignored);
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  void drop_schemas() {
    std::lock_guard lock(schemas_mutex());
    auto& paths = opened_paths();
    for (auto it = paths.begin(); it != paths.end();) {
      if (it->rfind(path_ + "/", 0) != 0) {
        ++it;
        continue;
      }
      const std::string error = postgres_exec("DROP SCHEMA IF EXISTS \"" + schema_for_path(*it) + "\" CASCADE");
      if (!error.empty()) MESSAGE("dropping the schema of ", *it, " failed: ", error);
      it = paths.erase(it);
    }
  }

  std::string path_;
};

// Opens the store that `path` stands for in this run; see the comment at the top.
inline Result<std::shared_ptr<Store>> open_test_store(const std::string& path, SqliteStoreOptions options = {}) {
  if (!testing_postgresql()) return open_sqlite_store(path, options);
  PostgresStoreOptions pg_options;
  pg_options.schema = schema_for_path(path);
  pg_options.logger = options.logger;
  {
    std::lock_guard lock(schemas_mutex());
    opened_paths().insert(path);
  }
  return open_postgresql_store(postgres_conninfo(), pg_options);
}

// Runs SQL on the SQLite file at `path` with the plain SQLite API, outside the library, and
// returns the rows' values run together as text.
inline std::string sqlite_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  std::string result;
  char* error = nullptr;
  [[maybe_unused]] const int rc = sqlite3_exec(
      db, sql.c_str(),
      [](void* out, int columns, char** values, char**) {
        auto* text = static_cast<std::string*>(out);
        for (int i = 0; i < columns; ++i) *text += values[i] != nullptr ? values[i] : "NULL";
        return 0;
      },
      &result, &error);
  [[maybe_unused]] const std::string message = error != nullptr ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  REQUIRE_MESSAGE(rc == SQLITE_OK, message);
  return result;
}

inline std::shared_ptr<Store> open_store(const std::string& path, SqliteStoreOptions options = {}) {
  auto store = open_test_store(path, options);
  REQUIRE_MESSAGE(store.is_ok(), store.status().to_string());
  return std::move(store).value();
}

inline std::shared_ptr<JobQueue> make_queue(std::shared_ptr<Store> store, JobQueueOptions options = {}) {
  if (options.jitter_seed == 0) options.jitter_seed = 42;
  auto queue = JobQueue::create(std::move(store), options);
  REQUIRE_MESSAGE(queue.is_ok(), queue.status().to_string());
  return std::move(queue).value();
}

inline JobSpec job_spec(std::string type, std::string payload = "{}", Priority priority = Priority::kNormal) {
  JobSpec spec;
  spec.type = std::move(type);
  spec.payload = std::move(payload);
  spec.priority = priority;
  return spec;
}

inline JobId enqueue_ok(JobQueue& queue, const JobSpec& spec) {
  auto result = queue.enqueue(spec);
  REQUIRE_MESSAGE(result.is_ok(), result.status().to_string());
  return result->id;
}

inline ClaimedJob claim_ok(JobQueue& queue, std::string_view worker = "test-worker",
                           std::chrono::milliseconds lease = std::chrono::seconds(30)) {
  auto claimed = queue.claim_one(worker, lease);
  REQUIRE_MESSAGE(claimed.is_ok(), claimed.status().to_string());
  REQUIRE(claimed->has_value());
  return std::move(**claimed);
}

inline JobState state_of(JobQueue& queue, JobId id) {
  auto job = queue.get(id);
  REQUIRE_MESSAGE(job.is_ok(), job.status().to_string());
  return job->state;
}

// Polls `condition` every 5 ms until it is true or `limit` passes, and returns its last value.
template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace activation::testing

#endif  // ACTIVATION_TESTS_QUEUE_QUEUE_TEST_SUPPORT_HPP_
