// The job methods of the SQLite store. Every change to an active job is an UPDATE guarded by
// (id, state = active, lease_epoch): zero changed rows means the lease was lost.
#include <algorithm>

#include <fmt/format.h>

#include "queue/retry_policy_codec.hpp"
#include "storage/sqlite/sqlite_schema.hpp"
#include "storage/sqlite/sqlite_store.hpp"

namespace activation::internal {
namespace {

using std::chrono::milliseconds;

std::int64_t to_ms(Timestamp t) { return t.time_since_epoch().count(); }
Timestamp from_ms(std::int64_t ms) { return Timestamp(milliseconds(ms)); }
std::int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

#define ACT_JOB_COLUMNS                                                                                          \
  "id, type, payload, priority, state, due_at, attempts, max_attempts, stalls, retry_policy, dedup_key, "       \
  "expires_at, audience, progress, last_error, last_error_class, reason, cancel_requested, lease_owner, "       \
  "lease_epoch, lease_expires_at, created_at, updated_at, started_at, finished_at"

Priority priority_from_int(std::int64_t value) {
  switch (value) {
    case 1: return Priority::kLow;
    case 10: return Priority::kHigh;
    case 20: return Priority::kCritical;
    default: return Priority::kNormal;
  }
}

std::optional<Timestamp> optional_time(const Statement& row, int column) {
  auto value = row.column_optional(column);
  if (!value) return std::nullopt;
  return from_ms(*value);
}

// Reads the ACT_JOB_COLUMNS of the current row.
Result<Job> read_job(const Statement& row) {
  Job job;
  job.id = row.column_int64(0);
  job.type = row.column_text(1);
  job.payload = row.column_text(2);
  job.priority = priority_from_int(row.column_int64(3));
  const std::int64_t state = row.column_int64(4);
  if (state < 0 || state >= kJobStateCount) {
    return Status(StatusCode::kDataLoss, fmt::format("job {} has state {}, which is not a known job state", job.id, state));
  }
  job.state = static_cast<JobState>(state);
  job.due_at = from_ms(row.column_int64(5));

  job.attempts = static_cast<int>(row.column_int64(6));
  job.max_attempts = static_cast<int>(row.column_int64(7));
  job.stalls = static_cast<int>(row.column_int64(8));
  if (!row.column_is_null(9)) {
    auto policy = decode_retry_policy(row.column_text(9));
    if (!policy.is_ok()) {
      return Status(StatusCode::kDataLoss, fmt::format("job {}: {}", job.id, policy.status().message()));
    }
    job.retry_policy = std::move(policy).value();
  }

  job.dedup_key = row.column_text(10);
  job.expires_at = optional_time(row, 11);
  job.audience = row.column_text(12);
  job.progress = row.column_text(13);
  job.last_error = row.column_text(14);
  if (auto error_class = row.column_optional(15); error_class && *error_class >= 0 && *error_class <= 3) {
    job.last_error_class = static_cast<ErrorClass>(*error_class);
  }
  job.reason = row.column_text(16);
  job.cancel_requested = row.column_int64(17) != 0;

  job.lease_owner = row.column_text(18);
  job.lease_epoch = row.column_int64(19);
  job.lease_expires_at = optional_time(row, 20);
  job.created_at = from_ms(row.column_int64(21));
  job.updated_at = from_ms(row.column_int64(22));
  job.started_at = optional_time(row, 23);
  job.finished_at = optional_time(row, 24);
  return job;
}

Result<std::vector<Job>> read_jobs(Statement& statement) {
  std::vector<Job> jobs;
  while (true) {
    ACT_ASSIGN_OR_RETURN(const bool has_row, statement.step());
    if (!has_row) break;
    ACT_ASSIGN_OR_RETURN(Job job, read_job(statement));
    jobs.push_back(std::move(job));
  }
  return jobs;
}

Result<std::optional<Job>> select_job(SqliteConnection& connection, JobId id) {
  ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare("SELECT " ACT_JOB_COLUMNS " FROM jobs WHERE id = ?1"));
  statement.bind(1, id);
  ACT_ASSIGN_OR_RETURN(const bool has_row, statement.step());
  if (!has_row) return std::optional<Job>();
  ACT_ASSIGN_OR_RETURN(Job job, read_job(statement));
  return std::optional<Job>(std::move(job));
}

std::string placeholders(int first, std::size_t count) {
  std::string text;
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0) text += ", ";
    text += fmt::format("?{}", first + static_cast<int>(i));
  }
  return text;
}

}  // namespace

