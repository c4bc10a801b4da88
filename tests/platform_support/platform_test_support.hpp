// Helpers that the suites of the platform adapters share. They open an engine over a scratch
// folder, write people files with known members, and make adapters the way the engine does. They
// also read the test server's /__inspect endpoints and run the `activate` host as a child process.
#ifndef ACTIVATION_TESTS_PLATFORM_SUPPORT_PLATFORM_TEST_SUPPORT_HPP_
#define ACTIVATION_TESTS_PLATFORM_SUPPORT_PLATFORM_TEST_SUPPORT_HPP_

#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "activation/backend/destination.hpp"
#include "activation/engine.hpp"
#include "engine/test_util.hpp"
#include "platform/meta_client.hpp"
#include "platform/server_process.hpp"

namespace activation::testing {

inline void set_env(const char* name, const std::string& value) {
  ::setenv(name, value.c_str(), 1);
}

// An engine of one worker with a SQLite store in `dir`, batches of 500 and fast batch retries.
inline Config test_engine_config(const ScratchDir& dir) {
  Config config;
  config.store_path = dir.file("store/activation.db");
  config.engine.workers = 1;
  config.engine.batch_size = 500;
  config.engine.lease_duration = std::chrono::seconds(10);
  config.engine.heartbeat_interval = std::chrono::seconds(2);
  config.engine.batch_attempts = 10;
  config.engine.batch_retry_base = std::chrono::milliseconds(5);
  return config;
}

inline AudienceConfig csv_audience(const std::string& name, const std::string& path,
                                   std::vector<ColumnMapping> mapping) {
  AudienceConfig audience;
  audience.name = name;
  audience.source.type = SourceType::kCsv;
  audience.source.path = path;
  audience.source.mapping = std::move(mapping);
  return audience;
}

inline std::unique_ptr<DistributionEngine> open_engine(const Config& config) {
  auto engine = DistributionEngine::open(config);
  REQUIRE_MESSAGE(engine.is_ok(), engine.status().to_string());
  return std::move(*engine);
}

inline JobId queue_job(DistributionEngine& engine, const std::string& audience,
                       const std::string& destination, SyncMode mode = SyncMode::kAdd) {
  DistributeOptions options;
  options.mode = mode;
  std::vector<std::string> destinations = {destination};
  auto job = engine.distribute(audience, destinations, options);
  REQUIRE_MESSAGE(job.is_ok(), job.status().to_string());
  return job->id;
}

inline DistributionJob run_to_end(DistributionEngine& engine, JobId id) {
  auto stats = engine.run_until_idle(std::chrono::minutes(3));
  REQUIRE(stats.is_ok());
  auto job = engine.job(id);
  REQUIRE(job.is_ok());
  return *job;
}

inline const DestinationProgress* progress_of(const DistributionJob& job, const std::string& destination) {
  for (const auto& entry : job.progress.destinations) {
    if (entry.destination == destination) return &entry;
  }
  return nullptr;
}

// Creates the adapter of `config` the way the engine does, with secrets read from the environment.
inline Result<std::unique_ptr<DestinationAdapter>> make_test_adapter(const DestinationConfig& config) {
  auto factory = find_destination_type(config.type);
  REQUIRE(factory.has_value());
  DestinationEnvironment environment;
  environment.secret = [config](std::string_view name) -> Result<std::string> {
    auto found = config.secret_env.find(std::string(name));
    if (found == config.secret_env.end()) return not_found("no secret " + std::string(name));
    const char* value = std::getenv(found->second.c_str());
    if (value == nullptr) return not_found("environment variable " + found->second + " is not set");
    return std::string(value);
  };
  return (*factory)(config, environment);
}

// One member of a people file: an external id, an email, one or two phones and a name.
struct Person {
  int id = 0;
  std::string email;
  std::string phone1;
  std::string phone2;  // Empty for most.
  std::string first_name = "Ann";
  std::string last_name = "Lee";
};

// People `first_id` to `first_id + count - 1`: person<id>@example.com, a US phone, and a UK
// phone for every id divisible by 3.
inline std::vector<Person> make_people(int first_id, int count) {
  static const char* kFirst[] = {"Ann", "Bob", "Chloé", "Dmitri", "Eve", "Frank", "Grace", "Hiro"};
  static const char* kLast[] = {"Lee", "Smith", "Müller", "García", "Nowak", "Okafor", "Sato"};
  std::vector<Person> people;
  for (int i = first_id; i < first_id + count; ++i) {
    Person person;
    person.id = i;
    person.email = "person" + std::to_string(i) + "@example.com";
    char phone[32];
    std::snprintf(phone, sizeof phone, "+1 415 555 %04d", i % 10000);
    person.phone1 = phone;
    if (i % 3 == 0) {
      std::snprintf(phone, sizeof phone, "+44 20 7946 %04d", i % 10000);
      person.phone2 = phone;
    }
    person.first_name = kFirst[i % 8];
    person.last_name = kLast[i % 7];
    people.push_back(person);
  }
  return people;
}

inline void write_people(const std::string& path, const std::vector<Person>& people) {
  std::string text = "ID,EMAIL,PHONE1,PHONE2,FIRST,LAST\n";
  for (const auto& person : people) {
    text += std::to_string(person.id) + "," + person.email + "," + person.phone1 + "," + person.phone2 + "," +
            person.first_name + "," + person.last_name + "\n";
  }
  write_file(path, text);
}

inline std::vector<ColumnMapping> people_mapping() {
  return {{"ID", Field::kExternalId}, {"EMAIL", Field::kEmail},     {"PHONE1", Field::kPhone},
          {"PHONE2", Field::kPhone},  {"FIRST", Field::kFirstName}, {"LAST", Field::kLastName}};
}

// An engine configuration with the people file `csv` as the audience "people", `destination`,
// and batches of 64 rows.
inline Config people_config(const ScratchDir& dir, const std::string& csv,
                            const DestinationConfig& destination) {
  Config config = test_engine_config(dir);
  config.engine.batch_size = 64;
  config.audiences.push_back(csv_audience("people", csv, people_mapping()));
  config.destinations.push_back(destination);
  return config;
}

// The SHA-256 of each person's normalized email: the key that every platform receives.
inline std::set<std::string> email_hashes(const std::vector<Person>& people) {
  std::set<std::string> hashes;
  for (const auto& person : people) hashes.insert(sha256_hex(person.email));
  return hashes;
}

// Reads and controls the test server through its /__inspect endpoints, which take no token and
// never draw faults.
class InspectionClient {
 public:
  explicit InspectionClient(const ServerProcess& server)
      : base_(server.base_url()), transport_(make_test_transport()) {}

