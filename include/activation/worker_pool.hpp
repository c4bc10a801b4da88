// The worker pool: N threads running a handler per job type over a JobQueue.
//
// The pool claims jobs in batches, heartbeats their leases for the handlers, records results in
// grouped transactions and recovers stalled jobs. It also limits how many jobs of each priority
// class run at once, so low-priority work neither starves nor fills every thread.
#ifndef ACTIVATION_WORKER_POOL_HPP_
#define ACTIVATION_WORKER_POOL_HPP_

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "activation/export.hpp"
#include "activation/job_queue.hpp"
#include "activation/log.hpp"
#include "activation/status.hpp"

namespace activation {

namespace internal {
struct ActiveJob;
}  // namespace internal

// The view of its job that a handler gets.
//
// Thread safety: cancel_requested() and lease_lost() may be read from any thread; the other methods
// belong to the handler's thread.
class ACT_EXPORT JobContext {
 public:
  JobContext(const JobContext&) = delete;
  JobContext& operator=(const JobContext&) = delete;

  const Job& job() const noexcept;
  const Lease& lease() const noexcept;

  // True once the job was cancelled (seen within one heartbeat interval), the pool is shutting down
  // past its deadline, or the lease was lost. A handler should check it between units of work and
  // return soon after it turns true.
  bool cancel_requested() const noexcept;
  // True when a heartbeat found the lease taken over: any result of this attempt will be rejected.
  bool lease_lost() const noexcept;

  // Stores `progress_json` (JSON text) on the job. Fails with kConflict when the lease was lost.
  Status report_progress(std::string_view progress_json);

  // Sets the error class of the Status the handler is about to return, in place of the class the
  // pool derives from its StatusCode.
  void set_error_class(ErrorClass error_class) noexcept;
  // A lower bound for the retry delay, such as a platform's Retry-After.
  void set_retry_after(std::chrono::milliseconds delay) noexcept;
  // When the handler then returns OK, the job goes back to waiting after `delay` without using up
  // an attempt (waiting for a rate limit, say) instead of completing.
  void snooze(std::chrono::milliseconds delay) noexcept;

  JobQueue& queue() const noexcept;

 private:
  friend class WorkerPool;
  explicit JobContext(internal::ActiveJob* active) noexcept : active_(active) {}
  internal::ActiveJob* active_;
};

// Runs one job. OK completes it. A non-OK Status fails the attempt with the class given to
// set_error_class(), or else the one derived from its code: kResourceExhausted is kRateLimited,
// kDeadlineExceeded is kTimeout, kInvalidArgument, kNotFound, kAlreadyExists, kFailedPrecondition,
// kPermissionDenied, kUnauthenticated and kDataLoss are kPermanent, the rest kTransient. Any result
// after a cancellation request ends the job `cancelled`. An exception escaping the handler fails
// the attempt as kTransient with its message.
using JobHandler = std::function<Status(JobContext& context)>;

// The maximum number of jobs of each priority class that run at once in one pool.
struct PriorityLimits {
  int low = 2;
  int normal = 5;
  int high = 10;
  int critical = 10;

  int for_class(Priority priority) const noexcept;
};

struct WorkerPoolOptions {
  int threads = 4;
  PriorityLimits limits;
  std::string worker_id;  // Empty = make_worker_id().
  std::chrono::milliseconds lease_duration{std::chrono::seconds(30)};
  // How often the pool extends the leases of running jobs; must be below lease_duration.
  std::chrono::milliseconds heartbeat_interval{std::chrono::seconds(10)};
  // How often the pool runs JobQueue::run_maintenance() (delayed jobs, expiry, stalled jobs).
  std::chrono::milliseconds maintenance_interval{std::chrono::seconds(1)};
  // Claimed jobs kept ready beyond the idle threads, so a thread finds its next job without a
  // store round trip. Their leases are heartbeated like running jobs.
  int prefetch = 0;
  Logger logger;
};

// Counts since start().
struct WorkerPoolStats {
  std::int64_t claimed = 0;
  std::int64_t completed = 0;
  std::int64_t retried = 0;    // Failed attempts with a retry scheduled.
  std::int64_t dead = 0;
  std::int64_t failed = 0;
  std::int64_t cancelled = 0;
  std::int64_t released = 0;   // Snoozed, or released at shutdown.
  std::int64_t conflicts = 0;  // Results rejected because the lease was lost.
};

// Thread safety: all methods may be called from any thread, except that handlers must be
// registered before start().
class ACT_EXPORT WorkerPool {
 public:
  // Fails with kInvalidArgument when `queue` is null or an option is out of range.
  static Result<std::unique_ptr<WorkerPool>> create(std::shared_ptr<JobQueue> queue, WorkerPoolOptions options = {});
  // Shuts down with a deadline of lease_duration when still running.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Fails with kFailedPrecondition after start(), kAlreadyExists for a type registered twice.
  Status register_handler(std::string type, JobHandler handler);

  // Starts the threads. Only jobs of registered types are claimed. Fails with kFailedPrecondition
  // when no handler is registered or the pool was started before.
  Status start();

  // Stops claiming, waits up to `deadline` for running jobs to finish, then requests cancellation
  // of the rest and releases their jobs to waiting (attempt not counted) so that other workers can
  // take them. Returns when every thread has exited: a handler that ignores its cancellation token
  // delays the return, but its late result is rejected.
  Status shutdown(std::chrono::milliseconds deadline);

  // Starts the pool if needed and runs until no job of a registered type is waiting or active in
  // the store (nor delayed, with `wait_for_delayed`), then shuts down. Fails with
  // kDeadlineExceeded when `timeout` passes first, and shuts the pool down then as well.
  Result<WorkerPoolStats> run_until_idle(std::chrono::milliseconds timeout, bool wait_for_delayed = true);

  WorkerPoolStats stats() const;
  const std::string& worker_id() const noexcept;

 private:
  struct Impl;
  explicit WorkerPool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace activation

#endif  // ACTIVATION_WORKER_POOL_HPP_
