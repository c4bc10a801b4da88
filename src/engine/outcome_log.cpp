#include "engine/outcome_log.hpp"

#include <filesystem>

#include <sqlite3.h>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

namespace activation::engine {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS row_outcomes (
  job_id INTEGER NOT NULL,
  destination TEXT NOT NULL,
  line INTEGER NOT NULL,
  operation TEXT NOT NULL,
  member_key TEXT NOT NULL,
  outcome TEXT NOT NULL,
  reason_code TEXT NOT NULL,
  reason TEXT NOT NULL,
  PRIMARY KEY (job_id, destination, line, operation, member_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS destination_runs (
  job_id INTEGER NOT NULL,
  destination TEXT NOT NULL,
  audience TEXT NOT NULL,
  mode TEXT NOT NULL,
  dry_run INTEGER NOT NULL,
  state TEXT NOT NULL,
  counters TEXT NOT NULL,
  error TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (job_id, destination)
);
)sql";

Status sqlite_error(sqlite3* db, const std::string& what) {
  return io_error("outcome log: " + what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

// A prepared statement finalized at scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &statement_, nullptr); }
  ~Statement() { sqlite3_finalize(statement_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() const { return statement_; }

 private:
  sqlite3_stmt* statement_ = nullptr;
  int rc_;
};

void bind_text(sqlite3_stmt* statement, int index, std::string_view text) {
  sqlite3_bind_text(statement, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

std::string column_text(sqlite3_stmt* statement, int index) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement, index));
  return text ? std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(statement, index)))
              : std::string();
}

RowOutcome parse_outcome(std::string_view name) {
  for (int i = 0; i < kRowOutcomeCount; ++i) {
    if (row_outcome_name(static_cast<RowOutcome>(i)) == name) return static_cast<RowOutcome>(i);
  }
  return RowOutcome::kInvalid;
}

}  // namespace

std::string outcome_log_path(const std::string& store_path) {
  std::filesystem::path path(store_path);
  path.replace_extension(".outcomes.db");
  return path.string();
}

Result<std::unique_ptr<OutcomeLog>> OutcomeLog::open(const std::string& path) {
  sqlite3* db = nullptr;
  // The log contains member keys, so like the store it is readable by its owner only. SQLite gives its
  // -wal and -shm files the mode of the database file.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("outcome log: cannot create '" + path + "': " + std::strerror(errno));
  ::close(fd);
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status status = sqlite_error(db, "cannot open '" + path + "'");
    sqlite3_close_v2(db);
    return status;
  }
  sqlite3_busy_timeout(db, 10000);
  char* message = nullptr;
  rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", nullptr, nullptr, &message);
  sqlite3_free(message);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, kSchema, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    Status status = sqlite_error(db, "cannot set up '" + path + "'");
    sqlite3_close_v2(db);
    return status;
  }
  return std::unique_ptr<OutcomeLog>(new OutcomeLog(db));
}

OutcomeLog::~OutcomeLog() {
  sqlite3_close_v2(db_);
}

Status OutcomeLog::record(std::int64_t job_id, std::string_view destination,
                          const std::vector<RowOutcomeRecord>& rows) {
  if (rows.empty()) return Status::ok();
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return sqlite_error(db_, "cannot begin a transaction");
  }
  Statement insert(
      db_,
      "INSERT OR REPLACE INTO row_outcomes (job_id, destination, line, operation, member_key, outcome, "
      "reason_code, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  if (!insert.ok()) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return sqlite_error(db_, "cannot prepare an insert");
  }
  for (const auto& row : rows) {
    sqlite3_stmt* statement = insert.get();
    sqlite3_bind_int64(statement, 1, job_id);
    bind_text(statement, 2, destination);
    sqlite3_bind_int64(statement, 3, static_cast<sqlite3_int64>(row.line));
    bind_text(statement, 4, row.operation);
    bind_text(statement, 5, row.member_key);
    bind_text(statement, 6, row_outcome_name(row.outcome));
    bind_text(statement, 7, row.reason_code);
    bind_text(statement, 8, row.reason);
    if (sqlite3_step(statement) != SQLITE_DONE) {
      Status status = sqlite_error(db_, "cannot record a row outcome");
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return status;
    }
    sqlite3_reset(statement);
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    Status status = sqlite_error(db_, "cannot commit row outcomes");
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return status;
  }
  return Status::ok();
}

