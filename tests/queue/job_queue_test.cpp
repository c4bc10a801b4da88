// JobQueue over a real SQLite file: ordering, deduplication, leases, retries, dead letters,
// cancellation, retention and metrics.
#include <doctest/doctest.h>

#include <set>

#include "queue_test_support.hpp"

namespace activation {
namespace {

using namespace std::chrono_literals;
using testing::claim_ok;
using testing::enqueue_ok;
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

TEST_CASE("enqueue stores every field and get returns it") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));

  JobSpec spec = job_spec("distribute", R"({"audience":"vip"})", Priority::kHigh);
  spec.max_attempts = 7;
  spec.audience = "vip";
  spec.dedup_key = "vip-daily";
  spec.delay = 60s;
  RetryPolicy policy;
  policy.transient = {BackoffKind::kFixed, 250ms, 250ms, false};
  spec.retry_policy = policy;

  const JobId id = enqueue_ok(*queue, spec);
  auto job = queue->get(id);
  REQUIRE(job.is_ok());
  CHECK(job->type == "distribute");
  CHECK(job->payload == R"({"audience":"vip"})");
  CHECK(job->priority == Priority::kHigh);
  CHECK(job->state == JobState::kDelayed);
  CHECK(job->max_attempts == 7);
  CHECK(job->attempts == 0);
  CHECK(job->audience == "vip");
  CHECK(job->dedup_key == "vip-daily");
  REQUIRE(job->retry_policy.has_value());
  CHECK(*job->retry_policy == policy);
  // The due time is the store's clock at insert plus the delay.
  CHECK(job->due_at - job->created_at == 60s);
}

TEST_CASE("get of an unknown job is not found") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  auto job = queue->get(12345);
  REQUIRE_FALSE(job.is_ok());
  CHECK(job.status().code() == StatusCode::kNotFound);
  CHECK(job.status().message() == "job 12345 does not exist");
}

TEST_CASE("enqueue rejects bad input and leaves the store unchanged") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));

  SUBCASE("payload that is not JSON") {
    auto result = queue->enqueue(job_spec("t", "{not json"));
    REQUIRE_FALSE(result.is_ok());
    CHECK(result.status().code() == StatusCode::kInvalidArgument);
    CHECK(result.status().message().rfind("job.payload is not valid JSON: ", 0) == 0);
  }
  SUBCASE("empty type") {
    auto result = queue->enqueue(job_spec(""));
    REQUIRE_FALSE(result.is_ok());
    CHECK(result.status().message() == "job.type is empty; expected the job type name");
  }
  SUBCASE("unknown priority") {
    auto result = queue->enqueue(job_spec("t", "{}", static_cast<Priority>(7)));
    REQUIRE_FALSE(result.is_ok());
    CHECK(result.status().message() ==
          "job.priority is 7; expected 1 (low), 5 (normal), 10 (high) or 20 (critical)");
  }
  SUBCASE("negative delay") {
    JobSpec spec = job_spec("t");
    spec.delay = -5ms;
    auto result = queue->enqueue(spec);
    REQUIRE_FALSE(result.is_ok());
    CHECK(result.status().message() == "job.delay is -5 ms; expected 0 or more");
  }
  SUBCASE("bulk with one bad payload inserts nothing") {
    std::vector<JobSpec> specs = {job_spec("t"), job_spec("t"), job_spec("t", "[1,2"), job_spec("t")};
    auto result = queue->enqueue_bulk(specs);
    REQUIRE_FALSE(result.is_ok());
    CHECK(result.status().message().rfind("jobs[2].payload is not valid JSON: ", 0) == 0);
  }

  auto metrics = queue->metrics();
  REQUIRE(metrics.is_ok());
  CHECK(metrics->waiting == 0);
  CHECK(metrics->delayed == 0);
}

