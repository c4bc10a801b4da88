// limiter_bench: how closely the rate limiters hold their configured rate when requests really go
// to the platform test server on loopback.
//
// For each algorithm, several threads share one limiter for one account, and each thread loops:
// acquire a token, send GET /meta/v24.0/act_1/customaudiences through the curl transport, release.
// The achieved rate is the number of requests sent in the run divided by its duration. The
// baseline of the same run is the transport without a limiter, which shows that the limiter, not
// the transport, sets the pace. Target: achieved within 2% of the configured rate, never above it.
//
// Usage: limiter_bench [--duration S] [--rate R] [--threads N] [--algorithm token_bucket|sliding_window|both]
//                      [--server PATH]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "activation/backend/transport.hpp"
#include "activation/rate_limiter.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using activation::HttpRequest;

struct Options {
  double duration_seconds = 30.0;
  double rate = 50.0;
  int threads = 4;
  std::string algorithm = "both";
  std::string server_path;
};

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "limiter_bench: %s\n", message.c_str());
  std::exit(2);
}

std::string default_server_path() {
  char buffer[4096];
  ssize_t length = readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  if (length <= 0) return {};
  std::string self(buffer, static_cast<std::size_t>(length));
  std::string build = self.substr(0, self.rfind('/'));
  build = build.substr(0, build.rfind('/'));
  return build + "/examples/platform_server/activation-platform-server";
}

Options parse(int argc, char** argv) {
  Options options;
  options.server_path = default_server_path();
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) fail("option " + flag + " needs a value");
    std::string value = argv[++i];
    char* end = nullptr;
    if (flag == "--duration") {
      options.duration_seconds = std::strtod(value.c_str(), &end);
      if (*end != '\0' || options.duration_seconds < 1 || options.duration_seconds > 3600) {
        fail("--duration expects seconds from 1 to 3600, got '" + value + "'");
      }
    } else if (flag == "--rate") {
      options.rate = std::strtod(value.c_str(), &end);
      if (*end != '\0' || options.rate < 1 || options.rate > 5000) {
        fail("--rate expects requests per second from 1 to 5000, got '" + value + "'");
      }
    } else if (flag == "--threads") {
      options.threads = std::atoi(value.c_str());
      if (options.threads < 1 || options.threads > 64) fail("--threads expects 1 to 64, got '" + value + "'");
    } else if (flag == "--algorithm") {
      if (value != "token_bucket" && value != "sliding_window" && value != "both") {
        fail("--algorithm expects token_bucket, sliding_window or both, got '" + value + "'");
      }
      options.algorithm = value;
    } else if (flag == "--server") {
      options.server_path = value;
    } else {
      fail("unknown option " + flag);
    }
  }
  if (access(options.server_path.c_str(), X_OK) != 0) {
    fail("the platform server is not at " + options.server_path +
         "; build activation-platform-server or pass --server");
  }
  return options;
}

// The test server as a child process, stopped by its PID.
class Server {
 public:
  Server(const std::string& path, const std::vector<std::string>& arguments) {
    int fds[2];
    if (pipe(fds) != 0) fail("pipe failed");
    std::vector<std::string> strings = {path, "--port", "0"};
    strings.insert(strings.end(), arguments.begin(), arguments.end());
    std::vector<char*> argv;
    for (std::string& text : strings) argv.push_back(text.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    std::string line;
    char c = 0;
    while (read(fds[0], &c, 1) == 1 && c != '\n') line.push_back(c);
    close(fds[0]);
    port_ = std::atoi(line.c_str());
    if (port_ <= 0) fail("the platform server did not print its port");
  }

  ~Server() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

struct RunResult {
  std::int64_t requests = 0;
  std::int64_t failures = 0;
  double seconds = 0.0;
  std::int64_t peak_in_window = 0;  // Most requests sent in any 1 s window, by the client's clock.
};

RunResult run(const Server& server, activation::RateLimiter* limiter, double duration_seconds, int threads) {
  activation::CurlTransportOptions transport_options;
  transport_options.no_proxy = "127.0.0.1,localhost";
  auto transport_result = activation::make_curl_transport(transport_options);
  if (!transport_result.is_ok()) fail(transport_result.status().to_string());
  std::unique_ptr<activation::Transport> transport = std::move(*transport_result);

  std::mutex mutex;
  std::vector<Clock::time_point> sent;
  std::atomic<std::int64_t> failures{0};
  auto start = Clock::now();
  auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration_seconds));

  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      HttpRequest request;
      request.url = server.url("/meta/v24.0/act_1/customaudiences?access_token=bench");
      while (true) {
        activation::RateGrant grant;
        if (limiter != nullptr) {
          // Reserve without sleeping first, so that a grant due after the end is never taken.
          auto reserved = limiter->reserve("act_1");
          if (!reserved.is_ok()) fail(reserved.status().to_string());
          grant = *reserved;
          if (grant.at >= end) return;
          std::this_thread::sleep_until(grant.at);
        }
        auto now = Clock::now();
        if (now >= end) return;
        auto result = transport->send(request);
        if (limiter != nullptr) limiter->release("act_1", grant);
        if (!result.has_response() || result.response().status != 200) ++failures;
        std::lock_guard<std::mutex> lock(mutex);
        sent.push_back(now);
      }
    });
  }
  for (std::thread& worker : workers) worker.join();

  RunResult out;
  out.requests = static_cast<std::int64_t>(sent.size());
  out.failures = failures.load();
  out.seconds = duration_seconds;
  std::sort(sent.begin(), sent.end());
  std::size_t first = 0;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    while (sent[first] <= sent[i] - std::chrono::seconds(1)) ++first;
    out.peak_in_window = std::max<std::int64_t>(out.peak_in_window, static_cast<std::int64_t>(i - first + 1));
  }
  return out;
}

