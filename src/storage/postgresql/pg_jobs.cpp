// The job methods of the PostgreSQL store. Every change to an active job is an UPDATE guarded by
// (id, state = active, lease_epoch): a job missing from its RETURNING rows lost its lease.
#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "queue/retry_policy_codec.hpp"
#include "storage/postgresql/pg_schema.hpp"
#include "storage/postgresql/pg_store.hpp"

namespace activation::internal {
namespace {

using std::chrono::milliseconds;

constexpr int kStateWaiting = 0;
constexpr int kStateCompleted = 3;

// Jobs per INSERT of a bulk enqueue; bounds the size of one statement's parameters.
constexpr std::size_t kInsertChunk = 5000;

std::int64_t to_ms(Timestamp t) {
  return t.time_since_epoch().count();
}
Timestamp from_ms(std::int64_t ms) {
  return Timestamp(milliseconds(ms));
}

#define ACT_PG_JOB_COLUMNS                                                                          \
  "jobs.id, jobs.type, jobs.payload, jobs.priority, jobs.state, jobs.due_at, jobs.attempts, "       \
  "jobs.max_attempts, "                                                                             \
  "jobs.stalls, jobs.retry_policy, jobs.dedup_key, jobs.expires_at, jobs.audience, jobs.progress, " \
  "jobs.last_error, jobs.last_error_class, jobs.reason, jobs.cancel_requested, jobs.lease_owner, "  \
  "jobs.lease_epoch, jobs.lease_expires_at, jobs.created_at, jobs.updated_at, jobs.started_at, "    \
  "jobs.finished_at"

Priority priority_from_int(std::int64_t value) {
  switch (value) {
    case 1: return Priority::kLow;
    case 10: return Priority::kHigh;
    case 20: return Priority::kCritical;
    default: return Priority::kNormal;
  }
}

std::optional<Timestamp> optional_time(const PgResult& rows, int row, int column) {
  auto value = rows.optional_int64(row, column);
  if (!value) return std::nullopt;
  return from_ms(*value);
}

// Reads the ACT_PG_JOB_COLUMNS of one row.
Result<Job> read_job(const PgResult& rows, int row) {
  Job job;
  job.id = rows.int64(row, 0);
  job.type = rows.text(row, 1);
  job.payload = rows.text(row, 2);
  job.priority = priority_from_int(rows.int64(row, 3));
  const std::int64_t state = rows.int64(row, 4);
  if (state < 0 || state >= kJobStateCount) {
    return Status(StatusCode::kDataLoss,
                  fmt::format("job {} has state {}, which is not a known job state", job.id, state));
  }
  job.state = static_cast<JobState>(state);
  job.due_at = from_ms(rows.int64(row, 5));

  job.attempts = static_cast<int>(rows.int64(row, 6));
  job.max_attempts = static_cast<int>(rows.int64(row, 7));
  job.stalls = static_cast<int>(rows.int64(row, 8));
  if (!rows.is_null(row, 9)) {
    auto policy = decode_retry_policy(rows.text(row, 9));
    if (!policy.is_ok()) {
      return Status(StatusCode::kDataLoss, fmt::format("job {}: {}", job.id, policy.status().message()));
    }
    job.retry_policy = std::move(policy).value();
  }

  job.dedup_key = rows.text(row, 10);
  job.expires_at = optional_time(rows, row, 11);
  job.audience = rows.text(row, 12);
  job.progress = rows.text(row, 13);
  job.last_error = rows.text(row, 14);
  if (auto error_class = rows.optional_int64(row, 15);
      error_class && *error_class >= 0 && *error_class <= 3) {
    job.last_error_class = static_cast<ErrorClass>(*error_class);
  }
  job.reason = rows.text(row, 16);
  job.cancel_requested = rows.boolean(row, 17);

  job.lease_owner = rows.text(row, 18);
  job.lease_epoch = rows.int64(row, 19);
  job.lease_expires_at = optional_time(rows, row, 20);
  job.created_at = from_ms(rows.int64(row, 21));
  job.updated_at = from_ms(rows.int64(row, 22));
  job.started_at = optional_time(rows, row, 23);
  job.finished_at = optional_time(rows, row, 24);
  return job;
}

Result<std::vector<Job>> read_jobs(const PgResult& rows) {
  std::vector<Job> jobs;
  jobs.reserve(static_cast<std::size_t>(rows.rows()));
  for (int row = 0; row < rows.rows(); ++row) {
    ACT_ASSIGN_OR_RETURN(Job job, read_job(rows, row));
    jobs.push_back(std::move(job));
  }
  return jobs;
}

Result<std::optional<Job>> select_job(PgConnection& connection, JobId id, bool for_update = false) {
  auto rows = for_update ? connection.run("act_job_for_update",
                                          "SELECT " ACT_PG_JOB_COLUMNS " FROM jobs WHERE id = $1 FOR UPDATE",
                                          PgParams().add(id))
                         : connection.run("act_job", "SELECT " ACT_PG_JOB_COLUMNS " FROM jobs WHERE id = $1",
                                          PgParams().add(id));
  ACT_RETURN_IF_ERROR(rows.status());
  if (rows->rows() == 0) return std::optional<Job>();
  ACT_ASSIGN_OR_RETURN(Job job, read_job(*rows, 0));
  return std::optional<Job>(std::move(job));
}

// An array literal for a text[] parameter; std::nullopt elements become NULL.
std::string text_array(const std::vector<std::optional<std::string>>& values) {
  std::string text = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) text += ',';
    if (!values[i]) {
      text += "NULL";
      continue;
    }
    text += '"';
    for (const char c : *values[i]) {
      if (c == '"' || c == '\\') text += '\\';
      text += c;
    }
    text += '"';
  }
  text += '}';
  return text;
}