Status SqliteStore::conflict_status(SqliteConnection& connection, const Lease& lease, std::string_view action) {
  auto current = select_job(connection, lease.job_id);
  if (!current.is_ok()) return current.status();
  if (!current->has_value()) {
    return conflict(fmt::format("cannot {} job {}: the job no longer exists", action, lease.job_id));
  }
  const Job& job = **current;
  return conflict(fmt::format("cannot {} job {}: lease epoch {} was lost; the job is now {} with lease epoch {}",
                              action, lease.job_id, lease.epoch, job_state_name(job.state), job.lease_epoch));
}

Status SqliteStore::check_lease(SqliteConnection& connection, const Lease& lease, std::string_view action) {
  ACT_ASSIGN_OR_RETURN(auto statement,
                       connection.prepare("SELECT 1 FROM jobs WHERE id = ?1 AND state = 2 AND lease_epoch = ?2"));
  statement.bind(1, lease.job_id).bind(2, lease.epoch);
  ACT_ASSIGN_OR_RETURN(const bool held, statement.step());
  if (held) return Status();
  return conflict_status(connection, lease, action);
}

Result<std::vector<EnqueueResult>> SqliteStore::insert_jobs(std::span<const NewJob> jobs) {
  std::vector<EnqueueResult> results;
  results.reserve(jobs.size());
  const std::int64_t now = now_ms();

  Status status = write("enqueue", [&](SqliteConnection& connection) -> Status {
    // ON CONFLICT names the partial unique index on live dedup keys, so a key held by a live job
    // inserts nothing and the live job is looked up instead.
    ACT_ASSIGN_OR_RETURN(auto insert, connection.prepare(
        "INSERT INTO jobs (type, payload, priority, state, due_at, max_attempts, retry_policy, dedup_key, expires_at, "
        "audience, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11) "
        "ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL AND state <= 2 DO NOTHING"));
    std::string policy_text;
    for (const NewJob& job : jobs) {
      const JobSpec& spec = *job.spec;
      const std::int64_t due = spec.run_at ? to_ms(*spec.run_at) : now + spec.delay.count();
      std::optional<std::int64_t> expires;
      if (spec.expires_at) {
        expires = to_ms(*spec.expires_at);
      } else if (spec.expire_after.count() > 0) {
        expires = now + spec.expire_after.count();
      }
      policy_text = spec.retry_policy ? encode_retry_policy(*spec.retry_policy) : std::string();

      insert.bind(1, spec.type)
          .bind(2, spec.payload)
          .bind(3, static_cast<int>(spec.priority))
          .bind(4, due > now ? kStateDelayed : kStateWaiting)
          .bind(5, due)
          .bind(6, job.max_attempts)
          .bind_text_or_null(7, policy_text)
          .bind_text_or_null(8, spec.dedup_key)
          .bind_optional(9, expires)
          .bind_text_or_null(10, spec.audience)
          .bind(11, now);
      ACT_RETURN_IF_ERROR(insert.run());
      const bool created = insert.changes() > 0;
      insert.reset();
      if (created) {
        results.push_back({sqlite3_last_insert_rowid(connection.handle()), true});
        continue;
      }

      ACT_ASSIGN_OR_RETURN(auto existing, connection.prepare(
          "SELECT id FROM jobs WHERE dedup_key = ?1 AND dedup_key IS NOT NULL AND state <= 2"));
      existing.bind(1, spec.dedup_key);
      ACT_ASSIGN_OR_RETURN(const bool found, existing.step());
      if (!found) {
        return internal_error(fmt::format("enqueue of dedup key '{}' inserted nothing and found no live job", spec.dedup_key));
      }
      results.push_back({existing.column_int64(0), false});
    }
    return Status();
  });
  if (!status.is_ok()) return status;
  notify_activity();
  return results;
}

