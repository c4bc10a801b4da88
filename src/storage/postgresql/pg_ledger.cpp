// Checkpoints, the membership ledger and the shared rate limits in the PostgreSQL store.
#include <cmath>

#include <fmt/format.h>

#include "storage/postgresql/pg_schema.hpp"
#include "storage/postgresql/pg_store.hpp"

namespace activation::internal {
namespace {

using std::chrono::milliseconds;

#define ACT_PG_CHECKPOINT_COLUMNS \
  "job_id, destination, batch_number, source_position, counters, session_state, updated_at"
#define ACT_PG_LEDGER_COLUMNS "member_key, hashed_keys, operation, outcome, reason, updated_at, last_seen_job"

Checkpoint read_checkpoint(const PgResult& rows, int row) {
  Checkpoint checkpoint;
  checkpoint.job_id = rows.int64(row, 0);
  checkpoint.destination = rows.text(row, 1);
  checkpoint.batch_number = rows.int64(row, 2);
  checkpoint.source_position = rows.text(row, 3);
  checkpoint.counters = rows.text(row, 4);
  checkpoint.session_state = rows.text(row, 5);
  checkpoint.updated_at = Timestamp(milliseconds(rows.int64(row, 6)));
  return checkpoint;
}

LedgerEntry read_entry(const PgResult& rows, int row) {
  LedgerEntry entry;
  entry.member_key = rows.text(row, 0);
  entry.hashed_keys = rows.text(row, 1);
  entry.operation = rows.int64(row, 2) == 1 ? LedgerOperation::kRemove : LedgerOperation::kAdd;
  switch (rows.int64(row, 3)) {
    case 1: entry.outcome = LedgerOutcome::kRejected; break;
    case 2: entry.outcome = LedgerOutcome::kDeferred; break;
    default: entry.outcome = LedgerOutcome::kAccepted; break;
  }
  entry.reason = rows.text(row, 4);
  entry.updated_at = Timestamp(milliseconds(rows.int64(row, 5)));
  entry.last_seen_job = rows.int64(row, 6);
  return entry;
}

std::string quoted_array(const std::vector<std::string>& values) {
  std::string text = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) text += ',';
    text += '"';
    for (const char c : values[i]) {
      if (c == '"' || c == '\\') text += '\\';
      text += c;
    }
    text += '"';
  }
  text += '}';
  return text;
}

std::string nullable_array(const std::vector<std::string>& values) {
  std::string text = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) text += ',';
    if (values[i].empty()) {
      text += "NULL";
      continue;
    }
    text += '"';
    for (const char c : values[i]) {
      if (c == '"' || c == '\\') text += '\\';
      text += c;
    }
    text += '"';
  }
  text += '}';
  return text;
}

}  // namespace

Result<std::int64_t> PostgresStore::scope_id(PgConnection& connection, std::string_view audience,
                                             std::string_view destination, bool create) {
  {
    std::lock_guard lock(scopes_mutex_);
    auto found = scopes_.find(std::pair<std::string, std::string>(audience, destination));
    if (found != scopes_.end()) return found->second;
  }
  std::int64_t id = 0;
  if (create) {
    // ON CONFLICT DO UPDATE returns the row when another transaction inserted it first.
    ACT_ASSIGN_OR_RETURN(
        auto rows,
        connection.run(
            "act_scope_upsert",
            "INSERT INTO ledger_scopes (audience, destination) VALUES ($1, $2) "
            "ON CONFLICT (audience, destination) DO UPDATE SET audience = excluded.audience RETURNING id",
            PgParams().add(audience).add(destination)));
    if (rows.rows() != 1) return internal_error("inserting a ledger scope returned no id");
    // Not cached: the insert may still roll back with the caller's transaction.
    return rows.int64(0, 0);
  }
  ACT_ASSIGN_OR_RETURN(
      auto rows,
      connection.run("act_scope", "SELECT id FROM ledger_scopes WHERE audience = $1 AND destination = $2",
                     PgParams().add(audience).add(destination)));
  if (rows.rows() == 1) {
    id = rows.int64(0, 0);
    std::lock_guard lock(scopes_mutex_);
    scopes_.emplace(std::pair<std::string, std::string>(audience, destination), id);
  }
  return id;
}

