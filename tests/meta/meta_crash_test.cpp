// A worker process killed with SIGKILL in the middle of a Meta replace session: the next worker
// resumes the same session without sending its first batch again.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "meta/meta_test_support.hpp"

#ifdef ACT_ACTIVATE_PATH

namespace activation::testing {
namespace {

using Json = nlohmann::json;

// Starts `activate` with `args` in `cwd`, its output in the given files.
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

// Waits for `pid` up to `timeout`, killing it when it runs longer. Returns its exit status.
int wait_exit(pid_t pid, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      FAIL("activate ran longer than " << timeout.count() << " s and was killed");
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

struct Run {
  int exit_code = -1;
  std::string out;
  std::string err;
};

Run run_activate(const ScratchDir& dir, const std::vector<std::string>& args) {
  pid_t pid = spawn_activate(args, dir.path().string(), dir.file("stdout.txt"), dir.file("stderr.txt"));
  REQUIRE(pid > 0);
  Run run;
  run.exit_code = wait_exit(pid, std::chrono::seconds(120));
  run.out = read_file(dir.file("stdout.txt"));
  run.err = read_file(dir.file("stderr.txt"));
  return run;
}

int replace_batches(MetaClient& client, const std::string& audience_id) {
  int count = 0;
  Json audience = client.inspect(audience_id);
  for (const auto& batch : audience["batches"]) count += batch["operation"] == "replace" ? 1 : 0;
  return count;
}

}  // namespace

TEST_CASE("worker killed in a replace session resumes it") {
  set_test_token();
  // Latency keeps the replace running long enough to kill the worker in the middle of it.
  ServerProcess server({"--latency-ms", "40"});
  MetaClient client(server);
  ScratchDir dir("meta-crash");
  Json config = {{"store", "data/activation.db"},
                 {"engine",
                  {{"workers", 1},
                   {"batch_size", 50},
                   {"lease_seconds", 2},
                   {"heartbeat_seconds", 0.5},
                   {"batch_attempts", 10},
                   {"batch_retry_base_ms", 5}}},
                 {"audiences",
                  {{"people",
                    {{"source", {{"type", "csv"}, {"path", "people.csv"}}},
                     {"mapping",
                      {{"ID", "external_id"},
                       {"EMAIL", "email"},
                       {"PHONE1", "phone"},
                       {"PHONE2", "phone"},
                       {"FIRST", "first_name"},
                       {"LAST", "last_name"}}}}}}},
                 {"destinations",
                  {{"fb",
                    {{"type", "meta"},
                     {"settings",
                      {{"ad_account_id", kAdAccount},
                       {"audience_name", "crash"},
                       {"base_url", server.base_url() + "/meta"}}},
                     {"secrets", {{"access_token", kTokenVariable}}}}}}}};
  write_file(dir.file("activation.json"), config.dump(2));

  // Members that the replace must drop.
  write_people(dir.file("people.csv"), make_people(5000, 40));
  Run added = run_activate(dir, {"distribute", "people", "fb", "--wait", "--json"});
  INFO("distribute stderr: ", added.err);
  REQUIRE(added.exit_code == 0);
  std::string audience_id = audience_id_by_name(client, "crash");
  REQUIRE_FALSE(audience_id.empty());

  std::vector<Person> people = make_people(1, 3000);
  write_people(dir.file("people.csv"), people);
  Run queued = run_activate(dir, {"distribute", "people", "fb", "--mode", "replace", "--json"});
  INFO("distribute stderr: ", queued.err);
  REQUIRE(queued.exit_code == 0);
  std::int64_t job = Json::parse(queued.out)["job_id"].get<std::int64_t>();

  pid_t worker = spawn_activate({"worker", "--quiet"}, dir.path().string(), dir.file("worker1.out"),
                                dir.file("worker1.err"));
  REQUIRE(worker > 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (replace_batches(client, audience_id) < 15 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(::kill(worker, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(worker, &status, 0) == worker);
  REQUIRE(WIFSIGNALED(status));
  int before = replace_batches(client, audience_id);
  MESSAGE("killed the worker after " << before << " replace batches");
  REQUIRE(before < 60);
  CHECK_FALSE(client.inspect(audience_id)["replace_in_progress"].is_null());

  Run resumed = run_activate(dir, {"worker", "--until-idle", "--quiet"});
  INFO("worker stderr: ", resumed.err);
  REQUIRE(resumed.exit_code == 0);
  Run done = run_activate(dir, {"status", std::to_string(job), "--json"});
  REQUIRE(Json::parse(done.out)["status"] == "completed");

  Json audience = client.inspect(audience_id);
  std::map<std::string, int> expected;
  for (const auto& person : people) expected[std::to_string(person.id)] = static_cast<int>(meta_rows(person));
  CHECK(extern_ids(audience) == expected);
  CHECK(audience["counters"]["replace_restarts"] == 0);
  CHECK(audience["counters"]["replaces_completed"] == 1);
  // At most the batch in flight when the worker died went twice.
  CHECK(audience["counters"]["duplicate_batches"].get<int>() <= 1);

  // One replace session took every batch: batch_seq 1 once, then on without a gap, closed by its
  // last batch.
  int replace_sessions = 0;
  for (const auto& session : audience["sessions"]) {
    if (session["operation"] != "replace") continue;
    ++replace_sessions;
    CHECK(session["stage"] == "finished");
    std::vector<int> seqs = session["batch_seqs"].get<std::vector<int>>();
    REQUIRE(seqs.size() >= 61);
    CHECK(std::count(seqs.begin(), seqs.end(), 1) == 1);
    for (std::size_t i = 1; i < seqs.size(); ++i) {
      CHECK(seqs[i] >= seqs[i - 1]);
      CHECK(seqs[i] <= seqs[i - 1] + 1);
    }
  }
  CHECK(replace_sessions == 1);
}

}  // namespace activation::testing

#endif  // ACT_ACTIVATE_PATH