Result<std::optional<Job>> SqliteStore::get_job(JobId id) {
  std::optional<Job> job;
  ACT_RETURN_IF_ERROR(read([&](SqliteConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(job, select_job(connection, id));
    return Status();
  }));
  return job;
}

Result<std::vector<Job>> SqliteStore::list_jobs(const JobQuery& query) {
  // The filters other than the state, numbered from ?1 in the order they are bound below.
  std::string filters;
  int next = 1;
  if (query.audience) filters += fmt::format(" AND audience = ?{}", next++);
  if (!query.types.empty()) {
    filters += fmt::format(" AND type IN ({})", placeholders(next, query.types.size()));
    next += static_cast<int>(query.types.size());
  }
  if (query.before_id > 0) filters += fmt::format(" AND id < ?{}", next++);

  // One branch per state, with the state written as a literal: only then can SQLite use the partial
  // index of that state instead of scanning every job ever kept.
  std::string sql;
  if (query.states.empty()) {
    sql = "SELECT " ACT_JOB_COLUMNS " FROM jobs WHERE 1" + filters;
  } else {
    for (std::size_t i = 0; i < query.states.size(); ++i) {
      const int state = static_cast<int>(query.states[i]);
      if (i > 0) sql += " UNION ALL ";
      sql += fmt::format("SELECT " ACT_JOB_COLUMNS " FROM jobs WHERE state = {}{}{}", state,
                         state >= kStateCompleted ? " AND state >= 3" : "", filters);
    }
  }
  sql += fmt::format(" ORDER BY id DESC LIMIT ?{}", next);

  std::vector<Job> jobs;
  ACT_RETURN_IF_ERROR(read([&](SqliteConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare_dynamic(sql));
    int index = 1;
    if (query.audience) statement.bind(index++, *query.audience);
    for (const std::string& type : query.types) statement.bind(index++, type);
    if (query.before_id > 0) statement.bind(index++, query.before_id);
    statement.bind(index, std::max(0, query.limit));
    ACT_ASSIGN_OR_RETURN(jobs, read_jobs(statement));
    return Status();
  }));
  return jobs;
}

Result<std::vector<ClaimedJob>> SqliteStore::claim_jobs(const ClaimRequest& request) {
  // One statement per priority class, highest class first: each walks the jobs_waiting index in
  // (due_at, id) order within its class and stops at its limit.
  std::string sql =
      "UPDATE jobs SET state = 2, attempts = attempts + 1, lease_epoch = lease_epoch + 1, lease_owner = ?1, "
      "lease_expires_at = ?2, started_at = ?3, updated_at = ?3, expires_at = NULL, cancel_requested = 0 "
      "WHERE id IN (SELECT id FROM jobs WHERE state = 0 AND priority = ?4 "
      "AND (expires_at IS NULL OR expires_at > ?3)";
  if (!request.types.empty()) sql += fmt::format(" AND type IN ({})", placeholders(6, request.types.size()));
  sql += " ORDER BY due_at, id LIMIT ?5) RETURNING " ACT_JOB_COLUMNS;

  std::vector<ClaimedJob> claimed;
  const std::int64_t now = now_ms();
  const std::int64_t lease_until = now + request.lease_duration.count();

  ACT_RETURN_IF_ERROR(write("claim", [&](SqliteConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare_dynamic(sql));
    int remaining = request.max_jobs;
    for (Priority priority : {Priority::kCritical, Priority::kHigh, Priority::kNormal, Priority::kLow}) {
      const int limit = std::min(remaining, request.max_per_class[priority_class_index(priority)]);
      if (limit <= 0) continue;

      statement.bind(1, request.worker_id).bind(2, lease_until).bind(3, now).bind(4, static_cast<int>(priority));
      statement.bind(5, limit);
      for (std::size_t i = 0; i < request.types.size(); ++i) statement.bind(6 + static_cast<int>(i), request.types[i]);
      ACT_ASSIGN_OR_RETURN(std::vector<Job> jobs, read_jobs(statement));
      statement.reset();

      // RETURNING gives rows in no defined order.
      std::sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) {
        return a.due_at != b.due_at ? a.due_at < b.due_at : a.id < b.id;
      });
      for (Job& job : jobs) {
        Lease lease{job.id, job.lease_epoch, request.worker_id, job.attempts, job.max_attempts, from_ms(lease_until)};
        claimed.push_back({std::move(job), std::move(lease)});
      }
      remaining -= static_cast<int>(jobs.size());
      if (remaining <= 0) break;
    }
    return Status();
  }));
  return claimed;
}