Status PostgresStore::apply_ledger_locked(PgConnection& connection, const LedgerBatch& batch) {
  if (batch.empty()) return Status();
  ACT_ASSIGN_OR_RETURN(const std::int64_t scope,
                       scope_id(connection, batch.audience, batch.destination, true));

  if (!batch.updates.empty()) {
    std::vector<std::string> keys, hashed, reasons;
    std::string operations = "{", outcomes = "{";
    for (std::size_t i = 0; i < batch.updates.size(); ++i) {
      const LedgerUpdate& update = batch.updates[i];
      keys.push_back(update.member_key);
      hashed.push_back(update.hashed_keys);
      reasons.push_back(update.reason);
      if (i > 0) {
        operations += ',';
        outcomes += ',';
      }
      operations += std::to_string(static_cast<int>(update.operation));
      outcomes += std::to_string(static_cast<int>(update.outcome));
    }
    operations += '}';
    outcomes += '}';
    // DISTINCT ON keeps the last update of a member named twice in one batch, as applying the
    // updates one after the other would.
    ACT_RETURN_IF_ERROR(
        connection
            .run("act_ledger_upsert",
                 "INSERT INTO ledger (scope_id, member_key, hashed_keys, operation, outcome, reason, "
                 "updated_at, last_seen_job) "
                 "SELECT DISTINCT ON (u.member_key) $1, u.member_key, u.hashed_keys, u.operation, u.outcome, "
                 "u.reason, " ACT_PG_NOW_MS
                 ", $7 FROM unnest($2::text[], $3::text[], $4::smallint[], $5::smallint[], $6::text[]) "
                 "WITH ORDINALITY AS u(member_key, hashed_keys, operation, outcome, reason, n) ORDER BY "
                 "u.member_key, u.n DESC "
                 "ON CONFLICT (scope_id, member_key) DO UPDATE SET hashed_keys = excluded.hashed_keys, "
                 "operation = excluded.operation, outcome = excluded.outcome, reason = excluded.reason, "
                 "updated_at = excluded.updated_at, "
                 "last_seen_job = CASE WHEN excluded.last_seen_job = 0 THEN ledger.last_seen_job ELSE "
                 "excluded.last_seen_job END",
                 PgParams()
                     .add(scope)
                     .add(quoted_array(keys))
                     .add(quoted_array(hashed))
                     .add(operations)
                     .add(outcomes)
                     .add(nullable_array(reasons))
                     .add(batch.seen_by_job))
            .status());
  }

  if (batch.seen_by_job != 0 && !batch.seen_member_keys.empty()) {
    ACT_RETURN_IF_ERROR(
        connection
            .run("act_ledger_seen",
                 "UPDATE ledger SET last_seen_job = $1 WHERE scope_id = $2 AND member_key = ANY($3::text[])",
                 PgParams().add(batch.seen_by_job).add(scope).add(quoted_array(batch.seen_member_keys)))
            .status());
  }
  return Status();
}

Result<std::optional<Checkpoint>> PostgresStore::load_checkpoint(JobId job_id, std::string_view destination) {
  std::optional<Checkpoint> checkpoint;
  ACT_RETURN_IF_ERROR(read([&](PgConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(auto rows, connection.run("act_checkpoint",
                                                   "SELECT " ACT_PG_CHECKPOINT_COLUMNS
                                                   " FROM checkpoints WHERE job_id = $1 AND destination = $2",
                                                   PgParams().add(job_id).add(destination)));
    checkpoint.reset();
    if (rows.rows() > 0) checkpoint = read_checkpoint(rows, 0);
    return Status();
  }));
  return checkpoint;
}

Result<std::vector<Checkpoint>> PostgresStore::load_checkpoints(JobId job_id) {
  std::vector<Checkpoint> checkpoints;
  ACT_RETURN_IF_ERROR(read([&](PgConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(
        auto rows, connection.run("act_checkpoints",
                                  "SELECT " ACT_PG_CHECKPOINT_COLUMNS
                                  " FROM checkpoints WHERE job_id = $1 ORDER BY destination COLLATE \"C\"",
                                  PgParams().add(job_id)));
    checkpoints.clear();
    for (int row = 0; row < rows.rows(); ++row) checkpoints.push_back(read_checkpoint(rows, row));
    return Status();
  }));
  return checkpoints;
}

