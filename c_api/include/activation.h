/*
 * activation.h: the C ABI of the activation library.
 *
 * A thin layer over the C++ API (include/activation/engine.hpp) for hosts written in C and for
 * bindings such as the Python package, which loads it through ctypes. docs/c-api.md is the guide.
 *
 * Conventions:
 *  1. Every fallible function returns an int: ACT_OK (0) on success, or a negative ACT_E* code that
 *     is the negated activation::StatusCode. The message of the last failure on the calling thread
 *     is act_last_error_message(); its code is act_last_error_code(). Both are thread-local and
 *     borrowed: the text stays valid until the next failing call on the same thread. A successful
 *     call does not clear them.
 *  2. A NULL handle, a NULL string where one is required, and any other invalid argument return
 *     ACT_EINVAL with a message naming the argument. No C++ exception crosses this boundary.
 *  3. Out-parameters come first. A handle returned through `act_X_t** out` belongs to the caller,
 *     who releases it with act_X_destroy(), which accepts NULL. `*out` is set to NULL on failure.
 *  4. Strings returned through `char** out` are NUL-terminated UTF-8, allocated by the library and
 *     released with act_free(), never with the caller's free(). Strings passed as `const char*`
 *     results (act_error_name(), the act_progress_* getters) are borrowed.
 *  5. Structured data crosses as JSON text (requests, jobs, metrics, progress), so that new fields
 *     never change the ABI. docs/c-api.md lists the keys.
 *  6. Handles are checked on entry. A handle that was destroyed, or a pointer that is no handle of
 *     the expected kind, returns ACT_EINVAL instead of touching freed memory. The check cannot
 *     tell a stale pointer from a new handle that the library placed at the same address.
 *  7. Callbacks take `void* user_data` as their last argument and run on library threads; each
 *     setter says which. A callback must return normally (no longjmp out of it). Inside a
 *     callback, act_engine_destroy(), act_worker_pool_stop(), act_worker_pool_destroy(),
 *     act_engine_run_until_idle(), act_engine_check_alerts() and act_job_wait() are refused with
 *     ACT_EPRECONDITION (the destroy functions then leave the handle open), because they would wait
 *     for the thread that runs the callback. Every other function may be called from a callback.
 *  8. Thread safety: every function may be called from any thread, and every handle may be used
 *     from several threads at once, except that a handle must not be destroyed while another thread
 *     still passes it to a function.
 *
 * Not supported through the C ABI: registering audiences or destinations in code (put them in the
 * configuration), custom destination adapters, storage and transport backends, and exporting row
 * outcomes anywhere but a file.
 */
#ifndef ACTIVATION_H_
#define ACTIVATION_H_

#include <stddef.h>
#include <stdint.h>

#include "activation/version.h"

/* The same definition as include/activation/export.hpp in C++, so either header may come first. */
#ifndef ACT_EXPORT
#if defined(ACT_BUILDING_LIBRARY) && defined(__cplusplus)
#define ACT_EXPORT [[gnu::visibility("default")]]
#elif defined(ACT_BUILDING_LIBRARY) && (defined(__GNUC__) || defined(__clang__))
#define ACT_EXPORT __attribute__((visibility("default")))
#else
#define ACT_EXPORT
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Error codes: the negated activation::StatusCode values. docs/errors.md lists when each occurs.
 * ------------------------------------------------------------------------------------------- */

enum {
  ACT_OK = 0,
  ACT_EINVAL = -1,            /* invalid_argument: a bad argument, request, option or configuration */
  ACT_ENOTFOUND = -2,         /* not_found: a job, audience, destination or file does not exist */
  ACT_EEXISTS = -3,           /* already_exists */
  ACT_EPRECONDITION = -4,     /* failed_precondition: the object is in the wrong state for the call */
  ACT_ECONFLICT = -5,         /* conflict: another worker changed the record first */
  ACT_EEXHAUSTED = -6,        /* resource_exhausted: a quota, rate limit or disk is full */
  ACT_EUNAVAILABLE = -7,      /* unavailable: a transient failure */
  ACT_ETIMEDOUT = -8,         /* deadline_exceeded: a timeout expired */
  ACT_EPERM = -9,             /* permission_denied */
  ACT_EUNAUTHENTICATED = -10, /* unauthenticated: a platform rejected the credentials */
  ACT_ECANCELLED = -11,       /* cancelled */
  ACT_EDATALOSS = -12,        /* data_loss: a store file is corrupt or from a newer schema */
  ACT_EIO = -13,              /* io_error */
  ACT_EINTERNAL = -14         /* internal: a bug in the library; the message names the place */
};