Result<std::vector<HeartbeatResult>> SqliteStore::heartbeat(std::span<const Lease> leases,
                                                            std::chrono::milliseconds lease_duration) {
  std::vector<HeartbeatResult> results;
  results.reserve(leases.size());
  const std::int64_t now = now_ms();
  const std::int64_t lease_until = now + lease_duration.count();

  ACT_RETURN_IF_ERROR(write("heartbeat", [&](SqliteConnection& connection) -> Status {
    for (const Lease& lease : leases) {
      HeartbeatResult result;
      {
        ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare(
            "UPDATE jobs SET lease_expires_at = ?1, updated_at = ?2 WHERE id = ?3 AND state = 2 AND lease_epoch = ?4 "
            "RETURNING cancel_requested"));
        statement.bind(1, lease_until).bind(2, now).bind(3, lease.job_id).bind(4, lease.epoch);
        ACT_ASSIGN_OR_RETURN(const bool held, statement.step());
        if (held) {
          result.cancel_requested = statement.column_int64(0) != 0;
          result.lease_expires_at = from_ms(lease_until);
          ACT_RETURN_IF_ERROR(statement.run());  // Finish the statement: RETURNING has one row.
        }
        if (held) {
          results.push_back(std::move(result));
          continue;
        }
      }
      result.status = conflict_status(connection, lease, "heartbeat");
      if (result.status.code() != StatusCode::kConflict) return result.status;
      result.cancel_requested = true;
      results.push_back(std::move(result));
    }
    return Status();
  }));
  return results;
}

Result<std::vector<Status>> SqliteStore::transition_jobs(std::span<const JobTransition> transitions) {
  std::vector<Status> results;
  results.reserve(transitions.size());
  const std::int64_t now = now_ms();
  bool wakes_workers = false;

  ACT_RETURN_IF_ERROR(write("finish jobs", [&](SqliteConnection& connection) -> Status {
    for (const JobTransition& transition : transitions) {
      JobState target = transition.target;
      if ((target == JobState::kWaiting || target == JobState::kDelayed)) {
        target = transition.delay.count() > 0 ? JobState::kDelayed : JobState::kWaiting;
      }
      const bool terminal = is_terminal(target);
      bool changed = false;
      {
        ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare(
            "UPDATE jobs SET state = ?1, due_at = coalesce(?2, due_at), attempts = max(0, attempts - ?3), "
            "last_error = coalesce(?4, last_error), last_error_class = coalesce(?5, last_error_class), reason = ?6, "
            "finished_at = ?7, updated_at = ?8, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = 0 "
            "WHERE id = ?9 AND state = 2 AND lease_epoch = ?10"));
        statement.bind(1, static_cast<int>(target));
        if (terminal) {
          statement.bind_null(2);
        } else {
          statement.bind(2, now + std::max<std::int64_t>(0, transition.delay.count()));
        }
        statement.bind(3, transition.refund_attempt ? 1 : 0);
        statement.bind_text_or_null(4, transition.error);
        if (transition.error_class) {
          statement.bind(5, static_cast<int>(*transition.error_class));
        } else {
          statement.bind_null(5);
        }
        statement.bind_text_or_null(6, transition.reason);
        if (terminal) {
          statement.bind(7, now);
        } else {
          statement.bind_null(7);
        }
        statement.bind(8, now).bind(9, transition.lease.job_id).bind(10, transition.lease.epoch);
        ACT_RETURN_IF_ERROR(statement.run());
        changed = statement.changes() > 0;
      }
      if (changed) {
        if (target == JobState::kWaiting) wakes_workers = true;
        results.emplace_back();
        continue;
      }
      Status lost = conflict_status(connection, transition.lease, "finish");
      if (lost.code() != StatusCode::kConflict) return lost;
      results.push_back(std::move(lost));
    }
    return Status();
  }));
  if (wakes_workers) notify_activity();
  return results;
}