Status PostgresStore::commit_checkpoint(const Checkpoint& checkpoint, const LedgerBatch* ledger,
                                        const Lease* lease) {
  return write("commit checkpoint", [&](PgConnection& connection) -> Status {
    if (lease != nullptr) ACT_RETURN_IF_ERROR(check_lease(connection, *lease, "commit a batch of"));

    // The upsert leaves a stored checkpoint that is further along untouched and returns nothing.
    ACT_ASSIGN_OR_RETURN(
        auto saved,
        connection.run(
            "act_checkpoint_upsert",
            "INSERT INTO checkpoints (" ACT_PG_CHECKPOINT_COLUMNS
            ") VALUES ($1, $2, $3, $4, $5, $6, " ACT_PG_NOW_MS ") "
            "ON CONFLICT (job_id, destination) DO UPDATE SET batch_number = excluded.batch_number, "
            "source_position = excluded.source_position, counters = excluded.counters, "
            "session_state = excluded.session_state, updated_at = excluded.updated_at "
            "WHERE checkpoints.batch_number <= excluded.batch_number RETURNING batch_number",
            PgParams()
                .add(checkpoint.job_id)
                .add(checkpoint.destination)
                .add(checkpoint.batch_number)
                .add(checkpoint.source_position)
                .add(checkpoint.counters)
                .add(checkpoint.session_state)));
    if (saved.rows() == 0) {
      ACT_ASSIGN_OR_RETURN(
          auto stored,
          connection.run("act_checkpoint_batch",
                         "SELECT batch_number FROM checkpoints WHERE job_id = $1 AND destination = $2",
                         PgParams().add(checkpoint.job_id).add(checkpoint.destination)));
      return conflict(fmt::format(
          "checkpoint of job {} destination '{}' is at batch {}; saving batch {} would move it back",
          checkpoint.job_id, checkpoint.destination, stored.rows() > 0 ? stored.int64(0, 0) : 0,
          checkpoint.batch_number));
    }
    if (ledger != nullptr) ACT_RETURN_IF_ERROR(apply_ledger_locked(connection, *ledger));
    return Status();
  });
}

Status PostgresStore::clear_checkpoint(JobId job_id, std::string_view destination) {
  return run("clear checkpoint", RunMode::kRead, [&](PgConnection& connection) -> Status {
    return connection
        .run("act_checkpoint_clear", "DELETE FROM checkpoints WHERE job_id = $1 AND destination = $2",
             PgParams().add(job_id).add(destination))
        .status();
  });
}

Result<std::vector<std::optional<LedgerEntry>>> PostgresStore::lookup_members(
    std::string_view audience, std::string_view destination, std::span<const std::string> member_keys) {
  std::vector<std::optional<LedgerEntry>> entries(member_keys.size());
  if (member_keys.empty()) return entries;
  ACT_RETURN_IF_ERROR(read([&](PgConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(const std::int64_t scope, scope_id(connection, audience, destination, false));
    if (scope == 0) return Status();
    // One statement for the whole batch: the keys go in as an array and come back with their
    // position in it.
    const std::vector<std::string> keys(member_keys.begin(), member_keys.end());
    ACT_ASSIGN_OR_RETURN(auto rows,
                         connection.run("act_ledger_lookup",
                                        "SELECT k.n, " ACT_PG_LEDGER_COLUMNS
                                        " FROM unnest($2::text[]) WITH ORDINALITY AS k(key, n) "
                                        "JOIN ledger ON ledger.scope_id = $1 AND ledger.member_key = k.key",
                                        PgParams().add(scope).add(quoted_array(keys))));
    for (int row = 0; row < rows.rows(); ++row) {
      const std::int64_t position = rows.int64(row, 0) - 1;
      if (position < 0 || position >= static_cast<std::int64_t>(entries.size())) continue;
      LedgerEntry entry;
      entry.member_key = rows.text(row, 1);
      entry.hashed_keys = rows.text(row, 2);
      entry.operation = rows.int64(row, 3) == 1 ? LedgerOperation::kRemove : LedgerOperation::kAdd;
      switch (rows.int64(row, 4)) {
        case 1: entry.outcome = LedgerOutcome::kRejected; break;
        case 2: entry.outcome = LedgerOutcome::kDeferred; break;
        default: entry.outcome = LedgerOutcome::kAccepted; break;
      }
      entry.reason = rows.text(row, 5);
      entry.updated_at = Timestamp(milliseconds(rows.int64(row, 6)));
      entry.last_seen_job = rows.int64(row, 7);
      entries[static_cast<std::size_t>(position)] = std::move(entry);
    }
    return Status();
  }));
  return entries;
}