/* The status of a distribution job (activation::DistributionStatus). */
enum {
  ACT_JOB_QUEUED = 0,
  ACT_JOB_SCHEDULED = 1, /* due later: scheduled, or waiting to retry after a failed attempt */
  ACT_JOB_RUNNING = 2,
  ACT_JOB_COMPLETED = 3,
  ACT_JOB_COMPLETED_WITH_ERRORS = 4, /* some destinations finished, some failed */
  ACT_JOB_FAILED = 5,                /* every destination failed; the job is in the dead-letter queue */
  ACT_JOB_CANCELLED = 6
};

/* True for the four statuses after which a job changes only through act_job_retry(). */
#define ACT_JOB_IS_FINISHED(status) ((status) >= ACT_JOB_COMPLETED)

/* Row outcomes, for act_progress_rows(). */
enum {
  ACT_OUTCOME_INVALID = 0,
  ACT_OUTCOME_REJECTED = 1,
  ACT_OUTCOME_DEFERRED = 2,
  ACT_OUTCOME_ACCEPTED = 3
};

/* Log levels, for act_engine_options_set_log_callback(). */
enum { ACT_LOG_TRACE = 0, ACT_LOG_DEBUG = 1, ACT_LOG_INFO = 2, ACT_LOG_WARN = 3, ACT_LOG_ERROR = 4 };

/* What act_job_cancel() did. */
enum {
  ACT_CANCEL_DONE = 0,     /* the job was queued or scheduled and is cancelled now */
  ACT_CANCEL_REQUESTED = 1 /* the job runs; it stops after its batch in flight */
};

/* ---------------------------------------------------------------------------------------------
 * Handles. Each is opaque; the comment of its open function states its thread safety.
 * ------------------------------------------------------------------------------------------- */

typedef struct act_engine_options_t act_engine_options_t;
typedef struct act_engine_t act_engine_t;
typedef struct act_job_t act_job_t;
typedef struct act_worker_pool_t act_worker_pool_t;
/* A borrowed view of one progress update, valid only during the progress callback. */
typedef struct act_progress_t act_progress_t;

/**
 * Receives one log line. `level` is an ACT_LOG_* value, `component` names the part of the library
 * ("engine", "queue", "store"), `message` never contains secrets or raw personal data. The strings are
 * borrowed for the duration of the call. Called from any library thread, possibly from several at
 * once, so the callback must be safe to run concurrently.
 */
typedef void (*act_log_fn)(int level, const char* component, const char* message, void* user_data);

/**
 * Receives one progress update of one destination of one job. Called on the thread that runs that
 * destination (a worker pool thread); updates of different destinations may arrive concurrently.
 */
typedef void (*act_progress_fn)(const act_progress_t* progress, void* user_data);

/**
 * Receives one event: `type` such as "distribution.completed" or "alert.queue_backlog", `job_id`
 * (0 for events of no single job), `destination` ("" for job-wide events) and `data_json`, a JSON
 * object with the event's details. Called on the publishing thread, one event at a time per engine.
 */
typedef void (*act_event_fn)(const char* type, int64_t job_id, const char* destination, const char* data_json,
                             void* user_data);

/* ---------------------------------------------------------------------------------------------
 * Library
 * ------------------------------------------------------------------------------------------- */

/** @return The library's version, such as "0.1.0" (static storage). */
ACT_EXPORT const char* act_version_string(void);

/** @return MAJOR * 1000000 + MINOR * 1000 + PATCH of the loaded library; compare with ACT_VERSION_NUMBER. */
ACT_EXPORT int act_version_number(void);

/**
 * @return The C ABI major version of the loaded library. A host built against a header whose
 *         ACT_ABI_VERSION differs must not use the library.
 */
