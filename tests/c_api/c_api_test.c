/*
 * The C ABI driven from plain C. A whole distribution of a small CSV audience goes to the file
 * destination, with log, progress and event callbacks. Then come job control, listings, metrics,
 * the one-value hash, and the bad inputs that each function must reject without crashing.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "activation.h"

static const char* phase = "";

#define START_PHASE(name)                           \
  do {                                              \
    phase = (name);                                 \
    fprintf(stderr, "=== c_api_test: %s\n", phase); \
  } while (0)

#define CHECK(condition)                                                                                  \
  do {                                                                                                    \
    if (!(condition)) {                                                                                   \
      fprintf(stderr, "%s:%d: phase '%s': check failed: %s\n  last error: %s (%s)\n", __FILE__, __LINE__, \
              phase, #condition, act_last_error_message(), act_error_name(act_last_error_code()));        \
      exit(1);                                                                                            \
    }                                                                                                     \
  } while (0)

/* Checks that a call returned `expected` and that its message contains `fragment`. */
#define CHECK_ERROR(call, expected, fragment)                                                       \
  do {                                                                                              \
    int rc_ = (call);                                                                               \
    if (rc_ != (expected) || act_last_error_code() != (expected) ||                                 \
        strstr(act_last_error_message(), (fragment)) == NULL) {                                     \
      fprintf(stderr,                                                                               \
              "%s:%d: phase '%s': %s returned %d (%s), expected %d (%s) with a message containing " \
              "'%s'\n  last error: %s\n",                                                           \
              __FILE__, __LINE__, phase, #call, rc_, act_error_name(rc_), (expected),               \
              act_error_name(expected), (fragment), act_last_error_message());                      \
      exit(1);                                                                                      \
    }                                                                                               \
  } while (0)

enum { kValidRows = 36, kInvalidRows = 4 };

static char scratch[256];

static void write_file(const char* name, const char* text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", scratch, name);
  FILE* file = fopen(path, "w");
  CHECK(file != NULL);
  fputs(text, file);
  CHECK(fclose(file) == 0);
}

/* Reads a whole file into memory the caller frees; NULL when it cannot be read. */
static char* read_file(const char* path) {
  FILE* file = fopen(path, "rb");
  if (file == NULL) return NULL;
  size_t capacity = 4096, size = 0;
  char* text = malloc(capacity);
  CHECK(text != NULL);
  size_t got;
  while ((got = fread(text + size, 1, capacity - size - 1, file)) > 0) {
    size += got;
    if (capacity - size <= 1) {
      capacity *= 2;
      text = realloc(text, capacity);
      CHECK(text != NULL);
    }
  }
  fclose(file);
  text[size] = '\0';
  return text;
}

static void write_audience(void) {
  char text[8192] = "EMAIL,FIRSTNAME,LASTNAME,COUNTRY\n";
  for (int i = 1; i <= kValidRows + kInvalidRows; ++i) {
    char row[128];
    if (i <= kValidRows) {
      snprintf(row, sizeof row, " User%d@Example.com ,Ann,Lee,US\n", i);
    } else {
      /* No usable identifier is left: the email is invalid and the names are missing. */
      snprintf(row, sizeof row, "not-an-email-%d,,,US\n", i);
    }
    strcat(text, row);
  }
  write_file("audience.csv", text);
}

static const char* kConfig =
    "{\n"
    "  \"store\": \"store/activation.db\",\n"
    "  \"engine\": {\"workers\": 1, \"batch_size\": 10, \"lease_seconds\": 10, \"heartbeat_seconds\": 2},\n"
    "  \"audiences\": {\n"
    "    \"customers\": {\n"
    "      \"source\": {\"type\": \"csv\", \"path\": \"audience.csv\"},\n"
    "      \"mapping\": {\"EMAIL\": \"email\", \"FIRSTNAME\": \"first_name\", \"LASTNAME\": \"last_name\",\n"
    "                  \"COUNTRY\": \"country\"}\n"
    "    }\n"
    "  },\n"
    "  \"destinations\": {\n"
    "    \"files\": {\"type\": \"file\", \"profile\": \"meta\",\n"
    "              \"settings\": {\"directory\": \"out\", \"format\": \"hashed_csv\", \"fsync\": false}}\n"
    "  }\n"
    "}\n";