Status PostgresStore::apply_ledger(const LedgerBatch& batch) {
  if (batch.empty()) return Status();
  return write("apply ledger updates",
               [&](PgConnection& connection) { return apply_ledger_locked(connection, batch); });
}

Result<std::vector<LedgerEntry>> PostgresStore::page_members(std::string_view audience,
                                                             std::string_view destination, MemberScan filter,
                                                             JobId job, std::string_view after_key,
                                                             int limit) {
  std::vector<LedgerEntry> entries;
  ACT_RETURN_IF_ERROR(read([&](PgConnection& connection) -> Status {
    entries.clear();
    ACT_ASSIGN_OR_RETURN(const std::int64_t scope, scope_id(connection, audience, destination, false));
    if (scope == 0) return Status();
    // COLLATE "C" orders keys by bytes, as SQLite does, whatever the database's collation.
    auto rows =
        filter == MemberScan::kAll
            ? connection.run("act_ledger_page",
                             "SELECT " ACT_PG_LEDGER_COLUMNS
                             " FROM ledger WHERE scope_id = $1 AND "
                             "member_key COLLATE \"C\" > $2 ORDER BY member_key COLLATE \"C\" LIMIT $3",
                             PgParams().add(scope).add(after_key).add(limit))
            : connection.run("act_ledger_page_unseen",
                             "SELECT " ACT_PG_LEDGER_COLUMNS
                             " FROM ledger WHERE scope_id = $1 AND "
                             "member_key COLLATE \"C\" > $2 AND operation = 0 AND outcome = 0 AND "
                             "last_seen_job <> $4 ORDER BY member_key COLLATE \"C\" LIMIT $3",
                             PgParams().add(scope).add(after_key).add(limit).add(job));
    ACT_RETURN_IF_ERROR(rows.status());
    for (int row = 0; row < rows->rows(); ++row) entries.push_back(read_entry(*rows, row));
    return Status();
  }));
  return entries;
}

Result<std::int64_t> PostgresStore::count_members(std::string_view audience, std::string_view destination) {
  std::int64_t count = 0;
  ACT_RETURN_IF_ERROR(read([&](PgConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(const std::int64_t scope, scope_id(connection, audience, destination, false));
    if (scope == 0) return Status();
    ACT_ASSIGN_OR_RETURN(auto rows,
                         connection.run("act_ledger_count", "SELECT count(*) FROM ledger WHERE scope_id = $1",
                                        PgParams().add(scope)));
    count = rows.int64(0, 0);
    return Status();
  }));
  return count;
}

