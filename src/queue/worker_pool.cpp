// WorkerPool: one coordinator thread talks to the store (claims in batches, applies finished jobs
// in grouped transactions, heartbeats, maintenance); N worker threads only run handlers.
#include "activation/worker_pool.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "activation/backend/store.hpp"

namespace activation {

namespace internal {

enum class StopReason : int { kNone = 0, kCancelled = 1, kShutdown = 2, kLeaseLost = 3 };

struct ActiveJob {
  ClaimedJob claimed;
  JobQueue* queue = nullptr;
  int class_index = 1;
  std::atomic<int> stop_reason{static_cast<int>(StopReason::kNone)};
  // Set by the handler's thread through JobContext.
  std::optional<ErrorClass> error_class;
  std::optional<std::chrono::milliseconds> retry_after;
  std::optional<std::chrono::milliseconds> snooze;
  // Both under the pool mutex: the handler is running, and shutdown released the job in the store.
  bool running = false;
  bool released_by_shutdown = false;

  void request_stop(StopReason reason) {
    int expected = static_cast<int>(StopReason::kNone);
    stop_reason.compare_exchange_strong(expected, static_cast<int>(reason));
    // A lost lease outranks the other reasons: the result will be rejected whatever it is.
    if (reason == StopReason::kLeaseLost) stop_reason.store(static_cast<int>(reason));
  }
  StopReason stop() const { return static_cast<StopReason>(stop_reason.load()); }
};

}  // namespace internal

using internal::ActiveJob;
using internal::StopReason;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// Finished jobs are recorded in groups: one transaction per this many jobs at most, or after
// kFlushDelay, whichever comes first. A crash loses at most the unrecorded results, whose jobs then
// run again after their lease, as any job of a crashed worker does.
constexpr std::size_t kFlushBatch = 256;
constexpr auto kFlushDelay = std::chrono::milliseconds(2);

}  // namespace

// --- JobContext ---

const Job& JobContext::job() const noexcept { return active_->claimed.job; }
const Lease& JobContext::lease() const noexcept { return active_->claimed.lease; }
bool JobContext::cancel_requested() const noexcept { return active_->stop() != StopReason::kNone; }
bool JobContext::lease_lost() const noexcept { return active_->stop() == StopReason::kLeaseLost; }
Status JobContext::report_progress(std::string_view progress_json) {
  return active_->queue->set_progress(active_->claimed.lease, progress_json);
}
void JobContext::set_error_class(ErrorClass error_class) noexcept { active_->error_class = error_class; }
void JobContext::set_retry_after(milliseconds delay) noexcept { active_->retry_after = delay; }
void JobContext::snooze(milliseconds delay) noexcept { active_->snooze = std::max(milliseconds(0), delay); }
JobQueue& JobContext::queue() const noexcept { return *active_->queue; }

namespace {

ErrorClass derive_error_class(StatusCode code) {
  switch (code) {
    case StatusCode::kResourceExhausted: return ErrorClass::kRateLimited;
    case StatusCode::kDeadlineExceeded: return ErrorClass::kTimeout;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kPermissionDenied:
    case StatusCode::kUnauthenticated:
    case StatusCode::kDataLoss: return ErrorClass::kPermanent;
    default: return ErrorClass::kTransient;
  }
}

Status check_options(const WorkerPoolOptions& options) {
  if (options.threads < 1 || options.threads > 1024) {
    return invalid_argument(fmt::format("threads is {}; expected 1 to 1024", options.threads));
  }
  const PriorityLimits& limits = options.limits;
  if (limits.low < 0 || limits.normal < 0 || limits.high < 0 || limits.critical < 0) {
    return invalid_argument(fmt::format("priority limits must not be negative (low {}, normal {}, high {}, critical {})",
                                        limits.low, limits.normal, limits.high, limits.critical));
  }
  if (options.lease_duration.count() <= 0) {
    return invalid_argument(fmt::format("lease_duration is {} ms; expected more than 0", options.lease_duration.count()));
  }
  if (options.heartbeat_interval.count() <= 0 || options.heartbeat_interval >= options.lease_duration) {
    return invalid_argument(fmt::format("heartbeat_interval is {} ms; expected more than 0 and less than "
                                        "lease_duration ({} ms)",
                                        options.heartbeat_interval.count(), options.lease_duration.count()));
  }
  if (options.maintenance_interval.count() <= 0) {
    return invalid_argument(
        fmt::format("maintenance_interval is {} ms; expected more than 0", options.maintenance_interval.count()));
  }
  if (options.prefetch < 0 || options.prefetch > 100000) {
    return invalid_argument(fmt::format("prefetch is {}; expected 0 to 100000", options.prefetch));
  }
  return Status();
}

}  // namespace