/* What the callbacks saw, written from library threads. */
static atomic_int log_lines;
static atomic_int engine_log_lines;
static atomic_int progress_updates;
static atomic_int progress_done_accepted = -1;
static atomic_int progress_done_invalid = -1;
static atomic_int progress_bad_percent;
static atomic_int completed_events;
static atomic_int destroy_inside_callback_code = -1;
static atomic_int wait_inside_callback_code = -1;
static atomic_int unsubscribed_inside_callback = -1;
static act_engine_t* shared_engine;
static atomic_ullong self_subscription;

static void on_log(int level, const char* component, const char* message, void* user_data) {
  CHECK(user_data == &log_lines);
  CHECK(level >= ACT_LOG_TRACE);
  CHECK(level <= ACT_LOG_ERROR);
  CHECK(component != NULL);
  CHECK(message != NULL);
  atomic_fetch_add(&log_lines, 1);
  if (strcmp(component, "engine") == 0) atomic_fetch_add(&engine_log_lines, 1);
}

static void on_progress(const act_progress_t* progress, void* user_data) {
  CHECK(user_data == &progress_updates);
  CHECK(strcmp(act_progress_destination(progress), "files") == 0);
  CHECK(act_progress_job_id(progress) > 0);
  CHECK(strstr(act_progress_json(progress), "\"destination\":\"files\"") != NULL);
  double percent = act_progress_percent(progress);
  if (!(percent == -1 || (percent >= 0 && percent <= 100))) atomic_fetch_add(&progress_bad_percent, 1);
  atomic_fetch_add(&progress_updates, 1);
  if (strcmp(act_progress_state(progress), "done") == 0) {
    atomic_store(&progress_done_accepted, (int)act_progress_rows(progress, ACT_OUTCOME_ACCEPTED));
    atomic_store(&progress_done_invalid, (int)act_progress_rows(progress, ACT_OUTCOME_INVALID));
    if (percent != 100) atomic_fetch_add(&progress_bad_percent, 1);
  }
}

static void on_event(const char* type, int64_t job_id, const char* destination, const char* data_json,
                     void* user_data) {
  (void)destination;
  CHECK(user_data == &completed_events);
  CHECK(data_json != NULL);
  CHECK(data_json[0] == '{');
  if (strcmp(type, "distribution.completed") == 0 && job_id > 0) atomic_fetch_add(&completed_events, 1);
}

/* Calls back into the library from a worker thread: the waiting functions must refuse, the
 * others must work, and the subscription may end itself. */
static void on_event_calling_back(const char* type, int64_t job_id, const char* destination,
                                  const char* data_json, void* user_data) {
  (void)destination;
  (void)data_json;
  (void)user_data;
  if (strcmp(type, "distribution.started") != 0) return;
  act_engine_destroy(shared_engine);
  atomic_store(&destroy_inside_callback_code, act_last_error_code());

  act_job_t* job = NULL;
  if (act_job_open(&job, shared_engine, job_id) == ACT_OK) {
    atomic_store(&wait_inside_callback_code, act_job_wait(NULL, job, 1000, NULL, NULL));
    act_job_destroy(job);
  }
  atomic_store(&unsubscribed_inside_callback,
               act_engine_unsubscribe(shared_engine, atomic_load(&self_subscription)));
}