std::string number_array(const std::vector<std::optional<std::int64_t>>& values) {
  std::string text = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) text += ',';
    text += values[i] ? std::to_string(*values[i]) : std::string("NULL");
  }
  text += '}';
  return text;
}

std::optional<std::string> text_or_null(std::string_view value) {
  if (value.empty()) return std::nullopt;
  return std::string(value);
}

// The columns of a job to insert that do not depend on the server's clock.
struct InsertRow {
  const JobSpec* spec;
  int max_attempts;
  std::optional<std::int64_t> run_at;
  std::int64_t delay_ms;
  std::optional<std::int64_t> expires_at;
  std::int64_t expire_after_ms;
  std::optional<std::string> retry_policy;
};

InsertRow insert_row(const NewJob& job) {
  const JobSpec& spec = *job.spec;
  InsertRow row{&spec,        job.max_attempts,          std::nullopt, spec.delay.count(),
                std::nullopt, spec.expire_after.count(), std::nullopt};
  if (spec.run_at) row.run_at = to_ms(*spec.run_at);
  if (spec.expires_at) row.expires_at = to_ms(*spec.expires_at);
  if (spec.retry_policy) row.retry_policy = encode_retry_policy(*spec.retry_policy);
  return row;
}

// The INSERT of jobs without dedup keys, from ten parallel arrays, as the CTE `ins`.
#define ACT_PG_INSERT_PLAIN_CTES                                                                   \
  "WITH c AS (SELECT " ACT_PG_NOW_MS " AS now), "                                                   \
  "r AS (SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[], $4::bigint[], "               \
  "$5::bigint[], $6::integer[], "                                                                   \
  "$7::text[], $8::bigint[], $9::bigint[], $10::text[]) WITH ORDINALITY "                           \
  "AS r(type, payload, priority, run_at, delay_ms, max_attempts, retry_policy, "                    \
  "expires_at, expire_after, audience, n)), "                                                       \
  "ins AS (INSERT INTO jobs (type, payload, priority, state, due_at, max_attempts, retry_policy, "  \
  "expires_at, audience, "                                                                          \
  "created_at, updated_at) "                                                                        \
  "SELECT r.type, r.payload, r.priority, "                                                          \
  "CASE WHEN coalesce(r.run_at, c.now + r.delay_ms) > c.now THEN 1 ELSE 0 END, "                    \
  "coalesce(r.run_at, c.now + r.delay_ms), r.max_attempts, r.retry_policy, "                        \
  "coalesce(r.expires_at, CASE WHEN r.expire_after > 0 THEN c.now + r.expire_after END), "          \
  "r.audience, c.now, c.now "                                                                       \
  "FROM r, c ORDER BY r.n RETURNING id, state) "

// Inserts jobs without dedup keys in one statement. The ids come from the sequence in the order of
// the rows, so sorting the returned ids gives them back in input order. With `notify_channel`, the
// same statement sends NOTIFY on it when a job is due now, so that an enqueue outside a transaction
// is one round trip to the server.
Status insert_plain(PgConnection& connection, const std::vector<InsertRow>& rows,
                    std::vector<EnqueueResult>& results, std::vector<std::size_t>& positions,
                    bool& any_waiting, const std::string* notify_channel = nullptr) {
  std::vector<std::optional<std::string>> types, payloads, policies, audiences;
  std::vector<std::optional<std::int64_t>> priorities, run_ats, delays, max_attempts, expires, expire_afters;
  for (const InsertRow& row : rows) {
    types.emplace_back(row.spec->type);
    payloads.emplace_back(row.spec->payload);
    priorities.emplace_back(static_cast<int>(row.spec->priority));
    run_ats.push_back(row.run_at);
    delays.emplace_back(row.delay_ms);
    max_attempts.emplace_back(row.max_attempts);
    policies.push_back(row.retry_policy);
    expires.push_back(row.expires_at);
    expire_afters.emplace_back(row.expire_after_ms);
    audiences.push_back(text_or_null(row.spec->audience));
  }
  PgParams params;
  params.add(text_array(types))
      .add(text_array(payloads))
      .add(number_array(priorities))
      .add(number_array(run_ats));
  params.add(number_array(delays))
      .add(number_array(max_attempts))
      .add(text_array(policies))
      .add(number_array(expires));
  params.add(number_array(expire_afters)).add(text_array(audiences));

  if (notify_channel != nullptr) params.add(*notify_channel);
  // A SELECT in a WITH clause runs only when the query reads it: the uncorrelated sub-select in the
  // WHERE clause reads `woken` once, so pg_notify() runs once when any inserted job is waiting.
  auto inserted = notify_channel == nullptr
                      ? connection.run("act_insert_plain", ACT_PG_INSERT_PLAIN_CTES "SELECT id, state FROM ins",
                                       params)
                      : connection.run("act_insert_plain_notify",
                                       ACT_PG_INSERT_PLAIN_CTES
                                       ", woken AS (SELECT pg_notify($11, '') FROM ins WHERE state = 0 LIMIT 1) "
                                       "SELECT ins.id, ins.state FROM ins WHERE (SELECT count(*) FROM woken) >= 0",
                                       params);
  ACT_RETURN_IF_ERROR(inserted.status());
  if (inserted->rows() != static_cast<int>(rows.size())) {
    return internal_error(fmt::format("enqueue of {} jobs inserted {} rows", rows.size(), inserted->rows()));
  }
  std::vector<JobId> ids;
  for (int i = 0; i < inserted->rows(); ++i) {
    ids.push_back(inserted->int64(i, 0));
    any_waiting = any_waiting || inserted->int64(i, 1) == kStateWaiting;
  }
  std::sort(ids.begin(), ids.end());
  for (std::size_t i = 0; i < ids.size(); ++i) results[positions[i]] = {ids[i], true};
  positions.clear();
  return Status();
}