Status OutcomeLog::save_run(const RunRecord& run) {
  Statement upsert(
      db_,
      "INSERT OR REPLACE INTO destination_runs (job_id, destination, audience, mode, dry_run, state, "
      "counters, error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, strftime('%s','now'))");
  if (!upsert.ok()) return sqlite_error(db_, "cannot prepare a run update");
  sqlite3_stmt* statement = upsert.get();
  sqlite3_bind_int64(statement, 1, run.job_id);
  bind_text(statement, 2, run.destination);
  bind_text(statement, 3, run.audience);
  bind_text(statement, 4, run.mode);
  sqlite3_bind_int(statement, 5, run.dry_run ? 1 : 0);
  bind_text(statement, 6, run.state);
  bind_text(statement, 7, run.counters);
  bind_text(statement, 8, run.error);
  if (sqlite3_step(statement) != SQLITE_DONE) return sqlite_error(db_, "cannot save a run");
  return Status::ok();
}

Result<std::vector<RunRecord>> OutcomeLog::runs(std::int64_t job_id) {
  Statement query(
      db_, job_id == 0 ? "SELECT job_id, destination, audience, mode, dry_run, state, counters, error FROM "
                         "destination_runs ORDER BY job_id, destination"
                       : "SELECT job_id, destination, audience, mode, dry_run, state, counters, error FROM "
                         "destination_runs WHERE job_id = ? ORDER BY destination");
  if (!query.ok()) return sqlite_error(db_, "cannot prepare a run query");
  if (job_id != 0) sqlite3_bind_int64(query.get(), 1, job_id);
  std::vector<RunRecord> runs;
  int rc;
  while ((rc = sqlite3_step(query.get())) == SQLITE_ROW) {
    RunRecord run;
    run.job_id = sqlite3_column_int64(query.get(), 0);
    run.destination = column_text(query.get(), 1);
    run.audience = column_text(query.get(), 2);
    run.mode = column_text(query.get(), 3);
    run.dry_run = sqlite3_column_int(query.get(), 4) != 0;
    run.state = column_text(query.get(), 5);
    run.counters = column_text(query.get(), 6);
    run.error = column_text(query.get(), 7);
    runs.push_back(std::move(run));
  }
  if (rc != SQLITE_DONE) return sqlite_error(db_, "cannot read runs");
  return runs;
}

Status OutcomeLog::visit(std::int64_t job_id, const std::function<Status(const RowOutcomeRecord&)>& visitor) {
  Statement query(
      db_,
      "SELECT destination, line, operation, member_key, outcome, reason_code, reason FROM row_outcomes "
      "WHERE job_id = ? ORDER BY destination, line, operation, member_key");
  if (!query.ok()) return sqlite_error(db_, "cannot prepare an outcome query");
  sqlite3_bind_int64(query.get(), 1, job_id);
  int rc;
  while ((rc = sqlite3_step(query.get())) == SQLITE_ROW) {
    RowOutcomeRecord row;
    row.destination = column_text(query.get(), 0);
    row.line = static_cast<std::uint64_t>(sqlite3_column_int64(query.get(), 1));
    row.operation = column_text(query.get(), 2);
    row.member_key = column_text(query.get(), 3);
    row.outcome = parse_outcome(column_text(query.get(), 4));
    row.reason_code = column_text(query.get(), 5);
    row.reason = column_text(query.get(), 6);
    ACT_RETURN_IF_ERROR(visitor(row));
  }
  if (rc != SQLITE_DONE) return sqlite_error(db_, "cannot read row outcomes");
  return Status::ok();
}

}  // namespace activation::engine
