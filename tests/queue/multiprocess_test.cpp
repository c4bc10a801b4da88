// Several worker processes on one store file, started, killed with SIGKILL and frozen with SIGSTOP
// by the test (the worker program is queue_test_worker.cpp).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "queue_test_support.hpp"
#include "worker_process.hpp"

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

using testing::count_lines_with_prefix;
using testing::read_lines;
using testing::WorkerProcess;

JobSpec sleep_job(int ms) { return job_spec("sleep", fmt::format(R"({{"ms":{}}})", ms)); }

// Returns the lines of a file as one text, for failure messages.
std::string file_text(const std::string& path) {
  std::string text;
  for (const auto& line : read_lines(path)) text += line + "\n";
  return text;
}

TEST_CASE("two processes claiming from one file never get the same job") {
  ScratchDir dir;
  const std::string store = dir.file("q.db");
  auto queue = make_queue(open_store(store));
  constexpr int kJobs = 3000;
  std::vector<JobSpec> specs(kJobs, job_spec("t"));

  {
    // Both processes are polling before the jobs arrive, so they compete for every one.
    WorkerProcess first({"claim", store, dir.file("first.txt"), "30000"}, dir.file("first.out"));
    WorkerProcess second({"claim", store, dir.file("second.txt"), "30000"}, dir.file("second.out"));
    std::this_thread::sleep_for(300ms);
    REQUIRE(queue->enqueue_bulk(specs).is_ok());
    CHECK(first.wait_exit(60s) == 0);
    CHECK(second.wait_exit(60s) == 0);
  }

  std::map<JobId, int> claims;
  std::size_t first_count = 0;
  for (const char* name : {"first.txt", "second.txt"}) {
    const auto lines = read_lines(dir.file(name));
    if (std::string(name) == "first.txt") first_count = lines.size();
    for (const auto& line : lines) {
      std::istringstream fields(line);
      JobId id = 0;
      fields >> id;
      ++claims[id];
    }
  }
  CHECK(claims.size() == kJobs);
  for (const auto& [id, count] : claims) CHECK_MESSAGE(count == 1, "job ", id, " was claimed ", count, " times");
  // Both processes took part, or the test proved nothing about exclusivity.
  CHECK(first_count > 0);
  CHECK(first_count < kJobs);
  CHECK(queue->metrics()->completed == kJobs);
}

TEST_CASE("a job killed with its worker runs exactly once more after its lease") {
  ScratchDir dir;
  const std::string store = dir.file("q.db");
  const std::string log = dir.file("runs.log");
  auto queue = make_queue(open_store(store));
  const JobId id = enqueue_ok(*queue, sleep_job(1500));
  const std::string start_line = fmt::format("start {} ", id);

  WorkerProcess doomed({"pool", store, log, "1", "600", "100"}, dir.file("doomed.out"));
  REQUIRE(eventually([&] { return count_lines_with_prefix(log, start_line) == 1; }));
  doomed.kill_hard();
  CHECK(state_of(*queue, id) == JobState::kActive);

  WorkerProcess survivor({"pool", store, log, "1", "600", "100"}, dir.file("survivor.out"));
  REQUIRE(eventually([&] { return state_of(*queue, id) == JobState::kCompleted; }, 30s));
  survivor.signal(SIGTERM);
  CHECK(survivor.wait_exit() == 0);

  CHECK(count_lines_with_prefix(log, start_line) == 2);
  CHECK(count_lines_with_prefix(log, fmt::format("done {} ", id)) == 1);
  auto job = queue->get(id);
  REQUIRE(job.is_ok());
  CHECK(job->stalls == 1);
  CHECK(job->lease_epoch == 2);
  // The second run belongs to the new process, whose identity differs from the dead one's.
  const auto lines = read_lines(log);
  CHECK(lines.back() == fmt::format("done {} {}", id, survivor.pid()));
}

TEST_CASE("a worker frozen past its lease has its late completion rejected") {
  ScratchDir dir;
  const std::string store = dir.file("q.db");
  auto queue = make_queue(open_store(store));
  const JobId id = enqueue_ok(*queue, job_spec("t"));

  WorkerProcess frozen({"hold", store, "200", "400"}, dir.file("frozen.out"));
  REQUIRE(eventually([&] { return count_lines_with_prefix(dir.file("frozen.out"), "claimed ") == 1; }));
  frozen.signal(SIGSTOP);

  // Its lease runs out; a rescuer requeues the job and another worker completes it.
  REQUIRE(eventually([&] {
    auto report = queue->run_maintenance();
    return report.is_ok() && report->stalled_requeued == 1;
  }));
  ClaimedJob current = testing::claim_ok(*queue, "other-worker");
  REQUIRE(current.job.id == id);
  REQUIRE(queue->complete(current.lease).is_ok());
  const Job done = queue->get(id).value();

  frozen.signal(SIGCONT);
  CHECK(frozen.wait_exit() == 0);
  const auto output = read_lines(dir.file("frozen.out"));
  REQUIRE(output.size() == 2);
  CHECK(output[0] == fmt::format("claimed {} 1", id));
  CHECK(output[1] == "complete conflict");
  const Job after = queue->get(id).value();
  CHECK(after.state == JobState::kCompleted);
  CHECK(after.lease_epoch == 2);
  CHECK(after.finished_at == done.finished_at);
}