static int count_batch_rows(const char* job_dir, const char* expected_hash) {
  DIR* dir = opendir(job_dir);
  CHECK(dir != NULL);
  int rows = 0;
  int hash_found = 0;
  struct dirent* entry;
  while ((entry = readdir(dir)) != NULL) {
    if (strncmp(entry->d_name, "batch-", 6) != 0 || strstr(entry->d_name, "-add.csv") == NULL) continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", job_dir, entry->d_name);
    char* text = read_file(path);
    CHECK(text != NULL);
    for (const char* c = strchr(text, '\n'); c != NULL && c[1] != '\0'; c = strchr(c + 1, '\n')) ++rows;
    if (strstr(text, expected_hash) != NULL) hash_found = 1;
    free(text);
  }
  closedir(dir);
  CHECK(hash_found);
  return rows;
}

static void test_library(void) {
  START_PHASE("library");
  CHECK(act_abi_version() == ACT_ABI_VERSION);
  CHECK(act_version_number() == ACT_VERSION_NUMBER);
  CHECK(strcmp(act_version_string(), ACT_VERSION_STRING) == 0);
  CHECK(strcmp(act_error_name(ACT_EINVAL), "invalid_argument") == 0);
  CHECK(strcmp(act_error_name(ACT_ETIMEDOUT), "deadline_exceeded") == 0);
  CHECK(strcmp(act_error_name(12345), "unknown") == 0);
  CHECK(strcmp(act_job_status_name(ACT_JOB_COMPLETED_WITH_ERRORS), "completed_with_errors") == 0);
  CHECK(strcmp(act_job_status_name(-1), "unknown") == 0);
  act_free(NULL);
  act_clear_error();
  CHECK(act_last_error_code() == ACT_OK);
  CHECK(strcmp(act_last_error_message(), "") == 0);
}

static void test_hash(void) {
  START_PHASE("hash");
  char* json = NULL;
  const char* email = "  Mary@Example.com ";
  CHECK(act_hash(&json, "meta", "email", email, strlen(email), NULL) == ACT_OK);
  CHECK(strstr(json, "\"sha256\":\"f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79\"") !=
        NULL);
  CHECK(strstr(json, "\"normalized\":\"mary@example.com\"") != NULL);
  CHECK(strstr(json, "\"error\":null") != NULL);
  act_free(json);

  /* A value that cannot be used is a reason in the result, not a failed call. */
  CHECK(act_hash(&json, "meta", "email", "no at sign", 10, NULL) == ACT_OK);
  CHECK(strstr(json, "\"code\":\"invalid_email\"") != NULL);
  CHECK(strstr(json, "\"sha256\":null") != NULL);
  act_free(json);

  /* NUL bytes and invalid UTF-8 are values like any other. */
  const char bad_bytes[] = {'a', '\0', 'b', (char)0xff, '@', 'x', '.', 'c', 'o'};
  CHECK(act_hash(&json, "google", "email", bad_bytes, sizeof bad_bytes, NULL) == ACT_OK);
  CHECK(strstr(json, "\"error\":{") != NULL);
  act_free(json);

  /* A phone read with the row's country. */
  const char* phone = "020 7946 0018";
  CHECK(act_hash(&json, "meta", "phone", phone, strlen(phone), "{\"country\": \"United Kingdom\"}") ==
        ACT_OK);
  CHECK(strstr(json, "\"normalized\":\"442079460018\"") != NULL);
  act_free(json);

  CHECK_ERROR(act_hash(&json, "myspace", "email", "a", 1, NULL), ACT_EINVAL, "unknown platform \"myspace\"");
  CHECK(json == NULL);
  CHECK_ERROR(act_hash(&json, "meta", "shoe_size", "a", 1, NULL), ACT_EINVAL, "unknown field \"shoe_size\"");
  CHECK_ERROR(act_hash(&json, "meta", "email", "a", 1, "{\"colour\": 1}"), ACT_EINVAL, "options_json.colour");
  CHECK_ERROR(act_hash(&json, "meta", "email", "a", 1, "not json"), ACT_EINVAL, "options_json");
  CHECK_ERROR(act_hash(&json, "meta", "phone", "1", 1, "{\"default_region\": \"XX\"}"), ACT_EINVAL, "XX");
  CHECK_ERROR(act_hash(NULL, "meta", "email", "a", 1, NULL), ACT_EINVAL, "out_json is NULL");
  CHECK_ERROR(act_hash(&json, NULL, "email", "a", 1, NULL), ACT_EINVAL, "platform is NULL");
  CHECK_ERROR(act_hash(&json, "meta", "email", NULL, 3, NULL), ACT_EINVAL, "value is NULL");
}

