// The storage backend: jobs, checkpoints and the membership ledger in one store.
//
// JobQueue, Checkpointer and Ledger validate their input and decide the transitions (backoff,
// dead-letter); a Store only applies them atomically. Each method that changes jobs is one
// transaction and each job change in it is a compare-and-set, so an implementation over a server
// database can claim with `FOR UPDATE SKIP LOCKED` and take every time from the server's clock.
// open_sqlite_store() and open_postgresql_store() are the two implementations; docs/queue.md
// describes their schemas.
#ifndef ACTIVATION_BACKEND_STORE_HPP_
#define ACTIVATION_BACKEND_STORE_HPP_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "activation/checkpointer.hpp"
#include "activation/export.hpp"
#include "activation/job_queue.hpp"
#include "activation/ledger.hpp"
#include "activation/log.hpp"
#include "activation/status.hpp"

namespace activation {

// A validated job to insert. The store computes `due_at` and `expires_at` on its own clock.
struct NewJob {
  const JobSpec* spec = nullptr;  // Borrowed from the caller for the duration of insert_jobs().
  int max_attempts = 1;           // Resolved: never 0 here.
};

// A transition of one active job, guarded by its lease. JobQueue builds these; the store applies
// them with a compare-and-set on (id, state = active, lease epoch).
struct JobTransition {
  Lease lease;
  // kCompleted, kDelayed (retry after `delay`), kWaiting (released, or kDelayed when `delay` > 0),
  // kDead, kFailed or kCancelled.
  JobState target = JobState::kCompleted;
  std::chrono::milliseconds delay{0};
  bool refund_attempt = false;  // A release does not use up the attempt.
  std::optional<ErrorClass> error_class;
  std::string error;   // The last error message, for kDelayed, kDead and kFailed.
  std::string reason;  // For kDead, kFailed and kCancelled.
};

struct MaintenanceRequest {
  int max_stalls = 3;
};

// Thread safety: implementations must allow every method to be called from many threads at once.
class ACT_EXPORT Store {
 public:
  virtual ~Store();

  // "sqlite", "postgresql", ...
  virtual std::string_view backend_name() const noexcept = 0;
  // A description for messages, such as the file path.
  virtual std::string_view location() const noexcept = 0;
  // The store's clock. Due times, leases and expiry all use it.
  virtual Result<Timestamp> now() = 0;

  // --- Jobs ---

  // Inserts all jobs in one transaction; a job whose dedup key is held by a live job returns that
  // job with `created` false. On failure nothing is inserted.
  virtual Result<std::vector<EnqueueResult>> insert_jobs(std::span<const NewJob> jobs) = 0;
  virtual Result<std::optional<Job>> get_job(JobId id) = 0;
  virtual Result<std::vector<Job>> list_jobs(const JobQuery& query) = 0;

  // Claims up to request.max_jobs due jobs (state waiting, not expired) in priority, due time and
  // id order, at most request.max_per_class[c] from class c. Each claimed job becomes active with
  // attempts + 1, a new lease epoch and a lease until now + lease_duration.
  virtual Result<std::vector<ClaimedJob>> claim_jobs(const ClaimRequest& request) = 0;
  virtual Result<std::vector<HeartbeatResult>> heartbeat(std::span<const Lease> leases,
                                                         std::chrono::milliseconds lease_duration) = 0;
  // Applies the transitions in one transaction; one Status per transition, OK or kConflict.
  virtual Result<std::vector<Status>> transition_jobs(std::span<const JobTransition> transitions) = 0;
  virtual Status set_progress(const Lease& lease, std::string_view progress_json) = 0;

  // Waiting or delayed: cancelled with `reason` at once. Active: cancel_requested is set and the
  // next heartbeat returns it. Terminal: kFailedPrecondition. Unknown: kNotFound.
  virtual Result<CancelOutcome> cancel_job(JobId id, std::string_view reason) = 0;
  // Failed, dead or cancelled: back to waiting, due now, attempts and stalls reset.
  virtual Result<Job> retry_job(JobId id) = 0;