ACT_EXPORT int act_abi_version(void);

/** @return The lowercase name of an ACT_E* code ("invalid_argument"), or "unknown" (static storage). */
ACT_EXPORT const char* act_error_name(int code);

/** @return The name of an ACT_JOB_* status ("completed_with_errors"), or "unknown" (static storage). */
ACT_EXPORT const char* act_job_status_name(int status);

/**
 * @return The message of the last failed call on this thread, or "" when none failed. Borrowed:
 *         valid until the next failing call on this thread.
 */
ACT_EXPORT const char* act_last_error_message(void);

/** @return The ACT_E* code of the last failed call on this thread, or ACT_OK when none failed. */
ACT_EXPORT int act_last_error_code(void);

/** Forgets the last error of this thread. */
ACT_EXPORT void act_clear_error(void);

/** Releases memory returned by the library. NULL is a no-op. */
ACT_EXPORT void act_free(void* memory);

/* ---------------------------------------------------------------------------------------------
 * Engine options. Thread safety: one thread at a time per options object.
 * ------------------------------------------------------------------------------------------- */

/**
 * Creates engine options with the defaults: relative paths of a configuration text resolve
 * against the current directory, the configuration's worker count, and no log callback (logs are
 * dropped).
 * @param[out] out The new options; release them with act_engine_options_destroy().
 * @return ACT_OK, or ACT_EINVAL when `out` is NULL.
 */
ACT_EXPORT int act_engine_options_open(act_engine_options_t** out);

/** Releases options. NULL is a no-op. An engine opened with them keeps its own copy. */
ACT_EXPORT void act_engine_options_destroy(act_engine_options_t* options);

/**
 * Sets the folder that relative paths in a configuration text (the store, source files, a file
 * destination's directory) resolve against. Ignored by act_engine_open_file(), which uses the
 * configuration file's folder.
 * @return ACT_OK, or ACT_EINVAL for a NULL argument.
 */
ACT_EXPORT int act_engine_options_set_base_dir(act_engine_options_t* options, const char* directory);

/**
 * Overrides the configuration's engine.workers: the jobs a worker pool of this engine runs at once.
 * @return ACT_OK, or ACT_EINVAL for a NULL handle or a count outside 1 to 256.
 */
ACT_EXPORT int act_engine_options_set_workers(act_engine_options_t* options, int workers);

/**
 * Sends the engine's log lines at `min_level` and above to `callback`; NULL drops them. The
 * callback runs until act_engine_destroy() returns, and never after.
 * @return ACT_OK, or ACT_EINVAL for a NULL handle or a level outside ACT_LOG_TRACE to ACT_LOG_ERROR.
 */
ACT_EXPORT int act_engine_options_set_log_callback(act_engine_options_t* options, int min_level,
                                                   act_log_fn callback, void* user_data);

/* ---------------------------------------------------------------------------------------------
 * Engine. Thread safety: safe for concurrent use; see convention 8 for destroy.
 * ------------------------------------------------------------------------------------------- */

/**
 * Opens an engine from a JSON configuration text (docs/configuration.md): opens or creates its
 * SQLite store. Several engines, in one process or several, may share one store.
 * @param[out] out The engine; release it with act_engine_destroy().
 * @param config_json The configuration as JSON text.
 * @param options NULL for the defaults.
 * @return ACT_OK; ACT_EINVAL for invalid JSON or a configuration that does not match the schema
 *         (the message names the key path); the store's error when it cannot be opened.
 */
ACT_EXPORT int act_engine_open(act_engine_t** out, const char* config_json,
                               const act_engine_options_t* options);

/**
 * Opens an engine from a JSON configuration file; its relative paths resolve against its folder.
 * @return As act_engine_open(), and ACT_ENOTFOUND when the file does not exist.
 */
ACT_EXPORT int act_engine_open_file(act_engine_t** out, const char* path,
                                    const act_engine_options_t* options);

/**
 * Closes an engine: stops its worker pool (running jobs get the lease duration to finish, then
 * go back to the queue), ends its callbacks, waits for calls in flight on other threads (such as
 * act_engine_run_until_idle()), and closes the store. Job and worker pool handles of the engine
 * stay valid to destroy; their other functions then return ACT_EPRECONDITION. NULL is a no-op.
 */