Status SqliteStore::set_progress(const Lease& lease, std::string_view progress_json) {
  const std::int64_t now = now_ms();
  return write("set progress", [&](SqliteConnection& connection) -> Status {
    bool changed = false;
    {
      ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare(
          "UPDATE jobs SET progress = ?1, updated_at = ?2 WHERE id = ?3 AND state = 2 AND lease_epoch = ?4"));
      statement.bind(1, progress_json).bind(2, now).bind(3, lease.job_id).bind(4, lease.epoch);
      ACT_RETURN_IF_ERROR(statement.run());
      changed = statement.changes() > 0;
    }
    return changed ? Status() : conflict_status(connection, lease, "report progress of");
  });
}

Result<CancelOutcome> SqliteStore::cancel_job(JobId id, std::string_view reason) {
  CancelOutcome outcome = CancelOutcome::kCancelled;
  const std::int64_t now = now_ms();
  ACT_RETURN_IF_ERROR(write("cancel", [&](SqliteConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(auto job, select_job(connection, id));
    if (!job) return not_found(fmt::format("job {} does not exist", id));
    switch (job->state) {
      case JobState::kWaiting:
      case JobState::kDelayed: {
        ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare(
            "UPDATE jobs SET state = 6, reason = ?1, finished_at = ?2, updated_at = ?2 WHERE id = ?3 AND state <= 1"));
        statement.bind(1, reason).bind(2, now).bind(3, id);
        outcome = CancelOutcome::kCancelled;
        return statement.run();
      }
      case JobState::kActive: {
        ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare(
            "UPDATE jobs SET cancel_requested = 1, updated_at = ?1 WHERE id = ?2 AND state = 2"));
        statement.bind(1, now).bind(2, id);
        outcome = CancelOutcome::kRequested;
        return statement.run();
      }
      default:
        return failed_precondition(fmt::format("job {} is {}; only waiting, delayed or active jobs can be cancelled",
                                               id, job_state_name(job->state)));
    }
  }));
  return outcome;
}

Result<Job> SqliteStore::retry_job(JobId id) {
  std::optional<Job> retried;
  const std::int64_t now = now_ms();
  ACT_RETURN_IF_ERROR(write("retry", [&](SqliteConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(auto job, select_job(connection, id));
    if (!job) return not_found(fmt::format("job {} does not exist", id));
    if (job->state != JobState::kFailed && job->state != JobState::kDead && job->state != JobState::kCancelled) {
      return failed_precondition(fmt::format("job {} is {}; only failed, dead or cancelled jobs can be retried", id,
                                             job_state_name(job->state)));
    }
    if (!job->dedup_key.empty()) {
      ACT_ASSIGN_OR_RETURN(auto holder, connection.prepare(
          "SELECT id FROM jobs WHERE dedup_key = ?1 AND dedup_key IS NOT NULL AND state <= 2"));
      holder.bind(1, job->dedup_key);
      ACT_ASSIGN_OR_RETURN(const bool held, holder.step());
      if (held) {
        return Status(StatusCode::kAlreadyExists,
                      fmt::format("job {} cannot be retried: its dedup key '{}' is held by live job {}", id,
                                  job->dedup_key, holder.column_int64(0)));
      }
    }
    {
      ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare(
          "UPDATE jobs SET state = 0, due_at = ?1, attempts = 0, stalls = 0, reason = NULL, finished_at = NULL, "
          "expires_at = NULL, cancel_requested = 0, updated_at = ?1 WHERE id = ?2"));
      statement.bind(1, now).bind(2, id);
      ACT_RETURN_IF_ERROR(statement.run());
    }
    ACT_ASSIGN_OR_RETURN(retried, select_job(connection, id));
    return Status();
  }));
  notify_activity();
  return std::move(*retried);
}