TEST_CASE("claim order is priority, then due time, then first in") {
  ScratchDir dir;
  auto store = open_store(dir.file("q.db"));
  auto queue = make_queue(store);
  const Timestamp now = store->now().value();

  const auto add = [&](Priority priority, std::chrono::milliseconds age) {
    JobSpec spec = job_spec("t", "{}", priority);
    spec.run_at = now - age;
    return enqueue_ok(*queue, spec);
  };
  const JobId low_old = add(Priority::kLow, 10s);
  const JobId normal_new = add(Priority::kNormal, 1s);
  const JobId normal_old = add(Priority::kNormal, 5s);
  const JobId critical = add(Priority::kCritical, 0ms);
  const JobId high_a = add(Priority::kHigh, 2s);
  const JobId high_b = add(Priority::kHigh, 2s);  // Same due time: first in goes first.

  std::vector<JobId> order;
  while (true) {
    auto claimed = queue->claim_one("w");
    REQUIRE(claimed.is_ok());
    if (!claimed->has_value()) break;
    order.push_back((*claimed)->job.id);
  }
  CHECK(order == std::vector<JobId>{critical, high_a, high_b, normal_old, normal_new, low_old});
}

TEST_CASE("claim returns nothing when nothing is due") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  JobSpec later = job_spec("t");
  later.delay = 10min;
  enqueue_ok(*queue, later);

  auto claimed = queue->claim_one("w");
  REQUIRE(claimed.is_ok());
  CHECK_FALSE(claimed->has_value());
  REQUIRE(queue->run_maintenance().is_ok());
  claimed = queue->claim_one("w");
  REQUIRE(claimed.is_ok());
  CHECK_FALSE(claimed->has_value());
}

TEST_CASE("delayed job becomes claimable once due") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  JobSpec spec = job_spec("t");
  spec.delay = 150ms;
  const JobId id = enqueue_ok(*queue, spec);
  CHECK(state_of(*queue, id) == JobState::kDelayed);

  std::optional<ClaimedJob> claimed;
  CHECK(testing::eventually([&] {
    REQUIRE(queue->run_maintenance().is_ok());
    auto attempt = queue->claim_one("w");
    REQUIRE(attempt.is_ok());
    claimed = *attempt;
    return claimed.has_value();
  }));
  REQUIRE(claimed.has_value());
  CHECK(claimed->job.id == id);
}

TEST_CASE("claim respects the per-class limits and job types") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  for (int i = 0; i < 5; ++i) enqueue_ok(*queue, job_spec("a", "{}", Priority::kLow));
  for (int i = 0; i < 5; ++i) enqueue_ok(*queue, job_spec("b", "{}", Priority::kHigh));

  ClaimRequest request;
  request.worker_id = "w";
  request.max_jobs = 10;
  request.max_per_class = {2, 0, 1, 0};
  auto claimed = queue->claim(request);
  REQUIRE(claimed.is_ok());
  REQUIRE(claimed->size() == 3);
  CHECK((*claimed)[0].job.priority == Priority::kHigh);
  CHECK((*claimed)[1].job.priority == Priority::kLow);
  CHECK((*claimed)[2].job.priority == Priority::kLow);

  request.max_per_class = {10, 10, 10, 10};
  request.types = {"a"};
  claimed = queue->claim(request);
  REQUIRE(claimed.is_ok());
  CHECK(claimed->size() == 3);
  for (const auto& c : *claimed) CHECK(c.job.type == "a");
}