struct WorkerPool::Impl {
  std::shared_ptr<JobQueue> queue;
  Store* store = nullptr;
  WorkerPoolOptions options;
  std::string worker_id;
  std::map<std::string, JobHandler, std::less<>> handlers;
  std::vector<std::string> types;

  std::mutex mutex;
  std::condition_variable work_ready;     // Worker threads wait for a ready job or the stop.
  std::condition_variable state_changed;  // shutdown() and run_until_idle() wait for progress.
  std::deque<std::shared_ptr<ActiveJob>> ready;
  // Claimed jobs whose result the store has not recorded yet: ready, running or pending.
  std::unordered_map<JobId, std::shared_ptr<ActiveJob>> claimed_jobs;
  std::array<int, kPriorityClassCount> limits{};               // options.limits by class index.
  std::array<int, kPriorityClassCount> held_per_class{};       // Ready or running.
  std::array<int, kPriorityClassCount> running_per_class{};
  int running = 0;
  int flushing = 0;
  std::vector<std::pair<std::shared_ptr<ActiveJob>, JobFinish>> pending;
  Clock::time_point pending_since{};  // When the oldest pending result arrived.
  bool started = false;
  bool stopping = false;  // No more claims.
  bool stop_workers = false;
  bool stop_coordinator = false;
  bool stopped = false;
  WorkerPoolStats stats;

  std::thread coordinator;
  std::vector<std::thread> workers;

  // Removes and returns the highest-priority ready job whose class is below its limit; null when
  // there is none. REQUIRES: `mutex` is locked.
  std::shared_ptr<ActiveJob> take_runnable();
  void coordinator_loop();
  void worker_loop();
  void run_job(const std::shared_ptr<ActiveJob>& job);
  bool flush_pending();
  void heartbeat_all();
  int claim_more();
  void count_outcome(const JobFinish& finish, const Status& result);
};

Result<std::unique_ptr<WorkerPool>> WorkerPool::create(std::shared_ptr<JobQueue> queue, WorkerPoolOptions options) {
  if (queue == nullptr) return invalid_argument("WorkerPool needs a JobQueue; got a null pointer");
  ACT_RETURN_IF_ERROR(check_options(options));
  auto impl = std::make_unique<Impl>();
  impl->store = queue->store().get();
  impl->queue = std::move(queue);
  impl->worker_id = options.worker_id.empty() ? make_worker_id() : options.worker_id;
  impl->limits = {options.limits.low, options.limits.normal, options.limits.high, options.limits.critical};
  impl->options = std::move(options);
  return std::unique_ptr<WorkerPool>(new WorkerPool(std::move(impl)));
}

WorkerPool::WorkerPool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WorkerPool::~WorkerPool() { (void)shutdown(impl_->options.lease_duration); }

const std::string& WorkerPool::worker_id() const noexcept { return impl_->worker_id; }

WorkerPoolStats WorkerPool::stats() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->stats;
}

Status WorkerPool::register_handler(std::string type, JobHandler handler) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->started) return failed_precondition(fmt::format("cannot register handler '{}' after start()", type));
  if (type.empty()) return invalid_argument("handler type is empty");
  if (!handler) return invalid_argument(fmt::format("handler for '{}' is empty", type));
  if (impl_->handlers.count(type) > 0) {
    return Status(StatusCode::kAlreadyExists, fmt::format("a handler for job type '{}' is already registered", type));
  }
  impl_->types.push_back(type);
  impl_->handlers.emplace(std::move(type), std::move(handler));
  return Status();
}