  virtual Result<MaintenanceReport> run_maintenance(const MaintenanceRequest& request) = 0;
  virtual Result<QueueMetrics> metrics() = 0;
  virtual Result<PruneReport> prune(const RetentionPolicy& retention) = 0;
  // The earliest due time of a delayed job; nullopt when there is none.
  virtual Result<std::optional<Timestamp>> next_due_at() = 0;

  // A counter that grows whenever a job may have become claimable: an enqueue, retry or release
  // through this store object, a notify_activity(), or a write seen from another process. Read it
  // before looking for work, then pass it to wait_for_activity(), so no wake-up falls in between.
  virtual std::uint64_t activity_token() = 0;
  // Blocks until the counter differs from `token` or `max_wait` has passed. Spurious returns are
  // allowed.
  virtual void wait_for_activity(std::uint64_t token, std::chrono::milliseconds max_wait) = 0;
  // Moves the counter on and wakes every thread in wait_for_activity().
  virtual void notify_activity() = 0;

  // --- Checkpoints ---

  virtual Result<std::optional<Checkpoint>> load_checkpoint(JobId job_id, std::string_view destination) = 0;
  virtual Result<std::vector<Checkpoint>> load_checkpoints(JobId job_id) = 0;
  // Saves the checkpoint and applies `ledger` in one transaction (Checkpointer::commit_batch()).
  // `ledger` may be null or empty; `lease` may be null (no fencing).
  virtual Status commit_checkpoint(const Checkpoint& checkpoint, const LedgerBatch* ledger, const Lease* lease) = 0;
  virtual Status clear_checkpoint(JobId job_id, std::string_view destination) = 0;

  // --- Ledger ---

  virtual Result<std::vector<std::optional<LedgerEntry>>> lookup_members(std::string_view audience,
                                                                         std::string_view destination,
                                                                         std::span<const std::string> member_keys) = 0;
  virtual Status apply_ledger(const LedgerBatch& batch) = 0;
  // Completes the deferred ledger writes of (audience, destination), for a store that applies
  // ledger updates lazily (the SQLite store journals them and folds them in key order). Reads
  // complete them on their own; the engine calls this when a destination's run ends, so the cost
  // falls in the run that caused it. A store that writes the ledger in place needs no override.
  virtual Status flush_ledger(std::string_view audience, std::string_view destination) {
    (void)audience;
    (void)destination;
    return Status();
  }
  // Up to `limit` members with member_key > `after_key`, in member_key order.
  virtual Result<std::vector<LedgerEntry>> page_members(std::string_view audience, std::string_view destination,
                                                        MemberScan filter, JobId job, std::string_view after_key,
                                                        int limit) = 0;
  virtual Result<std::int64_t> count_members(std::string_view audience, std::string_view destination) = 0;

  // --- Shared rate limits ---

  // Tokens of a token bucket (GCRA) whose state is one row of the store, shared by every process
  // that uses the store.
  struct RateRequest {
    double rate_per_second = 1.0;
    double burst = 1.0;  // Tokens that may be taken at once after an idle period.
    double tokens = 1.0;
    std::chrono::microseconds max_wait{0};
  };
  struct RateReservation {
    bool granted = false;
    // Granted: the time from the store's clock now until the tokens may be used. Not granted: the
    // wait it would have taken, which is more than max_wait.
    std::chrono::microseconds wait{0};
  };
  // Reserves request.tokens from the state of `key` in one atomic step on the store's clock, or
  // reserves nothing when the wait would exceed request.max_wait (so a negative max_wait only
  // reads the wait). REQUIRES: 0 < tokens <= burst and rate_per_second > 0
  // (make_store_rate_limiter() checks them).
  virtual Result<RateReservation> reserve_rate(std::string_view key, const RateRequest& request) = 0;