TEST_CASE("dedup key returns the live job") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  JobSpec spec = job_spec("t");
  spec.dedup_key = "k";

  auto first = queue->enqueue(spec);
  REQUIRE(first.is_ok());
  CHECK(first->created);

  SUBCASE("while waiting") {
    auto second = queue->enqueue(spec);
    REQUIRE(second.is_ok());
    CHECK_FALSE(second->created);
    CHECK(second->id == first->id);
  }
  SUBCASE("while active, and not after completion") {
    ClaimedJob claimed = claim_ok(*queue);
    auto during = queue->enqueue(spec);
    REQUIRE(during.is_ok());
    CHECK(during->id == first->id);
    REQUIRE(queue->complete(claimed.lease).is_ok());
    auto after = queue->enqueue(spec);
    REQUIRE(after.is_ok());
    CHECK(after->created);
    CHECK(after->id != first->id);
  }
  SUBCASE("bulk enqueue shares the path, within one call too") {
    JobSpec other = job_spec("t");
    other.dedup_key = "other";
    std::vector<JobSpec> specs = {spec, other, other};
    auto results = queue->enqueue_bulk(specs);
    REQUIRE(results.is_ok());
    REQUIRE(results->size() == 3);
    CHECK((*results)[0].id == first->id);
    CHECK_FALSE((*results)[0].created);
    CHECK((*results)[1].created);
    CHECK((*results)[2].id == (*results)[1].id);
    CHECK_FALSE((*results)[2].created);
  }
  SUBCASE("an expired job frees its key") {
    REQUIRE(queue->cancel(first->id).is_ok());
    auto again = queue->enqueue(spec);
    REQUIRE(again.is_ok());
    CHECK(again->created);
    // Retrying the cancelled job now would hold the key twice.
    auto retried = queue->retry(first->id);
    REQUIRE_FALSE(retried.is_ok());
    CHECK(retried.status().code() == StatusCode::kAlreadyExists);
    CHECK(retried.status().message() ==
          fmt::format("job {} cannot be retried: its dedup key 'k' is held by live job {}", first->id, again->id));
  }
}

TEST_CASE("expired job ends cancelled and is never claimed") {
  ScratchDir dir;
  auto store = open_store(dir.file("q.db"));
  auto queue = make_queue(store);
  JobSpec spec = job_spec("t");
  spec.expires_at = store->now().value() - 1ms;
  spec.dedup_key = "expiring";
  const JobId id = enqueue_ok(*queue, spec);

  auto claimed = queue->claim_one("w");
  REQUIRE(claimed.is_ok());
  CHECK_FALSE(claimed->has_value());

  auto report = queue->run_maintenance();
  REQUIRE(report.is_ok());
  CHECK(report->expired == 1);
  auto job = queue->get(id);
  REQUIRE(job.is_ok());
  CHECK(job->state == JobState::kCancelled);
  CHECK(job->reason == "expired");
  // Maintenance released the dedup key with the job.
  auto again = queue->enqueue(spec);
  REQUIRE(again.is_ok());
  CHECK(again->created);
}

TEST_CASE("a started job no longer expires") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  JobSpec spec = job_spec("t");
  spec.expire_after = 100ms;
  const JobId id = enqueue_ok(*queue, spec);
  ClaimedJob claimed = claim_ok(*queue);
  REQUIRE(queue->release(claimed.lease).is_ok());
  std::this_thread::sleep_for(150ms);
  REQUIRE(queue->run_maintenance().is_ok());
  CHECK(state_of(*queue, id) == JobState::kWaiting);
}

