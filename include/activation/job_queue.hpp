// The durable job queue: enqueue, claim under a lease, heartbeat, complete, fail with retry or
// dead-letter, cancel, retry, stalled-job recovery, metrics and retention.
//
// Every state change is a compare-and-set on (job id, state, lease epoch), so a worker whose lease
// was taken over cannot complete, fail or overwrite the job: it gets StatusCode::kConflict. Due
// times and leases are computed on the store's clock, never on the caller's. docs/queue.md states
// the states, transitions and lifetimes.
#ifndef ACTIVATION_JOB_QUEUE_HPP_
#define ACTIVATION_JOB_QUEUE_HPP_

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "activation/export.hpp"
#include "activation/log.hpp"
#include "activation/status.hpp"

namespace activation {

class Store;

using JobId = std::int64_t;

// A point in time on the store's clock, in milliseconds since the Unix epoch.
using Timestamp = std::chrono::sys_time<std::chrono::milliseconds>;

// Higher runs first. The four values are also the priority classes of the worker pool's limits.
enum class Priority : int { kLow = 1, kNormal = 5, kHigh = 10, kCritical = 20 };
inline constexpr int kPriorityClassCount = 4;

// Returns "low", "normal", "high" or "critical".
ACT_EXPORT std::string_view priority_name(Priority priority) noexcept;
// Parses a name above or the numeric value ("10"); nullopt for anything else.
ACT_EXPORT std::optional<Priority> parse_priority(std::string_view text) noexcept;
// Returns 0 for kLow up to 3 for kCritical: the index into per-class arrays.
ACT_EXPORT int priority_class_index(Priority priority) noexcept;

// `waiting`: due and claimable. `delayed`: due later (scheduled, or backing off before a retry).
// `active`: claimed under a lease. The other four are terminal until an explicit retry.
// `failed` means a permanent error, or more stalls than allowed. `dead` means the last allowed
// attempt failed, and makes up the dead-letter queue. `cancelled` is by a caller, or `expired`.
enum class JobState : int {
  kWaiting = 0,
  kDelayed = 1,
  kActive = 2,
  kCompleted = 3,
  kFailed = 4,
  kDead = 5,
  kCancelled = 6,
};
inline constexpr int kJobStateCount = 7;

ACT_EXPORT std::string_view job_state_name(JobState state) noexcept;
ACT_EXPORT std::optional<JobState> parse_job_state(std::string_view name) noexcept;
// True for completed, failed, dead and cancelled.
ACT_EXPORT bool is_terminal(JobState state) noexcept;

// The cause of a failed attempt, which picks the backoff (or no retry at all for kPermanent).
enum class ErrorClass : int {
  kTransient = 0,    // Network errors, 5xx responses, lost leases: retry with backoff.
  kRateLimited = 1,  // A quota or a 429 response: retry after the rate limit's own delay.
  kTimeout = 2,      // A deadline expired: retry with backoff.
  kPermanent = 3,    // Retrying cannot help (bad input, rejected credentials): the job fails now.
};

ACT_EXPORT std::string_view error_class_name(ErrorClass error_class) noexcept;
ACT_EXPORT std::optional<ErrorClass> parse_error_class(std::string_view name) noexcept;

enum class BackoffKind : int {
  kExponential = 0,  // base * 2^(attempt-1), capped at `cap`.
  kFixed = 1,        // base every time.
};

// The delay before retry n (n = 1 after the first failed attempt). With `jitter`, the delay is
// drawn uniformly from [0, computed] ("full jitter"), which spreads retries of jobs that failed
// together.
struct BackoffPolicy {
  BackoffKind kind = BackoffKind::kExponential;
  std::chrono::milliseconds base{1000};
  std::chrono::milliseconds cap{std::chrono::minutes(5)};
  bool jitter = true;

  bool operator==(const BackoffPolicy&) const = default;
};

// The backoff per retryable error class. kPermanent is never retried.
struct RetryPolicy {
  BackoffPolicy transient;
  BackoffPolicy rate_limited{BackoffKind::kExponential, std::chrono::seconds(30), std::chrono::minutes(15), true};
  BackoffPolicy timeout;

