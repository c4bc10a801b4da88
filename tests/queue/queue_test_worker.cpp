// A worker process for the queue suite's multi-process tests, which start, kill -9, SIGSTOP and
// SIGCONT it. It prints what it did, one line per event, so the tests can follow it.
//
//   queue_test_worker claim STORE OUT LEASE_MS        claim and complete jobs until none is left
//   queue_test_worker hold STORE LEASE_MS HOLD_MS     claim one job, wait without heartbeats, complete
//   queue_test_worker pool STORE LOG THREADS LEASE_MS HEARTBEAT_MS
//                                                     run a worker pool until SIGTERM
//   queue_test_worker limit STORE LOG RATE BURST COUNT take COUNT tokens from the limiter shared
//                                                     through the store, logging when each is usable
//
// STORE is the path of the SQLite file; with ACTIVATION_TEST_STORE=postgresql it stands for a
// schema of the PostgreSQL test database (see queue_test_support.hpp). Besides "sleep" jobs, the
// pool runs "distribute" jobs: {"audience": A, "members": M, "batch": B, "ms": T} sends members
// m0..m(M-1) of A in batches of B, committing each batch's ledger rows with its checkpoint and
// resuming after the last committed batch, like a destination of the engine.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "activation/backend/store.hpp"
#include "activation/checkpointer.hpp"
#include "activation/job_queue.hpp"
#include "activation/store_rate_limiter.hpp"
#include "activation/worker_pool.hpp"

// Only the store helpers of the suite's header are used here, without doctest's runner.
#define DOCTEST_CONFIG_DISABLE
#include "queue_test_support.hpp"

namespace {

using namespace activation;
using namespace std::chrono_literals;

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "queue_test_worker: %s\n", message.c_str());
  std::exit(2);
}

std::shared_ptr<Store> open_worker_store(const std::string& path) {
  auto store = activation::testing::open_test_store(path);
  if (!store.is_ok()) die(store.status().to_string());
  return std::move(store).value();
}

std::shared_ptr<JobQueue> open_queue(const std::string& path) {
  auto queue = JobQueue::create(open_worker_store(path));
  if (!queue.is_ok()) die(queue.status().to_string());
  return std::move(queue).value();
}

// Appends one line with a single write(2), so lines of several processes never interleave.
void append_line(int fd, const std::string& line) {
  const std::string text = line + "\n";
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) die("write to the log failed");
}

int run_claim(const std::string& store, const std::string& out, int lease_ms) {
  auto queue = open_queue(store);
  const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) die("cannot open " + out);
  const std::string worker = make_worker_id();
  // Waits up to 20 s for the first job, then stops once no job was found for 2 s (a loaded machine
  // can hold a process back for hundreds of milliseconds).
  bool claimed_any = false;
  auto idle_since = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - idle_since < (claimed_any ? 2000ms : 20000ms)) {
    auto claimed = queue->claim_one(worker, std::chrono::milliseconds(lease_ms));
    if (!claimed.is_ok()) die(claimed.status().to_string());
    if (!claimed->has_value()) {
      std::this_thread::sleep_for(1ms);
      continue;
    }
    claimed_any = true;
    idle_since = std::chrono::steady_clock::now();
    const Lease& lease = (*claimed)->lease;
    append_line(fd, fmt::format("{} {}", lease.job_id, lease.epoch));
    if (Status done = queue->complete(lease); !done.is_ok()) die(done.to_string());
    // A pause as short as real work, so the other process's claims interleave with this one's.
    std::this_thread::sleep_for(100us);
  }
  ::close(fd);
  return 0;
}

int run_hold(const std::string& store, int lease_ms, int hold_ms) {
  auto queue = open_queue(store);
  const std::string worker = make_worker_id();
  std::optional<ClaimedJob> claimed;
  const auto limit = std::chrono::steady_clock::now() + 20s;
  while (!claimed && std::chrono::steady_clock::now() < limit) {
    auto attempt = queue->claim_one(worker, std::chrono::milliseconds(lease_ms));
    if (!attempt.is_ok()) die(attempt.status().to_string());
    claimed = *attempt;
    if (!claimed) std::this_thread::sleep_for(5ms);
  }
  if (!claimed) die("no job to claim");
  std::printf("claimed %lld %lld\n", static_cast<long long>(claimed->lease.job_id),
              static_cast<long long>(claimed->lease.epoch));
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
  Status done = queue->complete(claimed->lease);
  std::printf("complete %s\n", std::string(status_code_name(done.code())).c_str());
  std::fflush(stdout);
  return 0;
}