TEST_CASE("a late worker whose lease was taken gets a conflict") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  const JobId id = enqueue_ok(*queue, job_spec("t"));
  ClaimedJob late = claim_ok(*queue, "late-worker", 30ms);
  std::this_thread::sleep_for(60ms);

  auto report = queue->run_maintenance();
  REQUIRE(report.is_ok());
  CHECK(report->stalled_requeued == 1);
  auto job = queue->get(id);
  REQUIRE(job.is_ok());
  CHECK(job->state == JobState::kWaiting);
  CHECK(job->stalls == 1);
  CHECK(job->attempts == 0);
  CHECK(job->last_error == "lease of worker late-worker expired without a heartbeat");

  ClaimedJob current = claim_ok(*queue, "current-worker");
  CHECK(current.lease.epoch == late.lease.epoch + 1);

  const std::string expected = fmt::format(
      "lease epoch {} was lost; the job is now active with lease epoch {}", late.lease.epoch, current.lease.epoch);
  Status completed = queue->complete(late.lease);
  CHECK(completed.code() == StatusCode::kConflict);
  CHECK(completed.message() == fmt::format("cannot finish job {}: {}", id, expected));
  auto failed = queue->fail(late, {ErrorClass::kTransient, "late", std::nullopt});
  CHECK(failed.status().code() == StatusCode::kConflict);
  CHECK(queue->set_progress(late.lease, "{}").code() == StatusCode::kConflict);
  CHECK(queue->release(late.lease).code() == StatusCode::kConflict);
  auto beat = queue->heartbeat(late.lease, 30s);
  REQUIRE(beat.is_ok());
  CHECK(beat->status.code() == StatusCode::kConflict);

  // The current owner is untouched by all of that.
  REQUIRE(queue->complete(current.lease).is_ok());
  CHECK(state_of(*queue, id) == JobState::kCompleted);
}

TEST_CASE("a finished job is never touched by a late rescue") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  const JobId id = enqueue_ok(*queue, job_spec("t"));
  ClaimedJob claimed = claim_ok(*queue, "w", 20ms);
  std::this_thread::sleep_for(40ms);
  // The lease expired, but the worker finishes before any rescuer runs: completion wins.
  REQUIRE(queue->complete(claimed.lease).is_ok());
  auto report = queue->run_maintenance();
  REQUIRE(report.is_ok());
  CHECK(report->stalled_requeued == 0);
  CHECK(report->stalled_failed == 0);
  CHECK(state_of(*queue, id) == JobState::kCompleted);
}

TEST_CASE("heartbeats keep a job longer than its lease from being rescued") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  const JobId id = enqueue_ok(*queue, job_spec("t"));
  ClaimedJob claimed = claim_ok(*queue, "w", 100ms);
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(30ms);
    auto beat = queue->heartbeat(claimed.lease, 100ms);
    REQUIRE(beat.is_ok());
    REQUIRE(beat->status.is_ok());
    auto report = queue->run_maintenance();
    REQUIRE(report.is_ok());
    CHECK(report->stalled_requeued == 0);
  }
  CHECK(state_of(*queue, id) == JobState::kActive);
  REQUIRE(queue->complete(claimed.lease).is_ok());
}

TEST_CASE("a job that stalls too often fails") {
  ScratchDir dir;
  JobQueueOptions options;
  options.max_stalls = 1;
  auto queue = make_queue(open_store(dir.file("q.db")), options);
  const JobId id = enqueue_ok(*queue, job_spec("t"));

  for (int stall = 1; stall <= 2; ++stall) {
    claim_ok(*queue, "crashing-worker", 10ms);
    std::this_thread::sleep_for(25ms);
    REQUIRE(queue->run_maintenance().is_ok());
  }
  auto job = queue->get(id);
  REQUIRE(job.is_ok());
  CHECK(job->state == JobState::kFailed);
  CHECK(job->stalls == 2);
  CHECK(job->reason == "stalled 2 times");
}

TEST_CASE("backoff delays stay within their jitter bounds") {
  RetryPolicy policy;
  policy.transient = {BackoffKind::kExponential, 100ms, 5s, true};
  policy.rate_limited = {BackoffKind::kFixed, 30s, 30s, false};
  policy.timeout = {BackoffKind::kExponential, 1s, 4s, false};

  for (int retry = 1; retry <= 12; ++retry) {
    const auto ceiling = std::min<std::chrono::milliseconds>(5s, 100ms * (1LL << (retry - 1)));
    for (double unit : {0.0, 0.25, 0.5, 0.999999}) {
      auto delay = backoff_delay(policy, ErrorClass::kTransient, retry, unit);
      REQUIRE(delay.has_value());
      CHECK(*delay >= 0ms);
      CHECK(*delay <= ceiling);
    }
    auto top = backoff_delay(policy, ErrorClass::kTransient, retry, 0.999999);
    CHECK(*top >= ceiling - 1ms);
  }
  CHECK(backoff_delay(policy, ErrorClass::kRateLimited, 9, 0.3) == 30s);
  CHECK(backoff_delay(policy, ErrorClass::kTimeout, 1, 0.3) == 1s);
  CHECK(backoff_delay(policy, ErrorClass::kTimeout, 2, 0.3) == 2s);
  CHECK(backoff_delay(policy, ErrorClass::kTimeout, 3, 0.3) == 4s);
  CHECK(backoff_delay(policy, ErrorClass::kTimeout, 500, 0.3) == 4s);
  CHECK_FALSE(backoff_delay(policy, ErrorClass::kPermanent, 1, 0.3).has_value());
}