  const BackoffPolicy& for_class(ErrorClass error_class) const noexcept;
  bool operator==(const RetryPolicy&) const = default;
};

// The description of a job to enqueue. Fields left at their defaults take the queue's defaults
// (JobQueueOptions).
struct JobSpec {
  std::string type;            // Required: selects the worker pool's handler.
  std::string payload = "{}";  // JSON text; anything that is not valid JSON is rejected.
  Priority priority = Priority::kNormal;
  // When the job becomes due. `run_at` wins over `delay`; a delay is added to the store's clock.
  std::optional<Timestamp> run_at;
  std::chrono::milliseconds delay{0};
  int max_attempts = 0;  // 0 = JobQueueOptions::max_attempts.
  std::optional<RetryPolicy> retry_policy;  // nullopt = JobQueueOptions::retry_policy.
  // While a job holding this key is waiting, delayed or active, enqueueing the key again returns
  // that job instead of a new one. Empty = no deduplication.
  std::string dedup_key;
  // A job not claimed by then ends `cancelled` with the reason "expired". `expires_at` wins over
  // `expire_after`, which counts from the enqueue on the store's clock. Zero = never.
  std::optional<Timestamp> expires_at;
  std::chrono::milliseconds expire_after{0};
  std::string audience;  // For history by audience; may be empty.
};

// A job as stored.
struct Job {
  JobId id = 0;
  std::string type;
  std::string payload;
  Priority priority = Priority::kNormal;
  JobState state = JobState::kWaiting;
  Timestamp due_at{};
  int attempts = 0;  // Attempts started; a stall or a release gives the attempt back.
  int max_attempts = 0;
  int stalls = 0;
  std::optional<RetryPolicy> retry_policy;
  std::string dedup_key;
  std::optional<Timestamp> expires_at;
  std::string audience;
  std::string progress;  // JSON text set by the handler; empty when never set.
  std::string last_error;
  std::optional<ErrorClass> last_error_class;
  std::string reason;    // The cause of a failed, dead or cancelled end ("expired", "cancelled", ...).
  bool cancel_requested = false;
  std::string lease_owner;  // The worker id holding the lease while active.
  std::int64_t lease_epoch = 0;
  std::optional<Timestamp> lease_expires_at;
  Timestamp created_at{};
  Timestamp updated_at{};
  std::optional<Timestamp> started_at;   // The last claim.
  std::optional<Timestamp> finished_at;  // When the job reached its terminal state.
};

// The right to change an active job. `epoch` grows by one at every claim of the job, so a lease
// from an earlier claim no longer matches after a stall and a new claim.
struct Lease {
  JobId job_id = 0;
  std::int64_t epoch = 0;
  std::string worker_id;
  int attempt = 0;       // The attempt this claim started (1-based).
  int max_attempts = 0;
  Timestamp expires_at{};

