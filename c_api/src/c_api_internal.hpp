// The machinery shared by the C entry points: the thread-local last error, the catch-all wrapper
// that keeps exceptions out of C, the registry that detects destroyed handles, the gate that
// stops callbacks, and the state behind each handle.
#ifndef ACTIVATION_C_API_INTERNAL_HPP_
#define ACTIVATION_C_API_INTERNAL_HPP_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "activation.h"
#include "activation/engine.hpp"
#include "activation/status.hpp"

namespace activation::capi {

// Records the error of the failing call on this thread and returns `code` (negative).
int fail(int code, std::string message);
int fail(const Status& status);
// Returns ACT_EINVAL with "<function>: <what>".
int invalid(const char* function, std::string_view what);

// Copies `text` into memory the caller releases with act_free(). Throws std::bad_alloc.
char* to_c_string(std::string_view text);
// Stores `text` in *out when `out` is not NULL.
void set_output(char** out, std::string_view text);

// Runs `body` and turns every exception into an error code, because no exception may cross the C
// boundary (nlohmann_json, fmt and std::bad_alloc all throw).
template <typename Body>
int guarded(const char* function, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(ACT_EEXHAUSTED, std::string(function) + ": out of memory");
  } catch (const std::exception& error) {
    return fail(ACT_EINTERNAL, std::string(function) + ": unexpected exception: " + error.what());
  } catch (...) {
    return fail(ACT_EINTERNAL, std::string(function) + ": unexpected exception of an unknown type");
  }
}

// True while a callback runs on this thread. Functions that wait for library threads return
// ACT_EPRECONDITION inside a callback, because the thread they would wait for may be this one.
bool inside_callback() noexcept;
int refuse_inside_callback(const char* function);

// Lets callbacks run until close(). After close() returns, no callback of the gate runs on another
// thread and none starts again, so the host may free its user_data.
class CallbackGate {
 public:
  template <typename Call>
  void run(Call&& call) noexcept {
    if (!enter()) return;
    try {
      call();
    } catch (...) {
      // A C callback cannot throw; this only guards the conversions around it.
    }
    leave();
  }
  // May be called from inside one of the gate's own callbacks: it then waits for the others only.
  void close();

 private:
  bool enter() noexcept;
  void leave() noexcept;

  std::mutex mutex_;
  std::condition_variable idle_;
  bool closed_ = false;
  int in_flight_ = 0;
};

enum class HandleKind : int { kOptions, kEngine, kJob, kWorkerPool };

const char* handle_kind_name(HandleKind kind) noexcept;

// The addresses of the live handles. A call checks its handle here before touching it, so a
// destroyed handle is reported instead of read after it was freed.
class HandleRegistry {
 public:
  static HandleRegistry& instance();

  void add(const void* handle, HandleKind kind);
  // Returns false when `handle` is not a live handle of `kind`.
  bool remove(const void* handle, HandleKind kind);
  // Runs `copy` under the registry's lock when `handle` is live with `kind`, so that the handle
  // cannot be freed while its state is copied out. Returns false otherwise.
  template <typename Copy>
  bool with_live(const void* handle, HandleKind kind, Copy&& copy) {
    std::lock_guard lock(mutex_);
    auto found = live_.find(handle);
    if (found == live_.end() || found->second != kind) return false;
    copy();
    return true;
  }

 private:
  std::mutex mutex_;
  std::map<const void*, HandleKind> live_;
};

struct OptionsState {
  std::string base_dir;
  std::optional<int> workers;
  int log_level = ACT_LOG_INFO;
  act_log_fn log_callback = nullptr;
  void* log_user_data = nullptr;
};

// One progress or event subscription of an engine.
struct Subscription {
  enum class Kind { kProgress, kEvents } kind = Kind::kProgress;
  std::uint64_t inner_id = 0;  // The id given by the ProgressTracker or the EventBus.
  std::shared_ptr<CallbackGate> gate;
};

struct EngineState {
  // Locked shared by each call, and exclusively by act_engine_destroy() while it closes the engine.
  std::shared_mutex lifetime;
  std::unique_ptr<DistributionEngine> engine;  // Null once the engine was destroyed.
  std::shared_ptr<CallbackGate> log_gate;
  std::chrono::milliseconds lease_duration{30000};

  std::mutex subscriptions_mutex;
  std::map<std::uint64_t, Subscription> subscriptions;
  std::uint64_t next_subscription = 1;
  bool closing = false;  // Set by act_engine_destroy(); no subscription is added afterwards.
};

struct JobHandleState {
  std::shared_ptr<EngineState> engine;
  JobId id = 0;
};

struct PoolState {
  std::shared_ptr<EngineState> engine;
  std::mutex mutex;
  bool running = false;
};

// A call's hold on an open engine: the engine cannot close while it lives.
class EngineAccess {
 public:
  explicit EngineAccess(std::shared_ptr<EngineState> state)
      : state_(std::move(state)), lock_(state_->lifetime) {}
  bool open() const noexcept { return state_->engine != nullptr; }
  const std::shared_ptr<EngineState>& shared_state() const noexcept { return state_; }
  DistributionEngine& engine() const noexcept { return *state_->engine; }
  EngineState& state() const noexcept { return *state_; }

 private:
  std::shared_ptr<EngineState> state_;
  std::shared_lock<std::shared_mutex> lock_;
};

// Copies the state out of a live handle; nullptr (with the error recorded) for a NULL or
// destroyed handle.
std::shared_ptr<OptionsState> options_state(const act_engine_options_t* options, const char* function);
std::shared_ptr<EngineState> engine_state(const act_engine_t* engine, const char* function);
std::shared_ptr<JobHandleState> job_state(const act_job_t* job, const char* function);
std::shared_ptr<PoolState> pool_state(const act_worker_pool_t* pool, const char* function);

// ACT_EPRECONDITION for a job or pool whose engine was destroyed.
int engine_closed(const char* function);

// Subscribes `callback` to the progress of `job_id` (0 = every job) and returns the subscription.
Subscription subscribe_progress(DistributionEngine& engine, std::int64_t job_id, act_progress_fn callback,
                                void* user_data);
// Ends the subscription in the engine and waits for its callbacks in flight.
void end_subscription(DistributionEngine& engine, Subscription& subscription);

}  // namespace activation::capi

struct act_engine_options_t {
  std::shared_ptr<activation::capi::OptionsState> state;
};
struct act_engine_t {
  std::shared_ptr<activation::capi::EngineState> state;
};
struct act_job_t {
  std::shared_ptr<activation::capi::JobHandleState> state;
};
struct act_worker_pool_t {
  std::shared_ptr<activation::capi::PoolState> state;
};

#endif  // ACTIVATION_C_API_INTERNAL_HPP_