Result<Store::RateReservation> PostgresStore::reserve_rate(std::string_view key, const RateRequest& request) {
  // GCRA on the server's clock, in microseconds: taking n tokens moves the theoretical arrival time
  // (TAT) n intervals past max(TAT, now); the tokens may be used once TAT minus the burst allowance
  // is not in the future. One UPSERT reads and moves the TAT under the row's lock, so concurrent
  // reservations of all processes are applied one after the other.
  const auto interval_us = [&](double tokens) {
    return static_cast<std::int64_t>(std::ceil(tokens * 1e6 / request.rate_per_second));
  };
  PgParams params;
  params.add(key)
      .add(interval_us(request.tokens))
      .add(interval_us(request.burst))
      .add(static_cast<std::int64_t>(request.max_wait.count()));

  RateReservation reservation;
  ACT_RETURN_IF_ERROR(run("reserve rate", RunMode::kSingleWrite, [&](PgConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(
        auto rows,
        connection.run(
            "act_rate_reserve",
            "WITH c AS (SELECT (floor(extract(epoch FROM clock_timestamp()) * 1000000))::bigint AS now), "
            "upsert AS (INSERT INTO rate_limits AS r (key, tat_us, updated_at) "
            "SELECT $1, c.now + $2::bigint, c.now / 1000 FROM c "
            "ON CONFLICT (key) DO UPDATE SET tat_us = greatest(r.tat_us, excluded.tat_us - $2::bigint) + "
            "$2::bigint, "
            "updated_at = excluded.updated_at "
            "WHERE greatest(r.tat_us, excluded.tat_us - $2::bigint) + $2::bigint - $3::bigint "
            "- (excluded.tat_us - $2::bigint) <= $4::bigint "
            "RETURNING tat_us) "
            "SELECT true, greatest(0, upsert.tat_us - $3::bigint - c.now) FROM upsert, c "
            "UNION ALL SELECT false, greatest(0, greatest(r.tat_us, c.now) + $2::bigint - $3::bigint - "
            "c.now) "
            "FROM rate_limits r, c WHERE r.key = $1 AND NOT EXISTS (SELECT 1 FROM upsert)",
            params));
    if (rows.rows() != 1) {
      // The row that blocked the insert was committed after this statement's snapshot was taken,
      // so the second branch could not read it. Report one interval to wait; the caller asks again.
      reservation.granted = false;
      reservation.wait = std::chrono::microseconds(interval_us(request.tokens));
      return Status();
    }
    reservation.granted = rows.boolean(0, 0);
    reservation.wait = std::chrono::microseconds(rows.int64(0, 1));
    return Status();
  }));
  return reservation;
}

Result<Store::RateReservation> PostgresStore::reserve_window(std::string_view key, const WindowRequest& request) {
  RateReservation reservation;
  ACT_RETURN_IF_ERROR(run("reserve window", RunMode::kWrite, [&](PgConnection& connection) -> Status {
    reservation = RateReservation();
    // A lock per key for the rest of the transaction, so that the reservations of all processes
    // on one window are applied one after the other.
    ACT_RETURN_IF_ERROR(connection
                            .run("act_window_lock", "SELECT pg_advisory_xact_lock(1633907831, hashtext($1))",
                                 PgParams().add(key))
                            .status());
    ACT_ASSIGN_OR_RETURN(
        auto clock, connection.run("act_window_now",
                                   "SELECT (floor(extract(epoch FROM clock_timestamp()) * 1000000))::bigint"));
    const std::int64_t now = clock.int64(0, 0);
    const std::int64_t window = request.window.count();
    ACT_RETURN_IF_ERROR(connection
                            .run("act_window_expire", "DELETE FROM rate_window_grants WHERE key = $1 AND at_us <= $2",
                                 PgParams().add(key).add(now - window))
                            .status());
    // The grants still in the window, oldest first: their total decides, and when it is too high
    // the grant whose expiry brings it low enough gives the wait.
    ACT_ASSIGN_OR_RETURN(auto grants,
                         connection.run("act_window_grants",
                                        "SELECT at_us, tokens FROM rate_window_grants WHERE key = $1 ORDER BY at_us",
                                        PgParams().add(key)));
    double used = 0;
    for (int row = 0; row < grants.rows(); ++row) used += grants.real(row, 1);
    if (used + request.tokens <= request.limit) {
      reservation.granted = request.take;
      if (!request.take) return Status();
      return connection
          .run("act_window_grant", "INSERT INTO rate_window_grants (key, at_us, tokens) VALUES ($1, $2, $3)",
               PgParams().add(key).add(now).add(request.tokens))
          .status();
    }
    for (int row = 0; row < grants.rows(); ++row) {
      used -= grants.real(row, 1);
      if (used + request.tokens <= request.limit) {
        reservation.wait = std::chrono::microseconds(std::max<std::int64_t>(0, grants.int64(row, 0) + window - now));
        break;
      }
    }
    return Status();
  }));
  return reservation;
}

}  // namespace activation::internal
