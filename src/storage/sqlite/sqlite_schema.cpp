#include "storage/sqlite/sqlite_schema.hpp"

#include <fmt/format.h>

namespace activation::internal {
namespace {

// Migration 1. Times are milliseconds since the Unix epoch on the store's clock; states are the
// values of JobState. The hot indexes are partial, so that they hold only the jobs that can still
// move: terminal jobs, usually the bulk of the table, never slow down a claim.
constexpr const char* kMigration1 = R"sql(
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  payload TEXT NOT NULL,
  priority INTEGER NOT NULL,
  state INTEGER NOT NULL,
  due_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  stalls INTEGER NOT NULL DEFAULT 0,
  retry_policy TEXT,
  dedup_key TEXT,
  expires_at INTEGER,
  audience TEXT,
  progress TEXT,
  last_error TEXT,
  last_error_class INTEGER,
  reason TEXT,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  lease_owner TEXT,
  lease_epoch INTEGER NOT NULL DEFAULT 0,
  lease_expires_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER
);
CREATE INDEX jobs_waiting ON jobs(priority, due_at, id) WHERE state = 0;
CREATE INDEX jobs_delayed ON jobs(due_at) WHERE state = 1;
CREATE INDEX jobs_active ON jobs(lease_expires_at) WHERE state = 2;
CREATE INDEX jobs_terminal ON jobs(state, finished_at) WHERE state >= 3;
CREATE INDEX jobs_expiry ON jobs(expires_at) WHERE expires_at IS NOT NULL AND state <= 1;
CREATE INDEX jobs_audience ON jobs(audience, id) WHERE audience IS NOT NULL;
CREATE UNIQUE INDEX jobs_dedup ON jobs(dedup_key) WHERE dedup_key IS NOT NULL AND state <= 2;

CREATE TABLE checkpoints (
  job_id INTEGER NOT NULL,
  destination TEXT NOT NULL,
  batch_number INTEGER NOT NULL,
  source_position TEXT NOT NULL,
  counters TEXT NOT NULL,
  session_state TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (job_id, destination)
) WITHOUT ROWID;

CREATE TABLE ledger_scopes (
  id INTEGER PRIMARY KEY,
  audience TEXT NOT NULL,
  destination TEXT NOT NULL,
  UNIQUE (audience, destination)
);

CREATE TABLE ledger (
  scope_id INTEGER NOT NULL,
  member_key TEXT NOT NULL,
  hashed_keys TEXT NOT NULL,
  operation INTEGER NOT NULL,
  outcome INTEGER NOT NULL,
  reason TEXT,
  updated_at INTEGER NOT NULL,
  last_seen_job INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (scope_id, member_key)
) WITHOUT ROWID;
)sql";

// Migration 2: the state of the rate limiters shared through the store, one row per key. tat_us is
// the theoretical arrival time of the key's token bucket (GCRA), in microseconds since the epoch.
constexpr const char* kMigration2 = R"sql(
CREATE TABLE rate_limits (
  key TEXT PRIMARY KEY,
  tat_us INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// Migration 3: the ledger journal. Ledger updates are appended here in each batch's transaction
// and folded into `ledger` in member-key order before the scope is read (sqlite_ledger.cpp).
// hashed_keys is NULL for a row that only records that job seen_job saw the member.
constexpr const char* kMigration3 = R"sql(
CREATE TABLE ledger_journal (
  seq INTEGER PRIMARY KEY,
  scope_id INTEGER NOT NULL,
  member_key TEXT NOT NULL,
  hashed_keys TEXT,
  operation INTEGER,
  outcome INTEGER,
  reason TEXT,
  updated_at INTEGER NOT NULL,
  seen_job INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ledger_journal_scope ON ledger_journal(scope_id, seq);
)sql";

// Migration 4: the sliding windows shared through the store (daily quotas), one row per grant.
// at_us is the grant's time in microseconds since the epoch.
constexpr const char* kMigration4 = R"sql(
CREATE TABLE rate_window_grants (
  key TEXT NOT NULL,
  at_us INTEGER NOT NULL,
  tokens REAL NOT NULL
);
CREATE INDEX rate_window_grants_key ON rate_window_grants(key, at_us);
)sql";

struct Migration {
  std::int64_t version;
  const char* sql;
};

// Migration 5: the journal position of each ledger row's keys and mark. A fold sorts the journal
// outside the write lock and applies it in several transactions, so two folds of one pair may
// overlap: a row takes a journal row's keys only when that row is newer than the one whose keys
// it has (keys_seq), and its last_seen_job only from a newer mark (seen_seq). Journal positions
// must then never be reused, even after the journal was emptied, so the journal is rebuilt with
// AUTOINCREMENT, keeping the rows it holds.
constexpr const char* kMigration5 = R"sql(
ALTER TABLE ledger ADD COLUMN keys_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ledger ADD COLUMN seen_seq INTEGER NOT NULL DEFAULT 0;
CREATE TABLE ledger_journal_v5 (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  scope_id INTEGER NOT NULL,
  member_key TEXT NOT NULL,
  hashed_keys,
  operation INTEGER,
  outcome INTEGER,
  reason TEXT,
  updated_at INTEGER NOT NULL,
  seen_job INTEGER NOT NULL DEFAULT 0
);
INSERT INTO ledger_journal_v5 SELECT seq, scope_id, member_key, hashed_keys, operation, outcome, reason, updated_at,
  seen_job FROM ledger_journal;
DROP TABLE ledger_journal;
ALTER TABLE ledger_journal_v5 RENAME TO ledger_journal;
CREATE INDEX ledger_journal_scope ON ledger_journal(scope_id, seq);
)sql";

constexpr Migration kMigrations[] = {
    {1, kMigration1},
    {2, kMigration2},
    {3, kMigration3},
    {4, kMigration4},
    {5, kMigration5},
};

}  // namespace

Status migrate_schema(SqliteConnection& connection) {
  ACT_RETURN_IF_ERROR(connection.exec("BEGIN IMMEDIATE"));

  // Another process may have migrated between the caller's check and this lock, so read again.
  auto version = connection.query_int("PRAGMA user_version");
  Status status = version.status();
  if (status.is_ok() && *version > kStoreSchemaVersion) {
    status = Status(StatusCode::kDataLoss,
                    fmt::format("store {}: schema version {} is newer than version {} that this library supports; "
                                "open it with a newer activation",
                                connection.path(), *version, kStoreSchemaVersion));
  }
  for (const Migration& migration : kMigrations) {
    if (!status.is_ok()) break;
    if (migration.version <= *version) continue;
    status = connection.exec(migration.sql);
    if (status.is_ok()) {
      status = connection.exec(fmt::format("PRAGMA user_version = {}", migration.version).c_str());
    }
  }
  if (status.is_ok()) {
    status = connection.exec(fmt::format("PRAGMA application_id = {}", kStoreApplicationId).c_str());
  }

  if (!status.is_ok()) {
    (void)connection.exec("ROLLBACK");
    return status;
  }
  return connection.exec("COMMIT");
}

}  // namespace activation::internal
