#include "activation/engine.hpp"

#include <algorithm>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "destinations/settings_check.hpp"
#include "engine/engine_impl.hpp"
#include "engine/job_payload.hpp"
#include "engine/outcome_log.hpp"
#include "engine/pipeline.hpp"
#include "platforms/platform_services.hpp"

namespace activation {
namespace {

using Json = nlohmann::json;

// How often a running job stores its progress on the job record, for `activate status` and other
// processes.
constexpr auto kStoredProgressInterval = std::chrono::milliseconds(500);

Timestamp to_timestamp(std::chrono::system_clock::time_point time) {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(time);
}

Event make_event(std::string type, JobId job, std::string destination, Json data) {
  Event event;
  event.type = std::move(type);
  event.job_id = job;
  event.destination = std::move(destination);
  event.time = std::chrono::system_clock::now();
  event.data = data.dump();
  return event;
}

}  // namespace

std::string_view distribution_status_name(DistributionStatus status) noexcept {
  switch (status) {
    case DistributionStatus::kQueued: return "queued";
    case DistributionStatus::kScheduled: return "scheduled";
    case DistributionStatus::kRunning: return "running";
    case DistributionStatus::kCompleted: return "completed";
    case DistributionStatus::kCompletedWithErrors: return "completed_with_errors";
    case DistributionStatus::kFailed: return "failed";
    case DistributionStatus::kCancelled: return "cancelled";
  }
  return "unknown";
}

DistributionEngine::DistributionEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  impl_->owner = this;
}

DistributionEngine::~DistributionEngine() {
  (void)stop_workers(impl_->config.engine.lease_duration);
  platforms::stop_observing_circuits(impl_->circuit_observer);
  if (impl_->shares_rate_limits) platforms::stop_sharing_rate_limits(impl_->store.get());
}