static void test_bad_open(const act_engine_options_t* options) {
  START_PHASE("opening with bad input");
  act_engine_t* engine = (act_engine_t*)1;
  CHECK_ERROR(act_engine_open(NULL, kConfig, options), ACT_EINVAL, "out is NULL");
  CHECK_ERROR(act_engine_open(&engine, NULL, options), ACT_EINVAL, "config_json is NULL");
  CHECK(engine == NULL);
  CHECK_ERROR(act_engine_open(&engine, "{\"store\": ", options), ACT_EINVAL, "configuration");
  CHECK_ERROR(
      act_engine_open(&engine, "{\"stor\": \"x.db\", \"audiences\": {}, \"destinations\": {}}", options),
      ACT_EINVAL, "stor");
  CHECK_ERROR(act_engine_open_file(&engine, "/nonexistent/activation.json", options), ACT_ENOTFOUND,
              "/nonexistent/activation.json");
  CHECK_ERROR(act_engine_open_file(&engine, NULL, options), ACT_EINVAL, "path is NULL");
  CHECK(engine == NULL);

  act_engine_options_t* destroyed = NULL;
  CHECK(act_engine_options_open(&destroyed) == ACT_OK);
  act_engine_options_destroy(destroyed);
  CHECK_ERROR(act_engine_open(&engine, kConfig, destroyed), ACT_EINVAL, "engine options handle is not open");
  CHECK_ERROR(act_engine_options_set_workers(destroyed, 2), ACT_EINVAL, "not open");
  CHECK_ERROR(act_engine_options_set_workers(NULL, 2), ACT_EINVAL, "handle is NULL");
  CHECK_ERROR(act_engine_options_open(NULL), ACT_EINVAL, "out is NULL");
  act_engine_options_destroy(NULL);
}

static void test_null_handles(void) {
  START_PHASE("NULL handles and arguments");
  char* json = NULL;
  int status = 0;
  int64_t id = 0;
  act_job_t* job = NULL;
  act_worker_pool_t* pool = NULL;
  CHECK_ERROR(act_engine_distribute(&job, &json, NULL, "{}"), ACT_EINVAL, "engine handle is NULL");
  CHECK_ERROR(act_engine_jobs(&json, NULL, NULL, 10), ACT_EINVAL, "engine handle is NULL");
  CHECK_ERROR(act_engine_metrics_text(&json, NULL), ACT_EINVAL, "engine handle is NULL");
  CHECK_ERROR(act_engine_queue_metrics(&json, NULL), ACT_EINVAL, "engine handle is NULL");
  CHECK_ERROR(act_engine_run_until_idle(NULL, NULL, 10), ACT_EINVAL, "engine handle is NULL");
  CHECK_ERROR(act_engine_unsubscribe(NULL, 1), ACT_EINVAL, "engine handle is NULL");
  CHECK_ERROR(act_job_open(&job, NULL, 1), ACT_EINVAL, "engine handle is NULL");
  CHECK_ERROR(act_job_status(&status, NULL), ACT_EINVAL, "job handle is NULL");
  CHECK_ERROR(act_job_json(&json, NULL), ACT_EINVAL, "job handle is NULL");
  CHECK_ERROR(act_job_id(&id, NULL), ACT_EINVAL, "job handle is NULL");
  CHECK_ERROR(act_job_wait(&status, NULL, 10, NULL, NULL), ACT_EINVAL, "job handle is NULL");
  CHECK_ERROR(act_job_cancel(NULL, NULL), ACT_EINVAL, "job handle is NULL");
  CHECK_ERROR(act_job_retry(NULL), ACT_EINVAL, "job handle is NULL");
  CHECK_ERROR(act_job_requeue(NULL, NULL), ACT_EINVAL, "out_job is NULL");
  CHECK_ERROR(act_worker_pool_open(&pool, NULL, 0), ACT_EINVAL, "engine handle is NULL");
  CHECK_ERROR(act_worker_pool_stop(NULL, 10), ACT_EINVAL, "worker pool handle is NULL");
  act_engine_destroy(NULL);
  act_job_destroy(NULL);
  act_worker_pool_destroy(NULL);
  /* Progress getters accept NULL too, since they have no error to return. */
  CHECK(act_progress_job_id(NULL) == 0);
  CHECK(strcmp(act_progress_destination(NULL), "") == 0);
  CHECK(act_progress_percent(NULL) == -1);
}