TEST_CASE("the queue's retry schedule follows the policy") {
  ScratchDir dir;
  JobQueueOptions options;
  options.max_attempts = 10;
  options.retry_policy.transient = {BackoffKind::kExponential, 1s, 8s, true};
  auto queue = make_queue(open_store(dir.file("q.db")), options);

  std::set<std::int64_t> seen;
  for (int i = 0; i < 200; ++i) {
    for (int retry = 1; retry <= 5; ++retry) {
      auto delay = queue->next_retry_delay(std::nullopt, ErrorClass::kTransient, retry);
      REQUIRE(delay.has_value());
      const auto ceiling = std::min<std::chrono::milliseconds>(8s, 1s * (1 << (retry - 1)));
      CHECK(*delay <= ceiling);
      CHECK(*delay >= 0ms);
      if (retry == 1) seen.insert(delay->count());
    }
  }
  // Full jitter spreads the delays: 200 draws over [0, 1000] ms land on many values.
  CHECK(seen.size() > 100);

  const JobId id = enqueue_ok(*queue, job_spec("t"));
  ClaimedJob claimed = claim_ok(*queue);
  auto outcome = queue->fail(claimed, {ErrorClass::kTransient, "HTTP 503", std::nullopt});
  REQUIRE(outcome.is_ok());
  CHECK(outcome->state == JobState::kDelayed);
  CHECK(outcome->retry_delay <= 1s);
  auto job = queue->get(id);
  REQUIRE(job.is_ok());
  CHECK(job->last_error == "HTTP 503");
  CHECK(job->last_error_class == ErrorClass::kTransient);
  CHECK(job->due_at - job->updated_at <= 1s);
}

TEST_CASE("retry_after is a lower bound on the delay") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  enqueue_ok(*queue, job_spec("t"));
  ClaimedJob claimed = claim_ok(*queue);
  auto outcome = queue->fail(claimed, {ErrorClass::kTransient, "429", 45s});
  REQUIRE(outcome.is_ok());
  CHECK(outcome->state == JobState::kDelayed);
  CHECK(outcome->retry_delay >= 45s);
}

TEST_CASE("the last failed attempt moves the job to the dead-letter queue") {
  ScratchDir dir;
  JobQueueOptions options;
  options.retry_policy = immediate_retries();
  auto queue = make_queue(open_store(dir.file("q.db")), options);
  const JobId id = enqueue_ok(*queue, job_spec("t"));

  for (int attempt = 1; attempt <= 3; ++attempt) {
    ClaimedJob claimed = claim_ok(*queue);
    CHECK(claimed.lease.attempt == attempt);
    auto outcome = queue->fail(claimed, {ErrorClass::kTransient, fmt::format("boom {}", attempt), std::nullopt});
    REQUIRE(outcome.is_ok());
    CHECK(outcome->state == (attempt < 3 ? JobState::kWaiting : JobState::kDead));
  }
  auto job = queue->get(id);
  REQUIRE(job.is_ok());
  CHECK(job->state == JobState::kDead);
  CHECK(job->reason == "attempt 3 of 3 failed (transient)");
  CHECK(job->last_error == "boom 3");

  auto dead = queue->dead_letters();
  REQUIRE(dead.is_ok());
  REQUIRE(dead->size() == 1);
  CHECK(dead->front().id == id);
}