Result<MaintenanceReport> SqliteStore::run_maintenance(const MaintenanceRequest& request) {
  MaintenanceReport report;
  const std::int64_t now = now_ms();
  std::vector<std::pair<JobId, std::string>> failed_jobs;

  ACT_RETURN_IF_ERROR(write("maintenance", [&](SqliteConnection& connection) -> Status {
    {
      ACT_ASSIGN_OR_RETURN(auto promote, connection.prepare(
          "UPDATE jobs SET state = 0, updated_at = ?1 WHERE state = 1 AND due_at <= ?1"));
      promote.bind(1, now);
      ACT_RETURN_IF_ERROR(promote.run());
      report.promoted = promote.changes();
    }
    {
      ACT_ASSIGN_OR_RETURN(auto expire, connection.prepare(
          "UPDATE jobs SET state = 6, reason = 'expired', finished_at = ?1, updated_at = ?1 "
          "WHERE expires_at IS NOT NULL AND state <= 1 AND expires_at <= ?1"));
      expire.bind(1, now);
      ACT_RETURN_IF_ERROR(expire.run());
      report.expired = expire.changes();
    }
    // A stall gives its attempt back: the stall count has its own limit.
    {
      ACT_ASSIGN_OR_RETURN(auto give_up, connection.prepare(
          "UPDATE jobs SET state = 4, stalls = stalls + 1, attempts = max(0, attempts - 1), "
          "reason = 'stalled ' || (stalls + 1) || ' times', "
          "last_error = 'lease of worker ' || coalesce(lease_owner, '?') || ' expired without a heartbeat', "
          "last_error_class = 0, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = 0, "
          "finished_at = ?1, updated_at = ?1 "
          "WHERE state = 2 AND lease_expires_at < ?1 AND stalls + 1 > ?2 RETURNING id, last_error"));
      give_up.bind(1, now).bind(2, request.max_stalls);
      while (true) {
        ACT_ASSIGN_OR_RETURN(const bool row, give_up.step());
        if (!row) break;
        failed_jobs.emplace_back(give_up.column_int64(0), give_up.column_text(1));
      }
      report.stalled_failed = static_cast<std::int64_t>(failed_jobs.size());
    }
    {
      ACT_ASSIGN_OR_RETURN(auto requeue, connection.prepare(
          "UPDATE jobs SET state = 0, stalls = stalls + 1, attempts = max(0, attempts - 1), "
          "last_error = 'lease of worker ' || coalesce(lease_owner, '?') || ' expired without a heartbeat', "
          "last_error_class = 0, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = 0, updated_at = ?1 "
          "WHERE state = 2 AND lease_expires_at < ?1"));
      requeue.bind(1, now);
      ACT_RETURN_IF_ERROR(requeue.run());
      report.stalled_requeued = requeue.changes();
    }
    return Status();
  }));

  for (const auto& [id, error] : failed_jobs) {
    options_.logger.log(LogLevel::kWarn, "queue", "job {} failed: stalled more than {} times; {}", id,
                        request.max_stalls, error);
  }
  if (report.stalled_requeued > 0) {
    options_.logger.log(LogLevel::kWarn, "queue", "{} stalled jobs went back to waiting", report.stalled_requeued);
  }
  if (report.expired > 0) options_.logger.log(LogLevel::kInfo, "queue", "{} jobs expired before they started", report.expired);
  if (report.promoted > 0 || report.stalled_requeued > 0) notify_activity();
  return report;
}