static void test_bad_requests(act_engine_t* engine) {
  START_PHASE("distribution requests with bad input");
  act_job_t* job = NULL;
  char* json = NULL;
  CHECK_ERROR(act_engine_distribute(&job, &json, engine, NULL), ACT_EINVAL, "request_json is NULL");
  CHECK_ERROR(act_engine_distribute(&job, &json, engine, "{\"audience\": "), ACT_EINVAL, "invalid JSON");
  CHECK_ERROR(act_engine_distribute(&job, &json, engine, "[1, 2]"), ACT_EINVAL, "expected a JSON object");
  CHECK_ERROR(act_engine_distribute(&job, &json, engine, "{\"destinations\": [\"files\"]}"), ACT_EINVAL,
              "request.audience: missing");
  CHECK_ERROR(act_engine_distribute(&job, &json, engine,
                                    "{\"audience\": \"customers\", \"destinations\": [\"nowhere\"]}"),
              ACT_ENOTFOUND, "destination 'nowhere' is not configured (destinations: files)");
  CHECK_ERROR(act_engine_distribute(&job, &json, engine,
                                    "{\"audience\": \"prospects\", \"destinations\": [\"files\"]}"),
              ACT_ENOTFOUND, "audience 'prospects' is not configured");
  CHECK_ERROR(act_engine_distribute(
                  &job, &json, engine,
                  "{\"audience\": \"customers\", \"destinations\": [\"files\"], \"mode\": \"merge\"}"),
              ACT_EINVAL, "request.mode: expected add, remove, replace or mirror, got \"merge\"");
  CHECK_ERROR(
      act_engine_distribute(&job, &json, engine,
                            "{\"audience\": \"customers\", \"destinations\": [\"files\"], \"colour\": 1}"),
      ACT_EINVAL, "request.colour: unknown key");
  CHECK(job == NULL);
  CHECK(json == NULL);
  CHECK_ERROR(act_engine_jobs(&json, engine, NULL, 0), ACT_EINVAL, "limit must be from 1 to 10000");
  CHECK_ERROR(act_engine_history(&json, engine, "", 10), ACT_EINVAL, "audience is NULL or empty");
  CHECK_ERROR(act_job_open(&job, engine, 999999), ACT_ENOTFOUND, "999999");
  CHECK_ERROR(act_job_open(&job, engine, -5), ACT_EINVAL, "job_id must be positive");
  CHECK_ERROR(act_engine_unsubscribe(engine, 424242), ACT_ENOTFOUND, "424242");
  CHECK_ERROR(act_engine_subscribe_progress(NULL, engine, 0, NULL, NULL), ACT_EINVAL, "callback is NULL");
}