Result<std::unique_ptr<DistributionEngine>> DistributionEngine::open(Config config, EngineOptions options) {
  for (const auto& audience : config.audiences) ACT_RETURN_IF_ERROR(validate_audience(audience));
  for (const auto& destination : config.destinations) ACT_RETURN_IF_ERROR(validate_destination(destination));
  if (config.store_path.empty()) return invalid_argument("the configuration names no store file");
  if (options.workers) config.engine.workers = *options.workers;
  if (options.lease_duration) config.engine.lease_duration = *options.lease_duration;
  if (options.heartbeat_interval) config.engine.heartbeat_interval = *options.heartbeat_interval;

  auto impl = std::make_unique<Impl>();
  impl->logger = options.logger;

  const bool postgresql = is_postgresql_url(config.store_path);
  if (!postgresql) {
    std::error_code ignored;
    auto parent = std::filesystem::path(config.store_path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  }

  ACT_ASSIGN_OR_RETURN(impl->store, open_store(config.store_path, options.logger));
  // Processes that share a PostgreSQL store may run on many machines, so only the store can keep
  // them together within a platform account's rate.
  if (postgresql && config.engine.shared_rate_limits) {
    platforms::share_rate_limits_through(impl->store);
    impl->shares_rate_limits = true;
  }
  JobQueueOptions queue_options;
  queue_options.max_attempts = config.engine.max_attempts;
  queue_options.logger = options.logger;
  ACT_ASSIGN_OR_RETURN(impl->queue, JobQueue::create(impl->store, queue_options));
  ACT_ASSIGN_OR_RETURN(impl->checkpointer, Checkpointer::create(impl->store));
  ACT_ASSIGN_OR_RETURN(impl->ledger, Ledger::create(impl->store));

  // The outcome log is a local SQLite file; with a PostgreSQL store each process keeps its own in
  // its working directory.
  impl->outcome_path =
      postgresql ? std::string("activation.outcomes.db") : engine::outcome_log_path(config.store_path);
  ACT_ASSIGN_OR_RETURN(auto outcome_log, engine::OutcomeLog::open(impl->outcome_path));
  (void)outcome_log;

  impl->events = options.events ? options.events : std::make_shared<EventBus>();
  impl->progress = std::make_unique<ProgressTracker>(impl->events);
  impl->circuit_observer = platforms::observe_circuits([events = impl->events](const CircuitTransition& change) {
    events->publish(make_event("destination.circuit", 0, std::string(platforms::circuit_destination(change.destination)),
                               {{"from", std::string(circuit_state_name(change.from))},
                                {"to", std::string(circuit_state_name(change.to))},
                                {"reason", change.reason}}));
  });
  impl->config = std::move(config);
  impl->options = std::move(options);
  return std::unique_ptr<DistributionEngine>(new DistributionEngine(std::move(impl)));
}

Status DistributionEngine::register_audience(AudienceConfig audience) {
  ACT_RETURN_IF_ERROR(validate_audience(audience));
  std::lock_guard lock(impl_->config_mutex);
  auto& audiences = impl_->config.audiences;
  auto found = std::find_if(audiences.begin(), audiences.end(),
                            [&](const auto& a) { return a.name == audience.name; });
  if (found != audiences.end()) {
    *found = std::move(audience);
  } else {
    audiences.push_back(std::move(audience));
  }
  return Status::ok();
}

Status DistributionEngine::register_destination(DestinationConfig destination) {
  ACT_RETURN_IF_ERROR(validate_destination(destination));
  std::lock_guard lock(impl_->config_mutex);
  auto& destinations = impl_->config.destinations;
  auto found = std::find_if(destinations.begin(), destinations.end(),
                            [&](const auto& d) { return d.name == destination.name; });
  if (found != destinations.end()) {
    *found = std::move(destination);
  } else {
    destinations.push_back(std::move(destination));
  }
  return Status::ok();
}

Config DistributionEngine::config() const {
  std::lock_guard lock(impl_->config_mutex);
  return impl_->config;
}

Status DistributionEngine::validate(std::string_view audience_name, std::span<const std::string> destinations,
                                    const DistributeOptions& options) {
  Config config = this->config();
  const AudienceConfig* audience = config.find_audience(audience_name);
  if (!audience) {
    std::string known;
    for (const auto& a : config.audiences) known += (known.empty() ? "" : ", ") + a.name;
    return not_found("audience '" + std::string(audience_name) +
                     "' is not configured (audiences: " + (known.empty() ? "none" : known) + ")");
  }
  if (destinations.empty()) return invalid_argument("name at least one destination");
  std::set<std::string> unique;
  for (const auto& name : destinations) {
    if (!unique.insert(name).second) return invalid_argument("destination '" + name + "' is named twice");
    if (!config.find_destination(name)) {
      std::string known;
      for (const auto& d : config.destinations) known += (known.empty() ? "" : ", ") + d.name;
      return not_found("destination '" + name +
                       "' is not configured (destinations: " + (known.empty() ? "none" : known) + ")");
    }
  }
  for (const auto& name : destinations) {
    ACT_RETURN_IF_ERROR(check_destination_mode(*config.find_destination(name), options.mode));
  }
  // The configuration's engine.parallelism takes 1 to 64, and 0 here means that setting.
  if (options.parallelism < 0 || options.parallelism > 64) {
    return invalid_argument(fmt::format("parallelism is {}; expected 0 (the engine's setting) to 64",
                                        options.parallelism));
  }
  if (options.batch_size > 1'000'000) return invalid_argument("batch size must be at most 1000000");

  // Opening the source checks the file, its header and every mapped column. Counting a query's rows
  // is left to the run.
  SourceSpec spec = audience->source;
  spec.count_rows = false;
  auto source = open_source(spec);
  if (!source.is_ok()) {
    return Status(source.status().code(), "audience '" + audience->name + "': " + source.status().message());
  }
  for (const auto& name : destinations) {
    auto adapter = engine::create_adapter(*config.find_destination(name), impl_->logger);
    if (!adapter.is_ok()) return adapter.status();
  }
  return Status::ok();
}

Result<DistributionJob> DistributionEngine::distribute(std::string_view audience_name,
                                                       std::span<const std::string> destinations,
                                                       const DistributeOptions& options) {
  ACT_RETURN_IF_ERROR(validate(audience_name, destinations, options));
  Config config = this->config();

  engine::JobPayload payload;
  payload.audience = *config.find_audience(audience_name);
  for (const auto& name : destinations) payload.destinations.push_back(*config.find_destination(name));
  payload.mode = options.mode;
  payload.dry_run = options.dry_run;
  payload.batch_size = options.batch_size;
  payload.parallelism = options.parallelism;
  payload.metadata = options.metadata;

  JobSpec spec;
  spec.type = std::string(kDistributionJobType);
  spec.payload = engine::encode_payload(payload);
  spec.priority = options.priority;
  if (options.scheduled_at) spec.run_at = to_timestamp(*options.scheduled_at);
  if (options.expires_at) spec.expires_at = to_timestamp(*options.expires_at);
  spec.max_attempts = config.engine.max_attempts;
  spec.dedup_key = options.dedup_key;
  spec.audience = std::string(audience_name);
  ACT_ASSIGN_OR_RETURN(auto enqueued, impl_->queue->enqueue(spec));
  impl_->logger.log(LogLevel::kInfo, "engine", "job {} queued: audience {} to {} destination(s), mode {}{}",
                    enqueued.id, audience_name, destinations.size(), sync_mode_name(options.mode),
                    options.dry_run ? ", dry run" : "");
  return job(enqueued.id);
}

Result<DistributionJob> DistributionEngine::Impl::to_distribution_job(const Job& job) {
  if (job.type != kDistributionJobType) {
    return not_found("job " + std::to_string(job.id) + " is not a distribution (type " + job.type + ")");
  }
  DistributionJob out;
  out.id = job.id;
  out.priority = job.priority;
  out.queue_state = job.state;
  out.attempts = job.attempts;
  out.max_attempts = job.max_attempts;
  out.last_error = job.last_error;
  out.reason = job.reason;
  out.created_at = job.created_at;
  out.finished_at = job.finished_at;

  auto payload = engine::decode_payload(job.payload);
  if (payload.is_ok()) {
    out.audience = payload->audience.name;
    for (const auto& destination : payload->destinations) out.destinations.push_back(destination.name);
    out.mode = payload->mode;
    out.dry_run = payload->dry_run;
    out.metadata = payload->metadata;
  } else {
    out.audience = job.audience;
  }

  std::string status;
  out.progress = engine::decode_job_progress(job.id, job.progress, &status);
  switch (job.state) {
    case JobState::kWaiting: out.status = DistributionStatus::kQueued; break;
    case JobState::kDelayed: out.status = DistributionStatus::kScheduled; break;
    case JobState::kActive: out.status = DistributionStatus::kRunning; break;
    case JobState::kCompleted:
      out.status = status == "completed_with_errors" ? DistributionStatus::kCompletedWithErrors
                                                     : DistributionStatus::kCompleted;
      break;
    case JobState::kFailed:
    case JobState::kDead: out.status = DistributionStatus::kFailed; break;
    case JobState::kCancelled: out.status = DistributionStatus::kCancelled; break;
  }
  return out;
}

Result<DistributionJob> DistributionEngine::job(JobId id) {
  ACT_ASSIGN_OR_RETURN(auto job, impl_->queue->get(id));
  return impl_->to_distribution_job(job);
}

Result<std::vector<DistributionJob>> DistributionEngine::jobs(std::string_view audience, int limit) {
  JobQuery query;
  if (!audience.empty()) query.audience = std::string(audience);
  query.types = {std::string(kDistributionJobType)};
  query.limit = limit;
  ACT_ASSIGN_OR_RETURN(auto found, impl_->queue->list(query));
  std::vector<DistributionJob> out;
  for (const auto& job : found) {
    auto converted = impl_->to_distribution_job(job);
    if (converted.is_ok()) out.push_back(std::move(*converted));
  }
  return out;
}

Result<std::vector<DistributionJob>> DistributionEngine::history(std::string_view audience, int limit) {
  if (audience.empty()) return invalid_argument("history needs an audience name");
  return jobs(audience, limit);
}

Result<std::vector<DistributionJob>> DistributionEngine::dead_letters(int limit) {
  ACT_ASSIGN_OR_RETURN(auto found, impl_->queue->dead_letters(limit));
  std::vector<DistributionJob> out;
  for (const auto& job : found) {
    auto converted = impl_->to_distribution_job(job);
    if (converted.is_ok()) out.push_back(std::move(*converted));
  }
  return out;
}

Result<CancelOutcome> DistributionEngine::cancel(JobId id) {
  ACT_RETURN_IF_ERROR(job(id).status());
  return impl_->queue->cancel(id);
}

Result<DistributionJob> DistributionEngine::retry(JobId id) {
  ACT_ASSIGN_OR_RETURN(auto stored, impl_->queue->get(id));
  ACT_ASSIGN_OR_RETURN(auto current, impl_->to_distribution_job(stored));
  if (current.status != DistributionStatus::kCompletedWithErrors) {
    ACT_ASSIGN_OR_RETURN(auto retried, impl_->queue->retry(id));
    return impl_->to_distribution_job(retried);
  }

  // The job is over and its finished destinations cleared their checkpoints, so the ones that
  // failed go to a new job with the same audience and options, under the current configuration.
  std::vector<std::string> failed;
  for (const auto& destination : current.progress.destinations) {
    if (destination.state == RunState::kFailed) failed.push_back(destination.destination);
  }
  if (failed.empty()) {
    return failed_precondition(fmt::format("job {} is completed_with_errors but records no failed destination", id));
  }
  ACT_ASSIGN_OR_RETURN(auto payload, engine::decode_payload(stored.payload));
  DistributeOptions options;
  options.priority = current.priority;
  options.mode = payload.mode;
  options.dry_run = payload.dry_run;
  options.batch_size = payload.batch_size;
  options.parallelism = payload.parallelism;
  options.metadata = payload.metadata;
  options.metadata["retry_of"] = std::to_string(id);
  return distribute(current.audience, failed, options);
}

Status DistributionEngine::Impl::handle_job(JobContext& context) {
  const Job& job = context.job();
  auto payload = engine::decode_payload(job.payload);
  if (!payload.is_ok()) {
    context.set_error_class(ErrorClass::kPermanent);
    return payload.status();
  }
  Config snapshot;
  {
    std::lock_guard lock(config_mutex);
    snapshot = config;
  }
  events->publish(make_event("distribution.started", job.id, "",
                             {{"audience", payload->audience.name},
                              {"attempt", context.lease().attempt},
                              {"mode", std::string(sync_mode_name(payload->mode))},
                              {"dry_run", payload->dry_run}}));
  logger.log(LogLevel::kInfo, "engine", "job {} started (attempt {} of {}): audience {}, {} destination(s)",
             job.id, context.lease().attempt, context.lease().max_attempts, payload->audience.name,
             payload->destinations.size());

  const std::size_t count = payload->destinations.size();
  std::vector<engine::PipelineRequest> requests(count);
  for (std::size_t i = 0; i < count; ++i) {
    auto& request = requests[i];
    request.job_id = job.id;
    request.audience = payload->audience;
    request.destination = payload->destinations[i];
    request.mode = payload->mode;
    request.dry_run = payload->dry_run;
    std::size_t batch = payload->batch_size;
    if (batch == 0) batch = request.destination.batch_size;
    if (batch == 0) batch = snapshot.engine.batch_size;
    request.batch_size = batch;
    request.batch_attempts = snapshot.engine.batch_attempts;
    request.batch_retry_base = snapshot.engine.batch_retry_base;
    request.outcome_log_path = outcome_path;
  }

  engine::PipelineServices services;
  services.checkpointer = checkpointer;
  services.ledger = ledger;
  services.progress = progress.get();
  services.lease = &context.lease();
  services.cancel_requested = [&context] { return context.cancel_requested(); };
  services.logger = logger;

  // Destinations run on their own threads, at most `parallelism` at once. Meanwhile this thread
  // stores the progress on the job, because only the handler's thread may do that.
  std::vector<engine::PipelineResult> results(count);
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> finished{0};
  std::mutex done_mutex;
  std::condition_variable done;
  int parallelism = payload->parallelism > 0 ? payload->parallelism : snapshot.engine.parallelism;
  std::size_t threads = std::min<std::size_t>(count, static_cast<std::size_t>(std::max(1, parallelism)));
  std::vector<std::thread> workers;
  for (std::size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      while (true) {
        std::size_t index = next.fetch_add(1);
        if (index >= count) break;
        results[index] = engine::run_destination(requests[index], services);
        {
          std::lock_guard lock(done_mutex);
          finished.fetch_add(1);
        }
        done.notify_all();
      }
    });
  }

  auto store_progress = [&](const std::string& status) {
    JobProgress snapshot_progress;
    snapshot_progress.job_id = job.id;
    auto tracked = progress->job(job.id);
    for (const auto& request : requests) {
      DestinationProgress entry;
      entry.job_id = job.id;
      entry.destination = request.destination.name;
      entry.dry_run = request.dry_run;
      if (tracked) {
        for (const auto& candidate : tracked->destinations) {
          if (candidate.destination == entry.destination) entry = candidate;
        }
      }
      snapshot_progress.destinations.push_back(entry);
    }
    Json stored = Json::parse(snapshot_progress.to_json());
    if (!status.empty()) stored["status"] = status;
    Status saved = context.report_progress(stored.dump());
    if (!saved.is_ok() && saved.code() != StatusCode::kConflict) {
      logger.log(LogLevel::kWarn, "engine", "job {}: storing progress failed: {}", job.id, saved.to_string());
    }
  };

  {
    std::unique_lock lock(done_mutex);
    while (finished.load() < count) {
      done.wait_for(lock, kStoredProgressInterval);
      lock.unlock();
      store_progress("running");
      lock.lock();
    }
  }
  for (auto& worker : workers) worker.join();

  std::size_t done_count = 0;
  std::size_t cancelled_count = 0;
  bool retryable_failure = false;
  bool lease_lost = false;
  // The job fails with the code of its first failed destination, so that a rejected token reads
  // as unauthenticated and not as a transient failure. A job that is retried reports the first
  // failure that a retry can cure instead.
  Status first_failure;
  Status first_retryable_failure;
  for (std::size_t i = 0; i < count; ++i) {
    const auto& result = results[i];
    if (result.state == RunState::kDone) ++done_count;
    if (result.state == RunState::kCancelled) ++cancelled_count;
    if (result.state == RunState::kFailed) {
      retryable_failure = retryable_failure || result.retryable;
      lease_lost = lease_lost || result.lease_lost;
      if (first_failure.is_ok()) first_failure = result.error;
      if (result.retryable && first_retryable_failure.is_ok()) first_retryable_failure = result.error;
      logger.log(LogLevel::kError, "engine", "job {} destination {} failed: {}", job.id,
                 requests[i].destination.name, result.error.to_string());
    }
  }

  if (lease_lost || context.lease_lost()) {
    return Status(StatusCode::kConflict,
                  "job " + std::to_string(job.id) + " lost its lease; another worker resumes it");
  }
  if (context.cancel_requested() || cancelled_count > 0) {
    store_progress("cancelled");
    events->publish(make_event("distribution.cancelled", job.id, "", {{"destinations_done", done_count}}));
    progress->forget(job.id);
    return Status(StatusCode::kCancelled, "job " + std::to_string(job.id) + " was cancelled");
  }

  const bool last_attempt = context.lease().attempt >= context.lease().max_attempts;
  if (done_count < count && retryable_failure && !last_attempt) {
    // Another attempt may succeed; finished destinations skip by their checkpoints then.
    store_progress("retrying");
    progress->forget(job.id);
    context.set_error_class(ErrorClass::kTransient);
    // A retry before an open circuit admits its probe would fail at once and use up an attempt.
    std::chrono::nanoseconds circuit_wait{0};
    for (std::size_t i = 0; i < count; ++i) {
      if (results[i].state != RunState::kFailed) continue;
      circuit_wait = std::max(circuit_wait, platforms::destination_circuit_wait(requests[i].destination.name));
    }
    if (circuit_wait > std::chrono::nanoseconds::zero()) {
      context.set_retry_after(std::chrono::ceil<std::chrono::milliseconds>(circuit_wait));
    }
    return first_retryable_failure;
  }

  for (std::size_t i = 0; i < count; ++i) {
    if (results[i].state == RunState::kFailed) {
      events->publish(make_event("distribution.failed", job.id, requests[i].destination.name,
                                 {{"error", results[i].error.message()},
                                  {"code", std::string(status_code_name(results[i].error.code()))}}));
    }
  }
  if (done_count == 0) {
    store_progress("failed");
    events->publish(make_event("distribution.failed", job.id, "",
                               {{"error", first_failure.message()},
                                {"code", std::string(status_code_name(first_failure.code()))}}));
    progress->forget(job.id);
    context.set_error_class(retryable_failure ? ErrorClass::kTransient : ErrorClass::kPermanent);
    return first_failure;
  }

  std::string status = done_count == count ? "completed" : "completed_with_errors";
  store_progress(status);
  if (!payload->dry_run) {
    for (const auto& request : requests) (void)checkpointer->clear(job.id, request.destination.name);
  }
  events->publish(
      make_event("distribution.completed", job.id, "",
                 {{"status", status}, {"destinations_done", done_count}, {"destinations", count}}));
  logger.log(LogLevel::kInfo, "engine", "job {} {}", job.id, status);
  progress->forget(job.id);
  return Status::ok();
}