TEST_CASE("a permanent error fails the job without retries") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  const JobId id = enqueue_ok(*queue, job_spec("t"));
  ClaimedJob claimed = claim_ok(*queue);
  auto outcome = queue->fail(claimed, {ErrorClass::kPermanent, "invalid audience id", std::nullopt});
  REQUIRE(outcome.is_ok());
  CHECK(outcome->state == JobState::kFailed);
  auto job = queue->get(id);
  REQUIRE(job.is_ok());
  CHECK(job->reason == "permanent error on attempt 1");
}

TEST_CASE("release gives the attempt back") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  const JobId id = enqueue_ok(*queue, job_spec("t"));
  ClaimedJob claimed = claim_ok(*queue);
  REQUIRE(queue->release(claimed.lease, 10min).is_ok());
  auto job = queue->get(id);
  REQUIRE(job.is_ok());
  CHECK(job->state == JobState::kDelayed);
  CHECK(job->attempts == 0);
}

// Puts a fresh job into `state` and returns its id.
JobId job_in_state(JobQueue& queue, JobState state) {
  JobSpec spec = job_spec("t");
  if (state == JobState::kDelayed) spec.delay = 10min;
  if (state != JobState::kWaiting && state != JobState::kDelayed) {
    // Ahead of any job left waiting by an earlier step, so the claim below takes this one.
    spec.priority = Priority::kCritical;
    spec.run_at = Timestamp(1ms);
  }
  const JobId id = enqueue_ok(queue, spec);
  if (state == JobState::kWaiting || state == JobState::kDelayed) return id;

  ClaimedJob claimed = claim_ok(queue);
  REQUIRE(claimed.job.id == id);
  switch (state) {
    case JobState::kActive: break;
    case JobState::kCompleted: REQUIRE(queue.complete(claimed.lease).is_ok()); break;
    case JobState::kFailed:
      REQUIRE(queue.fail(claimed, {ErrorClass::kPermanent, "bad", std::nullopt}).is_ok());
      break;
    case JobState::kDead: {
      claimed.lease.max_attempts = 1;  // Make this attempt the last one.
      JobFinish finish{claimed.lease, FinishKind::kFail, {ErrorClass::kTransient, "down", std::nullopt}, {}, {}};
      auto results = queue.finish(std::span<const JobFinish>(&finish, 1));
      REQUIRE(results.is_ok());
      REQUIRE(results->front().is_ok());
      break;
    }
    case JobState::kCancelled:
      REQUIRE(queue.cancel(id).is_ok());
      REQUIRE(queue.finish_cancelled(claimed.lease).is_ok());
      break;
    default: break;
  }
  REQUIRE(testing::state_of(queue, id) == state);
  return id;
}