static int64_t test_distribution(act_engine_t* engine) {
  START_PHASE("a whole distribution to the file destination");
  uint64_t progress_subscription = 0, event_subscription = 0, calling_back_subscription = 0;
  CHECK(act_engine_subscribe_progress(&progress_subscription, engine, 0, on_progress, &progress_updates) ==
        ACT_OK);
  CHECK(act_engine_subscribe_events(&event_subscription, engine, "distribution.", on_event,
                                    &completed_events) == ACT_OK);
  CHECK(act_engine_subscribe_events(&calling_back_subscription, engine, "", on_event_calling_back, NULL) ==
        ACT_OK);
  atomic_store(&self_subscription, calling_back_subscription);

  act_job_t* job = NULL;
  char* queued = NULL;
  CHECK(
      act_engine_distribute(&job, &queued, engine,
                            "{\"audience\": \"customers\", \"destinations\": [\"files\"], \"mode\": \"add\", "
                            "\"priority\": \"high\", \"metadata\": {\"campaign\": \"spring\"}}") == ACT_OK);
  CHECK(strstr(queued, "\"status\":\"queued\"") != NULL);
  CHECK(strstr(queued, "\"campaign\":\"spring\"") != NULL);
  act_free(queued);
  int64_t id = 0;
  CHECK(act_job_id(&id, job) == ACT_OK);
  CHECK(id > 0);

  act_worker_pool_t* pool = NULL;
  CHECK(act_worker_pool_open(&pool, engine, 1) == ACT_OK);
  act_worker_pool_t* second = NULL;
  CHECK_ERROR(act_worker_pool_open(&second, engine, 1), ACT_EPRECONDITION, "run already");

  int status = -1;
  CHECK(act_job_wait(&status, job, 60000, NULL, NULL) == ACT_OK);
  CHECK(status == ACT_JOB_COMPLETED);
  CHECK(ACT_JOB_IS_FINISHED(status));
  CHECK(act_job_status(&status, job) == ACT_OK);
  CHECK(status == ACT_JOB_COMPLETED);
  CHECK(act_worker_pool_stop(pool, 5000) == ACT_OK);
  CHECK(act_worker_pool_stop(pool, 5000) == ACT_OK);
  act_worker_pool_destroy(pool);
  CHECK_ERROR(act_worker_pool_stop(pool, 10), ACT_EINVAL, "worker pool handle is not open");

  START_PHASE("callbacks of the distribution");
  CHECK(atomic_load(&progress_updates) > 0);
  CHECK(atomic_load(&progress_bad_percent) == 0);
  CHECK(atomic_load(&progress_done_accepted) == kValidRows);
  CHECK(atomic_load(&progress_done_invalid) == kInvalidRows);
  CHECK(atomic_load(&completed_events) == 1);
  CHECK(atomic_load(&destroy_inside_callback_code) == ACT_EPRECONDITION);
  CHECK(atomic_load(&wait_inside_callback_code) == ACT_EPRECONDITION);
  CHECK(atomic_load(&unsubscribed_inside_callback) == ACT_OK);
  CHECK(atomic_load(&engine_log_lines) > 0);
  CHECK_ERROR(act_engine_unsubscribe(engine, calling_back_subscription), ACT_ENOTFOUND, "not active");
  CHECK(act_engine_unsubscribe(engine, progress_subscription) == ACT_OK);
  CHECK(act_engine_unsubscribe(engine, event_subscription) == ACT_OK);

  START_PHASE("the files hold exactly the accepted rows");
  char* expected = NULL;
  CHECK(act_hash(&expected, "meta", "email", "user1@example.com", 17, NULL) == ACT_OK);
  const char* digest = strstr(expected, "\"sha256\":\"");
  CHECK(digest != NULL);
  char hash[65];
  memcpy(hash, digest + 10, 64);
  hash[64] = '\0';
  act_free(expected);
  char job_dir[512];
  snprintf(job_dir, sizeof job_dir, "%s/out/job-%lld", scratch, (long long)id);
  CHECK(count_batch_rows(job_dir, hash) == kValidRows);
  char manifest_path[600];
  snprintf(manifest_path, sizeof manifest_path, "%s/manifest.json", job_dir);
  char* manifest = read_file(manifest_path);
  CHECK(manifest != NULL);
  char add_rows[32];
  snprintf(add_rows, sizeof add_rows, "\"add_rows\": %d", kValidRows);
  CHECK(strstr(manifest, add_rows) != NULL);
  free(manifest);

  START_PHASE("the job as JSON, the listings and the metrics");
  char* json = NULL;
  CHECK(act_job_json(&json, job) == ACT_OK);
  CHECK(strstr(json, "\"status\":\"completed\"") != NULL);
  CHECK(strstr(json, "\"finished\":true") != NULL);
  CHECK(strstr(json, "\"priority\":\"high\"") != NULL);
  act_free(json);
  CHECK(act_engine_jobs(&json, engine, NULL, 10) == ACT_OK);
  CHECK(json[0] == '[');
  CHECK(strstr(json, "\"audience\":\"customers\"") != NULL);
  act_free(json);
  CHECK(act_engine_history(&json, engine, "customers", 10) == ACT_OK);
  CHECK(strstr(json, "\"status\":\"completed\"") != NULL);
  act_free(json);
  CHECK(act_engine_history(&json, engine, "nobody", 10) == ACT_OK);
  CHECK(strcmp(json, "[]") == 0);
  act_free(json);
  CHECK(act_engine_dead_letters(&json, engine, 10) == ACT_OK);
  CHECK(strcmp(json, "[]") == 0);
  act_free(json);
  CHECK(act_engine_queue_metrics(&json, engine) == ACT_OK);
  CHECK(strstr(json, "\"completed\":1") != NULL);
  act_free(json);
  CHECK(act_engine_metrics_text(&json, engine) == ACT_OK);
  CHECK(strstr(json, "# TYPE activation_queue_jobs gauge") != NULL);
  CHECK(strstr(json, "activation_queue_jobs{state=\"completed\"} 1") != NULL);
  act_free(json);
  CHECK(act_engine_check_alerts(engine) == ACT_OK);

  START_PHASE("the rows that were not accepted");
  char outcomes_path[512];
  snprintf(outcomes_path, sizeof outcomes_path, "%s/outcomes.csv", scratch);
  CHECK(act_job_export_outcomes(job, outcomes_path) == ACT_OK);
  char* outcomes = read_file(outcomes_path);
  CHECK(outcomes != NULL);
  CHECK(strncmp(outcomes, "destination,line,operation,outcome,reason_code,reason,member_key\n", 65) == 0);
  int invalid_lines = 0;
  for (const char* c = strstr(outcomes, ",invalid,"); c != NULL; c = strstr(c + 1, ",invalid,"))
    ++invalid_lines;
  CHECK(invalid_lines == kInvalidRows);
  free(outcomes);
  CHECK_ERROR(act_job_export_outcomes(job, "/nonexistent/folder/outcomes.csv"), ACT_EIO,
              "/nonexistent/folder");

  CHECK_ERROR(act_job_cancel(NULL, job), ACT_EPRECONDITION, "");
  act_job_destroy(job);
  return id;
}