  nlohmann::json get(const std::string& path) {
    HttpRequest request;
    request.url = base_ + path;
    // The server compresses with Brotli at its slowest level when a client accepts it, which
    // takes seconds for the inspection of an audience of a few thousand members.
    request.headers.push_back({"Accept-Encoding", "identity"});
    HttpResult result = transport_->send(request);
    REQUIRE(result.has_response());
    REQUIRE_MESSAGE(result.response().status == 200, "GET " << path << ": " << result.response().body);
    return nlohmann::json::parse(result.response().body);
  }

  nlohmann::json post(const std::string& path, const nlohmann::json& body) {
    HttpRequest request;
    request.method = HttpMethod::kPost;
    request.url = base_ + path;
    request.headers.push_back({"Content-Type", "application/json"});
    request.headers.push_back({"Accept-Encoding", "identity"});
    request.body = body.dump();
    HttpResult result = transport_->send(request);
    REQUIRE(result.has_response());
    REQUIRE_MESSAGE(result.response().status == 200, "POST " << path << ": " << result.response().body);
    return nlohmann::json::parse(result.response().body);
  }

  nlohmann::json stats() { return get("/__inspect/stats"); }

 private:
  std::string base_;
  std::unique_ptr<Transport> transport_;
};

// The id of the audience called `name` in the inspection list of `platform` ("linkedin",
// "google", ...), or "" when there is none.
inline std::string inspected_id(InspectionClient& client, const std::string& platform,
                                const std::string& name) {
  nlohmann::json all = client.get("/__inspect/" + platform + "/audiences");
  for (const auto& audience : all["audiences"]) {
    if (audience["name"] == name) return audience["id"].get<std::string>();
  }
  return {};
}

inline nlohmann::json inspect_audience(InspectionClient& client, const std::string& platform,
                                       const std::string& id) {
  return client.get("/__inspect/" + platform + "/audiences/" + id);
}

// The email hashes that one audience of `platform` contains, read from its inspection JSON: Meta's
// EMAIL keys, Google's "email:" identifiers, LinkedIn's SHA256_EMAIL user ids, TikTok's and
// Snapchat's EMAIL_SHA256 values, or the webhook receiver's "email" identifiers.
inline std::set<std::string> received_emails(const std::string& platform, const nlohmann::json& audience) {
  std::set<std::string> emails;
  if (platform == "meta") {
    for (const auto& member : audience["members"]) {
      if (member["keys"].contains("EMAIL")) emails.insert(member["keys"]["EMAIL"].get<std::string>());
    }
  } else if (platform == "google") {
    for (const auto& member : audience["members"]) {
      for (const auto& identifier : member["identifiers"]) {
        std::string text = identifier.get<std::string>();
        if (text.rfind("email:", 0) == 0) emails.insert(text.substr(6));
      }
    }
  } else if (platform == "linkedin") {
    for (const auto& member : audience["members"]) {
      for (const auto& id : member["userIds"]) {
        std::string text = id.get<std::string>();
        if (text.rfind("SHA256_EMAIL:", 0) == 0) emails.insert(text.substr(13));
      }
    }
  } else if (platform == "tiktok") {
    for (const auto& member : audience["members"]) {
      if (member.contains("EMAIL_SHA256")) emails.insert(member["EMAIL_SHA256"].get<std::string>());
    }
  } else if (platform == "snapchat") {
    for (const auto& value : audience["identifiers"].value("EMAIL_SHA256", nlohmann::json::array()))
      emails.insert(value.get<std::string>());
  } else if (platform == "webhook") {
    for (const auto& [key, identifiers] : audience["members"].items()) {
      for (const auto& email : identifiers.value("email", nlohmann::json::array()))
        emails.insert(email.get<std::string>());
    }
  } else {
    FAIL("received_emails: unknown platform " << platform);
  }
  return emails;
}

// Sums the faults of every kind that the server injected into requests to `platform`.
inline std::int64_t platform_faults(const nlohmann::json& stats, const std::string& platform) {
  std::int64_t total = 0;
  if (!stats.contains("faults") || !stats["faults"].contains(platform)) return 0;
  for (const auto& [kind, count] : stats["faults"][platform].items()) total += count.get<std::int64_t>();
  return total;
}

// The `activate` configuration entry of `destination`: its type, settings and secret variables.
inline nlohmann::json destination_json(const DestinationConfig& destination) {
  nlohmann::json entry = {{"type", destination.type},
                          {"settings", nlohmann::json::parse(destination.settings)},
                          {"secrets", destination.secret_env}};
  if (destination.profile) entry["profile"] = std::string(platform_name(*destination.profile));
  return entry;
}

// The `engine` object of an `activate` configuration whose worker a test kills: one worker, a
// lease of 2 s so that the next worker claims the job soon, and fast batch retries.
inline nlohmann::json killable_engine_json(std::size_t batch_size) {
  return {{"workers", 1},         {"batch_size", batch_size},
          {"lease_seconds", 2},   {"heartbeat_seconds", 0.5},
          {"batch_attempts", 10}, {"batch_retry_base_ms", 5}};
}

#ifdef ACT_ACTIVATE_PATH

// Starts `activate` with `args` in `cwd`, its stdout and stderr in the given files. Returns the
// child's PID, which the caller waits for or kills.
inline pid_t spawn_activate(const std::vector<std::string>& args, const std::string& cwd,
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

// Waits for `pid` up to `timeout`, killing it with SIGKILL when it runs longer. Returns its exit
// status, or 128 plus the signal that ended it.
inline int wait_exit(pid_t pid, std::chrono::seconds timeout) {
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

struct ActivateRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `activate` with `args` in `dir` to its end (at most 120 s).
inline ActivateRun run_activate(const ScratchDir& dir, const std::vector<std::string>& args) {
  pid_t pid = spawn_activate(args, dir.path().string(), dir.file("stdout.txt"), dir.file("stderr.txt"));
  REQUIRE(pid > 0);
  ActivateRun run;
  run.exit_code = wait_exit(pid, std::chrono::seconds(120));
  run.out = read_file(dir.file("stdout.txt"));
  run.err = read_file(dir.file("stderr.txt"));
  return run;
}

// Queues a job with `activate distribute <args> --json` in `dir` and returns the job's id.
inline std::int64_t queue_with_activate(const ScratchDir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), "distribute");
  args.push_back("--json");
  ActivateRun queued = run_activate(dir, args);
  INFO("distribute stderr: ", queued.err);
  REQUIRE(queued.exit_code == 0);
  return nlohmann::json::parse(queued.out).at("job_id").get<std::int64_t>();
}

// Starts `activate worker --quiet` in `dir` and returns its PID. The worker runs until killed.
inline pid_t start_activate_worker(const ScratchDir& dir) {
  pid_t worker = spawn_activate({"worker", "--quiet"}, dir.path().string(), dir.file("worker.out"),
                                dir.file("worker.err"));
  REQUIRE(worker > 0);
  return worker;
}

// Sends SIGKILL to `pid`, reaps it, and fails the test unless that signal ended it.
inline void kill_and_reap(pid_t pid) {
  REQUIRE(::kill(pid, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);
}

// Runs `activate worker --until-idle` in `dir`, then returns `activate status <job> --json`.
inline nlohmann::json resume_with_activate(const ScratchDir& dir, std::int64_t job) {
  ActivateRun resumed = run_activate(dir, {"worker", "--until-idle", "--quiet"});
  INFO("worker stderr: ", resumed.err);
  REQUIRE(resumed.exit_code == 0);
  ActivateRun status = run_activate(dir, {"status", std::to_string(job), "--json"});
  INFO("status stderr: ", status.err);
  REQUIRE(status.exit_code == 0);
  return nlohmann::json::parse(status.out);
}

#endif  // ACT_ACTIVATE_PATH

}  // namespace activation::testing

#endif  // ACTIVATION_TESTS_PLATFORM_SUPPORT_PLATFORM_TEST_SUPPORT_HPP_
