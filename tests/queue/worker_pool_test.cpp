// The worker pool in one process: terminal states under random failures, priority-class limits,
// cancellation, heartbeats, snoozing, shutdown and recovery from a failed completion write.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include <fmt/format.h>

#include "queue_test_support.hpp"

namespace activation {
namespace {

using namespace std::chrono_literals;
using testing::enqueue_ok;
using testing::eventually;
using testing::job_spec;
using testing::make_queue;
using testing::open_store;
using testing::ScratchDir;
using testing::state_of;

RetryPolicy immediate_retries() {
  RetryPolicy policy;
  policy.transient = {BackoffKind::kFixed, 0ms, 0ms, false};
  policy.rate_limited = policy.transient;
  policy.timeout = policy.transient;
  return policy;
}

WorkerPoolOptions fast_options(int threads) {
  WorkerPoolOptions options;
  options.threads = threads;
  options.lease_duration = 2s;
  options.heartbeat_interval = 100ms;
  options.maintenance_interval = 50ms;
  return options;
}

std::unique_ptr<WorkerPool> make_pool(std::shared_ptr<JobQueue> queue, WorkerPoolOptions options) {
  auto pool = WorkerPool::create(std::move(queue), std::move(options));
  REQUIRE_MESSAGE(pool.is_ok(), pool.status().to_string());
  return std::move(pool).value();
}

std::vector<Job> jobs_in(JobQueue& queue, JobState state) {
  JobQuery query;
  query.states = {state};
  query.limit = 1000000;
  auto jobs = queue.list(query);
  REQUIRE(jobs.is_ok());
  return std::move(jobs).value();
}

TEST_CASE("10,000 jobs with random failures each end in exactly one terminal state") {
  ScratchDir dir;
  JobQueueOptions queue_options;
  queue_options.retry_policy = immediate_retries();
  queue_options.max_attempts = 3;
  auto queue = make_queue(open_store(dir.file("q.db")), queue_options);

  constexpr int kJobs = 10000;
  std::vector<JobSpec> specs;
  for (int i = 0; i < kJobs; ++i) {
    specs.push_back(job_spec("work", fmt::format(R"({{"i":{}}})", i),
                             static_cast<Priority>(std::array{1, 5, 10, 20}[static_cast<std::size_t>(i % 4)])));
  }
  auto enqueued = queue->enqueue_bulk(specs);
  REQUIRE(enqueued.is_ok());
  const JobId first_id = enqueued->front().id;

  std::mutex mutex;
  std::vector<int> successes(kJobs, 0);
  std::vector<int> runs(kJobs, 0);
  auto pool = make_pool(queue, fast_options(8));
  REQUIRE(pool->register_handler("work", [&](JobContext& context) -> Status {
    const auto index = static_cast<std::size_t>(context.job().id - first_id);
    // Deterministic per (job, attempt), so the outcome does not depend on thread timing.
    std::mt19937 random(static_cast<unsigned>(index * 31 + static_cast<std::size_t>(context.lease().attempt)));
    const int roll = static_cast<int>(random() % 100);
    std::lock_guard lock(mutex);
    ++runs[index];
    if (roll < 30) return unavailable("platform answered 503");
    if (roll < 33) return invalid_argument("audience id is malformed");
    ++successes[index];
    return Status();
  }).is_ok());
  auto stats = pool->run_until_idle(120s);
  REQUIRE_MESSAGE(stats.is_ok(), stats.status().to_string());

  auto metrics = queue->metrics();
  REQUIRE(metrics.is_ok());
  CHECK(metrics->waiting == 0);
  CHECK(metrics->delayed == 0);
  CHECK(metrics->active == 0);
  CHECK(metrics->completed + metrics->failed + metrics->dead == kJobs);
  CHECK(metrics->completed == stats->completed);
  CHECK(stats->conflicts == 0);

  std::map<JobId, JobState> final_state;
  for (JobState state : {JobState::kCompleted, JobState::kFailed, JobState::kDead, JobState::kCancelled,
                         JobState::kWaiting, JobState::kDelayed, JobState::kActive}) {
    for (const Job& job : jobs_in(*queue, state)) {
      CHECK_MESSAGE(final_state.emplace(job.id, job.state).second, "job ", job.id, " listed in two states");
    }
  }
  REQUIRE(final_state.size() == kJobs);
  for (const auto& [id, state] : final_state) {
    const auto index = static_cast<std::size_t>(id - first_id);
    CAPTURE(id);
    CHECK(is_terminal(state));
    // A completed job succeeded exactly once; the others never did.
    CHECK(successes[index] == (state == JobState::kCompleted ? 1 : 0));
    CHECK(runs[index] >= 1);
    CHECK(runs[index] <= 3);
    if (state == JobState::kDead) CHECK(runs[index] == 3);
  }
  CHECK(metrics->dead > 0);
  CHECK(metrics->failed > 0);
}

TEST_CASE("priority-class limits cap concurrent jobs without starving low priority") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  for (int i = 0; i < 40; ++i) enqueue_ok(*queue, job_spec("work", "{}", Priority::kHigh));
  for (int i = 0; i < 6; ++i) enqueue_ok(*queue, job_spec("work", "{}", Priority::kLow));

