// http_bench: end-to-end throughput of a distribution to the Meta test server on loopback, next
// to the file destination on the same rows in the same run.
//
// It generates a sample audience (activate sample's generator) and starts
// activation-platform-server on a free loopback port, without faults or throttling. Each round
// then runs one `add` distribution of the audience to the file destination, in the meta_json
// format that contains the same payload Meta receives, and one to a "meta" destination pointed at
// the server. Each run has a fresh store and is timed from distribute() to the end of the job. It
// prints rows per second of both, their ratio, and the HTTP requests per second that the server
// counted. Target: HTTP within 80% of the file destination's rows per second.
//
// usage: http_bench [--rows N] [--rounds R] [--batch-size N] [--server PATH] [--dir DIR] [--keep]
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "activation/backend/transport.hpp"
#include "activation/engine.hpp"
#include "engine/sample.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

namespace {

constexpr const char* kTokenVariable = "ACT_HTTP_BENCH_TOKEN";

struct Options {
  std::uint64_t rows = 200'000;
  int rounds = 3;
  std::size_t batch_size = 10'000;
  std::string server;
  std::string dir;
  bool keep = false;
};

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "http_bench: %s\n", message.c_str());
  std::exit(1);
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--rows") {
      options.rows = std::stoull(value());
    } else if (arg == "--rounds") {
      options.rounds = std::max(1, std::stoi(value()));
    } else if (arg == "--batch-size") {
      options.batch_size = std::stoull(value());
    } else if (arg == "--server") {
      options.server = value();
    } else if (arg == "--dir") {
      options.dir = value();
    } else if (arg == "--keep") {
      options.keep = true;
    } else {
      fail("unknown option " + arg +
           "; usage: http_bench [--rows N] [--rounds R] [--batch-size N] [--server PATH] [--dir DIR] "
           "[--keep]");
    }
  }
  return options;
}

// The server binary of the same build: <build>/examples/platform_server/, next to <build>/bench/.
std::string default_server_path() {
  std::error_code error;
  fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (error) return {};
  return (self.parent_path().parent_path() / "examples/platform_server/activation-platform-server").string();
}