// Inserts one job with a dedup key, or finds the live job that holds the key.
Result<EnqueueResult> insert_deduplicated(PgConnection& connection, const InsertRow& row, bool& any_waiting) {
  const JobSpec& spec = *row.spec;
  // The holder of the key may finish between the insert that found it and the look-up; then the
  // key is free again and the insert is tried once more.
  for (int attempt = 0; attempt < 3; ++attempt) {
    PgParams params;
    params.add(spec.type).add(spec.payload).add(static_cast<int>(spec.priority)).add_optional(row.run_at);
    params.add(row.delay_ms).add(row.max_attempts);
    if (row.retry_policy) {
      params.add(*row.retry_policy);
    } else {
      params.add_null();
    }
    params.add(spec.dedup_key)
        .add_optional(row.expires_at)
        .add(row.expire_after_ms)
        .add_text_or_null(spec.audience);
    ACT_ASSIGN_OR_RETURN(
        auto inserted,
        connection.run("act_insert_dedup",
                       "WITH c AS (SELECT " ACT_PG_NOW_MS
                       " AS now), d AS (SELECT coalesce($4::bigint, c.now + $5::bigint) AS due FROM c) "
                       "INSERT INTO jobs (type, payload, priority, state, due_at, max_attempts, "
                       "retry_policy, dedup_key, expires_at, "
                       "audience, created_at, updated_at) "
                       "SELECT $1, $2, $3, CASE WHEN d.due > c.now THEN 1 ELSE 0 END, d.due, $6, $7, $8, "
                       "coalesce($9::bigint, CASE WHEN $10::bigint > 0 THEN c.now + $10::bigint END), $11, "
                       "c.now, c.now FROM c, d "
                       "ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL AND state <= 2 DO NOTHING "
                       "RETURNING id, state",
                       params));
    if (inserted.rows() == 1) {
      any_waiting = any_waiting || inserted.int64(0, 1) == kStateWaiting;
      return EnqueueResult{inserted.int64(0, 0), true};
    }
    ACT_ASSIGN_OR_RETURN(
        auto holder,
        connection.run("act_dedup_holder",
                       "SELECT id FROM jobs WHERE dedup_key = $1 AND dedup_key IS NOT NULL AND state <= 2",
                       PgParams().add(spec.dedup_key)));
    if (holder.rows() == 1) return EnqueueResult{holder.int64(0, 0), false};
  }
  return internal_error(
      fmt::format("enqueue of dedup key '{}' inserted nothing and found no live job", spec.dedup_key));
}

}  // namespace

Status PostgresStore::conflict_status(PgConnection& connection, const Lease& lease, std::string_view action) {
  auto current = select_job(connection, lease.job_id);
  if (!current.is_ok()) return current.status();
  if (!current->has_value()) {
    return conflict(fmt::format("cannot {} job {}: the job no longer exists", action, lease.job_id));
  }
  const Job& job = **current;
  return conflict(
      fmt::format("cannot {} job {}: lease epoch {} was lost; the job is now {} with lease epoch {}", action,
                  lease.job_id, lease.epoch, job_state_name(job.state), job.lease_epoch));
}

Status PostgresStore::check_lease(PgConnection& connection, const Lease& lease, std::string_view action) {
  // FOR SHARE keeps the lease from being taken over until this transaction ends.
  ACT_ASSIGN_OR_RETURN(
      auto held,
      connection.run("act_check_lease",
                     "SELECT 1 FROM jobs WHERE id = $1 AND state = 2 AND lease_epoch = $2 FOR SHARE",
                     PgParams().add(lease.job_id).add(lease.epoch)));
  if (held.rows() == 1) return Status();
  return conflict_status(connection, lease, action);
}