  bool operator==(const Lease&) const = default;
};

struct ClaimedJob {
  Job job;
  Lease lease;
};

struct EnqueueResult {
  JobId id = 0;
  bool created = true;  // False when a live job with the same dedup key was returned instead.
};

// The jobs a claim may take, and the maximum from each priority class.
struct ClaimRequest {
  std::string worker_id;  // Required: host + pid + start nonce, see make_worker_id().
  std::chrono::milliseconds lease_duration{std::chrono::seconds(30)};
  std::vector<std::string> types;  // Only these job types; empty = any type.
  // Indexed by priority_class_index(): low, normal, high, critical.
  std::array<int, kPriorityClassCount> max_per_class{1, 1, 1, 1};
  int max_jobs = 1;  // Overall maximum for this claim.
};

struct JobFailure {
  ErrorClass error_class = ErrorClass::kTransient;
  std::string message;
  // A lower bound on the delay before the retry, such as a platform's Retry-After.
  std::optional<std::chrono::milliseconds> retry_after;
};

// The state of the job after fail().
struct FailOutcome {
  JobState state = JobState::kDelayed;  // kDelayed (a retry is scheduled), kDead or kFailed.
  std::chrono::milliseconds retry_delay{0};
};

enum class FinishKind : int {
  kComplete = 0,
  kFail = 1,
  kCancel = 2,   // The handler stopped on a cancellation request: ends `cancelled`.
  kRelease = 3,  // Back to waiting (after `delay`) without using up the attempt.
};

// One outcome for JobQueue::finish(), which applies many in one store transaction.
struct JobFinish {
  Lease lease;
  FinishKind kind = FinishKind::kComplete;
  JobFailure failure;                       // kFail only.
  std::optional<RetryPolicy> retry_policy;  // kFail only: the job's own policy, if it has one.
  std::chrono::milliseconds delay{0};       // kRelease only.
};

struct HeartbeatResult {
  Status status;  // OK, or kConflict when the lease was lost (the job was rescued or finished).
  bool cancel_requested = false;
  Timestamp lease_expires_at{};
};

enum class CancelOutcome : int {
  kCancelled = 0,  // The job was waiting or delayed and is now `cancelled`.
  kRequested = 1,  // The job is active: its handler is asked to stop through its cancellation token.
};

// A page of jobs, newest first. Filters combine with AND.
struct JobQuery {
  std::optional<std::string> audience;
  std::vector<JobState> states;    // Empty = every state.
  std::vector<std::string> types;  // Empty = every type.
  JobId before_id = 0;             // Keyset paging: only ids below this one; 0 = from the newest.
  int limit = 100;
};

struct QueueMetrics {
  std::int64_t waiting = 0;
  std::int64_t delayed = 0;
  std::int64_t active = 0;
  std::int64_t completed = 0;
  std::int64_t failed = 0;
  std::int64_t dead = 0;
  std::int64_t cancelled = 0;
  std::int64_t stalled = 0;  // Active jobs whose lease expired and that wait for recovery.
};

// Completed jobs are pruned by age and by count. Failed, dead and cancelled jobs are pruned by age
// only, so that the dead-letter queue stays until someone looks at it. nullopt = no such limit.
struct RetentionPolicy {
  std::optional<std::chrono::milliseconds> completed_max_age{std::chrono::hours(24 * 7)};
  std::optional<std::int64_t> completed_max_count{10000};
  std::optional<std::chrono::milliseconds> terminal_max_age;  // failed, dead, cancelled.
};

struct PruneReport {
  std::int64_t jobs_deleted = 0;
};

// The periodic work that keeps the queue moving: due delayed jobs become waiting, jobs past their
// expiry are cancelled, and active jobs whose lease expired go back to waiting (or fail after too
// many stalls). Safe to run from several workers and processes at once.
struct MaintenanceReport {
  std::int64_t promoted = 0;
  std::int64_t expired = 0;
  std::int64_t stalled_requeued = 0;
  std::int64_t stalled_failed = 0;
};

struct JobQueueOptions {
  int max_attempts = 3;
  RetryPolicy retry_policy;
  int max_stalls = 3;  // A job that stalls more often than this ends `failed`.
  RetentionPolicy retention;
  Logger logger;
  // Seed for the backoff jitter; 0 = seeded from the system's random device.
  std::uint64_t jitter_seed = 0;
};

// Returns "<host>:<pid>:<nonce>", a worker identity that differs across restarts on one host.
ACT_EXPORT std::string make_worker_id();

// Returns the backoff delay before retry `retry` (1-based) for `error_class`, drawing jitter from
// `random_unit`, a number in [0, 1). Returns nullopt for kPermanent.
ACT_EXPORT std::optional<std::chrono::milliseconds> backoff_delay(const RetryPolicy& policy, ErrorClass error_class,
                                                                  int retry, double random_unit) noexcept;

// The queue over a Store.
//
// Thread safety: all methods may be called from many threads at once; the store serializes writes.
class ACT_EXPORT JobQueue {
 public:
  // Fails with kInvalidArgument when `store` is null or an option is out of range.
  static Result<std::shared_ptr<JobQueue>> create(std::shared_ptr<Store> store, JobQueueOptions options = {});
  ~JobQueue();
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  // Enqueues one job, or returns the live job that has `spec.dedup_key`. Fails with
  // kInvalidArgument naming the field for an empty type, a payload that is not JSON or a value
  // out of range; the store is then unchanged.
  Result<EnqueueResult> enqueue(const JobSpec& spec);
  // Enqueues all jobs in one transaction, through the same checks and deduplication as enqueue():
  // the results are in input order. Fails as a whole, naming the index of the first bad spec.
  Result<std::vector<EnqueueResult>> enqueue_bulk(std::span<const JobSpec> specs);

