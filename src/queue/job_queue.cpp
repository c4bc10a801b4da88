// JobQueue: input checks, the retry and dead-letter decision, and logging over a Store.
#include "activation/job_queue.hpp"

#include <mutex>
#include <random>

#include <fmt/format.h>

#include "activation/backend/store.hpp"
#include "queue/retry_policy_codec.hpp"

namespace activation {
namespace {

constexpr std::size_t kMaxTypeBytes = 200;
constexpr std::size_t kMaxDedupKeyBytes = 1024;
constexpr std::size_t kMaxAudienceBytes = 1024;
constexpr int kMaxAttemptsLimit = 1000;

bool is_known_priority(Priority priority) {
  switch (priority) {
    case Priority::kLow:
    case Priority::kNormal:
    case Priority::kHigh:
    case Priority::kCritical: return true;
  }
  return false;
}

Status check_backoff(const BackoffPolicy& backoff, std::string_view field) {
  if (backoff.base.count() < 0 || backoff.cap.count() < 0) {
    return invalid_argument(fmt::format("{}: base and cap must not be negative (base {} ms, cap {} ms)", field,
                                        backoff.base.count(), backoff.cap.count()));
  }
  if (backoff.kind != BackoffKind::kExponential && backoff.kind != BackoffKind::kFixed) {
    return invalid_argument(fmt::format("{}.kind is {}; expected exponential or fixed", field,
                                        static_cast<int>(backoff.kind)));
  }
  return Status();
}

Status check_retry_policy(const RetryPolicy& policy, std::string_view field) {
  ACT_RETURN_IF_ERROR(check_backoff(policy.transient, fmt::format("{}.transient", field)));
  ACT_RETURN_IF_ERROR(check_backoff(policy.rate_limited, fmt::format("{}.rate_limited", field)));
  ACT_RETURN_IF_ERROR(check_backoff(policy.timeout, fmt::format("{}.timeout", field)));
  return Status();
}

// Checks one spec; `where` prefixes every message ("job" or "jobs[3]").
Status check_spec(const JobSpec& spec, std::string_view where) {
  if (spec.type.empty()) return invalid_argument(fmt::format("{}.type is empty; expected the job type name", where));
  if (spec.type.size() > kMaxTypeBytes) {
    return invalid_argument(fmt::format("{}.type is {} bytes long; the maximum is {}", where, spec.type.size(),
                                        kMaxTypeBytes));
  }
  if (std::string error = internal::json_syntax_error(spec.payload); !error.empty()) {
    return invalid_argument(fmt::format("{}.payload is not valid JSON: {}", where, error));
  }
  if (!is_known_priority(spec.priority)) {
    return invalid_argument(fmt::format("{}.priority is {}; expected 1 (low), 5 (normal), 10 (high) or 20 (critical)",
                                        where, static_cast<int>(spec.priority)));
  }
  if (spec.delay.count() < 0) {
    return invalid_argument(fmt::format("{}.delay is {} ms; expected 0 or more", where, spec.delay.count()));
  }
  if (spec.expire_after.count() < 0) {
    return invalid_argument(fmt::format("{}.expire_after is {} ms; expected 0 or more", where,
                                        spec.expire_after.count()));
  }
  if (spec.max_attempts < 0 || spec.max_attempts > kMaxAttemptsLimit) {
    return invalid_argument(fmt::format("{}.max_attempts is {}; expected 0 (the queue default) to {}", where,
                                        spec.max_attempts, kMaxAttemptsLimit));
  }
  if (spec.dedup_key.size() > kMaxDedupKeyBytes) {
    return invalid_argument(fmt::format("{}.dedup_key is {} bytes long; the maximum is {}", where,
                                        spec.dedup_key.size(), kMaxDedupKeyBytes));
  }
  if (spec.audience.size() > kMaxAudienceBytes) {
    return invalid_argument(fmt::format("{}.audience is {} bytes long; the maximum is {}", where,
                                        spec.audience.size(), kMaxAudienceBytes));
  }
  if (spec.retry_policy) ACT_RETURN_IF_ERROR(check_retry_policy(*spec.retry_policy, fmt::format("{}.retry_policy", where)));
  return Status();
}

}  // namespace

struct JobQueue::Impl {
  std::shared_ptr<Store> store;
  JobQueueOptions options;
  std::mutex random_mutex;
  std::mt19937_64 random;