Result<std::vector<EnqueueResult>> PostgresStore::insert_jobs(std::span<const NewJob> jobs) {
  std::vector<EnqueueResult> results;
  bool any_waiting = false;
  if (jobs.empty()) return results;

  // Jobs without dedup keys that fit one INSERT take one round trip: the statement inserts them and
  // sends the NOTIFY in autocommit mode. Without BEGIN and COMMIT, a connection lost during the
  // statement leaves the outcome unknown, so it is not run again (kUnavailable, as for a claim).
  const bool one_statement =
      jobs.size() <= kInsertChunk &&
      std::all_of(jobs.begin(), jobs.end(), [](const NewJob& job) { return job.spec->dedup_key.empty(); });
  if (one_statement) {
    std::vector<InsertRow> rows;
    rows.reserve(jobs.size());
    for (const NewJob& job : jobs) rows.push_back(insert_row(job));
    ACT_RETURN_IF_ERROR(run("enqueue", RunMode::kSingleWrite, [&](PgConnection& connection) -> Status {
      results.assign(jobs.size(), EnqueueResult{});
      std::vector<std::size_t> positions(jobs.size());
      for (std::size_t i = 0; i < positions.size(); ++i) positions[i] = i;
      any_waiting = false;
      return insert_plain(connection, rows, results, positions, any_waiting, &channel_);
    }));
    if (any_waiting) notify_activity();
    return results;
  }

  ACT_RETURN_IF_ERROR(write("enqueue", [&](PgConnection& connection) -> Status {
    // Filled again on a retry after a lost connection.
    results.assign(jobs.size(), EnqueueResult{});
    any_waiting = false;
    std::vector<InsertRow> plain;
    std::vector<std::size_t> positions;
    const auto flush = [&]() -> Status {
      if (plain.empty()) return Status();
      Status status = insert_plain(connection, plain, results, positions, any_waiting);
      plain.clear();
      return status;
    };
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      InsertRow row = insert_row(jobs[i]);
      if (jobs[i].spec->dedup_key.empty()) {
        plain.push_back(std::move(row));
        positions.push_back(i);
        if (plain.size() >= kInsertChunk) ACT_RETURN_IF_ERROR(flush());
        continue;
      }
      // Keeps the input order of ids: plain jobs before this one get theirs first.
      ACT_RETURN_IF_ERROR(flush());
      ACT_ASSIGN_OR_RETURN(results[i], insert_deduplicated(connection, row, any_waiting));
    }
    ACT_RETURN_IF_ERROR(flush());
    if (any_waiting) ACT_RETURN_IF_ERROR(notify_waiters(connection));
    return Status();
  }));
  if (any_waiting) notify_activity();
  return results;
}

Result<std::optional<Job>> PostgresStore::get_job(JobId id) {
  std::optional<Job> job;
  ACT_RETURN_IF_ERROR(read([&](PgConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(job, select_job(connection, id));
    return Status();
  }));
  return job;
}

Result<std::vector<Job>> PostgresStore::list_jobs(const JobQuery& query) {
  std::string sql = "SELECT " ACT_PG_JOB_COLUMNS " FROM jobs WHERE true";
  PgParams params;
  int next = 1;
  if (!query.states.empty()) {
    std::vector<std::optional<std::int64_t>> states;
    for (JobState state : query.states) states.emplace_back(static_cast<int>(state));
    sql += fmt::format(" AND state = ANY(${}::smallint[])", next++);
    params.add(number_array(states));
  }
  if (query.audience) {
    sql += fmt::format(" AND audience = ${}", next++);
    params.add(*query.audience);
  }
  if (!query.types.empty()) {
    std::vector<std::optional<std::string>> types(query.types.begin(), query.types.end());
    sql += fmt::format(" AND type = ANY(${}::text[])", next++);
    params.add(text_array(types));
  }
  if (query.before_id > 0) {
    sql += fmt::format(" AND id < ${}", next++);
    params.add(query.before_id);
  }
  sql += fmt::format(" ORDER BY id DESC LIMIT ${}", next);
  params.add(std::max(0, query.limit));

  std::vector<Job> jobs;
  ACT_RETURN_IF_ERROR(read([&](PgConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(auto rows, connection.run_unprepared(sql, params));
    ACT_ASSIGN_OR_RETURN(jobs, read_jobs(rows));
    return Status();
  }));
  return jobs;
}