static void test_cancel_and_retry(act_engine_t* engine) {
  START_PHASE("cancel and retry");
  act_job_t* job = NULL;
  CHECK(act_engine_distribute(
            &job, NULL, engine,
            "{\"audience\": \"customers\", \"destinations\": [\"files\"], \"delay_seconds\": 3600}") ==
        ACT_OK);
  int status = -1;
  CHECK(act_job_status(&status, job) == ACT_OK);
  CHECK(status == ACT_JOB_SCHEDULED);
  CHECK_ERROR(act_job_wait(&status, job, 100, NULL, NULL), ACT_ETIMEDOUT, "did not finish within 100 ms");
  int cancelled = -1;
  CHECK(act_job_cancel(&cancelled, job) == ACT_OK);
  CHECK(cancelled == ACT_CANCEL_DONE);
  CHECK(act_job_status(&status, job) == ACT_OK);
  CHECK(status == ACT_JOB_CANCELLED);
  CHECK_ERROR(act_job_cancel(NULL, job), ACT_EPRECONDITION, "");

  CHECK(act_job_retry(job) == ACT_OK);
  CHECK(act_job_status(&status, job) == ACT_OK);
  CHECK(!ACT_JOB_IS_FINISHED(status));
  char* stats = NULL;
  CHECK(act_engine_run_until_idle(&stats, engine, 60000) == ACT_OK);
  CHECK(strstr(stats, "\"completed\":1") != NULL);
  act_free(stats);
  CHECK(act_job_wait(&status, job, 1000, NULL, NULL) == ACT_OK);
  CHECK(status == ACT_JOB_COMPLETED);
  CHECK_ERROR(act_job_retry(job), ACT_EPRECONDITION, "");
  act_job_t* requeued = NULL;
  CHECK_ERROR(act_job_requeue(&requeued, job), ACT_EPRECONDITION, "is completed");
  CHECK(requeued == NULL);
  CHECK_ERROR(act_job_requeue(&requeued, NULL), ACT_EINVAL, "job handle is NULL");

  /* The same job through a second handle; destroying one leaves the other open. */
  int64_t id = 0;
  CHECK(act_job_id(&id, job) == ACT_OK);
  act_job_t* again = NULL;
  CHECK(act_job_open(&again, engine, id) == ACT_OK);
  act_job_destroy(job);
  CHECK(act_job_status(&status, again) == ACT_OK);
  CHECK(status == ACT_JOB_COMPLETED);
  act_job_destroy(again);
  CHECK_ERROR(act_job_status(&status, again), ACT_EINVAL, "job handle is not open");
  act_job_destroy(again);
  CHECK(act_last_error_code() == ACT_EINVAL);
}

