/* Distributes an audience through the C ABI and prints a line each time a destination passes
 * another tenth of its source:  activation-example-c CONFIG AUDIENCE DESTINATION...
 * CONFIG is an activation.json (docs/configuration.md). Exits with 0 when the job completed. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"

/* The last tenth of its source printed per destination. Destinations past the 63rd share the
 * last slot, which only makes them print more often. */
struct shown {
  char destination[129];
  int tenth;
};
enum { kMaxShown = 64 };

static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

static int* last_tenth(struct shown* table, const char* destination) {
  for (int i = 0; i < kMaxShown - 1; ++i) {
    if (table[i].destination[0] == '\0') {
      snprintf(table[i].destination, sizeof table[i].destination, "%s", destination);
      table[i].tenth = -2;
    }
    if (strcmp(table[i].destination, destination) == 0) return &table[i].tenth;
  }
  return &table[kMaxShown - 1].tenth;
}

/* Runs on worker threads, possibly for several destinations at once. */
static void show_progress(const act_progress_t* progress, void* user_data) {
  double percent = act_progress_percent(progress);
  int tenth = percent < 0 ? -1 : (int)(percent / 10);
  pthread_mutex_lock(&print_lock);
  int* last = last_tenth(user_data, act_progress_destination(progress));
  if (tenth != *last || strcmp(act_progress_state(progress), "running") != 0) {
    *last = tenth;
    printf("%-16s %5.1f%%  %8llu rows read  %8llu accepted  %6llu invalid  %s\n",
           act_progress_destination(progress), percent < 0 ? 0.0 : percent,
           (unsigned long long)act_progress_rows_read(progress),
           (unsigned long long)act_progress_rows(progress, ACT_OUTCOME_ACCEPTED),
           (unsigned long long)act_progress_rows(progress, ACT_OUTCOME_INVALID),
           act_progress_state(progress));
    fflush(stdout);
  }
  pthread_mutex_unlock(&print_lock);
}

static int report(const char* what) {
  fprintf(stderr, "activation-example-c: %s: %s (%s)\n", what, act_last_error_message(),
          act_error_name(act_last_error_code()));
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s CONFIG AUDIENCE DESTINATION...\n", argv[0]);
    return 2;
  }
  /* Audience and destination names hold only letters, digits, '_', '-' and '.', so they need no
   * JSON escaping; a name with other characters is rejected as an invalid request. */
  char* request = NULL;
  size_t request_size = 0;
  FILE* json = open_memstream(&request, &request_size);
  if (json == NULL) return 1;
  fprintf(json, "{\"audience\": \"%s\", \"destinations\": [", argv[2]);
  for (int i = 3; i < argc; ++i) fprintf(json, "%s\"%s\"", i > 3 ? ", " : "", argv[i]);
  fputs("]}", json);
  fclose(json);

  act_engine_t* engine = NULL;
  if (act_engine_open_file(&engine, argv[1], NULL) != ACT_OK) return report("opening the engine");
  act_job_t* job = NULL;
  int status = -1;
  static struct shown shown[kMaxShown];
  if (act_engine_distribute(&job, NULL, engine, request) != ACT_OK) {
    report("queuing the distribution");
  } else {
    act_worker_pool_t* pool = NULL;
    if (act_worker_pool_open(&pool, engine, 0) != ACT_OK) {
      report("starting the workers");
    } else if (act_job_wait(&status, job, -1, show_progress, shown) != ACT_OK) {
      report("waiting for the job");
    }
    act_worker_pool_destroy(pool);

    int64_t id = 0;
    act_job_id(&id, job);
    printf("job %lld: %s\n", (long long)id, act_job_status_name(status));
  }
  act_job_destroy(job);
  act_engine_destroy(engine);
  free(request);
  return status == ACT_JOB_COMPLETED ? 0 : 1;
}
