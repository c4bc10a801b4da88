// The C ABI of job handles and the worker pool.
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "c_api_internal.hpp"
#include "json_forms.hpp"

namespace activation::capi {
namespace {

// How often act_job_wait() reads the job from the store. The job's end is written by the worker
// after its last event, so the store is the only reliable signal, whichever process ran the job.
constexpr auto kWaitPollInterval = std::chrono::milliseconds(50);

// Runs `body` with the open engine of a job handle, or reports why there is none.
template <typename Body>
int with_job(const act_job_t* handle, const char* function, Body&& body) {
  auto job = job_state(handle, function);
  if (!job) return act_last_error_code();
  EngineAccess access(job->engine);
  if (!access.open()) return engine_closed(function);
  return body(access, job->id);
}

Result<DistributionJob> read_job(const act_job_t* handle, const char* function, bool* engine_open) {
  auto job = job_state(handle, function);
  if (!job) return Status(static_cast<StatusCode>(-act_last_error_code()), act_last_error_message());
  EngineAccess access(job->engine);
  *engine_open = access.open();
  if (!*engine_open)
    return failed_precondition(std::string(function) + ": the engine of this handle was destroyed");
  return access.engine().job(job->id);
}

}  // namespace
}  // namespace activation::capi

using namespace activation;
using namespace activation::capi;

extern "C" {

int act_job_open(act_job_t** out, act_engine_t* engine, int64_t job_id) {
  constexpr const char* kFunction = "act_job_open";
  return guarded(kFunction, [&]() -> int {
    if (out == nullptr) return invalid(kFunction, "out is NULL");
    *out = nullptr;
    auto state = engine_state(engine, kFunction);
    if (!state) return act_last_error_code();
    if (job_id <= 0) return invalid(kFunction, "job_id must be positive, got " + std::to_string(job_id));
    EngineAccess access(state);
    if (!access.open()) return engine_closed(kFunction);
    auto job = access.engine().job(job_id);
    if (!job.is_ok()) return fail(job.status());

    auto handle = std::make_unique<act_job_t>();
    handle->state = std::make_shared<JobHandleState>();
    handle->state->engine = state;
    handle->state->id = job_id;
    HandleRegistry::instance().add(handle.get(), HandleKind::kJob);
    *out = handle.release();
    return ACT_OK;
  });
}

void act_job_destroy(act_job_t* job) {
  if (job == nullptr) return;
  if (!HandleRegistry::instance().remove(job, HandleKind::kJob)) {
    fail(ACT_EINVAL,
         "act_job_destroy: the job handle is not open: it was destroyed already, or is no job handle");
    return;
  }
  delete job;
}

int act_job_id(int64_t* out_id, const act_job_t* job) {
  constexpr const char* kFunction = "act_job_id";
  return guarded(kFunction, [&]() -> int {
    if (out_id == nullptr) return invalid(kFunction, "out_id is NULL");
    *out_id = 0;
    auto state = job_state(job, kFunction);
    if (!state) return act_last_error_code();
    *out_id = state->id;
    return ACT_OK;
  });
}

int act_job_status(int* out_status, act_job_t* job) {
  constexpr const char* kFunction = "act_job_status";
  return guarded(kFunction, [&]() -> int {
    if (out_status == nullptr) return invalid(kFunction, "out_status is NULL");
    return with_job(job, kFunction, [&](EngineAccess& access, JobId id) -> int {
      auto found = access.engine().job(id);
      if (!found.is_ok()) return fail(found.status());
      *out_status = static_cast<int>(found->status);
      return ACT_OK;
    });
  });
}

int act_job_json(char** out_json, act_job_t* job) {
  constexpr const char* kFunction = "act_job_json";
  return guarded(kFunction, [&]() -> int {
    if (out_json == nullptr) return invalid(kFunction, "out_json is NULL");
    *out_json = nullptr;
    return with_job(job, kFunction, [&](EngineAccess& access, JobId id) -> int {
      auto found = access.engine().job(id);
      if (!found.is_ok()) return fail(found.status());
      set_output(out_json, job_to_json(*found));
      return ACT_OK;
    });
  });
}

int act_job_wait(int* out_status, act_job_t* job, int64_t timeout_ms, act_progress_fn on_progress,
                 void* user_data) {
  constexpr const char* kFunction = "act_job_wait";
  return guarded(kFunction, [&]() -> int {
    if (inside_callback()) return refuse_inside_callback(kFunction);
    auto state = job_state(job, kFunction);
    if (!state) return act_last_error_code();

    std::optional<Subscription> subscription;
    if (on_progress != nullptr) {
      EngineAccess access(state->engine);
      if (!access.open()) return engine_closed(kFunction);
      subscription = subscribe_progress(access.engine(), state->id, on_progress, user_data);
    }
    // Ends the progress subscription on every way out, also when the engine closed meanwhile.
    auto finish = [&](int rc) {
      if (subscription) {
        EngineAccess access(state->engine);
        if (access.open()) {
          end_subscription(access.engine(), *subscription);
        } else {
          subscription->gate->close();
        }
      }
      return rc;
    };

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      bool engine_open = false;
      auto found = read_job(job, kFunction, &engine_open);
      if (!found.is_ok()) return finish(fail(found.status()));
      if (out_status != nullptr) *out_status = static_cast<int>(found->status);
      if (is_terminal(found->queue_state)) return finish(ACT_OK);
      if (timeout_ms >= 0 && std::chrono::steady_clock::now() >= deadline) {
        return finish(fail(ACT_ETIMEDOUT, std::string(kFunction) + ": job " + std::to_string(state->id) +
                                              " did not finish within " + std::to_string(timeout_ms) +
                                              " ms; its status is " +
                                              std::string(distribution_status_name(found->status))));
      }
      std::this_thread::sleep_for(kWaitPollInterval);
    }
  });
}