Result<std::vector<ClaimedJob>> PostgresStore::claim_jobs(const ClaimRequest& request) {
  // One statement: per priority class, the first due jobs in (due_at, id) order of the partial index
  // jobs_waiting, skipping rows that other claims have locked; then the best max_jobs of those. Rows
  // locked but not taken are unlocked when the statement commits.
  PgParams params;
  params.add(request.worker_id).add(static_cast<std::int64_t>(request.lease_duration.count()));
  for (Priority priority : {Priority::kCritical, Priority::kHigh, Priority::kNormal, Priority::kLow}) {
    params.add(
        std::max(0, std::min(request.max_jobs, request.max_per_class[priority_class_index(priority)])));
  }
  params.add(std::max(0, request.max_jobs));
  if (request.types.empty()) {
    params.add_null();
  } else {
    params.add(
        text_array(std::vector<std::optional<std::string>>(request.types.begin(), request.types.end())));
  }

#define ACT_PG_CLAIM_CLASS(priority, limit)                                                           \
  "SELECT jobs.id, jobs.priority, jobs.due_at FROM jobs, c WHERE jobs.state = 0 AND jobs.priority "   \
  "= " priority                                                                                       \
  " AND (jobs.expires_at IS NULL OR jobs.expires_at > c.now) AND ($8::text[] IS NULL OR jobs.type = " \
  "ANY($8::text[])) "                                                                                 \
  "ORDER BY jobs.due_at, jobs.id LIMIT " limit " FOR UPDATE OF jobs SKIP LOCKED"

  std::vector<ClaimedJob> claimed;
  ACT_RETURN_IF_ERROR(run("claim", RunMode::kSingleWrite, [&](PgConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(
        auto rows,
        connection.run(
            "act_claim",
            "WITH c AS (SELECT " ACT_PG_NOW_MS " AS now), "
            "p20 AS (" ACT_PG_CLAIM_CLASS("20", "$3") "), p10 AS (" ACT_PG_CLAIM_CLASS(
                "10", "$4") "), "
                            "p5 AS (" ACT_PG_CLAIM_CLASS("5", "$5") "), p1 AS (" ACT_PG_CLAIM_CLASS(
                                "1", "$6") "), "
                                           "picked AS (SELECT id FROM (SELECT * FROM p20 UNION ALL SELECT * "
                                           "FROM p10 UNION ALL SELECT * FROM p5 "
                                           "UNION ALL SELECT * FROM p1) candidates ORDER BY priority DESC, "
                                           "due_at, id LIMIT $7) "
                                           "UPDATE jobs SET state = 2, attempts = jobs.attempts + 1, "
                                           "lease_epoch = jobs.lease_epoch + 1, lease_owner = $1, "
                                           "lease_expires_at = c.now + $2::bigint, started_at = c.now, "
                                           "updated_at = c.now, expires_at = NULL, "
                                           "cancel_requested = false FROM picked, c WHERE jobs.id = "
                                           "picked.id AND jobs.state = 0 "
                                           "RETURNING " ACT_PG_JOB_COLUMNS,
            params));
    ACT_ASSIGN_OR_RETURN(std::vector<Job> jobs, read_jobs(rows));
    // RETURNING gives rows in no defined order.
    std::sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) {
      if (a.priority != b.priority) return static_cast<int>(a.priority) > static_cast<int>(b.priority);
      return a.due_at != b.due_at ? a.due_at < b.due_at : a.id < b.id;
    });
    claimed.clear();
    for (Job& job : jobs) {
      Lease lease{job.id,       job.lease_epoch,  request.worker_id,
                  job.attempts, job.max_attempts, job.lease_expires_at.value_or(Timestamp{})};
      claimed.push_back({std::move(job), std::move(lease)});
    }
    return Status();
  }));
#undef ACT_PG_CLAIM_CLASS
  return claimed;
}

Result<std::vector<HeartbeatResult>> PostgresStore::heartbeat(std::span<const Lease> leases,
                                                              std::chrono::milliseconds lease_duration) {
  std::vector<HeartbeatResult> results;
  if (leases.empty()) return results;
  std::vector<std::optional<std::int64_t>> ids, epochs;
  for (const Lease& lease : leases) {
    ids.emplace_back(lease.job_id);
    epochs.emplace_back(lease.epoch);
  }
  PgParams params;
  params.add(number_array(ids))
      .add(number_array(epochs))
      .add(static_cast<std::int64_t>(lease_duration.count()));

  // Extending a lease again is harmless, so a heartbeat runs again after a lost connection.
  ACT_RETURN_IF_ERROR(run("heartbeat", RunMode::kRead, [&](PgConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(
        auto rows,
        connection.run("act_heartbeat",
                       "WITH c AS (SELECT " ACT_PG_NOW_MS " AS now) "
                       "UPDATE jobs SET lease_expires_at = c.now + $3::bigint, updated_at = c.now "
                       "FROM unnest($1::bigint[], $2::bigint[]) AS l(id, epoch), c "
                       "WHERE jobs.id = l.id AND jobs.state = 2 AND jobs.lease_epoch = l.epoch "
                       "RETURNING jobs.id, jobs.lease_epoch, jobs.cancel_requested, jobs.lease_expires_at",
                       params));
    results.assign(leases.size(), HeartbeatResult{});
    std::vector<bool> held(leases.size(), false);
    for (int row = 0; row < rows.rows(); ++row) {
      for (std::size_t i = 0; i < leases.size(); ++i) {
        if (held[i] || leases[i].job_id != rows.int64(row, 0) || leases[i].epoch != rows.int64(row, 1))
          continue;
        held[i] = true;
        results[i].cancel_requested = rows.boolean(row, 2);
        results[i].lease_expires_at = from_ms(rows.int64(row, 3));
      }
    }
    for (std::size_t i = 0; i < leases.size(); ++i) {
      if (held[i]) continue;
      results[i].status = conflict_status(connection, leases[i], "heartbeat");
      if (results[i].status.code() != StatusCode::kConflict) return results[i].status;
      results[i].cancel_requested = true;
    }
    return Status();
  }));
  return results;
}