ACT_EXPORT void act_engine_destroy(act_engine_t* engine);

/**
 * Validates a distribution request, stores the job and queues it; returns at once.
 * @param[out] out_job A handle of the new job, or NULL when not wanted.
 * @param[out] out_json The job as JSON text (as act_job_json()), or NULL when not wanted.
 * @param request_json A JSON object. "audience" and "destinations" (a non-empty array of names)
 *        are required. Optional: "mode" ("add", "remove", "replace", "mirror"), "dry_run",
 *        "priority" ("low", "normal", "high", "critical" or 1, 5, 10, 20), "batch_size",
 *        "parallelism", "delay_seconds", "expire_after_seconds", "metadata" (an object of strings)
 *        and "dedup_key". docs/c-api.md gives their ranges and defaults.
 * @return ACT_OK; ACT_EINVAL for invalid JSON or an invalid request (the message names the key);
 *         ACT_ENOTFOUND for an unknown audience or destination, or a missing source file.
 */
ACT_EXPORT int act_engine_distribute(act_job_t** out_job, char** out_json, act_engine_t* engine,
                                     const char* request_json);

/**
 * Lists distribution jobs, newest first, as a JSON array of jobs (as act_job_json()).
 * @param audience An audience name, or NULL or "" for every audience.
 * @param limit At most this many jobs, 1 to 10000.
 */
ACT_EXPORT int act_engine_jobs(char** out_json, act_engine_t* engine, const char* audience, int limit);

/** The jobs of one audience, newest first, as a JSON array. ACT_EINVAL when `audience` is NULL or "". */
ACT_EXPORT int act_engine_history(char** out_json, act_engine_t* engine, const char* audience, int limit);

/** The dead-letter queue: jobs whose last attempt failed, newest first, as a JSON array. */
ACT_EXPORT int act_engine_dead_letters(char** out_json, act_engine_t* engine, int limit);

/**
 * Counts the queue's jobs by state: a JSON object with "waiting", "delayed", "active",
 * "completed", "failed", "dead", "cancelled" and "stalled".
 */
ACT_EXPORT int act_engine_queue_metrics(char** out_json, act_engine_t* engine);

/** Writes queue and destination metrics in the Prometheus text exposition format. */
ACT_EXPORT int act_engine_metrics_text(char** out_text, act_engine_t* engine);

/**
 * Runs a worker pool on the calling thread's behalf until no distribution job is waiting, delayed
 * or running, then stops it.
 * @param[out] out_stats_json The pool's counts ({"claimed", "completed", "retried", "dead",
 *             "failed", "cancelled", "released", "conflicts"}), or NULL when not wanted.
 * @return ACT_OK; ACT_ETIMEDOUT when `timeout_ms` passed first (the pool is stopped then too);
 *         ACT_EPRECONDITION from inside a callback.
 */
ACT_EXPORT int act_engine_run_until_idle(char** out_stats_json, act_engine_t* engine, int64_t timeout_ms);

/** Evaluates the alert conditions now and publishes alert events for changes. */
ACT_EXPORT int act_engine_check_alerts(act_engine_t* engine);

/**
 * Calls `callback` with every progress update of job `job_id`, or of every job when it is 0, until
 * act_engine_unsubscribe() or act_engine_destroy(). Updates come from jobs run by this process.
 * @param[out] out_subscription The id for act_engine_unsubscribe(), or NULL when not wanted.
 * @return ACT_OK, or ACT_EINVAL for a NULL engine or callback or a negative job id.
 */
ACT_EXPORT int act_engine_subscribe_progress(uint64_t* out_subscription, act_engine_t* engine, int64_t job_id,
                                             act_progress_fn callback, void* user_data);

/**
 * Calls `callback` with every event whose type starts with `type_prefix` ("" or NULL for every
 * event, "alert." for alerts) until act_engine_unsubscribe() or act_engine_destroy().
 */
ACT_EXPORT int act_engine_subscribe_events(uint64_t* out_subscription, act_engine_t* engine,
                                           const char* type_prefix, act_event_fn callback, void* user_data);

