// The C ABI of engine options, engines, subscriptions and the progress view.
#include <cmath>

#include "activation/config.hpp"
#include "c_api_internal.hpp"
#include "json_forms.hpp"

// The view behind act_progress_t: one update, with the strings the getters lend out.
struct act_progress_t {
  const activation::DestinationProgress* progress = nullptr;
  std::string state;
  mutable std::string json;  // Built on the first act_progress_json() call.
};

namespace activation::capi {
namespace {

constexpr int kMaxListLimit = 10000;

int check_limit(const char* function, int limit) {
  if (limit < 1 || limit > kMaxListLimit) {
    return invalid(function, "limit must be from 1 to 10000, got " + std::to_string(limit));
  }
  return ACT_OK;
}

// Opens the engine for act_engine_open() and act_engine_open_file() once the configuration is read.
int open_engine(act_engine_t** out, Result<Config> config, const act_engine_options_t* options,
                const char* function) {
  std::shared_ptr<OptionsState> settings;
  if (options != nullptr) {
    settings = options_state(options, function);
    if (!settings) return act_last_error_code();
  }
  if (!config.is_ok()) return fail(config.status());

  auto state = std::make_shared<EngineState>();
  EngineOptions engine_options;
  if (settings) {
    engine_options.workers = settings->workers;
    if (settings->log_callback != nullptr) {
      auto gate = std::make_shared<CallbackGate>();
      act_log_fn callback = settings->log_callback;
      void* user_data = settings->log_user_data;
      engine_options.logger = Logger(
          [gate, callback, user_data](LogLevel level, std::string_view component, std::string_view message) {
            gate->run([&] {
              const std::string component_text(component);
              const std::string message_text(message);
              callback(static_cast<int>(level), component_text.c_str(), message_text.c_str(), user_data);
            });
          },
          static_cast<LogLevel>(settings->log_level));
      state->log_gate = gate;
    }
  }
  state->lease_duration = config->engine.lease_duration;

  auto engine = DistributionEngine::open(std::move(*config), std::move(engine_options));
  if (!engine.is_ok()) {
    if (state->log_gate) state->log_gate->close();
    return fail(engine.status());
  }
  state->engine = std::move(*engine);

  auto handle = std::make_unique<act_engine_t>();
  handle->state = std::move(state);
  HandleRegistry::instance().add(handle.get(), HandleKind::kEngine);
  *out = handle.release();
  return ACT_OK;
}

// Runs `body` with the open engine of `handle`, or reports why there is none.
template <typename Body>
int with_engine(const act_engine_t* handle, const char* function, Body&& body) {
  auto state = engine_state(handle, function);
  if (!state) return act_last_error_code();
  EngineAccess access(std::move(state));
  if (!access.open()) return fail(ACT_EINVAL, std::string(function) + ": the engine handle was destroyed");
  return body(access);
}

// Keeps `subscription` under a new id, unless the engine is being destroyed: the subscription then
// ends at once.
int keep_subscription(EngineAccess& access, Subscription subscription, uint64_t* out_subscription,
                      const char* function) {
  EngineState& state = access.state();
  {
    std::lock_guard lock(state.subscriptions_mutex);
    if (!state.closing) {
      std::uint64_t id = state.next_subscription++;
      state.subscriptions.emplace(id, std::move(subscription));
      if (out_subscription != nullptr) *out_subscription = id;
      return ACT_OK;
    }
  }
  end_subscription(access.engine(), subscription);
  return fail(ACT_EPRECONDITION, std::string(function) + ": the engine is being destroyed");
}

}  // namespace

Subscription subscribe_progress(DistributionEngine& engine, std::int64_t job_id, act_progress_fn callback,
                                void* user_data) {
  Subscription subscription;
  subscription.kind = Subscription::Kind::kProgress;
  subscription.gate = std::make_shared<CallbackGate>();
  auto gate = subscription.gate;
  subscription.inner_id = engine.progress().subscribe(
      [gate, callback, user_data](const DestinationProgress& progress) {
        gate->run([&] {
          act_progress_t view;
          view.progress = &progress;
          view.state = std::string(run_state_name(progress.state));
          callback(&view, user_data);
        });
      },
      job_id);
  return subscription;
}

void end_subscription(DistributionEngine& engine, Subscription& subscription) {
  if (subscription.kind == Subscription::Kind::kProgress) {
    engine.progress().unsubscribe(subscription.inner_id);
  } else {
    engine.events().unsubscribe(subscription.inner_id);
  }
  // The tracker and the bus may still hold a copy of the handler taken before the unsubscribe.
  subscription.gate->close();
}

}  // namespace activation::capi