Result<std::vector<Status>> PostgresStore::transition_jobs(std::span<const JobTransition> transitions) {
  std::vector<Status> results;
  if (transitions.empty()) return results;

  std::vector<std::optional<std::int64_t>> ids, epochs, targets, delays, refunds, error_classes;
  std::vector<std::optional<std::string>> errors, reasons;
  for (const JobTransition& transition : transitions) {
    JobState target = transition.target;
    if (target == JobState::kWaiting || target == JobState::kDelayed) {
      target = transition.delay.count() > 0 ? JobState::kDelayed : JobState::kWaiting;
    }
    ids.emplace_back(transition.lease.job_id);
    epochs.emplace_back(transition.lease.epoch);
    targets.emplace_back(static_cast<int>(target));
    delays.emplace_back(std::max<std::int64_t>(0, transition.delay.count()));
    refunds.emplace_back(transition.refund_attempt ? 1 : 0);
    if (transition.error_class) {
      error_classes.emplace_back(static_cast<int>(*transition.error_class));
    } else {
      error_classes.emplace_back(std::nullopt);
    }
    errors.push_back(text_or_null(transition.error));
    reasons.push_back(text_or_null(transition.reason));
  }
  PgParams params;
  params.add(number_array(ids))
      .add(number_array(epochs))
      .add(number_array(targets))
      .add(number_array(delays));
  params.add(number_array(refunds))
      .add(text_array(errors))
      .add(number_array(error_classes))
      .add(text_array(reasons));

  bool wakes_workers = false;
  ACT_RETURN_IF_ERROR(write("finish jobs", [&](PgConnection& connection) -> Status {
    // All transitions in one UPDATE; a job named twice is updated once, and its second transition
    // then finds the lease gone, as it would one after the other.
    ACT_ASSIGN_OR_RETURN(
        auto rows,
        connection.run(
            "act_transition",
            "WITH c AS (SELECT " ACT_PG_NOW_MS " AS now), "
            "t AS (SELECT DISTINCT ON (id) * FROM unnest($1::bigint[], $2::bigint[], $3::smallint[], "
            "$4::bigint[], "
            "$5::integer[], $6::text[], $7::smallint[], $8::text[]) WITH ORDINALITY "
            "AS t(id, epoch, target, delay_ms, refund, error, error_class, reason, n) ORDER BY id, n) "
            "UPDATE jobs SET state = t.target, "
            "due_at = CASE WHEN t.target >= 3 THEN jobs.due_at ELSE c.now + t.delay_ms END, "
            "attempts = greatest(0, jobs.attempts - t.refund), last_error = coalesce(t.error, "
            "jobs.last_error), "
            "last_error_class = coalesce(t.error_class, jobs.last_error_class), reason = t.reason, "
            "finished_at = CASE WHEN t.target >= 3 THEN c.now END, updated_at = c.now, lease_owner = NULL, "
            "lease_expires_at = NULL, cancel_requested = false "
            "FROM t, c WHERE jobs.id = t.id AND jobs.state = 2 AND jobs.lease_epoch = t.epoch "
            "RETURNING jobs.id, jobs.state",
            params));
    std::set<JobId> changed;
    wakes_workers = false;
    for (int row = 0; row < rows.rows(); ++row) {
      changed.insert(rows.int64(row, 0));
      wakes_workers = wakes_workers || rows.int64(row, 1) == kStateWaiting;
    }
    results.clear();
    for (const JobTransition& transition : transitions) {
      if (changed.erase(transition.lease.job_id) > 0) {
        results.emplace_back();
        continue;
      }
      Status lost = conflict_status(connection, transition.lease, "finish");
      if (lost.code() != StatusCode::kConflict) return lost;
      results.push_back(std::move(lost));
    }
    if (wakes_workers) ACT_RETURN_IF_ERROR(notify_waiters(connection));
    return Status();
  }));
  if (wakes_workers) notify_activity();
  return results;
}

Status PostgresStore::set_progress(const Lease& lease, std::string_view progress_json) {
  return run("set progress", RunMode::kRead, [&](PgConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(auto rows,
                         connection.run("act_progress",
                                        "UPDATE jobs SET progress = $1, updated_at = " ACT_PG_NOW_MS
                                        " WHERE id = $2 AND state = 2 AND lease_epoch = $3",
                                        PgParams().add(progress_json).add(lease.job_id).add(lease.epoch)));
    return rows.changes() > 0 ? Status() : conflict_status(connection, lease, "report progress of");
  });
}

Result<CancelOutcome> PostgresStore::cancel_job(JobId id, std::string_view reason) {
  CancelOutcome outcome = CancelOutcome::kCancelled;
  ACT_RETURN_IF_ERROR(write("cancel", [&](PgConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(auto job, select_job(connection, id, /*for_update=*/true));
    if (!job) return not_found(fmt::format("job {} does not exist", id));
    switch (job->state) {
      case JobState::kWaiting:
      case JobState::kDelayed:
        outcome = CancelOutcome::kCancelled;
        return connection
            .run("act_cancel_waiting",
                 "UPDATE jobs SET state = 6, reason = $1, finished_at = " ACT_PG_NOW_MS
                 ", updated_at = " ACT_PG_NOW_MS " WHERE id = $2 AND state <= 1",
                 PgParams().add(reason).add(id))
            .status();
      case JobState::kActive:
        outcome = CancelOutcome::kRequested;
        return connection
            .run("act_cancel_active",
                 "UPDATE jobs SET cancel_requested = true, updated_at = " ACT_PG_NOW_MS
                 " WHERE id = $1 AND state = 2",
                 PgParams().add(id))
            .status();
      default:
        return failed_precondition(
            fmt::format("job {} is {}; only waiting, delayed or active jobs can be cancelled", id,
                        job_state_name(job->state)));
    }
  }));
  return outcome;
}