nlohmann::json server_account(const Server& server) {
  activation::CurlTransportOptions transport_options;
  transport_options.no_proxy = "127.0.0.1,localhost";
  auto transport = activation::make_curl_transport(transport_options);
  if (!transport.is_ok()) fail(transport.status().to_string());
  HttpRequest request;
  request.url = server.url("/__inspect/stats");
  auto result = (*transport)->send(request);
  if (!result.has_response()) fail("could not read the server's stats");
  return nlohmann::json::parse(result.response().body)["accounts"]["meta:act_1"];
}

void report(const std::string& name, const Options& options, const RunResult& result,
            const std::string& server_note) {
  double achieved = static_cast<double>(result.requests) / result.seconds;
  double ratio = 100.0 * achieved / options.rate;
  bool within = ratio >= 98.0 && ratio <= 100.0;
  std::printf(
      "%-15s configured %8.2f/s  achieved %8.2f/s  (%6.2f%%)  requests %6lld  peak in 1 s %4lld  "
      "failures %lld  %s  %s\n",
      name.c_str(), options.rate, achieved, ratio, static_cast<long long>(result.requests),
      static_cast<long long>(result.peak_in_window), static_cast<long long>(result.failures),
      within ? "within target" : "OUTSIDE target", server_note.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse(argc, argv);
  std::printf("limiter_bench: %d threads, %.0f s per run, loopback test server, one account\n",
              options.threads, options.duration_seconds);

  // Baseline: the transport alone, for a short run, to show the ceiling the limiter works under.
  {
    Server server(options.server_path, {});
    RunResult baseline = run(server, nullptr, std::min(3.0, options.duration_seconds), options.threads);
    std::printf("%-15s no limiter       achieved %8.2f/s  requests %6lld  failures %lld\n", "baseline",
                static_cast<double>(baseline.requests) / baseline.seconds,
                static_cast<long long>(baseline.requests), static_cast<long long>(baseline.failures));
  }

  if (options.algorithm == "token_bucket" || options.algorithm == "both") {
    Server server(options.server_path, {});
    activation::RateLimitPolicy policy;
    policy.algorithm = activation::RateLimitAlgorithm::kTokenBucket;
    policy.rate_per_second = options.rate;
    policy.burst = 1.0;
    auto limiter = activation::make_rate_limiter(policy);
    if (!limiter.is_ok()) fail(limiter.status().to_string());
    RunResult result = run(server, limiter->get(), options.duration_seconds, options.threads);
    report("token_bucket", options, result, "");
  }

  if (options.algorithm == "sliding_window" || options.algorithm == "both") {
    // The server enforces the same limit per 1 s window, so any request over it is counted there.
    auto limit = static_cast<long long>(options.rate);
    Server server(options.server_path, {"--rate-limit", std::to_string(limit), "--rate-window-ms", "1000"});
    activation::RateLimitPolicy policy;
    policy.algorithm = activation::RateLimitAlgorithm::kSlidingWindow;
    policy.window_limit = static_cast<double>(limit);
    policy.window = std::chrono::seconds(1);
    policy.count_until_release = true;
    auto limiter = activation::make_rate_limiter(policy);
    if (!limiter.is_ok()) fail(limiter.status().to_string());
    RunResult result = run(server, limiter->get(), options.duration_seconds, options.threads);
    nlohmann::json account = server_account(server);
    report("sliding_window", options, result,
           "server: max in 1 s window " + std::to_string(account.value("max_in_window", 0)) + ", throttled " +
               std::to_string(account.value("throttled", 0)));
  }
  return 0;
}