  double random_unit() {
    std::lock_guard lock(random_mutex);
    return std::uniform_real_distribution<double>(0.0, 1.0)(random);
  }

  NewJob resolve(const JobSpec& spec) const {
    NewJob job{&spec, spec.max_attempts > 0 ? spec.max_attempts : options.max_attempts};
    return job;
  }
};

Result<std::shared_ptr<JobQueue>> JobQueue::create(std::shared_ptr<Store> store, JobQueueOptions options) {
  if (store == nullptr) return invalid_argument("JobQueue needs a store; got a null pointer");
  if (options.max_attempts < 1 || options.max_attempts > kMaxAttemptsLimit) {
    return invalid_argument(fmt::format("max_attempts is {}; expected 1 to {}", options.max_attempts, kMaxAttemptsLimit));
  }
  if (options.max_stalls < 0) {
    return invalid_argument(fmt::format("max_stalls is {}; expected 0 or more", options.max_stalls));
  }
  ACT_RETURN_IF_ERROR(check_retry_policy(options.retry_policy, "retry_policy"));

  auto impl = std::make_unique<Impl>();
  impl->store = std::move(store);
  impl->options = std::move(options);
  const std::uint64_t seed = impl->options.jitter_seed != 0 ? impl->options.jitter_seed : std::random_device()();
  impl->random.seed(seed);
  return std::shared_ptr<JobQueue>(new JobQueue(std::move(impl)));
}

JobQueue::JobQueue(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JobQueue::~JobQueue() = default;

const std::shared_ptr<Store>& JobQueue::store() const noexcept { return impl_->store; }
const JobQueueOptions& JobQueue::options() const noexcept { return impl_->options; }

Result<EnqueueResult> JobQueue::enqueue(const JobSpec& spec) {
  ACT_RETURN_IF_ERROR(check_spec(spec, "job"));
  const NewJob job = impl_->resolve(spec);
  ACT_ASSIGN_OR_RETURN(auto results, impl_->store->insert_jobs(std::span<const NewJob>(&job, 1)));
  if (results.size() != 1) return internal_error("store returned no result for an enqueue of one job");
  return results.front();
}

Result<std::vector<EnqueueResult>> JobQueue::enqueue_bulk(std::span<const JobSpec> specs) {
  std::vector<NewJob> jobs;
  jobs.reserve(specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    ACT_RETURN_IF_ERROR(check_spec(specs[i], fmt::format("jobs[{}]", i)));
    jobs.push_back(impl_->resolve(specs[i]));
  }
  if (jobs.empty()) return std::vector<EnqueueResult>();
  return impl_->store->insert_jobs(jobs);
}

Result<Job> JobQueue::get(JobId id) {
  ACT_ASSIGN_OR_RETURN(auto job, impl_->store->get_job(id));
  if (!job) return not_found(fmt::format("job {} does not exist", id));
  return std::move(*job);
}

Result<std::vector<Job>> JobQueue::list(const JobQuery& query) {
  if (query.limit < 0) return invalid_argument(fmt::format("limit is {}; expected 0 or more", query.limit));
  return impl_->store->list_jobs(query);
}

Result<std::vector<Job>> JobQueue::history(std::string_view audience, int limit, JobId before_id) {
  JobQuery query;
  query.audience = std::string(audience);
  query.limit = limit;
  query.before_id = before_id;
  return list(query);
}

Result<std::vector<Job>> JobQueue::dead_letters(int limit, JobId before_id) {
  JobQuery query;
  query.states = {JobState::kDead};
  query.limit = limit;
  query.before_id = before_id;
  return list(query);
}

Result<CancelOutcome> JobQueue::cancel(JobId id) {
  ACT_ASSIGN_OR_RETURN(const CancelOutcome outcome, impl_->store->cancel_job(id, "cancelled"));
  if (outcome == CancelOutcome::kCancelled) {
    impl_->options.logger.log(LogLevel::kInfo, "queue", "job {} cancelled", id);
  } else {
    impl_->options.logger.log(LogLevel::kInfo, "queue", "job {} is active; cancellation requested", id);
  }
  return outcome;
}

Result<Job> JobQueue::retry(JobId id) {
  ACT_ASSIGN_OR_RETURN(Job job, impl_->store->retry_job(id));
  impl_->options.logger.log(LogLevel::kInfo, "queue", "job {} put back to waiting by retry", id);
  return job;
}

Result<std::vector<ClaimedJob>> JobQueue::claim(const ClaimRequest& request) {
  if (request.worker_id.empty()) return invalid_argument("claim needs a worker_id; see make_worker_id()");
  if (request.lease_duration.count() <= 0) {
    return invalid_argument(fmt::format("lease_duration is {} ms; expected more than 0", request.lease_duration.count()));
  }
  if (request.max_jobs <= 0) return std::vector<ClaimedJob>();
  return impl_->store->claim_jobs(request);
}

Result<std::optional<ClaimedJob>> JobQueue::claim_one(std::string_view worker_id,
                                                      std::chrono::milliseconds lease_duration) {
  ClaimRequest request;
  request.worker_id = std::string(worker_id);
  request.lease_duration = lease_duration;
  request.max_jobs = 1;
  ACT_ASSIGN_OR_RETURN(auto claimed, claim(request));
  if (claimed.empty()) return std::optional<ClaimedJob>();
  return std::optional<ClaimedJob>(std::move(claimed.front()));
}

Result<HeartbeatResult> JobQueue::heartbeat(const Lease& lease, std::chrono::milliseconds lease_duration) {
  ACT_ASSIGN_OR_RETURN(auto results, heartbeat_many(std::span<const Lease>(&lease, 1), lease_duration));
  return std::move(results.front());
}

Result<std::vector<HeartbeatResult>> JobQueue::heartbeat_many(std::span<const Lease> leases,
                                                              std::chrono::milliseconds lease_duration) {
  if (lease_duration.count() <= 0) {
    return invalid_argument(fmt::format("lease_duration is {} ms; expected more than 0", lease_duration.count()));
  }
  if (leases.empty()) return std::vector<HeartbeatResult>();
  return impl_->store->heartbeat(leases, lease_duration);
}

std::optional<std::chrono::milliseconds> JobQueue::next_retry_delay(const std::optional<RetryPolicy>& job_policy,
                                                                    ErrorClass error_class, int retry) {
  const RetryPolicy& policy = job_policy ? *job_policy : impl_->options.retry_policy;
  return backoff_delay(policy, error_class, retry, impl_->random_unit());
}

Result<std::vector<Status>> JobQueue::finish(std::span<const JobFinish> outcomes) {
  std::vector<JobTransition> transitions;
  transitions.reserve(outcomes.size());
  for (const JobFinish& outcome : outcomes) {
    JobTransition transition;
    transition.lease = outcome.lease;
    switch (outcome.kind) {
      case FinishKind::kComplete:
        transition.target = JobState::kCompleted;
        break;
      case FinishKind::kCancel:
        transition.target = JobState::kCancelled;
        transition.reason = "cancelled";
        break;
      case FinishKind::kRelease:
        transition.target = JobState::kWaiting;
        transition.delay = std::max(std::chrono::milliseconds(0), outcome.delay);
        transition.refund_attempt = true;
        break;
      case FinishKind::kFail: {
        const JobFailure& failure = outcome.failure;
        transition.error_class = failure.error_class;
        transition.error = failure.message.empty() ? std::string("failed without a message") : failure.message;
        const int attempt = outcome.lease.attempt;
        const auto delay = next_retry_delay(outcome.retry_policy, failure.error_class, attempt);
        if (!delay) {
          transition.target = JobState::kFailed;
          transition.reason = fmt::format("permanent error on attempt {}", attempt);
        } else if (attempt >= outcome.lease.max_attempts) {
          transition.target = JobState::kDead;
          transition.reason = fmt::format("attempt {} of {} failed ({})", attempt, outcome.lease.max_attempts,
                                          error_class_name(failure.error_class));
        } else {
          transition.target = JobState::kDelayed;
          transition.delay = *delay;
          if (failure.retry_after && *failure.retry_after > transition.delay) transition.delay = *failure.retry_after;
        }
        break;
      }
    }
    transitions.push_back(std::move(transition));
  }

  ACT_ASSIGN_OR_RETURN(auto results, impl_->store->transition_jobs(transitions));

  const Logger& logger = impl_->options.logger;
  for (std::size_t i = 0; i < results.size() && i < transitions.size(); ++i) {
    const JobTransition& t = transitions[i];
    if (!results[i].is_ok()) {
      logger.log(LogLevel::kWarn, "queue", "{}", results[i].message());
    } else if (t.target == JobState::kDead) {
      logger.log(LogLevel::kWarn, "queue", "job {} moved to the dead-letter queue: {}: {}", t.lease.job_id, t.reason,
                 t.error);
    } else if (t.target == JobState::kFailed) {
      logger.log(LogLevel::kWarn, "queue", "job {} failed: {}: {}", t.lease.job_id, t.reason, t.error);
    } else if (t.target == JobState::kDelayed && t.error_class) {
      logger.log(LogLevel::kInfo, "queue", "job {} attempt {} failed ({}); retry in {} ms: {}", t.lease.job_id,
                 t.lease.attempt, error_class_name(*t.error_class), t.delay.count(), t.error);
    }
  }
  return results;
}

Status JobQueue::complete(const Lease& lease) {
  JobFinish outcome{lease, FinishKind::kComplete, {}, std::nullopt, {}};
  ACT_ASSIGN_OR_RETURN(auto results, finish(std::span<const JobFinish>(&outcome, 1)));
  return results.front();
}

Result<FailOutcome> JobQueue::fail(const ClaimedJob& claimed, const JobFailure& failure) {
  JobFinish outcome{claimed.lease, FinishKind::kFail, failure, claimed.job.retry_policy, {}};
  // The decision is made in finish(); read it back from the stored job to report it.
  ACT_ASSIGN_OR_RETURN(auto results, finish(std::span<const JobFinish>(&outcome, 1)));
  ACT_RETURN_IF_ERROR(results.front());
  ACT_ASSIGN_OR_RETURN(Job job, get(claimed.lease.job_id));
  FailOutcome result;
  result.state = job.state;
  if (job.state == JobState::kDelayed || job.state == JobState::kWaiting) {
    result.retry_delay = std::max(std::chrono::milliseconds(0), job.due_at - job.updated_at);
  }
  return result;
}

Status JobQueue::release(const Lease& lease, std::chrono::milliseconds delay) {
  JobFinish outcome{lease, FinishKind::kRelease, {}, std::nullopt, delay};
  ACT_ASSIGN_OR_RETURN(auto results, finish(std::span<const JobFinish>(&outcome, 1)));
  return results.front();
}

Status JobQueue::finish_cancelled(const Lease& lease) {
  JobFinish outcome{lease, FinishKind::kCancel, {}, std::nullopt, {}};
  ACT_ASSIGN_OR_RETURN(auto results, finish(std::span<const JobFinish>(&outcome, 1)));
  return results.front();
}

Status JobQueue::set_progress(const Lease& lease, std::string_view progress_json) {
  if (std::string error = internal::json_syntax_error(progress_json); !error.empty()) {
    return invalid_argument(fmt::format("progress of job {} is not valid JSON: {}", lease.job_id, error));
  }
  return impl_->store->set_progress(lease, progress_json);
}

Result<QueueMetrics> JobQueue::metrics() { return impl_->store->metrics(); }

Result<MaintenanceReport> JobQueue::run_maintenance() {
  MaintenanceRequest request;
  request.max_stalls = impl_->options.max_stalls;
  return impl_->store->run_maintenance(request);
}

Result<PruneReport> JobQueue::prune(std::optional<RetentionPolicy> retention) {
  return impl_->store->prune(retention ? *retention : impl_->options.retention);
}

}  // namespace activation