Result<Job> PostgresStore::retry_job(JobId id) {
  std::optional<Job> retried;
  ACT_RETURN_IF_ERROR(write("retry", [&](PgConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(auto job, select_job(connection, id, /*for_update=*/true));
    if (!job) return not_found(fmt::format("job {} does not exist", id));
    if (job->state != JobState::kFailed && job->state != JobState::kDead &&
        job->state != JobState::kCancelled) {
      return failed_precondition(
          fmt::format("job {} is {}; only failed, dead or cancelled jobs can be retried", id,
                      job_state_name(job->state)));
    }
    if (!job->dedup_key.empty()) {
      ACT_ASSIGN_OR_RETURN(
          auto holder,
          connection.run("act_dedup_holder",
                         "SELECT id FROM jobs WHERE dedup_key = $1 AND dedup_key IS NOT NULL AND state <= 2",
                         PgParams().add(job->dedup_key)));
      if (holder.rows() > 0) {
        return Status(StatusCode::kAlreadyExists,
                      fmt::format("job {} cannot be retried: its dedup key '{}' is held by live job {}", id,
                                  job->dedup_key, holder.int64(0, 0)));
      }
    }
    ACT_RETURN_IF_ERROR(
        connection
            .run(
                "act_retry",
                "UPDATE jobs SET state = 0, due_at = " ACT_PG_NOW_MS
                ", attempts = 0, stalls = 0, reason = NULL, "
                "finished_at = NULL, expires_at = NULL, cancel_requested = false, updated_at = " ACT_PG_NOW_MS
                " WHERE id = $1",
                PgParams().add(id))
            .status());
    ACT_ASSIGN_OR_RETURN(retried, select_job(connection, id));
    return notify_waiters(connection);
  }));
  notify_activity();
  return std::move(*retried);
}

Result<MaintenanceReport> PostgresStore::run_maintenance(const MaintenanceRequest& request) {
  MaintenanceReport report;
  std::vector<std::pair<JobId, std::string>> failed_jobs;

  ACT_RETURN_IF_ERROR(write("maintenance", [&](PgConnection& connection) -> Status {
    report = MaintenanceReport{};
    failed_jobs.clear();
    ACT_ASSIGN_OR_RETURN(
        auto promoted, connection.run("act_promote", "UPDATE jobs SET state = 0, updated_at = " ACT_PG_NOW_MS
                                                     " WHERE state = 1 AND due_at <= " ACT_PG_NOW_MS));
    report.promoted = promoted.changes();

    ACT_ASSIGN_OR_RETURN(
        auto expired,
        connection.run("act_expire",
                       "UPDATE jobs SET state = 6, reason = 'expired', finished_at = " ACT_PG_NOW_MS
                       ", updated_at = " ACT_PG_NOW_MS
                       " WHERE expires_at IS NOT NULL AND state <= 1 AND expires_at <= " ACT_PG_NOW_MS));
    report.expired = expired.changes();

    // A stall gives its attempt back: the stall count has its own limit.
    ACT_ASSIGN_OR_RETURN(
        auto given_up,
        connection.run(
            "act_stall_fail",
            "UPDATE jobs SET state = 4, stalls = stalls + 1, attempts = greatest(0, attempts - 1), "
            "reason = 'stalled ' || (stalls + 1) || ' times', "
            "last_error = 'lease of worker ' || coalesce(lease_owner, '?') || ' expired without a "
            "heartbeat', "
            "last_error_class = 0, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = false, "
            "finished_at = " ACT_PG_NOW_MS ", updated_at = " ACT_PG_NOW_MS " "
            "WHERE state = 2 AND lease_expires_at < " ACT_PG_NOW_MS
            " AND stalls + 1 > $1 RETURNING id, last_error",
            PgParams().add(request.max_stalls)));
    for (int row = 0; row < given_up.rows(); ++row)
      failed_jobs.emplace_back(given_up.int64(row, 0), given_up.text(row, 1));
    report.stalled_failed = static_cast<std::int64_t>(failed_jobs.size());

    ACT_ASSIGN_OR_RETURN(
        auto requeued,
        connection.run(
            "act_stall_requeue",
            "UPDATE jobs SET state = 0, stalls = stalls + 1, attempts = greatest(0, attempts - 1), "
            "last_error = 'lease of worker ' || coalesce(lease_owner, '?') || ' expired without a "
            "heartbeat', "
            "last_error_class = 0, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = false, "
            "updated_at = " ACT_PG_NOW_MS " WHERE state = 2 AND lease_expires_at < " ACT_PG_NOW_MS));
    report.stalled_requeued = requeued.changes();

    if (report.promoted > 0 || report.stalled_requeued > 0) return notify_waiters(connection);
    return Status();
  }));

  for (const auto& [id, error] : failed_jobs) {
    options_.logger.log(LogLevel::kWarn, "queue", "job {} failed: stalled more than {} times; {}", id,
                        request.max_stalls, error);
  }
  if (report.stalled_requeued > 0) {
    options_.logger.log(LogLevel::kWarn, "queue", "{} stalled jobs went back to waiting",
                        report.stalled_requeued);
  }
  if (report.expired > 0)
    options_.logger.log(LogLevel::kInfo, "queue", "{} jobs expired before they started", report.expired);
  if (report.promoted > 0 || report.stalled_requeued > 0) notify_activity();
  return report;
}

