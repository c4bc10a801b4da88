// The C ABI's shared machinery and its library-wide functions: versions, errors, act_free.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "activation/version.h"
#include "c_api_internal.hpp"

namespace activation::capi {
namespace {

struct LastError {
  int code = ACT_OK;
  std::string message;
};

thread_local LastError last_error;
// The gates whose callbacks run on this thread, innermost last.
thread_local std::vector<const CallbackGate*> running_gates;

}  // namespace

int fail(int code, std::string message) {
  last_error.code = code;
  last_error.message = std::move(message);
  return code;
}

int fail(const Status& status) {
  if (status.is_ok()) return fail(ACT_EINTERNAL, "an error was reported with an OK status");
  return fail(-static_cast<int>(status.code()), status.message());
}

int invalid(const char* function, std::string_view what) {
  return fail(ACT_EINVAL, std::string(function) + ": " + std::string(what));
}

char* to_c_string(std::string_view text) {
  auto* copy = static_cast<char*>(std::malloc(text.size() + 1));
  if (copy == nullptr) throw std::bad_alloc();
  std::memcpy(copy, text.data(), text.size());
  copy[text.size()] = '\0';
  return copy;
}

void set_output(char** out, std::string_view text) {
  if (out != nullptr) *out = to_c_string(text);
}

bool inside_callback() noexcept {
  return !running_gates.empty();
}

int refuse_inside_callback(const char* function) {
  return fail(ACT_EPRECONDITION, std::string(function) +
                                     ": cannot be called from inside a callback, because it waits for the "
                                     "library threads that run callbacks");
}

bool CallbackGate::enter() noexcept {
  std::lock_guard lock(mutex_);
  if (closed_) return false;
  ++in_flight_;
  try {
    running_gates.push_back(this);
  } catch (...) {
    --in_flight_;
    return false;
  }
  return true;
}

void CallbackGate::leave() noexcept {
  running_gates.pop_back();
  {
    std::lock_guard lock(mutex_);
    --in_flight_;
  }
  idle_.notify_all();
}

void CallbackGate::close() {
  // A callback of this gate that closes it is itself in flight; waiting for it would never end.
  const int own = static_cast<int>(std::count(running_gates.begin(), running_gates.end(), this));
  std::unique_lock lock(mutex_);
  closed_ = true;
  idle_.wait(lock, [&] { return in_flight_ <= own; });
}

const char* handle_kind_name(HandleKind kind) noexcept {
  switch (kind) {
    case HandleKind::kOptions: return "engine options";
    case HandleKind::kEngine: return "engine";
    case HandleKind::kJob: return "job";
    case HandleKind::kWorkerPool: return "worker pool";
  }
  return "handle";
}

HandleRegistry& HandleRegistry::instance() {
  // Never destroyed, so that handles released by static destructors at exit still find it.
  static auto* registry = new HandleRegistry();
  return *registry;
}

void HandleRegistry::add(const void* handle, HandleKind kind) {
  std::lock_guard lock(mutex_);
  live_[handle] = kind;
}

bool HandleRegistry::remove(const void* handle, HandleKind kind) {
  std::lock_guard lock(mutex_);
  auto found = live_.find(handle);
  if (found == live_.end() || found->second != kind) return false;
  live_.erase(found);
  return true;
}

namespace {

template <typename Handle>
auto live_state(const Handle* handle, HandleKind kind, const char* function) -> decltype(handle->state) {
  const std::string name = handle_kind_name(kind);
  if (handle == nullptr) {
    fail(ACT_EINVAL, std::string(function) + ": the " + name + " handle is NULL");
    return nullptr;
  }
  decltype(handle->state) state;
  if (!HandleRegistry::instance().with_live(handle, kind, [&] { state = handle->state; })) {
    fail(ACT_EINVAL, std::string(function) + ": the " + name +
                         " handle is not open: it was destroyed already, or is no " + name + " handle");
    return nullptr;
  }
  return state;
}

}  // namespace

std::shared_ptr<OptionsState> options_state(const act_engine_options_t* options, const char* function) {
  return live_state(options, HandleKind::kOptions, function);
}
std::shared_ptr<EngineState> engine_state(const act_engine_t* engine, const char* function) {
  return live_state(engine, HandleKind::kEngine, function);
}
std::shared_ptr<JobHandleState> job_state(const act_job_t* job, const char* function) {
  return live_state(job, HandleKind::kJob, function);
}
std::shared_ptr<PoolState> pool_state(const act_worker_pool_t* pool, const char* function) {
  return live_state(pool, HandleKind::kWorkerPool, function);
}

int engine_closed(const char* function) {
  return fail(ACT_EPRECONDITION, std::string(function) + ": the engine of this handle was destroyed");
}

}  // namespace activation::capi

using namespace activation::capi;

extern "C" {

const char* act_version_string(void) {
  return ACT_VERSION_STRING;
}

int act_version_number(void) {
  return ACT_VERSION_NUMBER;
}

int act_abi_version(void) {
  return ACT_ABI_VERSION;
}

const char* act_error_name(int code) {
  switch (code) {
    case ACT_OK: return "ok";
    case ACT_EINVAL: return "invalid_argument";
    case ACT_ENOTFOUND: return "not_found";
    case ACT_EEXISTS: return "already_exists";
    case ACT_EPRECONDITION: return "failed_precondition";
    case ACT_ECONFLICT: return "conflict";
    case ACT_EEXHAUSTED: return "resource_exhausted";
    case ACT_EUNAVAILABLE: return "unavailable";
    case ACT_ETIMEDOUT: return "deadline_exceeded";
    case ACT_EPERM: return "permission_denied";
    case ACT_EUNAUTHENTICATED: return "unauthenticated";
    case ACT_ECANCELLED: return "cancelled";
    case ACT_EDATALOSS: return "data_loss";
    case ACT_EIO: return "io_error";
    case ACT_EINTERNAL: return "internal";
    default: return "unknown";
  }
}

const char* act_job_status_name(int status) {
  switch (status) {
    case ACT_JOB_QUEUED: return "queued";
    case ACT_JOB_SCHEDULED: return "scheduled";
    case ACT_JOB_RUNNING: return "running";
    case ACT_JOB_COMPLETED: return "completed";
    case ACT_JOB_COMPLETED_WITH_ERRORS: return "completed_with_errors";
    case ACT_JOB_FAILED: return "failed";
    case ACT_JOB_CANCELLED: return "cancelled";
    default: return "unknown";
  }
}

const char* act_last_error_message(void) {
  return last_error.message.c_str();
}

int act_last_error_code(void) {
  return last_error.code;
}

void act_clear_error(void) {
  last_error.code = ACT_OK;
  last_error.message.clear();
}

void act_free(void* memory) {
  std::free(memory);
}

}  // extern "C"
