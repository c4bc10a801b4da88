// DistributionEngine: distributes audiences to destinations through the durable job queue.
//
// distribute() validates the request, stores a job and returns at once. Workers claim the job:
// start_workers() or run_until_idle() in this process, or another process sharing the store. They
// run the destinations with bounded parallelism. Each run reads the source, normalizes and hashes,
// turns rows into operations by the sync mode, sends batches, and commits each batch's checkpoint
// and ledger updates in one transaction. docs/engine.md describes the flow, the member key and the row
// outcomes.
#ifndef ACTIVATION_ENGINE_HPP_
#define ACTIVATION_ENGINE_HPP_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "activation/backend/destination.hpp"
#include "activation/config.hpp"
#include "activation/events.hpp"
#include "activation/export.hpp"
#include "activation/job_queue.hpp"
#include "activation/log.hpp"
#include "activation/progress.hpp"
#include "activation/status.hpp"
#include "activation/worker_pool.hpp"

namespace activation {

// The job type of distributions in the queue.
inline constexpr std::string_view kDistributionJobType = "distribution";

struct DistributeOptions {
  Priority priority = Priority::kNormal;
  std::optional<std::chrono::system_clock::time_point> scheduled_at;  // nullopt = now.
  std::optional<std::chrono::system_clock::time_point> expires_at;    // Not started by then = cancelled.
  std::size_t batch_size = 0;  // 0 = the destination's, else the engine's default.
  int parallelism = 0;         // Destinations run at once; 0 = the engine's setting.
  bool dry_run = false;        // Run the pipeline without sending and without writing the ledger.
  SyncMode mode = SyncMode::kAdd;
  std::map<std::string, std::string> metadata;  // Stored with the job, returned as given.
  std::string dedup_key;                        // While a job with this key is live, distribute() returns it.
};

// The state of a distribution. A job whose destinations all succeeded is kCompleted; one where some
// failed and others succeeded is kCompletedWithErrors.
enum class DistributionStatus : int {
  kQueued = 0,
  kScheduled,
  kRunning,
  kCompleted,
  kCompletedWithErrors,
  kFailed,
  kCancelled,
};

ACT_EXPORT std::string_view distribution_status_name(DistributionStatus status) noexcept;

struct DistributionJob {
  JobId id = 0;
  std::string audience;
  std::vector<std::string> destinations;
  SyncMode mode = SyncMode::kAdd;
  bool dry_run = false;
  Priority priority = Priority::kNormal;
  DistributionStatus status = DistributionStatus::kQueued;
  JobState queue_state = JobState::kWaiting;
  int attempts = 0;
  int max_attempts = 0;
  std::string last_error;
  std::string reason;  // The cause of a failed, dead or cancelled end.
  std::map<std::string, std::string> metadata;
  JobProgress progress;  // The last progress stored on the job.
  Timestamp created_at{};
  std::optional<Timestamp> finished_at;
};

// One non-accepted row of a job, as exported by export_row_outcomes().
struct RowOutcomeRecord {
  std::string destination;
  std::uint64_t line = 0;  // 0 for a member who left the source (a mirror remove).
  std::string operation;   // "add", "remove", or "" for an invalid row.
  RowOutcome outcome = RowOutcome::kInvalid;
  std::string reason_code;
  std::string reason;
  std::string member_key;  // Empty for an invalid row.
};

struct EngineOptions {
  Logger logger;
  std::shared_ptr<EventBus> events;  // nullptr = a bus of the engine's own.
  // Overrides of the configuration's engine settings for this process.
  std::optional<int> workers;
  std::optional<std::chrono::milliseconds> lease_duration;
  std::optional<std::chrono::milliseconds> heartbeat_interval;
};

// Thread safety: all methods may be called from any thread. Audiences and destinations registered
// after start_workers() are seen by jobs queued afterwards in this process only.
class ACT_EXPORT DistributionEngine {
 public:
  // Opens (or creates) the store of `config` and the outcome log beside it. Fails with the store's
  // error, or kInvalidArgument for an invalid audience or destination in `config`.
  static Result<std::unique_ptr<DistributionEngine>> open(Config config, EngineOptions options = {});
  ~DistributionEngine();
  DistributionEngine(const DistributionEngine&) = delete;
  DistributionEngine& operator=(const DistributionEngine&) = delete;

  // Adds an audience or destination, or replaces one of the same name.
  Status register_audience(AudienceConfig audience);
  Status register_destination(DestinationConfig destination);

  // Checks everything distribute() checks, without queuing. The audience must exist and its source
  // must open with every mapped column. Each destination must exist with a registered type and an
  // adapter that can be created (a file destination's folder must be writable). Errors name the
  // audience, destination, file, key or column.
  Status validate(std::string_view audience, std::span<const std::string> destinations,
                  const DistributeOptions& options);

  // Validates, then stores and queues the job; returns it at once.
  Result<DistributionJob> distribute(std::string_view audience, std::span<const std::string> destinations,
                                     const DistributeOptions& options = {});

  // Fails with kNotFound for an unknown id or a job of another type.
  Result<DistributionJob> job(JobId id);
  // Distribution jobs, newest first; `audience` empty = all.
  Result<std::vector<DistributionJob>> jobs(std::string_view audience = {}, int limit = 100);
  Result<std::vector<DistributionJob>> history(std::string_view audience, int limit = 100);
  Result<std::vector<DistributionJob>> dead_letters(int limit = 100);
  // Cancels a queued job at once, or requests a running one to stop after its batch in flight.
  Result<CancelOutcome> cancel(JobId id);
  // Puts a failed, dead or cancelled job back in the queue; it resumes from its checkpoints. For a
  // job that completed with errors, queues a new job of the destinations that failed, with the
  // same audience, mode and options and the metadata "retry_of" set to `id`, and returns it.
  // Fails with kFailedPrecondition for a queued, running or completed job.
  Result<DistributionJob> retry(JobId id);

  // Starts the worker pool of this process. Fails with kFailedPrecondition when it runs already.
  Status start_workers(std::optional<int> threads = std::nullopt);
  // Stops claiming; running jobs get `deadline` to finish, then are released to other workers.
  Status stop_workers(std::chrono::milliseconds deadline);
  // Runs a pool until no distribution job is waiting, delayed or active; fails with
  // kDeadlineExceeded after `timeout`.
  Result<WorkerPoolStats> run_until_idle(std::chrono::milliseconds timeout);

  // The non-accepted rows of a job (invalid, rejected, deferred) in destination and line order.
  Status export_row_outcomes(JobId id, const std::function<Status(const RowOutcomeRecord&)>& visitor);
  // Writes them as CSV with a header: destination,line,operation,outcome,reason_code,reason,member_key.
  Status export_row_outcomes_csv(JobId id, std::ostream& out);

  // Queue and destination metrics in the Prometheus text format.
  Result<std::string> metrics_text();
  // Evaluates the alert conditions now (queue backlog, stalled jobs, slow jobs, error rates) and
  // publishes alert events for those that started or cleared since the last call. Running workers
  // call it on their own every few seconds.
  Status check_alerts();

  ProgressTracker& progress() noexcept;
  EventBus& events() noexcept;
  const std::shared_ptr<JobQueue>& queue() const noexcept;
  // A copy of the configuration, with the registered audiences and destinations.
  Config config() const;

 private:
  struct Impl;
  explicit DistributionEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace activation

#endif  // ACTIVATION_ENGINE_HPP_