static void test_destroy_order(act_engine_t* engine, int64_t finished_job) {
  START_PHASE("handles that outlive their engine");
  act_job_t* job = NULL;
  CHECK(act_job_open(&job, engine, finished_job) == ACT_OK);
  act_worker_pool_t* pool = NULL;
  CHECK(act_worker_pool_open(&pool, engine, 0) == ACT_OK);
  act_engine_destroy(engine);

  int status = 0;
  char* json = NULL;
  CHECK_ERROR(act_engine_jobs(&json, engine, NULL, 10), ACT_EINVAL, "engine handle is not open");
  CHECK_ERROR(act_job_status(&status, job), ACT_EPRECONDITION, "engine of this handle was destroyed");
  CHECK(act_worker_pool_stop(pool, 10) == ACT_OK);
  act_worker_pool_destroy(pool);
  act_job_destroy(job);
  act_engine_destroy(engine);
  CHECK(act_last_error_code() == ACT_EINVAL);
}

int main(void) {
  snprintf(scratch, sizeof scratch, "%s/act-c-api-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  CHECK(mkdtemp(scratch) != NULL);
  write_audience();

  test_library();
  test_hash();
  test_null_handles();

  act_engine_options_t* options = NULL;
  CHECK(act_engine_options_open(&options) == ACT_OK);
  CHECK(act_engine_options_set_base_dir(options, scratch) == ACT_OK);
  CHECK(act_engine_options_set_log_callback(options, ACT_LOG_INFO, on_log, &log_lines) == ACT_OK);
  CHECK_ERROR(act_engine_options_set_log_callback(options, 9, on_log, NULL), ACT_EINVAL, "min_level");
  CHECK_ERROR(act_engine_options_set_workers(options, 0), ACT_EINVAL, "workers must be from 1 to 256");
  test_bad_open(options);

  START_PHASE("open");
  act_engine_t* engine = NULL;
  CHECK(act_engine_open(&engine, kConfig, options) == ACT_OK);
  act_engine_options_destroy(options);
  shared_engine = engine;

  test_bad_requests(engine);
  int64_t finished_job = test_distribution(engine);
  test_cancel_and_retry(engine);
  test_destroy_order(engine, finished_job);

  /* Nothing of the engine calls back once it is destroyed. */
  int lines = atomic_load(&log_lines);
  sleep(1);
  CHECK(atomic_load(&log_lines) == lines);

  char command[600];
  snprintf(command, sizeof command, "rm -rf '%s'", scratch);
  CHECK(system(command) == 0);
  fprintf(stderr, "=== c_api_test: all checks passed\n");
  return 0;
}