int act_job_cancel(int* out_result, act_job_t* job) {
  constexpr const char* kFunction = "act_job_cancel";
  return guarded(kFunction, [&]() -> int {
    return with_job(job, kFunction, [&](EngineAccess& access, JobId id) -> int {
      auto outcome = access.engine().cancel(id);
      if (!outcome.is_ok()) return fail(outcome.status());
      if (out_result != nullptr) {
        *out_result = *outcome == CancelOutcome::kCancelled ? ACT_CANCEL_DONE : ACT_CANCEL_REQUESTED;
      }
      return ACT_OK;
    });
  });
}

int act_job_retry(act_job_t* job) {
  constexpr const char* kFunction = "act_job_retry";
  return guarded(kFunction, [&]() -> int {
    return with_job(job, kFunction, [&](EngineAccess& access, JobId id) -> int {
      // The C++ retry of a job that completed with errors queues a new job, which this function
      // cannot return: act_job_requeue() does.
      auto found = access.engine().job(id);
      if (!found.is_ok()) return fail(found.status());
      if (found->status == DistributionStatus::kCompletedWithErrors) {
        std::string failed;
        for (const auto& destination : found->progress.destinations) {
          if (destination.state != RunState::kFailed) continue;
          failed += failed.empty() ? "" : ", ";
          failed += destination.destination;
        }
        return fail(ACT_EPRECONDITION,
                    fmt::format("{}: job {} completed with errors and is over; act_job_requeue() queues a "
                                "new job of its failed destinations ({})",
                                kFunction, id, failed));
      }
      auto retried = access.engine().retry(id);
      return retried.is_ok() ? ACT_OK : fail(retried.status());
    });
  });
}

int act_job_requeue(act_job_t** out_job, act_job_t* job) {
  constexpr const char* kFunction = "act_job_requeue";
  return guarded(kFunction, [&]() -> int {
    if (out_job == nullptr) return invalid(kFunction, "out_job is NULL");
    *out_job = nullptr;
    auto state = job_state(job, kFunction);
    if (!state) return act_last_error_code();
    EngineAccess access(state->engine);
    if (!access.open()) return engine_closed(kFunction);
    auto queued = access.engine().retry(state->id);
    if (!queued.is_ok()) return fail(queued.status());

    auto handle = std::make_unique<act_job_t>();
    handle->state = std::make_shared<JobHandleState>();
    handle->state->engine = state->engine;
    handle->state->id = queued->id;
    HandleRegistry::instance().add(handle.get(), HandleKind::kJob);
    *out_job = handle.release();
    return ACT_OK;
  });
}