  WorkerPoolOptions options = fast_options(6);
  options.limits = {/*low=*/2, /*normal=*/5, /*high=*/3, /*critical=*/10};
  options.prefetch = 8;
  auto pool = make_pool(queue, options);

  std::mutex mutex;
  std::array<int, kPriorityClassCount> running{}, peak{};
  int high_done = 0;
  int low_started_while_high_left = 0;
  REQUIRE(pool->register_handler("work", [&](JobContext& context) -> Status {
    const int c = priority_class_index(context.job().priority);
    {
      std::lock_guard lock(mutex);
      peak[c] = std::max(peak[c], ++running[c]);
      if (c == 0 && high_done < 40) ++low_started_while_high_left;
    }
    std::this_thread::sleep_for(20ms);
    std::lock_guard lock(mutex);
    --running[c];
    if (c == 2) ++high_done;
    return Status();
  }).is_ok());
  auto stats = pool->run_until_idle(60s);
  REQUIRE(stats.is_ok());
  CHECK(stats->completed == 46);
  CHECK(peak[2] <= 3);
  CHECK(peak[0] <= 2);
  CHECK(peak[2] >= 2);
  // Low-priority jobs ran beside the high ones instead of waiting for all of them.
  CHECK(low_started_while_high_left > 0);
}

TEST_CASE("cancel reaches a running handler through its token") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  const JobId id = enqueue_ok(*queue, job_spec("long"));
  auto pool = make_pool(queue, fast_options(2));
  std::atomic<bool> started{false};
  std::atomic<bool> saw_cancel{false};
  REQUIRE(pool->register_handler("long", [&](JobContext& context) -> Status {
    started = true;
    const auto limit = std::chrono::steady_clock::now() + 30s;
    while (!context.cancel_requested() && std::chrono::steady_clock::now() < limit) std::this_thread::sleep_for(5ms);
    saw_cancel = context.cancel_requested();
    return Status(StatusCode::kCancelled, "stopped on request");
  }).is_ok());
  REQUIRE(pool->start().is_ok());
  REQUIRE(eventually([&] { return started.load(); }));

  auto outcome = queue->cancel(id);
  REQUIRE(outcome.is_ok());
  CHECK(*outcome == CancelOutcome::kRequested);
  REQUIRE(eventually([&] { return state_of(*queue, id) == JobState::kCancelled; }));
  CHECK(saw_cancel);
  REQUIRE(pool->shutdown(5s).is_ok());
  CHECK(pool->stats().cancelled == 1);
}

TEST_CASE("the pool heartbeats a job that runs longer than its lease") {
  ScratchDir dir;
  auto store = open_store(dir.file("q.db"));
  auto queue = make_queue(store);
  const JobId id = enqueue_ok(*queue, job_spec("slow"));
  WorkerPoolOptions options = fast_options(1);
  options.lease_duration = 300ms;
  options.heartbeat_interval = 60ms;
  auto pool = make_pool(queue, options);
  REQUIRE(pool->register_handler("slow", [&](JobContext&) -> Status {
    std::this_thread::sleep_for(1200ms);
    return Status();
  }).is_ok());

  // A rescuer from another store object runs all along.
  auto rescuer = make_queue(open_store(dir.file("q.db")));
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> rescued{0};
  std::thread rescue([&] {
    while (!stop) {
      auto report = rescuer->run_maintenance();
      if (report.is_ok()) rescued += report->stalled_requeued + report->stalled_failed;
      std::this_thread::sleep_for(20ms);
    }
  });
  auto stats = pool->run_until_idle(30s);
  stop = true;
  rescue.join();
  REQUIRE(stats.is_ok());
  CHECK(stats->completed == 1);
  CHECK(rescued == 0);
  auto job = queue->get(id);
  CHECK(job->state == JobState::kCompleted);
  CHECK(job->stalls == 0);
  CHECK(job->attempts == 1);
}