/**
 * Ends a subscription. When this returns, the callback is not running on another thread and will
 * not be called again, so its user_data may be released. It may be called from inside the
 * subscription's own callback. NOTE: two callbacks running at once that each end the other's
 * subscription wait for each other forever.
 * @return ACT_OK, or ACT_ENOTFOUND for an id this engine did not return or already ended.
 */
ACT_EXPORT int act_engine_unsubscribe(act_engine_t* engine, uint64_t subscription);

/* ---------------------------------------------------------------------------------------------
 * Jobs. A job handle names one distribution job of one engine; the job itself lives in the store.
 * Thread safety: safe for concurrent use; see convention 8 for destroy.
 * ------------------------------------------------------------------------------------------- */

/**
 * Opens a handle of an existing distribution job.
 * @return ACT_OK, or ACT_ENOTFOUND for an unknown id or a job that is no distribution.
 */
ACT_EXPORT int act_job_open(act_job_t** out, act_engine_t* engine, int64_t job_id);

/** Releases a job handle; the job in the store is unchanged. NULL is a no-op. */
ACT_EXPORT void act_job_destroy(act_job_t* job);

/** @param[out] out_id The job's id. */
ACT_EXPORT int act_job_id(int64_t* out_id, const act_job_t* job);

/** @param[out] out_status The job's ACT_JOB_* status, read from the store now. */
ACT_EXPORT int act_job_status(int* out_status, act_job_t* job);

/**
 * Reads the job from the store as a JSON object: "id", "audience", "destinations", "mode",
 * "dry_run", "priority", "status", "queue_state", "finished", "attempts", "max_attempts",
 * "last_error", "reason", "metadata", "created_at", "finished_at" and "progress" (per destination:
 * state, counters, percent, rows per second).
 */
ACT_EXPORT int act_job_json(char** out_json, act_job_t* job);

/**
 * Waits until the job is finished (ACT_JOB_IS_FINISHED). It does not run the job: a worker pool
 * of this or another process must (act_worker_pool_open()). While it waits, `on_progress` (NULL
 * for none) receives the job's progress updates on the worker threads, as with
 * act_engine_subscribe_progress().
 * @param[out] out_status The status when the wait ended, or NULL when not wanted.
 * @param timeout_ms The longest wait; a negative value waits without a limit.
 * @return ACT_OK when the job finished (whatever its status); ACT_ETIMEDOUT when `timeout_ms`
 *         passed first; ACT_EPRECONDITION from inside a callback.
 */
ACT_EXPORT int act_job_wait(int* out_status, act_job_t* job, int64_t timeout_ms, act_progress_fn on_progress,
                            void* user_data);

/**
 * Cancels a queued or scheduled job at once, or requests a running one to stop after its batch in
 * flight.
 * @param[out] out_result ACT_CANCEL_DONE or ACT_CANCEL_REQUESTED, or NULL when not wanted.
 * @return ACT_OK; ACT_EPRECONDITION when the job is already finished.
 */
ACT_EXPORT int act_job_cancel(int* out_result, act_job_t* job);

/**
 * Queues a failed, dead-lettered or cancelled job again; it resumes from its checkpoints.
 * @return ACT_OK; ACT_EPRECONDITION when the job is queued, running or completed, or completed
 *         with errors: the message then names the failed destinations, which act_job_requeue()
 *         queues again.
 */
ACT_EXPORT int act_job_retry(act_job_t* job);

/**
 * Retries `job` and returns a handle of the job that was queued. A failed, dead-lettered or
 * cancelled job is queued again, as by act_job_retry(), and the handle refers to it. For a job
 * that completed with errors, a new job of its failed destinations is queued with the same
 * audience, mode and options and the metadata "retry_of" set to the first job's id.
 * @param[out] out_job The queued job's handle; release it with act_job_destroy().
 * @return ACT_OK; ACT_EPRECONDITION when the job is queued, running or completed.
 */
ACT_EXPORT int act_job_requeue(act_job_t** out_job, act_job_t* job);

/**
 * Writes the job's invalid, rejected and deferred rows with their reasons to a CSV file (header
 * destination,line,operation,outcome,reason_code,reason,member_key), replacing the file.
 * @return ACT_OK; ACT_EIO when the file cannot be written.
 */