WorkerPoolOptions DistributionEngine::Impl::pool_options(std::optional<int> threads) const {
  WorkerPoolOptions pool;
  pool.threads = threads.value_or(config.engine.workers);
  pool.lease_duration = config.engine.lease_duration;
  pool.heartbeat_interval = config.engine.heartbeat_interval;
  pool.logger = logger;
  return pool;
}

Status DistributionEngine::start_workers(std::optional<int> threads) {
  std::lock_guard lock(impl_->pool_mutex);
  if (impl_->pool) return failed_precondition("the workers of this engine run already");
  ACT_ASSIGN_OR_RETURN(auto pool, WorkerPool::create(impl_->queue, impl_->pool_options(threads)));
  Impl* impl = impl_.get();
  ACT_RETURN_IF_ERROR(pool->register_handler(
      std::string(kDistributionJobType), [impl](JobContext& context) { return impl->handle_job(context); }));
  ACT_RETURN_IF_ERROR(pool->start());
  impl_->pool = std::move(pool);
  impl_->start_monitor();
  return Status::ok();
}

Status DistributionEngine::stop_workers(std::chrono::milliseconds deadline) {
  std::unique_ptr<WorkerPool> pool;
  {
    std::lock_guard lock(impl_->pool_mutex);
    pool = std::move(impl_->pool);
  }
  impl_->stop_monitor();
  if (!pool) return Status::ok();
  return pool->shutdown(deadline);
}

