// The activate host as a user runs it: real processes on a real store, one of them killed with
// SIGKILL in the middle of a job.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_util.hpp"

using activation::testing::read_file;
using activation::testing::ScratchDir;
using activation::testing::write_file;
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Starts `activate` with `args` in `cwd`, stdout and stderr to the given files.
pid_t spawn_activate(const std::vector<std::string>& args, const std::string& cwd,
                     const std::string& out_path, const std::string& err_path) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  if (::chdir(cwd.c_str()) != 0) std::_Exit(126);
  int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int null_in = ::open("/dev/null", O_RDONLY);
  ::dup2(null_in, STDIN_FILENO);
  ::dup2(out, STDOUT_FILENO);
  ::dup2(err, STDERR_FILENO);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(ACT_ACTIVATE_PATH));
  for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  ::execv(ACT_ACTIVATE_PATH, argv.data());
  std::_Exit(127);
}

// Waits for `pid` up to `timeout`; kills it and fails the test when it runs longer.
int wait_exit(pid_t pid, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      FAIL("activate ran longer than " << timeout.count() << " s and was killed");
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

ProcessResult run_activate(const ScratchDir& dir, const std::vector<std::string>& args,
                           std::chrono::seconds timeout = std::chrono::seconds(300)) {
  std::string out = dir.file("stdout.txt");
  std::string err = dir.file("stderr.txt");
  pid_t pid = spawn_activate(args, dir.path().string(), out, err);
  REQUIRE(pid > 0);
  ProcessResult result;
  result.exit_code = wait_exit(pid, timeout);
  result.out = read_file(out);
  result.err = read_file(err);
  return result;
}

const char* kSampleMapping =
    R"({"CUSTOMERID": "external_id", "FIRSTNAME": "first_name", "LASTNAME": "last_name",
    "EMAIL": "email", "PHONE1": "phone", "PHONE2": "phone", "CITY": "city", "STATE": "state", "ZIP": "zip",
    "COUNTRY": "country", "DOB": "dob", "GENDER": "gender"})";

// The external ids (last column of a hashed_csv file with an external_id column) in every batch
// file of one job folder, duplicates kept.
std::multiset<std::string> external_ids(const fs::path& job_dir) {
  std::multiset<std::string> ids;
  if (!fs::exists(job_dir)) return ids;
  for (const auto& entry : fs::directory_iterator(job_dir)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("batch-", 0) != 0 || name.find("-add.csv") == std::string::npos) continue;
    std::string text = read_file(entry.path().string());
    std::size_t start = text.find('\n') + 1;
    while (start < text.size()) {
      std::size_t end = text.find('\n', start);
      std::string row = text.substr(start, end - start);
      ids.insert(row.substr(row.rfind(',') + 1));
      start = end + 1;
    }
  }
  return ids;
}

std::size_t batch_file_count(const fs::path& job_dir) {
  if (!fs::exists(job_dir)) return 0;
  std::size_t count = 0;
  for (const auto& entry : fs::directory_iterator(job_dir)) {
    if (entry.path().filename().string().rfind("batch-", 0) == 0) ++count;
  }
  return count;
}

}  // namespace