TEST_CASE("cancel in every state") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));

  for (JobState state : {JobState::kWaiting, JobState::kDelayed}) {
    CAPTURE(job_state_name(state));
    const JobId id = job_in_state(*queue, state);
    auto outcome = queue->cancel(id);
    REQUIRE(outcome.is_ok());
    CHECK(*outcome == CancelOutcome::kCancelled);
    auto job = queue->get(id);
    CHECK(job->state == JobState::kCancelled);
    CHECK(job->reason == "cancelled");
  }

  {
    const JobId id = job_in_state(*queue, JobState::kActive);
    auto job = queue->get(id);
    Lease lease{id, job->lease_epoch, "test-worker", job->attempts, job->max_attempts, {}};
    auto outcome = queue->cancel(id);
    REQUIRE(outcome.is_ok());
    CHECK(*outcome == CancelOutcome::kRequested);
    CHECK(state_of(*queue, id) == JobState::kActive);
    auto beat = queue->heartbeat(lease, 30s);
    REQUIRE(beat.is_ok());
    CHECK(beat->status.is_ok());
    CHECK(beat->cancel_requested);
    REQUIRE(queue->finish_cancelled(lease).is_ok());
    CHECK(state_of(*queue, id) == JobState::kCancelled);
  }

  for (JobState state : {JobState::kCompleted, JobState::kFailed, JobState::kDead, JobState::kCancelled}) {
    CAPTURE(job_state_name(state));
    const JobId id = job_in_state(*queue, state);
    auto outcome = queue->cancel(id);
    REQUIRE_FALSE(outcome.is_ok());
    CHECK(outcome.status().code() == StatusCode::kFailedPrecondition);
    CHECK(outcome.status().message() ==
          fmt::format("job {} is {}; only waiting, delayed or active jobs can be cancelled", id,
                      job_state_name(state)));
    CHECK(state_of(*queue, id) == state);
  }

  auto unknown = queue->cancel(999999);
  CHECK(unknown.status().code() == StatusCode::kNotFound);
}

TEST_CASE("retry in every state") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));

  for (JobState state : {JobState::kFailed, JobState::kDead, JobState::kCancelled}) {
    CAPTURE(job_state_name(state));
    const JobId id = job_in_state(*queue, state);
    auto retried = queue->retry(id);
    REQUIRE(retried.is_ok());
    CHECK(retried->state == JobState::kWaiting);
    CHECK(retried->attempts == 0);
    CHECK(retried->stalls == 0);
    CHECK(retried->reason.empty());
    CHECK_FALSE(retried->finished_at.has_value());
    // It runs again.
    ClaimedJob claimed = claim_ok(*queue);
    CHECK(claimed.job.id == id);
    REQUIRE(queue->complete(claimed.lease).is_ok());
  }

  for (JobState state : {JobState::kWaiting, JobState::kDelayed, JobState::kActive, JobState::kCompleted}) {
    CAPTURE(job_state_name(state));
    const JobId id = job_in_state(*queue, state);
    auto retried = queue->retry(id);
    REQUIRE_FALSE(retried.is_ok());
    CHECK(retried.status().code() == StatusCode::kFailedPrecondition);
    CHECK(retried.status().message() ==
          fmt::format("job {} is {}; only failed, dead or cancelled jobs can be retried", id, job_state_name(state)));
    CHECK(state_of(*queue, id) == state);
    if (state == JobState::kActive) {
      auto job = queue->get(id);
      REQUIRE(queue->complete({id, job->lease_epoch, "test-worker", 1, 3, {}}).is_ok());
    }
  }
}

TEST_CASE("metrics count every state and the stalled jobs") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  job_in_state(*queue, JobState::kCompleted);
  job_in_state(*queue, JobState::kFailed);
  job_in_state(*queue, JobState::kDead);
  job_in_state(*queue, JobState::kCancelled);
  job_in_state(*queue, JobState::kDelayed);
  job_in_state(*queue, JobState::kWaiting);
  job_in_state(*queue, JobState::kWaiting);
  enqueue_ok(*queue, job_spec("stall"));
  // The two waiting jobs were enqueued first, so claim until the stalling one comes up.
  std::vector<ClaimedJob> claimed;
  for (int i = 0; i < 3; ++i) claimed.push_back(claim_ok(*queue, "w", 10ms));
  std::this_thread::sleep_for(20ms);

  auto metrics = queue->metrics();
  REQUIRE(metrics.is_ok());
  CHECK(metrics->waiting == 0);
  CHECK(metrics->delayed == 1);
  CHECK(metrics->active == 3);
  CHECK(metrics->stalled == 3);
  CHECK(metrics->completed == 1);
  CHECK(metrics->failed == 1);
  CHECK(metrics->dead == 1);
  CHECK(metrics->cancelled == 1);
}