int act_job_export_outcomes(act_job_t* job, const char* csv_path) {
  constexpr const char* kFunction = "act_job_export_outcomes";
  return guarded(kFunction, [&]() -> int {
    if (csv_path == nullptr || *csv_path == '\0') return invalid(kFunction, "csv_path is NULL or empty");
    return with_job(job, kFunction, [&](EngineAccess& access, JobId id) -> int {
      std::ofstream out(csv_path, std::ios::binary | std::ios::trunc);
      if (!out) return fail(ACT_EIO, std::string(kFunction) + ": cannot open " + csv_path + " for writing");
      Status written = access.engine().export_row_outcomes_csv(id, out);
      if (!written.is_ok()) {
        return fail(-static_cast<int>(written.code()), std::string(csv_path) + ": " + written.message());
      }
      return ACT_OK;
    });
  });
}

int act_worker_pool_open(act_worker_pool_t** out, act_engine_t* engine, int threads) {
  constexpr const char* kFunction = "act_worker_pool_open";
  return guarded(kFunction, [&]() -> int {
    if (out == nullptr) return invalid(kFunction, "out is NULL");
    *out = nullptr;
    auto state = engine_state(engine, kFunction);
    if (!state) return act_last_error_code();
    if (threads < 0 || threads > 256) {
      return invalid(kFunction,
                     "threads must be from 0 (the engine's setting) to 256, got " + std::to_string(threads));
    }
    EngineAccess access(state);
    if (!access.open()) return engine_closed(kFunction);
    Status started = access.engine().start_workers(threads == 0 ? std::nullopt : std::optional<int>(threads));
    if (!started.is_ok()) return fail(started);

    auto handle = std::make_unique<act_worker_pool_t>();
    handle->state = std::make_shared<PoolState>();
    handle->state->engine = state;
    handle->state->running = true;
    HandleRegistry::instance().add(handle.get(), HandleKind::kWorkerPool);
    *out = handle.release();
    return ACT_OK;
  });
}

int act_worker_pool_stop(act_worker_pool_t* pool, int64_t deadline_ms) {
  constexpr const char* kFunction = "act_worker_pool_stop";
  return guarded(kFunction, [&]() -> int {
    if (inside_callback()) return refuse_inside_callback(kFunction);
    auto state = pool_state(pool, kFunction);
    if (!state) return act_last_error_code();
    if (deadline_ms < 0)
      return invalid(kFunction, "deadline_ms must not be negative, got " + std::to_string(deadline_ms));
    std::lock_guard lock(state->mutex);
    if (!state->running) return ACT_OK;
    EngineAccess access(state->engine);
    state->running = false;
    // A destroyed engine stopped its workers already.
    if (!access.open()) return ACT_OK;
    Status stopped = access.engine().stop_workers(std::chrono::milliseconds(deadline_ms));
    return stopped.is_ok() ? ACT_OK : fail(stopped);
  });
}

void act_worker_pool_destroy(act_worker_pool_t* pool) {
  if (pool == nullptr) return;
  if (inside_callback()) {
    refuse_inside_callback("act_worker_pool_destroy");
    return;
  }
  if (!HandleRegistry::instance().remove(pool, HandleKind::kWorkerPool)) {
    fail(ACT_EINVAL,
         "act_worker_pool_destroy: the worker pool handle is not open: it was destroyed already, or "
         "is no worker pool handle");
    return;
  }
  std::shared_ptr<PoolState> state = std::move(pool->state);
  delete pool;
  guarded("act_worker_pool_destroy", [&]() -> int {
    std::lock_guard lock(state->mutex);
    if (!state->running) return ACT_OK;
    state->running = false;
    EngineAccess access(state->engine);
    if (!access.open()) return ACT_OK;
    Status stopped = access.engine().stop_workers(access.state().lease_duration);
    return stopped.is_ok() ? ACT_OK : fail(stopped);
  });
}

}  // extern "C"