TEST_CASE("snooze puts the job back without using an attempt") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  JobSpec spec = job_spec("limited");
  spec.max_attempts = 1;
  const JobId id = enqueue_ok(*queue, spec);
  auto pool = make_pool(queue, fast_options(1));
  std::atomic<int> runs{0};
  REQUIRE(pool->register_handler("limited", [&](JobContext& context) -> Status {
    if (++runs < 3) context.snooze(30ms);
    return Status();
  }).is_ok());
  auto stats = pool->run_until_idle(30s);
  REQUIRE(stats.is_ok());
  CHECK(runs == 3);
  CHECK(stats->released == 2);
  auto job = queue->get(id);
  CHECK(job->state == JobState::kCompleted);
  CHECK(job->attempts == 1);
}

TEST_CASE("handler errors map to error classes") {
  ScratchDir dir;
  JobQueueOptions queue_options;
  queue_options.retry_policy = immediate_retries();
  auto queue = make_queue(open_store(dir.file("q.db")), queue_options);
  const JobId thrown = enqueue_ok(*queue, job_spec("throws"));
  const JobId permanent = enqueue_ok(*queue, job_spec("permanent"));
  const JobId explicit_class = enqueue_ok(*queue, job_spec("explicit"));
  auto pool = make_pool(queue, fast_options(2));
  REQUIRE(pool->register_handler("throws", [](JobContext&) -> Status { throw std::runtime_error("socket closed"); })
              .is_ok());
  REQUIRE(pool->register_handler("permanent", [](JobContext&) { return invalid_argument("bad audience"); }).is_ok());
  REQUIRE(pool->register_handler("explicit", [](JobContext& context) {
    context.set_error_class(ErrorClass::kPermanent);
    return unavailable("account disabled");
  }).is_ok());
  REQUIRE(pool->run_until_idle(30s).is_ok());

  auto job = queue->get(thrown);
  CHECK(job->state == JobState::kDead);
  CHECK(job->attempts == 3);
  CHECK(job->last_error == "internal: handler for job type 'throws' threw: socket closed");
  CHECK(job->last_error_class == ErrorClass::kTransient);
  job = queue->get(permanent);
  CHECK(job->state == JobState::kFailed);
  CHECK(job->attempts == 1);
  CHECK(job->last_error == "invalid_argument: bad audience");
  job = queue->get(explicit_class);
  CHECK(job->state == JobState::kFailed);
  CHECK(job->last_error_class == ErrorClass::kPermanent);
}

TEST_CASE("progress reported by a handler is stored") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  const JobId id = enqueue_ok(*queue, job_spec("p"));
  auto pool = make_pool(queue, fast_options(1));
  REQUIRE(pool->register_handler("p", [](JobContext& context) {
    return context.report_progress(R"({"percent":100,"accepted":12})");
  }).is_ok());
  REQUIRE(pool->run_until_idle(30s).is_ok());
  CHECK(queue->get(id)->progress == R"({"percent":100,"accepted":12})");
}

TEST_CASE("shutdown finishes quick jobs and releases overdue ones") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  const JobId quick = enqueue_ok(*queue, job_spec("quick"));
  const JobId stubborn = enqueue_ok(*queue, job_spec("stubborn"));
  auto pool = make_pool(queue, fast_options(2));
  std::atomic<int> started{0};
  std::atomic<bool> saw_cancel{false};
  REQUIRE(pool->register_handler("quick", [&](JobContext&) {
    ++started;
    std::this_thread::sleep_for(100ms);
    return Status();
  }).is_ok());
  REQUIRE(pool->register_handler("stubborn", [&](JobContext& context) {
    ++started;
    // Ignores its token for a while, then notices it.
    std::this_thread::sleep_for(600ms);
    saw_cancel = context.cancel_requested();
    return Status();
  }).is_ok());
  REQUIRE(pool->start().is_ok());
  REQUIRE(eventually([&] { return started == 2; }));
  REQUIRE(pool->shutdown(300ms).is_ok());

  CHECK(state_of(*queue, quick) == JobState::kCompleted);
  auto job = queue->get(stubborn);
  CHECK(job->state == JobState::kWaiting);
  CHECK(job->attempts == 0);
  CHECK(saw_cancel);
  CHECK(pool->stats().released == 1);
  CHECK(pool->stats().completed == 1);
}