TEST_CASE("distribute wait prints summary") {
  ScratchDir dir("cli-main");
  auto sample = run_activate(dir, {"sample", "--rows", "3000", "--seed", "5", "--out", "sample.csv"});
  REQUIRE(sample.exit_code == 0);
  write_file(dir.file("activation.json"), std::string(R"({
    "store": "activation-data/activation.db",
    "audiences": {"sample": {"source": {"type": "csv", "path": "sample.csv"}, "mapping": )") +
                                              kSampleMapping + R"(}},
    "destinations": {
      "meta_files": {"type": "file", "settings": {"directory": "activation-data/meta", "format": "meta_csv"}},
      "google_files": {"type": "file", "settings": {"directory": "activation-data/google", "format": "google_json"}}
    }
  })");

  auto run = run_activate(dir, {"distribute", "sample", "meta_files", "google_files", "--wait", "--json"});
  INFO("stderr: ", run.err);
  REQUIRE(run.exit_code == 0);
  Json summary = Json::parse(run.out);
  CHECK(summary["status"] == "completed");
  CHECK(summary["priority"] == "normal");
  CHECK(summary["created_at"].get<std::string>().size() == 20);  // 2026-12-05T19:00:00Z
  CHECK(summary["finished_at"].get<std::string>() >= summary["created_at"].get<std::string>());
  std::int64_t job = summary["job_id"].get<std::int64_t>();
  for (const char* name : {"meta_files", "google_files"}) {
    const Json& destination = summary["destinations"][name];
    CHECK(destination["rows_read"] == 3000);
    std::uint64_t sum = 0;
    for (const char* outcome : {"accepted", "rejected", "deferred", "invalid"})
      sum += destination[outcome].get<std::uint64_t>();
    CHECK(sum == 3000);
    CHECK(destination["invalid"].get<std::uint64_t>() > 0);
    CHECK(destination["adds_sent"] == destination["accepted"]);
  }
  CHECK(fs::exists(dir.path() / "activation-data/meta" / ("job-" + std::to_string(job)) / "manifest.json"));

  auto status = run_activate(dir, {"status", std::to_string(job)});
  CHECK(status.exit_code == 0);
  CHECK(status.out.find("completed") != std::string::npos);

  auto rejects = run_activate(dir, {"rejects", std::to_string(job)});
  REQUIRE(rejects.exit_code == 0);
  CHECK(rejects.out.rfind("destination,line,operation,outcome,reason_code,reason,member_key\n", 0) == 0);
  std::size_t lines = 0;
  for (char c : rejects.out) lines += c == '\n';
  std::uint64_t not_accepted = 0;
  for (const char* name : {"meta_files", "google_files"}) {
    not_accepted += 3000 - summary["destinations"][name]["accepted"].get<std::uint64_t>();
  }
  CHECK(lines - 1 == not_accepted);

  auto metrics = run_activate(dir, {"metrics"});
  REQUIRE(metrics.exit_code == 0);
  CHECK(metrics.out.find("activation_queue_jobs{state=\"completed\"} 1\n") != std::string::npos);
  CHECK(metrics.out.find(
            "activation_destination_rows_total{destination=\"meta_files\",outcome=\"accepted\"}") !=
        std::string::npos);

  auto jobs = run_activate(dir, {"jobs", "--json"});
  REQUIRE(jobs.exit_code == 0);
  CHECK(Json::parse(jobs.out).size() == 1);

  auto dlq = run_activate(dir, {"dlq"});
  CHECK(dlq.exit_code == 0);
  CHECK(dlq.out == "the dead-letter queue is empty\n");

  // A dry run names the adds it would send apart from sent ones.
  auto dry_run = run_activate(dir, {"distribute", "sample", "meta_files", "--dry-run", "--wait", "--json"});
  REQUIRE(dry_run.exit_code == 0);
  const Json planned = Json::parse(dry_run.out)["destinations"]["meta_files"];
  CHECK(planned["adds_to_send"] == planned["accepted"]);
  CHECK_FALSE(planned.contains("adds_sent"));
  // The metrics leave the dry run out.
  auto after = run_activate(dir, {"metrics"});
  REQUIRE(after.exit_code == 0);
  CHECK(after.out.find("activation_destination_runs{destination=\"meta_files\",state=\"done\"} 1\n") !=
        std::string::npos);
}

TEST_CASE("bad input fails before queuing") {
  ScratchDir dir("cli-bad");
  write_file(dir.file("people.csv"), "ID,EMAIL\n1,a@example.com\n");
  write_file(dir.file("blocker"), "a file where a folder should be");
  write_file(dir.file("activation.json"), R"({
    "store": "data/activation.db",
    "audiences": {
      "people": {"source": {"type": "csv", "path": "people.csv"}, "mapping": {"ID": "external_id", "EMAIL": "email"}},
      "typo": {"source": {"type": "csv", "path": "people.csv"}, "mapping": {"ID": "external_id", "EMIAL": "email"}},
      "missing": {"source": {"type": "csv", "path": "nope.csv"}, "mapping": {"ID": "external_id"}}
    },
    "destinations": {
      "out": {"type": "file", "settings": {"directory": "out"}},
      "blocked": {"type": "file", "settings": {"directory": "blocker/out"}}
    }
  })");

  auto missing = run_activate(dir, {"distribute", "missing", "out"});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err == "activate distribute: audience 'missing': audience file '" + dir.file("nope.csv") +
                           "' does not exist\n");
  auto typo = run_activate(dir, {"distribute", "typo", "out"});
  CHECK(typo.exit_code == 1);
  CHECK(typo.err.find("column 'EMIAL' of the mapping is not in the header (columns: ID, EMAIL)") !=
        std::string::npos);
  auto unknown = run_activate(dir, {"distribute", "people", "elsewhere"});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.err ==
        "activate distribute: destination 'elsewhere' is not configured (destinations: out, blocked)\n");
  auto blocked = run_activate(dir, {"distribute", "people", "blocked"});
  CHECK(blocked.exit_code == 1);
  CHECK(blocked.err.find("destination 'blocked': directory '" + dir.file("blocker/out") +
                         "' cannot be created") != std::string::npos);
  auto mode = run_activate(dir, {"distribute", "people", "out", "--mode", "sideways"});
  CHECK(mode.exit_code == 2);
  CHECK(mode.err == "activate distribute: --mode expects add, remove, replace or mirror, got 'sideways'\n");

  auto jobs = run_activate(dir, {"jobs", "--json"});
  REQUIRE(jobs.exit_code == 0);
  CHECK(Json::parse(jobs.out).empty());

  write_file(dir.file("broken.json"),
             R"({"store": "x.db", "audiences": {}, "destinations": {"d": {"type": 5}}})");
  auto config = run_activate(dir, {"jobs", "--config", "broken.json"});
  CHECK(config.exit_code == 1);
  CHECK(config.err == "activate jobs: broken.json: destinations.d.type: expected a string, got 5\n");
}