using namespace activation;
using namespace activation::capi;

extern "C" {

int act_engine_options_open(act_engine_options_t** out) {
  return guarded("act_engine_options_open", [&]() -> int {
    if (out == nullptr) return invalid("act_engine_options_open", "out is NULL");
    *out = nullptr;
    auto handle = std::make_unique<act_engine_options_t>();
    handle->state = std::make_shared<OptionsState>();
    HandleRegistry::instance().add(handle.get(), HandleKind::kOptions);
    *out = handle.release();
    return ACT_OK;
  });
}

void act_engine_options_destroy(act_engine_options_t* options) {
  if (options == nullptr) return;
  if (!HandleRegistry::instance().remove(options, HandleKind::kOptions)) {
    fail(ACT_EINVAL,
         "act_engine_options_destroy: the engine options handle is not open: it was destroyed "
         "already, or is no engine options handle");
    return;
  }
  delete options;
}

int act_engine_options_set_base_dir(act_engine_options_t* options, const char* directory) {
  return guarded("act_engine_options_set_base_dir", [&]() -> int {
    auto state = options_state(options, "act_engine_options_set_base_dir");
    if (!state) return act_last_error_code();
    if (directory == nullptr) return invalid("act_engine_options_set_base_dir", "directory is NULL");
    state->base_dir = directory;
    return ACT_OK;
  });
}

int act_engine_options_set_workers(act_engine_options_t* options, int workers) {
  return guarded("act_engine_options_set_workers", [&]() -> int {
    auto state = options_state(options, "act_engine_options_set_workers");
    if (!state) return act_last_error_code();
    if (workers < 1 || workers > 256) {
      return invalid("act_engine_options_set_workers",
                     "workers must be from 1 to 256, got " + std::to_string(workers));
    }
    state->workers = workers;
    return ACT_OK;
  });
}

int act_engine_options_set_log_callback(act_engine_options_t* options, int min_level, act_log_fn callback,
                                        void* user_data) {
  return guarded("act_engine_options_set_log_callback", [&]() -> int {
    auto state = options_state(options, "act_engine_options_set_log_callback");
    if (!state) return act_last_error_code();
    if (min_level < ACT_LOG_TRACE || min_level > ACT_LOG_ERROR) {
      return invalid(
          "act_engine_options_set_log_callback",
          "min_level must be from ACT_LOG_TRACE (0) to ACT_LOG_ERROR (4), got " + std::to_string(min_level));
    }
    state->log_level = min_level;
    state->log_callback = callback;
    state->log_user_data = user_data;
    return ACT_OK;
  });
}

int act_engine_open(act_engine_t** out, const char* config_json, const act_engine_options_t* options) {
  return guarded("act_engine_open", [&]() -> int {
    if (out == nullptr) return invalid("act_engine_open", "out is NULL");
    *out = nullptr;
    if (config_json == nullptr) return invalid("act_engine_open", "config_json is NULL");
    std::string base_dir;
    if (options != nullptr) {
      auto settings = options_state(options, "act_engine_open");
      if (!settings) return act_last_error_code();
      base_dir = settings->base_dir;
    }
    return open_engine(out, parse_config(config_json, "configuration", base_dir), options, "act_engine_open");
  });
}

int act_engine_open_file(act_engine_t** out, const char* path, const act_engine_options_t* options) {
  return guarded("act_engine_open_file", [&]() -> int {
    if (out == nullptr) return invalid("act_engine_open_file", "out is NULL");
    *out = nullptr;
    if (path == nullptr) return invalid("act_engine_open_file", "path is NULL");
    return open_engine(out, load_config(path), options, "act_engine_open_file");
  });
}

void act_engine_destroy(act_engine_t* engine) {
  if (engine == nullptr) return;
  if (inside_callback()) {
    refuse_inside_callback("act_engine_destroy");
    return;
  }
  if (!HandleRegistry::instance().remove(engine, HandleKind::kEngine)) {
    fail(ACT_EINVAL,
         "act_engine_destroy: the engine handle is not open: it was destroyed already, or is no "
         "engine handle");
    return;
  }
  std::shared_ptr<EngineState> state = std::move(engine->state);
  delete engine;
  guarded("act_engine_destroy", [&]() -> int {
    // Callbacks end first, so that no host code runs while the workers stop.
    std::map<std::uint64_t, Subscription> subscriptions;
    {
      std::lock_guard lock(state->subscriptions_mutex);
      subscriptions.swap(state->subscriptions);
      state->closing = true;
    }
    {
      EngineAccess access(state);
      if (access.open()) {
        for (auto& [id, subscription] : subscriptions) end_subscription(access.engine(), subscription);
        Status stopped = access.engine().stop_workers(state->lease_duration);
        (void)stopped;  // The pool logs its own failures; a destroy cannot report them.
      }
    }
    if (state->log_gate) state->log_gate->close();

    std::unique_lock lock(state->lifetime);
    state->engine.reset();
    return ACT_OK;
  });
}

int act_engine_distribute(act_job_t** out_job, char** out_json, act_engine_t* engine,
                          const char* request_json) {
  constexpr const char* kFunction = "act_engine_distribute";
  return guarded(kFunction, [&]() -> int {
    if (out_job != nullptr) *out_job = nullptr;
    if (out_json != nullptr) *out_json = nullptr;
    return with_engine(engine, kFunction, [&](EngineAccess& access) -> int {
      if (request_json == nullptr) return invalid(kFunction, "request_json is NULL");
      auto request = parse_distribute_request(request_json);
      if (!request.is_ok()) return fail(request.status());
      auto job = access.engine().distribute(request->audience, request->destinations, request->options);
      if (!job.is_ok()) return fail(job.status());

      std::string json = job_to_json(*job);
      std::unique_ptr<act_job_t> handle;
      if (out_job != nullptr) {
        handle = std::make_unique<act_job_t>();
        handle->state = std::make_shared<JobHandleState>();
        handle->state->engine = access.shared_state();
        handle->state->id = job->id;
      }
      set_output(out_json, json);
      if (handle) {
        HandleRegistry::instance().add(handle.get(), HandleKind::kJob);
        *out_job = handle.release();
      }
      return ACT_OK;
    });
  });
}

int act_engine_jobs(char** out_json, act_engine_t* engine, const char* audience, int limit) {
  constexpr const char* kFunction = "act_engine_jobs";
  return guarded(kFunction, [&]() -> int {
    if (out_json == nullptr) return invalid(kFunction, "out_json is NULL");
    *out_json = nullptr;
    if (int rc = check_limit(kFunction, limit); rc != ACT_OK) return rc;
    return with_engine(engine, kFunction, [&](EngineAccess& access) -> int {
      auto jobs = access.engine().jobs(audience == nullptr ? "" : audience, limit);
      if (!jobs.is_ok()) return fail(jobs.status());
      set_output(out_json, jobs_to_json(*jobs));
      return ACT_OK;
    });
  });
}

int act_engine_history(char** out_json, act_engine_t* engine, const char* audience, int limit) {
  constexpr const char* kFunction = "act_engine_history";
  return guarded(kFunction, [&]() -> int {
    if (out_json == nullptr) return invalid(kFunction, "out_json is NULL");
    *out_json = nullptr;
    if (audience == nullptr || *audience == '\0') return invalid(kFunction, "audience is NULL or empty");
    if (int rc = check_limit(kFunction, limit); rc != ACT_OK) return rc;
    return with_engine(engine, kFunction, [&](EngineAccess& access) -> int {
      auto jobs = access.engine().history(audience, limit);
      if (!jobs.is_ok()) return fail(jobs.status());
      set_output(out_json, jobs_to_json(*jobs));
      return ACT_OK;
    });
  });
}

int act_engine_dead_letters(char** out_json, act_engine_t* engine, int limit) {
  constexpr const char* kFunction = "act_engine_dead_letters";
  return guarded(kFunction, [&]() -> int {
    if (out_json == nullptr) return invalid(kFunction, "out_json is NULL");
    *out_json = nullptr;
    if (int rc = check_limit(kFunction, limit); rc != ACT_OK) return rc;
    return with_engine(engine, kFunction, [&](EngineAccess& access) -> int {
      auto jobs = access.engine().dead_letters(limit);
      if (!jobs.is_ok()) return fail(jobs.status());
      set_output(out_json, jobs_to_json(*jobs));
      return ACT_OK;
    });
  });
}

int act_engine_queue_metrics(char** out_json, act_engine_t* engine) {
  constexpr const char* kFunction = "act_engine_queue_metrics";
  return guarded(kFunction, [&]() -> int {
    if (out_json == nullptr) return invalid(kFunction, "out_json is NULL");
    *out_json = nullptr;
    return with_engine(engine, kFunction, [&](EngineAccess& access) -> int {
      auto metrics = access.engine().queue()->metrics();
      if (!metrics.is_ok()) return fail(metrics.status());
      set_output(out_json, queue_metrics_to_json(*metrics));
      return ACT_OK;
    });
  });
}

int act_engine_metrics_text(char** out_text, act_engine_t* engine) {
  constexpr const char* kFunction = "act_engine_metrics_text";
  return guarded(kFunction, [&]() -> int {
    if (out_text == nullptr) return invalid(kFunction, "out_text is NULL");
    *out_text = nullptr;
    return with_engine(engine, kFunction, [&](EngineAccess& access) -> int {
      auto text = access.engine().metrics_text();
      if (!text.is_ok()) return fail(text.status());
      set_output(out_text, *text);
      return ACT_OK;
    });
  });
}

int act_engine_run_until_idle(char** out_stats_json, act_engine_t* engine, int64_t timeout_ms) {
  constexpr const char* kFunction = "act_engine_run_until_idle";
  return guarded(kFunction, [&]() -> int {
    if (out_stats_json != nullptr) *out_stats_json = nullptr;
    if (inside_callback()) return refuse_inside_callback(kFunction);
    if (timeout_ms < 0)
      return invalid(kFunction, "timeout_ms must not be negative, got " + std::to_string(timeout_ms));
    return with_engine(engine, kFunction, [&](EngineAccess& access) -> int {
      auto stats = access.engine().run_until_idle(std::chrono::milliseconds(timeout_ms));
      if (!stats.is_ok()) return fail(stats.status());
      set_output(out_stats_json, pool_stats_to_json(*stats));
      return ACT_OK;
    });
  });
}

int act_engine_check_alerts(act_engine_t* engine) {
  constexpr const char* kFunction = "act_engine_check_alerts";
  return guarded(kFunction, [&]() -> int {
    if (inside_callback()) return refuse_inside_callback(kFunction);
    return with_engine(engine, kFunction, [&](EngineAccess& access) -> int {
      Status checked = access.engine().check_alerts();
      return checked.is_ok() ? ACT_OK : fail(checked);
    });
  });
}

int act_engine_subscribe_progress(uint64_t* out_subscription, act_engine_t* engine, int64_t job_id,
                                  act_progress_fn callback, void* user_data) {
  constexpr const char* kFunction = "act_engine_subscribe_progress";
  return guarded(kFunction, [&]() -> int {
    if (out_subscription != nullptr) *out_subscription = 0;
    if (callback == nullptr) return invalid(kFunction, "callback is NULL");
    if (job_id < 0) return invalid(kFunction, "job_id must not be negative, got " + std::to_string(job_id));
    return with_engine(engine, kFunction, [&](EngineAccess& access) -> int {
      return keep_subscription(access, subscribe_progress(access.engine(), job_id, callback, user_data),
                               out_subscription, kFunction);
    });
  });
}

int act_engine_subscribe_events(uint64_t* out_subscription, act_engine_t* engine, const char* type_prefix,
                                act_event_fn callback, void* user_data) {
  constexpr const char* kFunction = "act_engine_subscribe_events";
  return guarded(kFunction, [&]() -> int {
    if (out_subscription != nullptr) *out_subscription = 0;
    if (callback == nullptr) return invalid(kFunction, "callback is NULL");
    return with_engine(engine, kFunction, [&](EngineAccess& access) -> int {
      Subscription subscription;
      subscription.kind = Subscription::Kind::kEvents;
      subscription.gate = std::make_shared<CallbackGate>();
      auto gate = subscription.gate;
      subscription.inner_id = access.engine().events().subscribe(
          type_prefix == nullptr ? "" : type_prefix, [gate, callback, user_data](const Event& event) {
            gate->run([&] {
              callback(event.type.c_str(), event.job_id, event.destination.c_str(), event.data.c_str(),
                       user_data);
            });
          });
      return keep_subscription(access, std::move(subscription), out_subscription, kFunction);
    });
  });
}

int act_engine_unsubscribe(act_engine_t* engine, uint64_t subscription) {
  constexpr const char* kFunction = "act_engine_unsubscribe";
  return guarded(kFunction, [&]() -> int {
    return with_engine(engine, kFunction, [&](EngineAccess& access) -> int {
      Subscription found;
      {
        std::lock_guard lock(access.state().subscriptions_mutex);
        auto it = access.state().subscriptions.find(subscription);
        if (it == access.state().subscriptions.end()) {
          return fail(ACT_ENOTFOUND, std::string(kFunction) + ": subscription " +
                                         std::to_string(subscription) + " is not active on this engine");
        }
        found = std::move(it->second);
        access.state().subscriptions.erase(it);
      }
      end_subscription(access.engine(), found);
      return ACT_OK;
    });
  });
}

int64_t act_progress_job_id(const act_progress_t* progress) {
  return progress == nullptr ? 0 : progress->progress->job_id;
}

const char* act_progress_destination(const act_progress_t* progress) {
  return progress == nullptr ? "" : progress->progress->destination.c_str();
}

const char* act_progress_state(const act_progress_t* progress) {
  return progress == nullptr ? "" : progress->state.c_str();
}

double act_progress_percent(const act_progress_t* progress) {
  if (progress == nullptr) return -1;
  if (progress->progress->state == RunState::kDone) return 100.0;
  return progress->progress->percent.value_or(-1.0);
}

uint64_t act_progress_rows_read(const act_progress_t* progress) {
  return progress == nullptr ? 0 : progress->progress->counters.rows_read;
}

uint64_t act_progress_rows(const act_progress_t* progress, int outcome) {
  if (progress == nullptr || outcome < 0 || outcome >= kRowOutcomeCount) return 0;
  return progress->progress->counters.outcome(static_cast<RowOutcome>(outcome));
}

double act_progress_rows_per_second(const act_progress_t* progress) {
  return progress == nullptr ? 0 : progress->progress->rows_per_second;
}

double act_progress_seconds_remaining(const act_progress_t* progress) {
  if (progress == nullptr) return -1;
  return progress->progress->seconds_remaining.value_or(-1.0);
}

const char* act_progress_json(const act_progress_t* progress) {
  if (progress == nullptr) return "{}";
  try {
    if (progress->json.empty()) progress->json = progress_to_json(*progress->progress);
    return progress->json.c_str();
  } catch (...) {
    return "{}";
  }
}

}  // extern "C"