TEST_CASE("run_until_idle stops at its timeout while jobs remain") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  JobSpec later = job_spec("t");
  later.delay = 10min;
  enqueue_ok(*queue, later);
  auto pool = make_pool(queue, fast_options(1));
  REQUIRE(pool->register_handler("t", [](JobContext&) { return Status(); }).is_ok());
  auto stats = pool->run_until_idle(200ms);
  REQUIRE_FALSE(stats.is_ok());
  CHECK(stats.status().code() == StatusCode::kDeadlineExceeded);

  auto second = make_pool(queue, fast_options(1));
  REQUIRE(second->register_handler("t", [](JobContext&) { return Status(); }).is_ok());
  auto without_delayed = second->run_until_idle(30s, /*wait_for_delayed=*/false);
  CHECK(without_delayed.is_ok());
}

// SQLite only: it holds the file's write lock from a second connection.
TEST_CASE("a failed completion write is retried until it is recorded" * doctest::test_suite("sqlite")) {
  ScratchDir dir;
  const std::string path = dir.file("q.db");
  SqliteStoreOptions store_options;
  store_options.busy_timeout = 20ms;
  auto queue = make_queue(open_store(path, store_options));
  const JobId id = enqueue_ok(*queue, job_spec("t"));
  auto pool = make_pool(queue, fast_options(1));

  // Another connection takes the write lock while the handler runs, so the completion write fails
  // with "busy" until the lock is released.
  sqlite3* blocker = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &blocker) == SQLITE_OK);
  std::atomic<bool> locked{false};
  REQUIRE(pool->register_handler("t", [&](JobContext&) {
    REQUIRE(sqlite3_exec(blocker, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
    locked = true;
    return Status();
  }).is_ok());
  REQUIRE(pool->start().is_ok());
  REQUIRE(eventually([&] { return locked.load(); }));
  std::this_thread::sleep_for(300ms);
  CHECK(state_of(*queue, id) == JobState::kActive);
  REQUIRE(sqlite3_exec(blocker, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(blocker);

  REQUIRE(eventually([&] { return state_of(*queue, id) == JobState::kCompleted; }));
  REQUIRE(pool->shutdown(5s).is_ok());
  CHECK(pool->stats().completed == 1);
}

TEST_CASE("concurrent enqueues of one dedup key create one job") {
  ScratchDir dir;
  const std::string path = dir.file("q.db");
  std::vector<std::thread> threads;
  std::mutex mutex;
  std::set<JobId> ids;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      // Each thread has its own store object, as separate processes would.
      auto queue = make_queue(open_store(path));
      for (int i = 0; i < 50; ++i) {
        JobSpec spec = job_spec("t");
        spec.dedup_key = "sync-vip-meta";
        auto result = queue->enqueue(spec);
        REQUIRE(result.is_ok());
        std::lock_guard lock(mutex);
        ids.insert(result->id);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(ids.size() == 1);
}

TEST_CASE("pool options and handlers are checked") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  WorkerPoolOptions options;
  options.heartbeat_interval = options.lease_duration;
  auto bad = WorkerPool::create(queue, options);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message() ==
        "heartbeat_interval is 30000 ms; expected more than 0 and less than lease_duration (30000 ms)");

  auto pool = make_pool(queue, fast_options(1));
  CHECK(pool->start().code() == StatusCode::kFailedPrecondition);
  REQUIRE(pool->register_handler("t", [](JobContext&) { return Status(); }).is_ok());
  CHECK(pool->register_handler("t", [](JobContext&) { return Status(); }).code() == StatusCode::kAlreadyExists);
  REQUIRE(pool->start().is_ok());
  CHECK(pool->register_handler("u", [](JobContext&) { return Status(); }).code() == StatusCode::kFailedPrecondition);
  REQUIRE(pool->shutdown(1s).is_ok());
}

}  // namespace
}  // namespace activation