TEST_CASE("worker killed mid job resumes") {
  ScratchDir dir("cli-kill");
  constexpr int kRows = 1'000'000;
  constexpr int kBatch = 10000;
  auto sample =
      run_activate(dir, {"sample", "--rows", std::to_string(kRows), "--seed", "11", "--out", "big.csv"});
  REQUIRE(sample.exit_code == 0);
  // A short lease, so the second worker takes over soon after the first one dies.
  write_file(dir.file("activation.json"), R"({
    "store": "data/activation.db",
    "engine": {"workers": 1, "parallelism": 2, "batch_size": 10000, "lease_seconds": 3, "heartbeat_seconds": 1},
    "audiences": {"big": {"source": {"type": "csv", "path": "big.csv"},
                          "mapping": {"EMAIL": "email", "CUSTOMERID": "external_id"}}},
    "destinations": {
      "first": {"type": "file", "settings": {"directory": "out/first"}},
      "second": {"type": "file", "settings": {"directory": "out/second"}}
    }
  })");

  auto queued = run_activate(dir, {"distribute", "big", "first", "second", "--json"});
  INFO("stderr: ", queued.err);
  REQUIRE(queued.exit_code == 0);
  std::int64_t job = Json::parse(queued.out)["job_id"].get<std::int64_t>();
  std::string folder = "job-" + std::to_string(job);
  fs::path first_dir = dir.path() / "out/first" / folder;
  fs::path second_dir = dir.path() / "out/second" / folder;

  pid_t worker = spawn_activate({"worker", "--quiet"}, dir.path().string(), dir.file("worker1.out"),
                                dir.file("worker1.err"));
  REQUIRE(worker > 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while ((batch_file_count(first_dir) < 10 || batch_file_count(second_dir) < 10) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(::kill(worker, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(worker, &status, 0) == worker);
  REQUIRE(WIFSIGNALED(status));
  std::size_t files_before = batch_file_count(first_dir) + batch_file_count(second_dir);
  MESSAGE("killed the worker after " << files_before << " batch files");
  REQUIRE(files_before >= 20);
  REQUIRE(files_before < 2 * kRows / kBatch);

  auto running = run_activate(dir, {"status", std::to_string(job), "--json"});
  CHECK(Json::parse(running.out)["status"] == "running");

  auto resumed = run_activate(dir, {"worker", "--until-idle", "--quiet"}, std::chrono::seconds(600));
  INFO("worker stderr: ", resumed.err);
  REQUIRE(resumed.exit_code == 0);
  auto done = run_activate(dir, {"status", std::to_string(job), "--json"});
  Json summary = Json::parse(done.out);
  REQUIRE(summary["status"] == "completed");

  for (const auto& [name, job_dir] :
       std::map<std::string, fs::path>{{"first", first_dir}, {"second", second_dir}}) {
    const Json& destination = summary["destinations"][name];
    CHECK(destination["rows_read"] == kRows);
    auto accepted = destination["accepted"].get<std::uint64_t>();
    CHECK(accepted + destination["invalid"].get<std::uint64_t>() == kRows);
    auto ids = external_ids(job_dir);
    std::set<std::string> unique(ids.begin(), ids.end());
    CHECK(unique.size() == accepted);
    // At most the batch in flight when the worker died was written twice.
    CHECK(ids.size() - unique.size() <= kBatch);
    MESSAGE(name << ": " << accepted << " accepted members, " << ids.size() - unique.size()
                 << " rows written twice");

    Json manifest = Json::parse(read_file((job_dir / "manifest.json").string()));
    std::uint64_t manifest_rows = 0;
    for (const auto& file : manifest["files"]) manifest_rows += file["rows"].get<std::uint64_t>();
    CHECK(manifest["files"].size() == batch_file_count(job_dir));
    CHECK(manifest_rows == accepted);
  }
}