  struct WindowRequest {
    double limit = 1.0;  // Tokens that may be granted in any window.
    std::chrono::microseconds window{std::chrono::seconds(1)};
    double tokens = 1.0;
    bool take = true;  // False: only report the wait.
  };
  // Grants request.tokens from the sliding window of `key` when the tokens granted to `key` in the
  // last request.window, plus these, stay within request.limit. The grant is recorded at the
  // store's clock now, because a window cannot hold grants for later. Otherwise grants nothing and
  // reports the wait until enough earlier grants have left the window.
  // REQUIRES: 0 < tokens <= limit and window > 0 (make_store_window_limiter() checks them).
  virtual Result<RateReservation> reserve_window(std::string_view key, const WindowRequest& request) = 0;
};

enum class SqliteSynchronous : int {
  kNormal = 0,  // WAL + NORMAL: a commit survives a process crash; a power loss may undo the last ones.
  kFull = 1,    // Every commit is synced to disk before it returns.
};

struct SqliteStoreOptions {
  bool create_if_missing = true;
  // How long a write waits for another process's write lock before failing with kUnavailable.
  std::chrono::milliseconds busy_timeout{std::chrono::seconds(10)};
  SqliteSynchronous synchronous = SqliteSynchronous::kNormal;
  // Read-only connections kept for concurrent reads (WAL readers do not block the writer).
  int reader_connections = 2;
  // How often wait_for_activity() checks for writes by other processes when inotify cannot watch
  // the WAL file; with inotify those writes wake waiters at once.
  std::chrono::milliseconds cross_process_poll{std::chrono::milliseconds(20)};
  // Ledger journal rows that a fold applies per write transaction, 1 or more (docs/queue.md).
  // Larger chunks fold faster and hold the write lock longer: a 500,000-row chunk took about 1 s on
  // the project's 2-core machines.
  std::int64_t ledger_fold_chunk = 500'000;
  Logger logger;
};

// Opens the SQLite store at `path`, creating it with mode 0600 when missing, and applies pending
// schema migrations. Fails with kDataLoss for a file that is not an SQLite database, is corrupt or
// has a newer schema, and kFailedPrecondition for an SQLite database of another application.
// Fails with kPermissionDenied when the file or its directory is not writable, kNotFound when the
// file is missing and create_if_missing is false, and kResourceExhausted when the disk is full.
// The message names the file. A failed open leaves the file as it was.
ACT_EXPORT Result<std::shared_ptr<Store>> open_sqlite_store(const std::string& path,
                                                            const SqliteStoreOptions& options = {});

struct PostgresStoreOptions {
  // The schema (namespace) of the store's tables, created when missing. Empty = the first schema
  // of the connection's search_path (normally "public").
  std::string schema;
  // Connections kept open for the store's methods, opened on first use; the LISTEN connection of
  // wait_for_activity() comes on top.
  int pool_size = 4;
  // How long an operation keeps reconnecting, with exponential backoff from 50 ms to 2 s, while the
  // server is unreachable (a restart, a failover) before it fails with kUnavailable.
  std::chrono::milliseconds reconnect_timeout{std::chrono::seconds(30)};
  // The maximum time wait_for_activity() sleeps while its LISTEN connection is down. With that
  // connection up, a NOTIFY of any process wakes waiters at once.
  std::chrono::milliseconds poll_interval{std::chrono::milliseconds(500)};
  Logger logger;
};

// Opens the PostgreSQL store at `conninfo` (a libpq connection string or a postgresql:// URL; TLS
// settings such as sslmode and sslrootcert are passed to libpq as they are) and applies pending
// schema migrations under an advisory lock. Fails with kInvalidArgument for a malformed string or
// option, kUnavailable when the server cannot be reached, kPermissionDenied when it rejects the
// credentials, kNotFound for a missing database, kDataLoss for a schema newer than this library,
// and kFailedPrecondition for a schema that contains tables of another application. Messages name
// host, port, database and user, never the password.
ACT_EXPORT Result<std::shared_ptr<Store>> open_postgresql_store(const std::string& conninfo,
                                                                const PostgresStoreOptions& options = {});

// True for a "postgresql://" or "postgres://" URL.
ACT_EXPORT bool is_postgresql_url(std::string_view location) noexcept;

// Opens the store named by `location`: a postgresql:// or postgres:// URL opens the PostgreSQL
// store, anything else is the path of an SQLite store file. The logger goes to either.
ACT_EXPORT Result<std::shared_ptr<Store>> open_store(const std::string& location, const Logger& logger = {});

}  // namespace activation

#endif  // ACTIVATION_BACKEND_STORE_HPP_