Status WorkerPool::start() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->started) return failed_precondition("worker pool was already started");
  if (impl_->handlers.empty()) return failed_precondition("worker pool has no handler; register one before start()");
  impl_->started = true;
  for (int i = 0; i < impl_->options.threads; ++i) impl_->workers.emplace_back([this] { impl_->worker_loop(); });
  impl_->coordinator = std::thread([this] { impl_->coordinator_loop(); });
  impl_->options.logger.log(LogLevel::kInfo, "worker_pool", "worker {} started with {} threads for job types {}",
                            impl_->worker_id, impl_->options.threads, fmt::join(impl_->types, ", "));
  return Status();
}

// --- worker threads ---

std::shared_ptr<ActiveJob> WorkerPool::Impl::take_runnable() {
  auto best = ready.end();
  for (auto it = ready.begin(); it != ready.end(); ++it) {
    const int c = (*it)->class_index;
    if (running_per_class[c] >= limits[c]) continue;
    if (best == ready.end() || c > (*best)->class_index) best = it;
  }
  if (best == ready.end()) return nullptr;
  std::shared_ptr<ActiveJob> job = std::move(*best);
  ready.erase(best);
  return job;
}

void WorkerPool::Impl::worker_loop() {
  while (true) {
    std::shared_ptr<ActiveJob> job;
    {
      std::unique_lock lock(mutex);
      work_ready.wait(lock, [&] {
        job = take_runnable();
        return job != nullptr || (stop_workers && ready.empty());
      });
      if (job == nullptr) return;
      ++running;
      ++running_per_class[job->class_index];
      job->running = true;
    }
    run_job(job);
  }
}

void WorkerPool::Impl::run_job(const std::shared_ptr<ActiveJob>& job) {
  JobFinish finish;
  finish.lease = job->claimed.lease;
  finish.retry_policy = job->claimed.job.retry_policy;

  if (job->stop() != StopReason::kNone) {
    // Cancelled (or its lease lost) while it waited in the prefetch queue: never started.
    finish.kind = job->stop() == StopReason::kShutdown ? FinishKind::kRelease : FinishKind::kCancel;
  } else {
    Status status;
    const auto handler = handlers.find(job->claimed.job.type);
    JobContext context(job.get());
    try {
      status = handler->second(context);
    } catch (const std::exception& error) {
      status = internal_error(fmt::format("handler for job type '{}' threw: {}", job->claimed.job.type, error.what()));
      job->error_class = ErrorClass::kTransient;
    } catch (...) {
      status = internal_error(fmt::format("handler for job type '{}' threw a non-standard exception",
                                          job->claimed.job.type));
      job->error_class = ErrorClass::kTransient;
    }

    const StopReason stop = job->stop();
    if (stop == StopReason::kCancelled) {
      finish.kind = FinishKind::kCancel;
    } else if (stop == StopReason::kShutdown) {
      finish.kind = status.is_ok() && !job->snooze ? FinishKind::kComplete : FinishKind::kRelease;
    } else if (status.is_ok()) {
      finish.kind = job->snooze ? FinishKind::kRelease : FinishKind::kComplete;
      finish.delay = job->snooze.value_or(milliseconds(0));
    } else {
      finish.kind = FinishKind::kFail;
      finish.failure.error_class = job->error_class.value_or(derive_error_class(status.code()));
      finish.failure.message = status.to_string();
      finish.failure.retry_after = job->retry_after;
    }
  }

  bool wake_coordinator = false;
  bool wake_workers = false;
  {
    std::lock_guard lock(mutex);
    --running;
    job->running = false;
    --running_per_class[job->class_index];
    --held_per_class[job->class_index];
    // A ready job of this class may have been kept waiting by the class limit. This thread takes
    // the best runnable job itself when it loops, so waking one more thread covers the freed slot.
    // Waking every idle thread for each finished job would cost a context switch per thread.
    wake_workers = !ready.empty();
    if (pending.empty()) pending_since = Clock::now();
    pending.emplace_back(job, std::move(finish));
    // Wake the coordinator only when it has something to do: start the flush timer, flush a full
    // group, or refill the ready queue. Waking it for every job would cost a context switch each.
    wake_coordinator = pending.size() == 1 || pending.size() >= kFlushBatch ||
                       static_cast<int>(ready.size()) <= options.prefetch / 2 || stopping;
  }
  if (wake_workers) work_ready.notify_one();
  if (wake_coordinator) store->notify_activity();
}

// --- coordinator ---

