#include "storage/postgresql/pg_schema.hpp"

#include <fmt/format.h>

namespace activation::internal {
namespace {

// Migration 1: the tables of the SQLite store with PostgreSQL types. Times are bigint milliseconds
// on the server's clock and states are the values of JobState, so both stores read rows the same
// way. The hot indexes are partial: they hold only jobs that can still move, so terminal jobs (the
// bulk of the table) never slow a claim down. fillfactor 80 leaves room in each page for the new
// row versions of a job's updates.
constexpr const char* kMigration1 = R"sql(
CREATE TABLE activation_schema (
  version integer PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jobs (
  id bigserial PRIMARY KEY,
  type text NOT NULL,
  payload text NOT NULL,
  priority smallint NOT NULL,
  state smallint NOT NULL,
  due_at bigint NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL,
  stalls integer NOT NULL DEFAULT 0,
  retry_policy text,
  dedup_key text,
  expires_at bigint,
  audience text,
  progress text,
  last_error text,
  last_error_class smallint,
  reason text,
  cancel_requested boolean NOT NULL DEFAULT false,
  lease_owner text,
  lease_epoch bigint NOT NULL DEFAULT 0,
  lease_expires_at bigint,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  started_at bigint,
  finished_at bigint
) WITH (fillfactor = 80);
CREATE INDEX jobs_waiting ON jobs (priority, due_at, id) WHERE state = 0;
CREATE INDEX jobs_delayed ON jobs (due_at) WHERE state = 1;
CREATE INDEX jobs_active ON jobs (lease_expires_at) WHERE state = 2;
CREATE INDEX jobs_terminal ON jobs (state, finished_at) WHERE state >= 3;
CREATE INDEX jobs_expiry ON jobs (expires_at) WHERE expires_at IS NOT NULL AND state <= 1;
CREATE INDEX jobs_audience ON jobs (audience, id) WHERE audience IS NOT NULL;
CREATE UNIQUE INDEX jobs_dedup ON jobs (dedup_key) WHERE dedup_key IS NOT NULL AND state <= 2;

CREATE TABLE checkpoints (
  job_id bigint NOT NULL,
  destination text NOT NULL,
  batch_number bigint NOT NULL,
  source_position text NOT NULL,
  counters text NOT NULL,
  session_state text NOT NULL,
  updated_at bigint NOT NULL,
  PRIMARY KEY (job_id, destination)
);

CREATE TABLE ledger_scopes (
  id bigserial PRIMARY KEY,
  audience text NOT NULL,
  destination text NOT NULL,
  UNIQUE (audience, destination)
);

CREATE TABLE ledger (
  scope_id bigint NOT NULL,
  member_key text NOT NULL,
  hashed_keys text NOT NULL,
  operation smallint NOT NULL,
  outcome smallint NOT NULL,
  reason text,
  updated_at bigint NOT NULL,
  last_seen_job bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (scope_id, member_key)
);

CREATE TABLE rate_limits (
  key text PRIMARY KEY,
  tat_us bigint NOT NULL,
  updated_at bigint NOT NULL
);
)sql";

// Migration 2: the sliding windows shared through the store (daily quotas), one row per grant.
// at_us is the grant's time in microseconds since the epoch, from the server's clock.
constexpr const char* kMigration2 = R"sql(
CREATE TABLE rate_window_grants (
  key text NOT NULL,
  at_us bigint NOT NULL,
  tokens double precision NOT NULL
);
CREATE INDEX rate_window_grants_key ON rate_window_grants (key, at_us);
)sql";

struct Migration {
  std::int64_t version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, kMigration1},
    {2, kMigration2},
};

Status migrate_locked(PgConnection& connection) {
  ACT_ASSIGN_OR_RETURN(auto where, connection.exec("SELECT current_schema()"));
  if (where.rows() != 1 || where.is_null(0, 0)) {
    return failed_precondition(fmt::format(
        "store {}: no schema of the search_path exists; set the store's schema option or create the schema",
        connection.location()));
  }
  const std::string schema = where.text(0, 0);
  // The advisory lock key is derived from the schema, so stores in different schemas migrate
  // independently.
  ACT_RETURN_IF_ERROR(
      connection
          .run_unprepared("SELECT pg_advisory_xact_lock(hashtext('activation schema ' || $1))",
                          PgParams().add(schema))
          .status());

  ACT_ASSIGN_OR_RETURN(auto tables,
                       connection.run_unprepared("SELECT count(*), count(*) FILTER (WHERE tablename = "
                                                 "'activation_schema') FROM pg_tables WHERE schemaname = $1",
                                                 PgParams().add(schema)));
  const std::int64_t table_count = tables.int64(0, 0);
  const bool ours = tables.int64(0, 1) > 0;
  std::int64_t version = 0;
  if (ours) {
    ACT_ASSIGN_OR_RETURN(auto stored,
                         connection.exec("SELECT coalesce(max(version), 0) FROM activation_schema"));
    version = stored.int64(0, 0);
  } else if (table_count > 0) {
    return failed_precondition(fmt::format(
        "store {}: schema '{}' holds {} tables of another application (no activation_schema table); "
        "pass another schema or database",
        connection.location(), schema, table_count));
  }
  if (version > kPostgresSchemaVersion) {
    return Status(
        StatusCode::kDataLoss,
        fmt::format("store {}: schema version {} is newer than version {} that this library supports; "
                    "open it with a newer activation",
                    connection.location(), version, kPostgresSchemaVersion));
  }

  for (const Migration& migration : kMigrations) {
    if (migration.version <= version) continue;
    ACT_RETURN_IF_ERROR(connection.exec(migration.sql).status());
    ACT_RETURN_IF_ERROR(connection
                            .run_unprepared("INSERT INTO activation_schema (version) VALUES ($1)",
                                            PgParams().add(migration.version))
                            .status());
  }
  return Status();
}

}  // namespace

Status migrate_postgres_schema(PgConnection& connection, const std::string& schema) {
  if (!schema.empty()) {
    // Two processes creating the schema at once: the loser gets a unique violation, and the schema
    // exists either way.
    Status created =
        connection.exec(fmt::format("CREATE SCHEMA IF NOT EXISTS {}", quote_identifier(schema))).status();
    if (!created.is_ok() && created.code() != StatusCode::kAlreadyExists) return created;
  }
  ACT_RETURN_IF_ERROR(connection.exec("BEGIN").status());
  Status status = migrate_locked(connection);
  if (status.is_ok()) {
    status = connection.exec("COMMIT").status();
  } else if (!connection.broken()) {
    (void)connection.exec("ROLLBACK");
  }
  return status;
}

}  // namespace activation::internal