ACT_EXPORT int act_job_export_outcomes(act_job_t* job, const char* csv_path);

/* ---------------------------------------------------------------------------------------------
 * Worker pool: threads of this process that claim and run distribution jobs from the store. One
 * pool runs per engine at a time. Thread safety: safe for concurrent use; see convention 8.
 * ------------------------------------------------------------------------------------------- */

/**
 * Starts the engine's worker pool.
 * @param threads Jobs run at once; 0 for the engine's setting.
 * @return ACT_OK; ACT_EPRECONDITION when a pool of this engine runs already; ACT_EINVAL for a
 *         negative count.
 */
ACT_EXPORT int act_worker_pool_open(act_worker_pool_t** out, act_engine_t* engine, int threads);

/**
 * Stops claiming jobs, gives running jobs `deadline_ms` to finish, then requests them to stop and
 * returns them to the queue for another worker. Stopping a stopped pool does nothing.
 * @return ACT_OK; ACT_EPRECONDITION from inside a callback.
 */
ACT_EXPORT int act_worker_pool_stop(act_worker_pool_t* pool, int64_t deadline_ms);

/** Stops the pool as act_worker_pool_stop() with the lease duration as deadline, and releases it. NULL is a
 * no-op. */
ACT_EXPORT void act_worker_pool_destroy(act_worker_pool_t* pool);

/* ---------------------------------------------------------------------------------------------
 * Progress view: the getters take the pointer passed to an act_progress_fn, during that call.
 * ------------------------------------------------------------------------------------------- */

ACT_EXPORT int64_t act_progress_job_id(const act_progress_t* progress);
/** The destination's name. */
ACT_EXPORT const char* act_progress_destination(const act_progress_t* progress);
/** "pending", "running", "done", "failed" or "cancelled". */
ACT_EXPORT const char* act_progress_state(const act_progress_t* progress);
/** The share of the source read, 0 to 100, or -1 when the source's size is unknown. */
ACT_EXPORT double act_progress_percent(const act_progress_t* progress);
ACT_EXPORT uint64_t act_progress_rows_read(const act_progress_t* progress);
/** The rows with one ACT_OUTCOME_* outcome so far, or 0 for an unknown outcome. */
ACT_EXPORT uint64_t act_progress_rows(const act_progress_t* progress, int outcome);
/** Rows read per second during this process's run. */
ACT_EXPORT double act_progress_rows_per_second(const act_progress_t* progress);
/** The estimated seconds left, or -1 when unknown. */
ACT_EXPORT double act_progress_seconds_remaining(const act_progress_t* progress);
/** The whole update as a JSON object, including counters per identifier type and reason. */
ACT_EXPORT const char* act_progress_json(const act_progress_t* progress);

/* ---------------------------------------------------------------------------------------------
 * Identifiers
 * ------------------------------------------------------------------------------------------- */

/**
 * Normalizes one value by a platform's rules and hashes it where the platform takes it hashed,
 * exactly as a distribution would, as `activate hash` does for one line.
 * @param[out] out_json {"field", "input", "normalized", "sha256" (null when the platform takes the
 *             value unhashed), "error" (null or {"code", "message"}), "warnings" ([{"code",
 *             "message"}])}. A value that cannot be used is not a failure of the call: its reason
 *             is in "error".
 * @param platform "meta", "google", "linkedin", "tiktok" or "snapchat".
 * @param field "email", "phone", "first_name", "last_name", "first_initial", "city", "state",
 *        "zip", "country", "dob", "gender", "maid" or "external_id".
 * @param value The bytes of the value; they may hold NUL bytes and invalid UTF-8.
 * @param options_json NULL, or a JSON object with "country" (the row's country, for phones),
 *        "default_region" (ISO 3166-1 alpha-2, default "US") and "google_canonicalize_gmail"
 *        (default true).
 * @return ACT_OK; ACT_EINVAL for an unknown platform or field, or invalid options.
 */
ACT_EXPORT int act_hash(char** out_json, const char* platform, const char* field, const char* value,
                        size_t value_len, const char* options_json);

#ifdef __cplusplus
}
#endif

#endif /* ACTIVATION_H_ */