void WorkerPool::Impl::count_outcome(const JobFinish& finish, const Status& result) {
  if (!result.is_ok()) {
    ++stats.conflicts;
    return;
  }
  switch (finish.kind) {
    case FinishKind::kComplete: ++stats.completed; break;
    case FinishKind::kCancel: ++stats.cancelled; break;
    case FinishKind::kRelease: ++stats.released; break;
    case FinishKind::kFail:
      if (finish.failure.error_class == ErrorClass::kPermanent) {
        ++stats.failed;
      } else if (finish.lease.attempt >= finish.lease.max_attempts) {
        ++stats.dead;
      } else {
        ++stats.retried;
      }
      break;
  }
}

// Applies the finished jobs in one transaction. Returns false when the store failed, in which case
// the outcomes stay pending and are tried again: a job must not stay active because one write failed.
bool WorkerPool::Impl::flush_pending() {
  std::vector<std::pair<std::shared_ptr<ActiveJob>, JobFinish>> batch;
  std::vector<JobFinish> outcomes;
  {
    std::lock_guard lock(mutex);
    if (pending.empty()) return true;
    batch.swap(pending);
    flushing += static_cast<int>(batch.size());
    outcomes.reserve(batch.size());
    for (const auto& [job, finish] : batch) {
      // Shutdown already gave these jobs back; their late results would only be rejected.
      if (!job->released_by_shutdown) outcomes.push_back(finish);
    }
  }

  auto results = outcomes.empty() ? Result<std::vector<Status>>(std::vector<Status>()) : queue->finish(outcomes);
  if (!results.is_ok()) {
    options.logger.log(LogLevel::kError, "worker_pool", "worker {} could not record {} finished jobs; retrying: {}",
                       worker_id, outcomes.size(), results.status().to_string());
    std::lock_guard lock(mutex);
    flushing -= static_cast<int>(batch.size());
    pending.insert(pending.begin(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
    return false;
  }

  {
    std::lock_guard lock(mutex);
    for (std::size_t k = 0; k < outcomes.size(); ++k) count_outcome(outcomes[k], (*results)[k]);
    for (auto& [job, finish] : batch) claimed_jobs.erase(job->claimed.lease.job_id);
    flushing -= static_cast<int>(batch.size());
  }
  state_changed.notify_all();
  return true;
}

void WorkerPool::Impl::heartbeat_all() {
  std::vector<std::shared_ptr<ActiveJob>> jobs;
  {
    std::lock_guard lock(mutex);
    jobs.reserve(claimed_jobs.size());
    for (auto& [id, job] : claimed_jobs) {
      if (!job->released_by_shutdown) jobs.push_back(job);
    }
  }
  if (jobs.empty()) return;

  std::vector<Lease> leases;
  leases.reserve(jobs.size());
  for (const auto& job : jobs) leases.push_back(job->claimed.lease);
  auto results = queue->heartbeat_many(leases, options.lease_duration);
  if (!results.is_ok()) {
    options.logger.log(LogLevel::kWarn, "worker_pool", "worker {} heartbeat of {} leases failed: {}", worker_id,
                       leases.size(), results.status().to_string());
    return;
  }
  for (std::size_t i = 0; i < jobs.size() && i < results->size(); ++i) {
    const HeartbeatResult& result = (*results)[i];
    if (!result.status.is_ok()) {
      if (jobs[i]->stop() != StopReason::kLeaseLost) {
        options.logger.log(LogLevel::kWarn, "worker_pool", "worker {} lost the lease of job {}: {}", worker_id,
                           jobs[i]->claimed.lease.job_id, result.status.message());
      }
      jobs[i]->request_stop(StopReason::kLeaseLost);
    } else if (result.cancel_requested) {
      jobs[i]->request_stop(StopReason::kCancelled);
    }
  }
}

// Claims as many jobs as there are free threads (plus the prefetch) within the class limits.
// Returns the number claimed, or -1 when the claim failed.
int WorkerPool::Impl::claim_more() {
  ClaimRequest request;
  {
    std::lock_guard lock(mutex);
    if (stopping) return 0;
    const int free_slots = options.threads + options.prefetch - running - static_cast<int>(ready.size());
    if (free_slots <= 0) return 0;
    // Refill in groups: wait until half of the prefetched jobs have been taken.
    if (static_cast<int>(ready.size()) > options.prefetch / 2) return 0;
    request.max_jobs = free_slots;
    // A class may have its limit in running jobs plus the prefetch. A class limited to 0 gets none.
    bool any = false;
    for (int c = 0; c < kPriorityClassCount; ++c) {
      const int cap = limits[c] == 0 ? 0 : limits[c] + options.prefetch;
      request.max_per_class[c] = std::max(0, cap - held_per_class[c]);
      any = any || request.max_per_class[c] > 0;
    }
    if (!any) return 0;
  }
  request.worker_id = worker_id;
  request.lease_duration = options.lease_duration;
  request.types = types;

  auto claimed = queue->claim(request);
  if (!claimed.is_ok()) {
    options.logger.log(LogLevel::kWarn, "worker_pool", "worker {} claim failed: {}", worker_id,
                       claimed.status().to_string());
    return -1;
  }
  if (claimed->empty()) return 0;

  {
    std::lock_guard lock(mutex);
    for (ClaimedJob& c : *claimed) {
      auto job = std::make_shared<ActiveJob>();
      job->queue = queue.get();
      job->class_index = priority_class_index(c.job.priority);
      job->claimed = std::move(c);
      ++held_per_class[job->class_index];
      ++stats.claimed;
      claimed_jobs.emplace(job->claimed.lease.job_id, job);
      ready.push_back(std::move(job));
    }
  }
  work_ready.notify_all();
  return static_cast<int>(claimed->size());
}

void WorkerPool::Impl::coordinator_loop() {
  auto next_heartbeat = Clock::now() + options.heartbeat_interval;
  auto next_maintenance = Clock::now();
  milliseconds error_backoff(0);

  while (true) {
    const std::uint64_t token = store->activity_token();
    auto now = Clock::now();
    bool flush_due = false;
    auto next_flush = Clock::time_point::max();
    {
      std::lock_guard lock(mutex);
      if (stop_coordinator && pending.empty()) break;
      if (!pending.empty()) {
        next_flush = pending_since + kFlushDelay;
        flush_due = pending.size() >= kFlushBatch || now >= next_flush || (running == 0 && ready.empty()) ||
                    stopping;
      }
    }

    bool store_failed = flush_due && !flush_pending();

    now = Clock::now();
    if (now >= next_heartbeat) {
      heartbeat_all();
      next_heartbeat = now + options.heartbeat_interval;
    }
    if (now >= next_maintenance) {
      auto report = queue->run_maintenance();
      next_maintenance = now + options.maintenance_interval;
      if (!report.is_ok()) {
        options.logger.log(LogLevel::kWarn, "worker_pool", "worker {} maintenance failed: {}", worker_id,
                           report.status().to_string());
      } else if (auto due = store->next_due_at(); due.is_ok() && due->has_value()) {
        // Wake for the next delayed job instead of waiting out the whole maintenance interval.
        auto store_now = store->now();
        if (store_now.is_ok()) {
          const auto wait = std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(**due - *store_now));
          next_maintenance = std::min(next_maintenance, now + wait + milliseconds(1));
        }
      }
    }

    const int claimed = claim_more();
    store_failed = store_failed || claimed < 0;
    error_backoff = store_failed ? std::min(milliseconds(1000), std::max(milliseconds(10), error_backoff * 2))
                                 : milliseconds(0);
    if (!store_failed && (claimed > 0 || flush_due)) continue;

    auto wake = std::min({next_heartbeat, next_maintenance, next_flush});
    if (store_failed) wake = std::min(wake, Clock::now() + error_backoff);
    const auto wait = std::chrono::duration_cast<milliseconds>(wake - Clock::now()) + milliseconds(1);
    if (wake > Clock::now()) store->wait_for_activity(token, wait);
  }
}

// --- shutdown and draining ---

Status WorkerPool::shutdown(milliseconds deadline) {
  Impl& impl = *impl_;
  std::vector<std::shared_ptr<ActiveJob>> overdue;
  {
    std::unique_lock lock(impl.mutex);
    if (!impl.started || impl.stopped) return Status();
    impl.stopping = true;

    // Prefetched jobs that never started go back at once.
    for (auto& job : impl.ready) {
      --impl.held_per_class[job->class_index];
      JobFinish finish;
      finish.lease = job->claimed.lease;
      finish.kind = FinishKind::kRelease;
      impl.pending.emplace_back(job, std::move(finish));
    }
    impl.ready.clear();
  }
  impl.store->notify_activity();

  {
    std::unique_lock lock(impl.mutex);
    impl.state_changed.wait_for(lock, deadline, [&] { return impl.running == 0; });
    if (impl.running > 0) {
      for (auto& [id, job] : impl.claimed_jobs) {
        if (!job->running || job->stop() == StopReason::kLeaseLost) continue;
        job->request_stop(StopReason::kShutdown);
        job->released_by_shutdown = true;
        overdue.push_back(job);
      }
    }
  }

  if (!overdue.empty()) {
    // Give the overdue jobs back now so other workers can take them; their handlers are still
    // running and will see cancel_requested().
    std::vector<JobFinish> releases;
    for (const auto& job : overdue) {
      JobFinish finish;
      finish.lease = job->claimed.lease;
      finish.kind = FinishKind::kRelease;
      releases.push_back(finish);
    }
    auto results = impl.queue->finish(releases);
    std::lock_guard lock(impl.mutex);
    if (results.is_ok()) {
      for (std::size_t i = 0; i < releases.size(); ++i) impl.count_outcome(releases[i], (*results)[i]);
    }
    impl.options.logger.log(LogLevel::kWarn, "worker_pool",
                            "worker {} released {} jobs still running at the shutdown deadline", impl.worker_id,
                            overdue.size());
  }

  {
    std::lock_guard lock(impl.mutex);
    impl.stop_workers = true;
  }
  impl.work_ready.notify_all();
  for (auto& thread : impl.workers) thread.join();
  impl.workers.clear();

  {
    std::lock_guard lock(impl.mutex);
    impl.stop_coordinator = true;
  }
  impl.store->notify_activity();
  impl.coordinator.join();

  std::lock_guard lock(impl.mutex);
  impl.stopped = true;
  impl.options.logger.log(LogLevel::kInfo, "worker_pool", "worker {} stopped: {} completed, {} conflicts",
                          impl.worker_id, impl.stats.completed, impl.stats.conflicts);
  return Status();
}

Result<WorkerPoolStats> WorkerPool::run_until_idle(milliseconds timeout, bool wait_for_delayed) {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopped) return failed_precondition("worker pool was shut down; create a new one");
  }
  bool needs_start = false;
  {
    std::lock_guard lock(impl_->mutex);
    needs_start = !impl_->started;
  }
  if (needs_start) ACT_RETURN_IF_ERROR(start());

  const auto deadline = Clock::now() + timeout;
  while (true) {
    bool locally_idle = false;
    {
      std::unique_lock lock(impl_->mutex);
      impl_->state_changed.wait_for(lock, milliseconds(20));
      locally_idle = impl_->ready.empty() && impl_->running == 0 && impl_->pending.empty() && impl_->flushing == 0;
    }

    if (locally_idle) {
      auto metrics = impl_->queue->metrics();
      if (!metrics.is_ok()) {
        (void)shutdown(impl_->options.lease_duration);
        return metrics.status();
      }
      const std::int64_t left = metrics->waiting + metrics->active + (wait_for_delayed ? metrics->delayed : 0);
      bool idle = left == 0;
      if (!idle) {
        // Jobs of types this pool has no handler for do not keep it running.
        JobQuery query;
        query.states = {JobState::kWaiting, JobState::kActive};
        if (wait_for_delayed) query.states.push_back(JobState::kDelayed);
        query.types = impl_->types;
        query.limit = 1;
        auto mine = impl_->queue->list(query);
        idle = mine.is_ok() && mine->empty();
      }
      if (idle) {
        ACT_RETURN_IF_ERROR(shutdown(impl_->options.lease_duration));
        return stats();
      }
    }

    if (Clock::now() >= deadline) {
      (void)shutdown(impl_->options.lease_duration);
      return Status(StatusCode::kDeadlineExceeded,
                    fmt::format("worker {}: jobs were still waiting or running after {} ms", impl_->worker_id,
                                timeout.count()));
    }
  }
}

}  // namespace activation