// The platform test server as a child process, stopped by its PID.
class Server {
 public:
  explicit Server(const std::string& path) {
    int fds[2];
    if (::pipe(fds) != 0) fail("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) fail("fork failed");
    if (pid_ == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execl(path.c_str(), path.c_str(), "--port", "0", "--threads", "8", static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    ::close(fds[1]);
    std::string line;
    char c = 0;
    while (::read(fds[0], &c, 1) == 1 && c != '\n') line.push_back(c);
    ::close(fds[0]);
    port_ = std::atoi(line.c_str());
    if (port_ <= 0) {
      stop();
      fail("the platform server at " + path + " printed no port; build it or pass --server PATH");
    }
  }
  ~Server() { stop(); }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // CPU seconds (user and system) the server has used, from /proc/<pid>/stat.
  double cpu_seconds() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::size_t end = text.rfind(')');
    if (end == std::string::npos) return 0;
    std::vector<std::string> fields;
    std::size_t start = end + 2;
    while (start < text.size()) {
      std::size_t space = text.find(' ', start);
      if (space == std::string::npos) space = text.size();
      fields.push_back(text.substr(start, space - start));
      start = space + 1;
    }
    // After the command come state (field 3), ..., utime (14) and stime (15), in clock ticks.
    if (fields.size() < 13) return 0;
    double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
  }

 private:
  pid_t pid_ = -1;
  int port_ = -1;
};

// The number of upload requests the server has handled.
std::int64_t upload_requests(activation::Transport& transport, const Server& server) {
  activation::HttpRequest request;
  request.url = server.base_url() + "/__inspect/stats";
  auto result = transport.send(request);
  if (!result.has_response()) fail("reading the server's stats failed: " + result.error().message);
  Json stats = Json::parse(result.response().body, nullptr, false);
  return stats.is_discarded() ? 0 : stats["platforms"]["meta"]["requests_by_endpoint"].value("users", 0);
}

double own_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& value) { return static_cast<double>(value.tv_sec) + value.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct Measurement {
  double seconds = 0;
  double cpu_seconds = 0;         // Of this process: reading, hashing, the ledger, the adapter.
  double server_cpu_seconds = 0;  // Of the test server, for the HTTP runs.
  std::uint64_t rows = 0;
  std::uint64_t accepted = 0;
  std::int64_t requests = 0;

  double rows_per_second() const { return seconds > 0 ? static_cast<double>(rows) / seconds : 0; }
  double requests_per_second() const { return seconds > 0 ? static_cast<double>(requests) / seconds : 0; }
};

Measurement run_once(const Options& options, const fs::path& folder, const std::string& csv,
                     activation::DestinationConfig destination) {
  activation::Config config;
  config.store_path = (folder / "store/activation.db").string();
  config.engine.workers = 1;
  config.engine.batch_size = options.batch_size;
  activation::AudienceConfig audience;
  audience.name = "sample";
  audience.source.path = csv;
  audience.source.mapping = activation::engine::sample_mapping();
  config.audiences.push_back(audience);
  destination.name = "target";
  config.destinations.push_back(destination);

  auto engine = activation::DistributionEngine::open(config);
  if (!engine.is_ok()) fail(engine.status().to_string());
  std::vector<std::string> targets = {"target"};

  auto started = Clock::now();
  double cpu_before = own_cpu_seconds();
  auto job = (*engine)->distribute("sample", targets);
  if (!job.is_ok()) fail(job.status().to_string());
  auto idle = (*engine)->run_until_idle(std::chrono::hours(2));
  if (!idle.is_ok()) fail(idle.status().to_string());
  auto finished = Clock::now();

  auto done = (*engine)->job(job->id);
  if (!done.is_ok()) fail(done.status().to_string());
  if (done->status != activation::DistributionStatus::kCompleted) fail("the job ended " + done->last_error);
  Measurement measurement;
  measurement.seconds = std::chrono::duration<double>(finished - started).count();
  measurement.cpu_seconds = own_cpu_seconds() - cpu_before;
  for (const auto& entry : done->progress.destinations) {
    measurement.rows = entry.counters.rows_read;
    measurement.accepted = entry.counters.outcome(activation::RowOutcome::kAccepted);
  }
  return measurement;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_options(argc, argv);
  std::string server_path = options.server.empty() ? default_server_path() : options.server;
  fs::path dir = options.dir.empty()
                     ? fs::temp_directory_path() / ("http-bench-" + std::to_string(::getpid()))
                     : fs::path(options.dir);
  fs::create_directories(dir);
  std::string csv = (dir / "sample.csv").string();
  {
    std::ofstream out(csv, std::ios::binary | std::ios::trunc);
    if (!out || !activation::engine::write_sample_csv(out, options.rows, 1)) fail("cannot write " + csv);
  }
  ::setenv(kTokenVariable, "bench-token", 1);
  Server server(server_path);
  activation::CurlTransportOptions transport_options;
  transport_options.no_proxy = "127.0.0.1,localhost";
  auto transport = activation::make_curl_transport(transport_options);
  if (!transport.is_ok()) fail(transport.status().to_string());

  std::printf("http_bench: %llu rows, batches of %zu, %d rounds, server %s\n",
              static_cast<unsigned long long>(options.rows), options.batch_size, options.rounds,
              server.base_url().c_str());
  std::printf("%-6s %-6s %10s %12s %10s %12s %9s %12s\n", "round", "dest", "seconds", "rows/s", "requests",
              "requests/s", "cpu s", "server cpu s");

  std::vector<double> file_rates;
  std::vector<double> http_rates;
  std::vector<double> request_rates;
  for (int round = 1; round <= options.rounds; ++round) {
    activation::DestinationConfig file;
    file.type = "file";
    file.settings = Json{
        {"directory", (dir / ("files-" + std::to_string(round))).string()},
        {"format",
         "meta_json"}}.dump();
    Measurement on_file = run_once(options, dir / ("file-" + std::to_string(round)), csv, file);
    std::printf("%-6d %-6s %10.2f %12.0f %10s %12s %9.2f %12s\n", round, "file", on_file.seconds,
                on_file.rows_per_second(), "-", "-", on_file.cpu_seconds, "-");
    file_rates.push_back(on_file.rows_per_second());

    // No throttling: the limiter is set far above what one engine sends, so the run measures the
    // HTTP path, not the pacing.
    activation::DestinationConfig meta;
    meta.type = "meta";
    meta.settings =
        Json{{"ad_account_id", "act_42"},
             {"audience_name", "bench-" + std::to_string(round)},
             {"base_url", server.base_url() + "/meta"},
             {"rate_limit", {{"algorithm", "token_bucket"}, {"rate_per_second", 10000}, {"burst", 100}}}}
            .dump();
    meta.secret_env = {{"access_token", kTokenVariable}};
    std::int64_t before = upload_requests(**transport, server);
    double server_before = server.cpu_seconds();
    Measurement on_http = run_once(options, dir / ("meta-" + std::to_string(round)), csv, meta);
    on_http.requests = upload_requests(**transport, server) - before;
    on_http.server_cpu_seconds = server.cpu_seconds() - server_before;
    std::printf("%-6d %-6s %10.2f %12.0f %10lld %12.1f %9.2f %12.2f\n", round, "meta", on_http.seconds,
                on_http.rows_per_second(), static_cast<long long>(on_http.requests),
                on_http.requests_per_second(), on_http.cpu_seconds, on_http.server_cpu_seconds);
    http_rates.push_back(on_http.rows_per_second());
    request_rates.push_back(on_http.requests_per_second());
    if (on_http.accepted != on_file.accepted) {
      fail("the runs accepted different rows: file " + std::to_string(on_file.accepted) + ", meta " +
           std::to_string(on_http.accepted));
    }
  }

  double file_rate = median(file_rates);
  double http_rate = median(http_rates);
  double ratio = http_rate / file_rate;
  std::printf(
      "\nmedian of %d rounds: file destination %.0f rows/s, meta over HTTP %.0f rows/s (%.1f%% of file), "
      "%.1f requests/s\n",
      options.rounds, file_rate, http_rate, 100.0 * ratio, median(request_rates));
  std::printf("target: HTTP at least 80%% of the file destination's rows per second: %s\n",
              ratio >= 0.8 ? "met" : "NOT met");

  server.stop();
  if (!options.keep) {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
  return 0;
}