  // Fails with kNotFound for an unknown id.
  Result<Job> get(JobId id);
  Result<std::vector<Job>> list(const JobQuery& query);
  // The jobs of one audience, newest first.
  Result<std::vector<Job>> history(std::string_view audience, int limit = 100, JobId before_id = 0);
  // Dead jobs, newest first.
  Result<std::vector<Job>> dead_letters(int limit = 100, JobId before_id = 0);

  // Cancels a waiting or delayed job at once, or requests an active one to stop. Fails with kNotFound,
  // or kFailedPrecondition for a terminal job.
  Result<CancelOutcome> cancel(JobId id);
  // Puts a failed, dead or cancelled job back to waiting with its attempts and stalls reset.
  // Fails with kFailedPrecondition in another state, and kAlreadyExists when another live job now
  // has its dedup key.
  Result<Job> retry(JobId id);

  // Claims due jobs by priority, then due time, then id. An empty vector means nothing is due.
  Result<std::vector<ClaimedJob>> claim(const ClaimRequest& request);
  // Claims the first due job of any type and priority; nullopt when nothing is due.
  Result<std::optional<ClaimedJob>> claim_one(std::string_view worker_id,
                                              std::chrono::milliseconds lease_duration = std::chrono::seconds(30));

  // Extends the lease to now + `lease_duration` on the store's clock.
  Result<HeartbeatResult> heartbeat(const Lease& lease, std::chrono::milliseconds lease_duration);
  // Extends many leases in one transaction; one result per lease, in order.
  Result<std::vector<HeartbeatResult>> heartbeat_many(std::span<const Lease> leases,
                                                      std::chrono::milliseconds lease_duration);

  // Each fails with kConflict when the lease no longer holds the job.
  Status complete(const Lease& lease);
  // Schedules the retry by the job's backoff, or ends the job `dead` after its last attempt, or
  // `failed` for a kPermanent error.
  Result<FailOutcome> fail(const ClaimedJob& claimed, const JobFailure& failure);
  // Gives the job back: waiting (or delayed by `delay`) with the attempt not counted.
  Status release(const Lease& lease, std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  // Ends an active job `cancelled` after its handler stopped on a cancellation request.
  Status finish_cancelled(const Lease& lease);
  // Applies many outcomes in one transaction; one Status per outcome, in order (kConflict for a lost
  // lease). The returned Result fails only when the transaction itself failed.
  Result<std::vector<Status>> finish(std::span<const JobFinish> outcomes);

  // Stores `progress_json` (JSON text) on the active job.
  Status set_progress(const Lease& lease, std::string_view progress_json);

  Result<QueueMetrics> metrics();
  Result<MaintenanceReport> run_maintenance();
  // Deletes terminal jobs beyond `retention` (the queue's own policy when omitted), with their
  // checkpoints.
  Result<PruneReport> prune(std::optional<RetentionPolicy> retention = std::nullopt);

  // Returns the delay fail() would choose, with this queue's jitter source.
  std::optional<std::chrono::milliseconds> next_retry_delay(const std::optional<RetryPolicy>& job_policy,
                                                            ErrorClass error_class, int retry);

  const std::shared_ptr<Store>& store() const noexcept;
  const JobQueueOptions& options() const noexcept;

 private:
  struct Impl;
  explicit JobQueue(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace activation

#endif  // ACTIVATION_JOB_QUEUE_HPP_