// Sends the members of a "distribute" job batch by batch; see the comment at the top.
Status run_distribution(JobContext& context, Checkpointer& checkpoints, int fd, long pid) {
  const auto payload = nlohmann::json::parse(context.job().payload);
  const std::string audience = payload.value("audience", "a");
  const int members = payload.value("members", 0);
  const int batch_size = std::max(1, payload.value("batch", 1));
  const int pause_ms = payload.value("ms", 0);
  const JobId id = context.job().id;

  ACT_ASSIGN_OR_RETURN(auto saved, checkpoints.load(id, "dest"));
  std::int64_t batch = saved ? saved->batch_number : 0;
  append_line(fd, fmt::format("start {} {} {} from {}", id, context.lease().attempt, pid, batch));
  const int batches = (members + batch_size - 1) / batch_size;
  while (batch < batches) {
    if (context.cancel_requested()) return Status(StatusCode::kCancelled, "cancel requested");
    ++batch;
    LedgerBatch ledger;
    ledger.audience = audience;
    ledger.destination = "dest";
    for (int m = static_cast<int>(batch - 1) * batch_size; m < std::min(members, static_cast<int>(batch) * batch_size); ++m) {
      ledger.updates.push_back({fmt::format("m{:06}", m), R"({"email":"x"})", LedgerOperation::kAdd,
                                LedgerOutcome::kAccepted, ""});
    }
    // The platform call this batch stands for.
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    Checkpoint checkpoint;
    checkpoint.job_id = id;
    checkpoint.destination = "dest";
    checkpoint.batch_number = batch;
    checkpoint.source_position = std::to_string(batch * batch_size);
    Status committed = checkpoints.commit_batch(checkpoint, ledger, &context.lease());
    if (!committed.is_ok()) {
      append_line(fd, fmt::format("error {} {} {}", id, pid, committed.to_string()));
      return committed;
    }
    append_line(fd, fmt::format("batch {} {} {}", id, batch, pid));
  }
  append_line(fd, fmt::format("done {} {}", id, pid));
  return Status();
}

// Takes `count` tokens one by one and logs, in microseconds of the system clock, the time from
// which each token could be used: the clock before the reservation plus the wait it was granted.
// Logging the moment this process woke up instead would bunch tokens whenever the scheduler wakes
// it late, which shows nothing about the limiter.
int run_limit(const std::string& store, const std::string& log, double rate, double burst, int count) {
  RateLimitPolicy policy;
  policy.rate_per_second = rate;
  policy.burst = burst;
  auto limiter = make_store_rate_limiter(open_worker_store(store), policy, "test:");
  if (!limiter.is_ok()) die(limiter.status().to_string());
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) die("cannot open " + log);
  const long pid = static_cast<long>(::getpid());
  for (int i = 0; i < count; ++i) {
    const auto before = std::chrono::system_clock::now();
    auto grant = (*limiter)->acquire("account");
    if (!grant.is_ok()) die(grant.status().to_string());
    const auto usable = std::chrono::duration_cast<std::chrono::microseconds>((before + grant->wait).time_since_epoch());
    append_line(fd, fmt::format("token {} {}", usable.count(), pid));
  }
  ::close(fd);
  return 0;
}

int run_pool(const std::string& store, const std::string& log, int threads, int lease_ms, int heartbeat_ms) {
  // SIGTERM is taken by sigwait() below, so block it before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto queue = open_queue(store);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) die("cannot open " + log);

  WorkerPoolOptions options;
  options.threads = threads;
  options.limits = {threads, threads, threads, threads};
  options.lease_duration = std::chrono::milliseconds(lease_ms);
  options.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);
  options.maintenance_interval = std::chrono::milliseconds(heartbeat_ms);
  auto pool = WorkerPool::create(queue, options);
  if (!pool.is_ok()) die(pool.status().to_string());
  const long pid = static_cast<long>(::getpid());
  Status registered = (*pool)->register_handler("sleep", [&](JobContext& context) -> Status {
    append_line(fd, fmt::format("start {} {} {}", context.job().id, context.lease().attempt, pid));
    const auto payload = nlohmann::json::parse(context.job().payload);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(payload.value("ms", 0));
    while (std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(2ms);
    append_line(fd, fmt::format("done {} {}", context.job().id, pid));
    return Status();
  });
  if (!registered.is_ok()) die(registered.to_string());
  auto checkpointer = Checkpointer::create(queue->store());
  if (!checkpointer.is_ok()) die(checkpointer.status().to_string());
  registered = (*pool)->register_handler("distribute", [&, checkpoints = *checkpointer](JobContext& context) -> Status {
    return run_distribution(context, *checkpoints, fd, pid);
  });
  if (!registered.is_ok()) die(registered.to_string());
  if (Status started = (*pool)->start(); !started.is_ok()) die(started.to_string());

  int received = 0;
  sigwait(&signals, &received);
  (void)(*pool)->shutdown(std::chrono::milliseconds(lease_ms));
  const WorkerPoolStats stats = (*pool)->stats();
  std::printf("stats completed=%lld conflicts=%lld\n", static_cast<long long>(stats.completed),
              static_cast<long long>(stats.conflicts));
  std::fflush(stdout);
  ::close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "claim" && argc == 5) return run_claim(argv[2], argv[3], std::atoi(argv[4]));
  if (mode == "hold" && argc == 5) return run_hold(argv[2], std::atoi(argv[3]), std::atoi(argv[4]));
  if (mode == "pool" && argc == 7) {
    return run_pool(argv[2], argv[3], std::atoi(argv[4]), std::atoi(argv[5]), std::atoi(argv[6]));
  }
  if (mode == "limit" && argc == 7) {
    return run_limit(argv[2], argv[3], std::atof(argv[4]), std::atof(argv[5]), std::atoi(argv[6]));
  }
  die("usage: queue_test_worker claim|hold|pool|limit ... (see the comment at the top of the source)");
}