Result<QueueMetrics> SqliteStore::metrics() {
  QueueMetrics metrics;
  const std::int64_t now = now_ms();
  ACT_RETURN_IF_ERROR(read([&](SqliteConnection& connection) -> Status {
    // Each count of a live state walks only that state's partial index.
    const auto count = [&](const char* sql, std::int64_t& out) -> Status {
      ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare(sql));
      ACT_ASSIGN_OR_RETURN(const bool row, statement.step());
      out = row ? statement.column_int64(0) : 0;
      return Status();
    };
    ACT_RETURN_IF_ERROR(count("SELECT count(*) FROM jobs WHERE state = 0", metrics.waiting));
    ACT_RETURN_IF_ERROR(count("SELECT count(*) FROM jobs WHERE state = 1", metrics.delayed));
    ACT_RETURN_IF_ERROR(count("SELECT count(*) FROM jobs WHERE state = 2", metrics.active));

    ACT_ASSIGN_OR_RETURN(auto terminal, connection.prepare(
        "SELECT state, count(*) FROM jobs WHERE state >= 3 GROUP BY state"));
    while (true) {
      ACT_ASSIGN_OR_RETURN(const bool row, terminal.step());
      if (!row) break;
      const std::int64_t n = terminal.column_int64(1);
      switch (terminal.column_int64(0)) {
        case kStateCompleted: metrics.completed = n; break;
        case kStateFailed: metrics.failed = n; break;
        case kStateDead: metrics.dead = n; break;
        case kStateCancelled: metrics.cancelled = n; break;
        default: break;
      }
    }

    ACT_ASSIGN_OR_RETURN(auto stalled, connection.prepare(
        "SELECT count(*) FROM jobs WHERE state = 2 AND lease_expires_at < ?1"));
    stalled.bind(1, now);
    ACT_ASSIGN_OR_RETURN(const bool row, stalled.step());
    metrics.stalled = row ? stalled.column_int64(0) : 0;
    return Status();
  }));
  return metrics;
}

Result<PruneReport> SqliteStore::prune(const RetentionPolicy& retention) {
  PruneReport report;
  const std::int64_t now = now_ms();
  // Deleting in chunks keeps each write transaction short, so claims of other workers and
  // processes are not held up by a large prune.
  constexpr int kChunk = 5000;

  const auto delete_chunks = [&](const char* sql, const std::function<void(Statement&)>& bind) -> Status {
    while (true) {
      std::int64_t deleted = 0;
      ACT_RETURN_IF_ERROR(write("prune", [&](SqliteConnection& connection) -> Status {
        ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare(sql));
        bind(statement);
        ACT_RETURN_IF_ERROR(statement.run());
        deleted = statement.changes();
        if (deleted == 0) return Status();
        ACT_ASSIGN_OR_RETURN(auto orphans, connection.prepare(
            "DELETE FROM checkpoints WHERE job_id NOT IN (SELECT id FROM jobs)"));
        return orphans.run();
      }));
      report.jobs_deleted += deleted;
      if (deleted < kChunk) return Status();
    }
  };

  // The redundant "state >= 3" lets SQLite match the partial index of terminal jobs.
  if (retention.completed_max_age) {
    const std::int64_t cutoff = now - retention.completed_max_age->count();
    ACT_RETURN_IF_ERROR(delete_chunks(
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state >= 3 AND state = 3 AND finished_at < ?1 LIMIT ?2)",
        [&](Statement& s) { s.bind(1, cutoff).bind(2, kChunk); }));
  }
  if (retention.completed_max_count) {
    const std::int64_t keep = std::max<std::int64_t>(0, *retention.completed_max_count);
    ACT_RETURN_IF_ERROR(delete_chunks(
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state >= 3 AND state = 3 "
        "ORDER BY finished_at DESC, id DESC LIMIT ?2 OFFSET ?1)",
        [&](Statement& s) { s.bind(1, keep).bind(2, kChunk); }));
  }
  if (retention.terminal_max_age) {
    const std::int64_t cutoff = now - retention.terminal_max_age->count();
    ACT_RETURN_IF_ERROR(delete_chunks(
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state >= 3 AND state IN (4, 5, 6) AND finished_at < ?1 LIMIT ?2)",
        [&](Statement& s) { s.bind(1, cutoff).bind(2, kChunk); }));
  }
  if (report.jobs_deleted > 0) {
    options_.logger.log(LogLevel::kInfo, "queue", "pruned {} finished jobs from store {}", report.jobs_deleted, path_);
  }
  return report;
}

Result<std::optional<Timestamp>> SqliteStore::next_due_at() {
  std::optional<Timestamp> due;
  ACT_RETURN_IF_ERROR(read([&](SqliteConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare(
        "SELECT due_at FROM jobs WHERE state = 1 ORDER BY due_at LIMIT 1"));
    ACT_ASSIGN_OR_RETURN(const bool row, statement.step());
    if (row) due = from_ms(statement.column_int64(0));
    return Status();
  }));
  return due;
}

}  // namespace activation::internal