Result<WorkerPoolStats> DistributionEngine::run_until_idle(std::chrono::milliseconds timeout) {
  ACT_ASSIGN_OR_RETURN(auto pool, WorkerPool::create(impl_->queue, impl_->pool_options(std::nullopt)));
  Impl* impl = impl_.get();
  ACT_RETURN_IF_ERROR(pool->register_handler(
      std::string(kDistributionJobType), [impl](JobContext& context) { return impl->handle_job(context); }));
  impl_->start_monitor();
  auto stats = pool->run_until_idle(timeout);
  impl_->stop_monitor();
  return stats;
}

Status DistributionEngine::export_row_outcomes(
    JobId id, const std::function<Status(const RowOutcomeRecord&)>& visitor) {
  ACT_RETURN_IF_ERROR(job(id).status());
  ACT_ASSIGN_OR_RETURN(auto log, engine::OutcomeLog::open(impl_->outcome_path));
  return log->visit(id, visitor);
}

Status DistributionEngine::export_row_outcomes_csv(JobId id, std::ostream& out) {
  auto cell = [](std::string_view text) {
    if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
    std::string quoted = "\"";
    for (char c : text) {
      if (c == '"') quoted += '"';
      quoted += c;
    }
    return quoted + "\"";
  };
  // An unknown job fails before anything is written, so the output contains no stray header.
  ACT_RETURN_IF_ERROR(job(id).status());
  out << "destination,line,operation,outcome,reason_code,reason,member_key\n";
  ACT_RETURN_IF_ERROR(export_row_outcomes(id, [&](const RowOutcomeRecord& row) {
    out << cell(row.destination) << ',' << row.line << ',' << row.operation << ','
        << row_outcome_name(row.outcome) << ',' << cell(row.reason_code) << ',' << cell(row.reason) << ','
        << row.member_key << '\n';
    return out ? Status::ok() : io_error("writing the row outcomes failed");
  }));
  out.flush();
  return out ? Status::ok() : io_error("writing the row outcomes failed");
}

ProgressTracker& DistributionEngine::progress() noexcept {
  return *impl_->progress;
}
EventBus& DistributionEngine::events() noexcept {
  return *impl_->events;
}
const std::shared_ptr<JobQueue>& DistributionEngine::queue() const noexcept {
  return impl_->queue;
}

}  // namespace activation