Result<QueueMetrics> PostgresStore::metrics() {
  QueueMetrics metrics;
  ACT_RETURN_IF_ERROR(read([&](PgConnection& connection) -> Status {
    // Each count of a live state walks only that state's partial index.
    ACT_ASSIGN_OR_RETURN(
        auto live,
        connection.run("act_metrics_live",
                       "SELECT (SELECT count(*) FROM jobs WHERE state = 0), (SELECT count(*) FROM jobs WHERE "
                       "state = 1), "
                       "(SELECT count(*) FROM jobs WHERE state = 2), "
                       "(SELECT count(*) FROM jobs WHERE state = 2 AND lease_expires_at < " ACT_PG_NOW_MS
                       ")"));
    metrics.waiting = live.int64(0, 0);
    metrics.delayed = live.int64(0, 1);
    metrics.active = live.int64(0, 2);
    metrics.stalled = live.int64(0, 3);

    ACT_ASSIGN_OR_RETURN(auto terminal,
                         connection.run("act_metrics_terminal",
                                        "SELECT state, count(*) FROM jobs WHERE state >= 3 GROUP BY state"));
    for (int row = 0; row < terminal.rows(); ++row) {
      const std::int64_t n = terminal.int64(row, 1);
      switch (terminal.int64(row, 0)) {
        case 3: metrics.completed = n; break;
        case 4: metrics.failed = n; break;
        case 5: metrics.dead = n; break;
        case 6: metrics.cancelled = n; break;
        default: break;
      }
    }
    return Status();
  }));
  return metrics;
}

Result<PruneReport> PostgresStore::prune(const RetentionPolicy& retention) {
  PruneReport report;
  // Deleting in chunks keeps each transaction short, so that claims elsewhere are not held up.
  constexpr int kChunk = 5000;

  const auto delete_chunks = [&](const char* name, const char* select_sql, std::int64_t argument) -> Status {
    const std::string sql = fmt::format(
        "WITH doomed AS (DELETE FROM jobs WHERE id IN ({}) RETURNING id), "
        "cleared AS (DELETE FROM checkpoints WHERE job_id IN (SELECT id FROM doomed)) SELECT count(*) FROM "
        "doomed",
        select_sql);
    while (true) {
      std::int64_t deleted = 0;
      ACT_RETURN_IF_ERROR(write("prune", [&](PgConnection& connection) -> Status {
        ACT_ASSIGN_OR_RETURN(auto rows,
                             connection.run(name, sql.c_str(), PgParams().add(argument).add(kChunk)));
        deleted = rows.int64(0, 0);
        return Status();
      }));
      report.jobs_deleted += deleted;
      if (deleted < kChunk) return Status();
    }
  };

  ACT_ASSIGN_OR_RETURN(const Timestamp now_time, now());
  const std::int64_t now_ms = to_ms(now_time);
  if (retention.completed_max_age) {
    ACT_RETURN_IF_ERROR(delete_chunks("act_prune_completed_age",
                                      "SELECT id FROM jobs WHERE state = 3 AND finished_at < $1 LIMIT $2",
                                      now_ms - retention.completed_max_age->count()));
  }
  if (retention.completed_max_count) {
    ACT_RETURN_IF_ERROR(delete_chunks(
        "act_prune_completed_count",
        "SELECT id FROM jobs WHERE state = 3 ORDER BY finished_at DESC, id DESC OFFSET $1 LIMIT $2",
        std::max<std::int64_t>(0, *retention.completed_max_count)));
  }
  if (retention.terminal_max_age) {
    ACT_RETURN_IF_ERROR(
        delete_chunks("act_prune_terminal_age",
                      "SELECT id FROM jobs WHERE state IN (4, 5, 6) AND finished_at < $1 LIMIT $2",
                      now_ms - retention.terminal_max_age->count()));
  }
  if (report.jobs_deleted > 0) {
    options_.logger.log(LogLevel::kInfo, "queue", "pruned {} finished jobs from store {}",
                        report.jobs_deleted, location_);
  }
  return report;
}

Result<std::optional<Timestamp>> PostgresStore::next_due_at() {
  std::optional<Timestamp> due;
  ACT_RETURN_IF_ERROR(read([&](PgConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(
        auto rows,
        connection.run("act_next_due", "SELECT due_at FROM jobs WHERE state = 1 ORDER BY due_at LIMIT 1"));
    due.reset();
    if (rows.rows() > 0) due = from_ms(rows.int64(0, 0));
    return Status();
  }));
  return due;
}

}  // namespace activation::internal