TEST_CASE("a frozen worker pool loses its lease and its result is rejected") {
  ScratchDir dir;
  const std::string store = dir.file("q.db");
  const std::string log = dir.file("runs.log");
  auto queue = make_queue(open_store(store));
  const JobId id = enqueue_ok(*queue, sleep_job(700));
  const std::string start_line = fmt::format("start {} ", id);

  // Leases of 2 s. With 400 ms leases the wait for the thawed worker below timed out once on
  // PostgreSQL under load. The likely cause, not a confirmed one, is a stalled commit that let a
  // held lease expire, so that the job ran once more.
  WorkerProcess frozen({"pool", store, log, "1", "2000", "80"}, dir.file("frozen.out"));
  REQUIRE(eventually([&] { return count_lines_with_prefix(log, start_line) == 1; }));
  frozen.signal(SIGSTOP);

  WorkerProcess other({"pool", store, log, "1", "2000", "80"}, dir.file("other.out"));
  REQUIRE(eventually([&] { return state_of(*queue, id) == JobState::kCompleted; }, 30s));
  const Job done = queue->get(id).value();
  frozen.signal(SIGCONT);
  // The thawed worker finishes its run of the job, then its heartbeat or completion is refused.
  // The logs below are read only when the check fails.
  INFO("runs.log:\n" << file_text(log) << "frozen.out:\n" << file_text(dir.file("frozen.out")));
  REQUIRE(eventually([&] { return count_lines_with_prefix(log, fmt::format("done {} ", id)) == 2; }, 30s));
  frozen.signal(SIGTERM);
  CHECK(frozen.wait_exit() == 0);
  other.signal(SIGTERM);
  CHECK(other.wait_exit() == 0);

  CHECK(read_lines(dir.file("frozen.out")) == std::vector<std::string>{"stats completed=0 conflicts=1"});
  CHECK(read_lines(dir.file("other.out")) == std::vector<std::string>{"stats completed=1 conflicts=0"});
  const Job after = queue->get(id).value();
  CHECK(after.state == JobState::kCompleted);
  CHECK(after.finished_at == done.finished_at);
  CHECK(after.lease_epoch == 2);
}

// NOTE: SQLite only for now. On PostgreSQL, with the other suites running beside it, the restarted
// workers did not finish within the test's 60 s in one CI run; postgresql_store_test.cpp has the
// PostgreSQL kill -9 tests.
TEST_CASE("workers killed and restarted under load still complete every job" * doctest::test_suite("sqlite")) {
  ScratchDir dir;
  const std::string store = dir.file("q.db");
  const std::string log = dir.file("runs.log");
  auto queue = make_queue(open_store(store));
  constexpr int kJobs = 300;
  std::vector<JobSpec> specs(kJobs, sleep_job(10));
  auto ids = queue->enqueue_bulk(specs);
  REQUIRE(ids.is_ok());

  // Two workers at a time; every 250 ms the older one is killed and a new one started.
  std::vector<std::unique_ptr<WorkerProcess>> workers;
  int started = 0;
  const auto start_worker = [&] {
    workers.push_back(std::make_unique<WorkerProcess>(
        std::vector<std::string>{"pool", store, log, "4", "500", "100"}, dir.file(fmt::format("w{}.out", started++))));
  };
  start_worker();
  start_worker();
  int kills = 0;
  for (int round = 0; round < 10 && queue->metrics()->completed < kJobs; ++round) {
    std::this_thread::sleep_for(250ms);
    workers.front()->kill_hard();
    workers.erase(workers.begin());
    ++kills;
    start_worker();
  }
  REQUIRE(eventually([&] { return queue->metrics()->completed == kJobs; }, 60s));
  for (auto& worker : workers) {
    worker->signal(SIGTERM);
    CHECK(worker->wait_exit() == 0);
  }
  CHECK(kills > 0);

  std::map<JobId, int> starts;
  for (const auto& line : read_lines(log)) {
    std::istringstream fields(line);
    std::string event;
    JobId id = 0;
    fields >> event >> id;
    if (event == "start") ++starts[id];
  }
  for (const auto& result : *ids) {
    const Job job = queue->get(result.id).value();
    CAPTURE(job.id);
    CHECK(job.state == JobState::kCompleted);
    // A job runs more than once only after a stall, that is after its worker was killed.
    CHECK(starts[job.id] >= 1);
    CHECK(starts[job.id] <= job.stalls + 1);
  }
}

}  // namespace
}  // namespace activation