TEST_CASE("history lists the jobs of one audience, newest first") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  std::vector<JobId> vip;
  for (int i = 0; i < 5; ++i) {
    JobSpec spec = job_spec("distribute");
    spec.audience = i % 2 == 0 ? "vip" : "churned";
    const JobId id = enqueue_ok(*queue, spec);
    if (i % 2 == 0) vip.push_back(id);
  }
  auto page = queue->history("vip", 2);
  REQUIRE(page.is_ok());
  REQUIRE(page->size() == 2);
  CHECK((*page)[0].id == vip[2]);
  CHECK((*page)[1].id == vip[1]);
  auto rest = queue->history("vip", 10, (*page)[1].id);
  REQUIRE(rest.is_ok());
  REQUIRE(rest->size() == 1);
  CHECK((*rest)[0].id == vip[0]);
}

TEST_CASE("prune removes completed jobs by count and age, and their checkpoints") {
  ScratchDir dir;
  auto store = open_store(dir.file("q.db"));
  auto queue = make_queue(store);
  auto checkpointer = Checkpointer::create(store).value();
  std::vector<JobId> completed;
  for (int i = 0; i < 30; ++i) completed.push_back(job_in_state(*queue, JobState::kCompleted));
  const JobId dead = job_in_state(*queue, JobState::kDead);
  Checkpoint checkpoint;
  checkpoint.job_id = completed.front();
  checkpoint.destination = "meta";
  REQUIRE(checkpointer->save(checkpoint).is_ok());

  RetentionPolicy by_count;
  by_count.completed_max_age.reset();
  by_count.completed_max_count = 10;
  auto report = queue->prune(by_count);
  REQUIRE(report.is_ok());
  CHECK(report->jobs_deleted == 20);
  CHECK(queue->get(completed.front()).status().code() == StatusCode::kNotFound);
  CHECK(queue->get(completed.back()).is_ok());
  auto gone = checkpointer->load(completed.front(), "meta");
  REQUIRE(gone.is_ok());
  CHECK_FALSE(gone->has_value());

  RetentionPolicy by_age;
  by_age.completed_max_age = 0ms;
  by_age.completed_max_count.reset();
  std::this_thread::sleep_for(5ms);
  report = queue->prune(by_age);
  REQUIRE(report.is_ok());
  CHECK(report->jobs_deleted == 10);
  // The dead-letter queue is kept unless terminal_max_age is set.
  CHECK(queue->get(dead).is_ok());
  by_age.terminal_max_age = 0ms;
  report = queue->prune(by_age);
  REQUIRE(report.is_ok());
  CHECK(report->jobs_deleted == 1);
}

TEST_CASE("progress must be JSON and is stored on the job") {
  ScratchDir dir;
  auto queue = make_queue(open_store(dir.file("q.db")));
  const JobId id = enqueue_ok(*queue, job_spec("t"));
  ClaimedJob claimed = claim_ok(*queue);
  REQUIRE(queue->set_progress(claimed.lease, R"({"percent":40})").is_ok());
  Status bad = queue->set_progress(claimed.lease, "40%");
  CHECK(bad.code() == StatusCode::kInvalidArgument);
  CHECK(queue->get(id)->progress == R"({"percent":40})");
}

TEST_CASE("names parse back") {
  for (int i = 0; i < kJobStateCount; ++i) {
    const auto state = static_cast<JobState>(i);
    CHECK(parse_job_state(job_state_name(state)) == state);
  }
  CHECK(parse_priority("critical") == Priority::kCritical);
  CHECK(parse_priority("10") == Priority::kHigh);
  CHECK_FALSE(parse_priority("7").has_value());
  CHECK(parse_error_class("rate_limited") == ErrorClass::kRateLimited);
  const std::string id = make_worker_id();
  CHECK(std::count(id.begin(), id.end(), ':') == 2);
  CHECK(make_worker_id() != id);
}

}  // namespace
}  // namespace activation
