// queue_bench: throughput, claim latency and memory of the SQLite job queue, printed next to the
// figures of BullMQ, pg-boss and graphile-worker. Those figures are the ones recorded on a machine
// of the same kind, or, with --peers-results FILE, the ones that the peers harness (a Node.js
// program) measured on this machine and wrote to FILE.
//
// With --postgres CONNINFO the same measurements run on the PostgreSQL store (a fresh schema per
// run), processing with 1 and with 4 worker processes, each figure with the CPU time that the
// workers and the PostgreSQL server spent on it. The SQLite store runs the same measurements in the
// same run, and both are printed next to the PostgreSQL-backed peers.
//
// Each measurement runs the worker in a child process (this program, re-executed), so that its
// peak RSS is the worker's own. The producer and the worker then talk through the store file, as
// the peers' producers and workers talk through their servers.
//
//   queue_bench [--jobs N] [--trickle K] [--rate R] [--dir DIR] [--prefetch P] [--repeat R]
//               [--peers-results FILE]
//   queue_bench --postgres CONNINFO [--server-pid-file FILE] [--threads T] [--jobs N] ...
//
// Each measurement runs R times (default 3) and the median is printed, because other programs on a
// shared machine disturb single runs; every run's figures are printed below the table.
// docs/benchmarks/queue.md records the figures and the machine.
#include <libpq-fe.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "activation/backend/store.hpp"
#include "activation/job_queue.hpp"
#include "activation/worker_pool.hpp"

namespace {

using activation::JobQueue;
using activation::JobSpec;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Options {
  int jobs = 100000;
  int trickle = 150;
  double rate = 5.0;
  int prefetch = 64;
  int repeat = 3;
  std::string dir;
  // Child mode: the scenario and its store.
  std::string child;
  std::string store;
  int threads = 1;
  // PostgreSQL mode: the server, the postmaster.pid file for its CPU time, the worker processes.
  std::string postgres;
  std::string server_pid_file;
  int processes = 1;
  // The peers harness's results file (JSON lines) to compare with; empty: the recorded figures.
  std::string peers_results;
};

// In PostgreSQL mode a store location is "pg:SCHEMA" of the database in this variable, which the
// parent sets for its children.
constexpr const char* kConninfoVariable = "ACTIVATION_BENCH_POSTGRES";

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::int64_t monotonic_ns() {
  // CLOCK_MONOTONIC is shared by all processes on the host, so a producer's stamp can be compared
  // with a worker's reading.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux.
}

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "queue_bench: %s\n", message.c_str());
  std::exit(1);
}

std::shared_ptr<activation::Store> open_store(const std::string& path) {
  if (path.rfind("pg:", 0) == 0) {
    const char* conninfo = std::getenv(kConninfoVariable);
    if (conninfo == nullptr) die(std::string(kConninfoVariable) + " is not set");
    activation::PostgresStoreOptions options;
    options.schema = path.substr(3);
    options.pool_size = 8;
    auto store = activation::open_postgresql_store(conninfo, options);
    if (!store.is_ok()) die(store.status().to_string());
    return std::move(store).value();
  }
  auto store = activation::open_sqlite_store(path);
  if (!store.is_ok()) die(store.status().to_string());
  return std::move(store).value();
}

std::shared_ptr<JobQueue> make_queue(std::shared_ptr<activation::Store> store) {
  auto queue = JobQueue::create(std::move(store));
  if (!queue.is_ok()) die(queue.status().to_string());
  return std::move(queue).value();
}

JobSpec trivial_job(int i) {
  JobSpec spec;
  spec.type = "noop";
  spec.payload = fmt::format(R"({{"i":{},"t":{}}})", i, monotonic_ns());
  return spec;
}

void bulk_enqueue(JobQueue& queue, int jobs) {
  std::vector<JobSpec> chunk;
  for (int i = 0; i < jobs; i += 1000) {
    chunk.clear();
    for (int j = i; j < std::min(jobs, i + 1000); ++j) chunk.push_back(trivial_job(j));
    auto result = queue.enqueue_bulk(chunk);
    if (!result.is_ok()) die(result.status().to_string());
  }
}

// --- child scenarios: each prints one JSON line ---

void child_enqueue(const Options& options, bool bulk) {
  auto queue = make_queue(open_store(options.store));
  const auto start = Clock::now();
  if (bulk) {
    bulk_enqueue(*queue, options.jobs);
  } else {
    for (int i = 0; i < options.jobs; ++i) {
      auto result = queue->enqueue(trivial_job(i));
      if (!result.is_ok()) die(result.status().to_string());
    }
  }
  const double elapsed = seconds_since(start);
  nlohmann::json out = {{"jobs_per_s", options.jobs / elapsed}, {"seconds", elapsed}, {"rss_mib", peak_rss_mib()}};
  std::printf("%s\n", out.dump().c_str());
}

void child_process(const Options& options) {
  auto queue = make_queue(open_store(options.store));
  std::vector<std::atomic<std::uint8_t>> runs(static_cast<std::size_t>(options.jobs) + 1);
  std::atomic<std::int64_t> handled{0};

  activation::WorkerPoolOptions pool_options;
  pool_options.threads = options.threads;
  pool_options.limits = {options.threads, options.threads, options.threads, options.threads};
  pool_options.prefetch = options.prefetch;
  auto pool = activation::WorkerPool::create(queue, pool_options);
  if (!pool.is_ok()) die(pool.status().to_string());
  auto status = (*pool)->register_handler("noop", [&](activation::JobContext& context) {
    const auto id = static_cast<std::size_t>(context.job().id);
    if (id < runs.size()) runs[id].fetch_add(1);
    handled.fetch_add(1);
    return activation::Status();
  });
  if (!status.is_ok()) die(status.to_string());

  // The clock runs from the start of the pool to the moment the store has recorded every job
  // completed (the pool counts a completion after its transaction commits).
  const auto start = Clock::now();
  if (auto started = (*pool)->start(); !started.is_ok()) die(started.to_string());
  const auto limit = start + 600s;
  if (options.processes > 1) {
    // Several processes share the jobs: this one stops when the store has recorded all of them.
    // It reads metrics() only while it has no claimed job. metrics() counts the finished jobs, and
    // four processes counting every few milliseconds would take the server's CPU from the claims.
    while (Clock::now() < limit) {
      const auto stats = (*pool)->stats();
      if (stats.claimed == stats.completed) {
        auto metrics = queue->metrics();
        if (metrics.is_ok() && metrics->completed >= options.jobs) break;
      }
      std::this_thread::sleep_for(5ms);
    }
  } else {
    while ((*pool)->stats().completed < options.jobs && Clock::now() < limit) std::this_thread::sleep_for(1ms);
  }
  const double elapsed = seconds_since(start);
  const auto stats = (*pool)->stats();
  (void)(*pool)->shutdown(5s);

  std::int64_t duplicates = 0;
  for (auto& r : runs) duplicates += r.load() > 1 ? r.load() - 1 : 0;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double cpu_us = (static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 +
                         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec));
  nlohmann::json out = {{"jobs_per_s", static_cast<double>(stats.completed) / elapsed},
                        {"seconds", elapsed},
                        {"completed", stats.completed},
                        {"duplicates", duplicates},
                        {"cpu_us_per_job", cpu_us / std::max<double>(1, static_cast<double>(stats.completed))},
                        {"rss_mib", peak_rss_mib()}};
  std::printf("%s\n", out.dump().c_str());
}

void child_latency(const Options& options) {
  auto queue = make_queue(open_store(options.store));
  std::vector<double> latencies_ms;
  std::mutex mutex;

  activation::WorkerPoolOptions pool_options;
  pool_options.threads = 1;
  auto pool = activation::WorkerPool::create(queue, pool_options);
  if (!pool.is_ok()) die(pool.status().to_string());
  auto status = (*pool)->register_handler("noop", [&](activation::JobContext& context) {
    const std::int64_t now = monotonic_ns();
    auto payload = nlohmann::json::parse(context.job().payload);
    const double ms = static_cast<double>(now - payload["t"].get<std::int64_t>()) / 1e6;
    std::lock_guard lock(mutex);
    latencies_ms.push_back(ms);
    return activation::Status();
  });
  if (!status.is_ok()) die(status.to_string());
  if (auto started = (*pool)->start(); !started.is_ok()) die(started.to_string());
  std::printf("ready\n");
  std::fflush(stdout);

  const auto limit = Clock::now() + 600s;
  while (Clock::now() < limit) {
    {
      std::lock_guard lock(mutex);
      if (static_cast<int>(latencies_ms.size()) >= options.trickle) break;
    }
    std::this_thread::sleep_for(5ms);
  }
  (void)(*pool)->shutdown(5s);

  std::sort(latencies_ms.begin(), latencies_ms.end());
  const auto at = [&](double q) {
    if (latencies_ms.empty()) return 0.0;
    const auto index = static_cast<std::size_t>(q * static_cast<double>(latencies_ms.size() - 1) + 0.5);
    return latencies_ms[std::min(index, latencies_ms.size() - 1)];
  };
  nlohmann::json out = {{"p50_ms", at(0.50)},     {"p90_ms", at(0.90)},  {"p99_ms", at(0.99)},
                        {"max_ms", at(1.0)},      {"count", latencies_ms.size()},
                        {"rss_mib", peak_rss_mib()}};
  std::printf("%s\n", out.dump().c_str());
}

// --- parent: runs the children and prints the table ---

struct Child {
  pid_t pid = -1;
  FILE* output = nullptr;
};

Child spawn(const Options& options, const std::string& scenario, int threads) {
  int fds[2];
  if (pipe(fds) != 0) die("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) die("fork failed");
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    const std::string jobs = std::to_string(options.jobs), trickle = std::to_string(options.trickle),
                      thread_count = std::to_string(threads), prefetch = std::to_string(options.prefetch);
    const std::string processes = std::to_string(options.processes);
    execl("/proc/self/exe", "queue_bench", "--child", scenario.c_str(), "--store", options.store.c_str(), "--jobs",
          jobs.c_str(), "--trickle", trickle.c_str(), "--threads", thread_count.c_str(), "--prefetch",
          prefetch.c_str(), "--processes", processes.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  return {pid, fdopen(fds[0], "r")};
}

std::string read_line(FILE* input) {
  std::string line;
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), input) != nullptr) {
    line += buffer;
    if (!line.empty() && line.back() == '\n') break;
  }
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  return line;
}

nlohmann::json finish(Child& child) {
  const std::string line = read_line(child.output);
  fclose(child.output);
  int wstatus = 0;
  rusage usage{};
  wait4(child.pid, &wstatus, 0, &usage);
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) die("a child measurement failed");
  auto json = nlohmann::json::parse(line, nullptr, false);
  if (json.is_discarded()) die("a child printed no result: " + line);
  json["user_s"] = static_cast<double>(usage.ru_utime.tv_sec) + static_cast<double>(usage.ru_utime.tv_usec) / 1e6;
  json["sys_s"] = static_cast<double>(usage.ru_stime.tv_sec) + static_cast<double>(usage.ru_stime.tv_usec) / 1e6;
  return json;
}

// Runs one SQL command on the PostgreSQL server of the bench; dies on failure.
void postgres_command(const std::string& sql) {
  PGconn* conn = PQconnectdb(std::getenv(kConninfoVariable));
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  if (PQstatus(conn) != CONNECTION_OK) die(std::string("cannot connect to PostgreSQL: ") + PQerrorMessage(conn));
  PGresult* result = PQexec(conn, sql.c_str());
  const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK || PQresultStatus(result) == PGRES_TUPLES_OK;
  const std::string error = ok ? "" : PQresultErrorMessage(result);
  PQclear(result);
  PQfinish(conn);
  if (!ok) die(sql + ": " + error);
}

// CPU seconds (user, system) of the PostgreSQL server: the postmaster with its reaped children
// (backends that have exited) and its live children.
struct CpuTime {
  double user = 0;
  double sys = 0;
};

// The text of /proc/PID/stat, or empty when the process is gone (a backend may exit while it is read).
std::string read_proc_stat(const std::string& pid) {
  try {
    std::ifstream in("/proc/" + pid + "/stat");
    return std::string((std::istreambuf_iterator<char>(in)), {});
  } catch (const std::ios_base::failure&) {
    return {};
  }
}

CpuTime server_cpu(pid_t postmaster) {
  CpuTime total;
  if (postmaster <= 0) return total;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  const auto add = [&](pid_t pid, bool with_children) {
    const std::string text = read_proc_stat(std::to_string(pid));
    const auto close = text.rfind(')');
    if (close == std::string::npos) return pid_t{-1};
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    std::vector<std::string> values;
    while (fields >> field) values.push_back(field);
    // After the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    if (values.size() < 15) return pid_t{-1};
    total.user += std::stod(values[11]) / tick + (with_children ? std::stod(values[13]) / tick : 0.0);
    total.sys += std::stod(values[12]) / tick + (with_children ? std::stod(values[14]) / tick : 0.0);
    return static_cast<pid_t>(std::stol(values[1]));
  };
  add(postmaster, true);
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == postmaster) continue;
    // Read the parent first, and add only the postmaster's children.
    const std::string text = read_proc_stat(name);
    const auto close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(text.substr(close + 2));
    std::string state;
    long parent = 0;
    fields >> state >> parent;
    if (parent == postmaster) add(pid, false);
  }
  return total;
}

void remove_store(const std::string& path) {
  if (path.rfind("pg:", 0) == 0) {
    postgres_command("DROP SCHEMA IF EXISTS \"" + path.substr(3) + "\" CASCADE");
    return;
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

nlohmann::json run_simple(Options options, const std::string& scenario, int threads = 1) {
  Child child = spawn(options, scenario, threads);
  return finish(child);
}

nlohmann::json run_processing(Options options, int threads) {
  {
    auto queue = make_queue(open_store(options.store));
    bulk_enqueue(*queue, options.jobs);
  }
  Child child = spawn(options, "process", threads);
  return finish(child);
}

nlohmann::json run_latency(Options options) {
  auto queue = make_queue(open_store(options.store));
  Child child = spawn(options, "latency", 1);
  if (read_line(child.output) != "ready") die("latency worker did not start");
  std::this_thread::sleep_for(200ms);

  std::mt19937 random(7);
  // A uniform gap around 1/rate, as the peers' harness does (100-300 ms at 5 jobs/s).
  const double mean_ms = 1000.0 / options.rate;
  std::uniform_real_distribution<double> gap(mean_ms * 0.5, mean_ms * 1.5);
  for (int i = 0; i < options.trickle; ++i) {
    auto result = queue->enqueue(trivial_job(i));
    if (!result.is_ok()) die(result.status().to_string());
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(gap(random)));
  }
  return finish(child);
}

// The peers' figures, by measurement key: a name and a value (the mean of its runs) per peer.
struct PeerFigure {
  std::string name;
  double value;
};
using PeerTable = std::map<std::string, std::vector<PeerFigure>>;

// Figures for 100,000 jobs (latency: 150 jobs at ~5/s), the mean of two runs each. They were
// recorded with the peers harness (Node.js 20, Redis 7.0.15, PostgreSQL 15.18, all on loopback) on
// a 2 vCPU KVM machine of the kind this project builds on. Used when --peers-results is not given.
PeerTable recorded_peer_table() {
  return {
      {"enqueue_single",
       {{"BullMQ 6.7.6 (Redis 7.0)", 10811},
        {"pg-boss 10.4.2", 1749.5},
        {"graphile-worker 0.16.6", 1732.5},
        {"BullMQ 6.7.6 (PostgreSQL)", 2418}}},
      {"enqueue_bulk",
       {{"BullMQ 6.7.6 (Redis 7.0)", 37340},
        {"pg-boss 10.4.2", 57273},
        {"graphile-worker 0.16.6", 125816.5},
        {"BullMQ 6.7.6 (PostgreSQL)", 46331}}},
      {"process_1",
       {{"BullMQ 6.7.6 (Redis 7.0)", 7537},
        {"pg-boss 10.4.2 (batch 5000)", 10338.5},
        {"graphile-worker 0.16.6", 1800},
        {"BullMQ 6.7.6 (PostgreSQL)", 271}}},
      {"process_16",
       {{"BullMQ 6.7.6 (Redis 7.0)", 23720},
        {"pg-boss 10.4.2 (batch 5000)", 10360},
        {"graphile-worker 0.16.6", 5141},
        {"BullMQ 6.7.6 (PostgreSQL)", 3251}}},
      {"latency_p50",
       {{"BullMQ 6.7.6 (Redis 7.0)", 1.75},
        {"graphile-worker 0.16.6", 2.8},
        {"BullMQ 6.7.6 (PostgreSQL)", 3.35}}},
      {"latency_p99",
       {{"BullMQ 6.7.6 (Redis 7.0)", 3.95},
        {"graphile-worker 0.16.6", 6.4},
        {"BullMQ 6.7.6 (PostgreSQL)", 6.95}}},
      {"rss",
       {{"BullMQ 6.7.6 (Redis 7.0), c=16", 114.5},
        {"pg-boss 10.4.2 (batch 1000), c=16", 73},
        {"graphile-worker 0.16.6, c=16", 106}}},
  };
}

// The peer's name as this bench prints it, from one result line of the peers harness.
std::string peer_name(const nlohmann::json& line) {
  const std::string lib = line.value("lib", "");
  const std::string variant = line.value("variant", "");
  if (lib == "bullmq") return variant == "pg" ? "BullMQ 6.7.6 (PostgreSQL)" : "BullMQ 6.7.6 (Redis 7.0)";
  if (lib == "graphile") return "graphile-worker 0.16.6";
  if (lib == "pgboss") {
    if (variant == "perjob") return "pg-boss 10.4.2 (per job)";
    int batch = 1000;
    if (auto config = line.find("worker_config"); config != line.end() && config->is_object()) {
      batch = config->value("batchSize", 1000);
    }
    return variant == "batch" ? fmt::format("pg-boss 10.4.2 (batch {})", batch) : "pg-boss 10.4.2";
  }
  return lib;
}

// Reads the JSON lines that the peers harness (its bench.mjs) appends to its results file. Keeps
// the measurements of `jobs` jobs and the latency trickle, and gives a peer measured several times
// the mean of its runs. A worker run cut short by the harness's time cap ("capped") is left out,
// because its figure covers only part of the jobs.
PeerTable load_peer_table(const std::string& path, int jobs) {
  std::ifstream in(path);
  if (!in) die(fmt::format("--peers-results {}: cannot open the file", path));
  std::map<std::pair<std::string, std::string>, std::vector<double>> values;
  const auto add = [&](const std::string& key, const std::string& name, double value) {
    values[{key, name}].push_back(value);
  };
  std::string text;
  int line_number = 0;
  while (std::getline(in, text)) {
    ++line_number;
    if (text.empty()) continue;
    const auto line = nlohmann::json::parse(text, nullptr, false);
    if (line.is_discarded() || !line.is_object()) {
      die(fmt::format("--peers-results {}: line {}: expected one JSON object per line", path, line_number));
    }
    const std::string scenario = line.value("scenario", "");
    const std::string name = peer_name(line);
    if (scenario == "latency") {
      const auto& latency = line.value("latency_ms", nlohmann::json::object());
      if (latency.contains("p50")) add("latency_p50", name, latency["p50"].get<double>());
      if (latency.contains("p99")) add("latency_p99", name, latency["p99"].get<double>());
      continue;
    }
    if (line.value("n", 0) != jobs || line.value("capped", false)) continue;
    const double rate = line.value("jobs_per_s", 0.0);
    if (scenario == "enqueue") {
      const std::string mode = line.value("mode", "");
      if (mode == "single") add("enqueue_single", name, rate);
      if (mode == "bulk") add("enqueue_bulk", name, rate);
    } else if (scenario == "process") {
      const int concurrency = line.value("concurrency", 0);
      if (concurrency == 1) add("process_1", name, rate);
      if (concurrency == 16) {
        add("process_16", name, rate);
        if (line.contains("worker_max_rss_mb")) add("rss", name + ", c=16", line["worker_max_rss_mb"].get<double>());
      }
    }
  }
  PeerTable table;
  for (const auto& [key, list] : values) {
    double sum = 0;
    for (double v : list) sum += v;
    table[key.first].push_back({key.second, sum / static_cast<double>(list.size())});
  }
  if (table.empty()) die(fmt::format("--peers-results {}: no measurement of {} jobs in the file", path, jobs));
  return table;
}

// The table the figures are printed against: the recorded one, or the one of --peers-results.
PeerTable& peer_table() {
  static PeerTable table = recorded_peer_table();
  return table;
}

void print_row(const std::string& key, const std::string& label, double ours, const char* unit, bool lower_is_better) {
  const auto found = peer_table().find(key);
  if (found == peer_table().end() || found->second.empty()) {
    std::printf("%-34s %12.1f %-7s | no peer measured this\n", label.c_str(), ours, unit);
    return;
  }
  const PeerFigure* best = nullptr;
  double best_value = 0;
  for (const auto& peer : found->second) {
    if (best == nullptr || (lower_is_better ? peer.value < best_value : peer.value > best_value)) {
      best = &peer;
      best_value = peer.value;
    }
  }
  const double ratio = lower_is_better ? best_value / ours : ours / best_value;
  std::printf("%-34s %12.1f %-7s | best peer %-34s %10.1f | ours/best %5.2fx %s\n", label.c_str(), ours, unit,
              best->name.c_str(), best_value, ratio, ratio >= 1.0 ? "(ahead)" : "(BEHIND)");
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + arg);
      return argv[++i];
    };
    if (arg == "--jobs") {
      options.jobs = std::stoi(value());
    } else if (arg == "--trickle") {
      options.trickle = std::stoi(value());
    } else if (arg == "--rate") {
      options.rate = std::stod(value());
    } else if (arg == "--dir") {
      options.dir = value();
    } else if (arg == "--prefetch") {
      options.prefetch = std::stoi(value());
    } else if (arg == "--repeat") {
      options.repeat = std::stoi(value());
    } else if (arg == "--child") {
      options.child = value();
    } else if (arg == "--store") {
      options.store = value();
    } else if (arg == "--threads") {
      options.threads = std::stoi(value());
    } else if (arg == "--processes") {
      options.processes = std::stoi(value());
    } else if (arg == "--postgres") {
      options.postgres = value();
    } else if (arg == "--server-pid-file") {
      options.server_pid_file = value();
    } else if (arg == "--peers-results") {
      options.peers_results = value();
    } else if (arg == "--help" || arg == "-h") {
      std::printf(
          "usage: queue_bench [--jobs N] [--trickle K] [--rate R] [--dir DIR] [--prefetch P] [--repeat R]\n"
          "  --jobs N      jobs per throughput measurement (default 100000)\n"
          "  --trickle K   jobs in the latency measurement (default 150)\n"
          "  --rate R      jobs per second in the latency measurement (default 5)\n"
          "  --dir DIR     where the store files go (default: a new directory under /tmp)\n"
          "  --prefetch P  jobs the worker pool claims ahead of its threads (default 64)\n"
          "  --repeat R    runs of each measurement; the median is printed (default 3)\n"
          "  --postgres C  measure the PostgreSQL store of libpq conninfo C instead of SQLite\n"
          "  --server-pid-file F  postmaster.pid of that server, for its CPU time (default:\n"
          "                $ACTIVATION_TEST_POSTGRES_PID_FILE, set by scripts/with-postgres.sh)\n"
          "  --threads T   worker threads per process in the PostgreSQL processing runs (default 4)\n"
          "  --peers-results F  compare with the peers measured in F, the results file of the peers\n"
          "                harness run on this machine, instead of the recorded figures\n");
      std::exit(0);
    } else {
      die("unknown option " + arg + "; see --help");
    }
  }
  if (options.jobs < 1 || options.trickle < 1 || options.rate <= 0 || options.prefetch < 0 || options.repeat < 1) {
    die("--jobs, --trickle, --rate and --repeat must be positive, --prefetch 0 or more");
  }
  return options;
}

// Loads the peers of --peers-results, when given, and returns where the peer figures come from.
std::string peers_source(const Options& options) {
  if (options.peers_results.empty()) {
    return "figures recorded with the peers harness on a 2 vCPU KVM machine of this kind (mean of 2 runs); "
           "--peers-results compares with a run of the harness on this machine";
  }
  peer_table() = load_peer_table(options.peers_results, options.jobs);
  return fmt::format("measured by the peers harness on this machine, from {} (mean of its runs of {} jobs)",
                     options.peers_results, options.jobs);
}

// Returns the PID in the first line of a postmaster.pid file, or -1.
pid_t read_postmaster_pid(const std::string& path) {
  if (path.empty()) return -1;
  std::ifstream in(path);
  long pid = -1;
  in >> pid;
  return in ? static_cast<pid_t>(pid) : -1;
}

// Runs `measure` and adds the server's CPU seconds spent meanwhile to its result.
template <typename Measure>
nlohmann::json with_server_cpu(pid_t postmaster, Measure measure) {
  const CpuTime before = server_cpu(postmaster);
  nlohmann::json result = measure();
  const CpuTime after = server_cpu(postmaster);
  result["server_user_s"] = after.user - before.user;
  result["server_sys_s"] = after.sys - before.sys;
  return result;
}

// Processing with `processes` worker processes of `threads` threads each, all on one queue.
// The server's CPU time is taken from the start of the workers, after the enqueue.
nlohmann::json run_processing_processes(Options options, int processes, int threads, pid_t postmaster) {
  {
    auto queue = make_queue(open_store(options.store));
    bulk_enqueue(*queue, options.jobs);
  }
  options.processes = processes;
  const CpuTime server_before = server_cpu(postmaster);
  std::vector<Child> children;
  for (int i = 0; i < processes; ++i) children.push_back(spawn(options, "process", threads));
  double seconds = 0, user = 0, sys = 0, rss = 0;
  std::int64_t completed = 0;
  for (Child& child : children) {
    const nlohmann::json result = finish(child);
    seconds = std::max(seconds, result["seconds"].get<double>());
    user += result["user_s"].get<double>();
    sys += result["sys_s"].get<double>();
    rss = std::max(rss, result["rss_mib"].get<double>());
  }
  const CpuTime server_after = server_cpu(postmaster);
  {
    auto queue = make_queue(open_store(options.store));
    auto metrics = queue->metrics();
    if (!metrics.is_ok()) die(metrics.status().to_string());
    completed = metrics->completed;
  }
  if (completed != options.jobs) die(fmt::format("{} of {} jobs completed", completed, options.jobs));
  return {{"jobs_per_s", static_cast<double>(options.jobs) / seconds},
          {"seconds", seconds},
          {"user_s", user},
          {"sys_s", sys},
          {"server_user_s", server_after.user - server_before.user},
          {"server_sys_s", server_after.sys - server_before.sys},
          {"rss_mib", rss}};
}

double median_of(const std::vector<nlohmann::json>& runs, const char* field) {
  std::vector<double> values;
  for (const auto& run : runs) values.push_back(run[field].get<double>());
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// The runs of one store: one entry per repeat in each list.
struct StoreRuns {
  std::vector<nlohmann::json> single, bulk, process_1, process_4, latency;
};

// Measures every figure once on options.store, which is emptied before each measurement.
void measure_store(const Options& options, int threads, pid_t postmaster, StoreRuns& runs) {
  remove_store(options.store);
  runs.single.push_back(with_server_cpu(postmaster, [&] { return run_simple(options, "enqueue_single"); }));
  remove_store(options.store);
  runs.bulk.push_back(with_server_cpu(postmaster, [&] { return run_simple(options, "enqueue_bulk"); }));
  remove_store(options.store);
  runs.process_1.push_back(run_processing_processes(options, 1, threads, postmaster));
  remove_store(options.store);
  runs.process_4.push_back(run_processing_processes(options, 4, threads, postmaster));
  remove_store(options.store);
  runs.latency.push_back(with_server_cpu(postmaster, [&] { return run_latency(options); }));
  remove_store(options.store);
}

// Prints the PostgreSQL median with the CPU time of its run, the SQLite median of the same run,
// and the recorded figures of the PostgreSQL-backed peers with the ratio to the best of them.
void print_postgres_row(const std::string& key, const std::string& label, const std::vector<nlohmann::json>& runs,
                        const std::vector<nlohmann::json>& sqlite_runs, const char* field, bool higher_is_better) {
  const double ours = median_of(runs, field);
  const nlohmann::json* median_run = &runs.front();
  for (const auto& run : runs) {
    if (run[field].get<double>() == ours) median_run = &run;
  }
  std::string cpu;
  if (median_run->contains("user_s")) {
    cpu = fmt::format("workers {:.2f}u+{:.2f}s, server {:.2f}u+{:.2f}s", (*median_run)["user_s"].get<double>(),
                      (*median_run)["sys_s"].get<double>(), (*median_run)["server_user_s"].get<double>(),
                      (*median_run)["server_sys_s"].get<double>());
  }
  std::string peers;
  double best = 0;
  if (auto found = peer_table().find(key); found != peer_table().end()) {
    for (const auto& peer : found->second) {
      const std::string& name = peer.name;
      if (name.find("pg-boss") == std::string::npos && name.find("PostgreSQL") == std::string::npos &&
          name.find("graphile") == std::string::npos) {
        continue;
      }
      const double value = peer.value;
      if (best == 0 || (higher_is_better ? value > best : value < best)) best = value;
      peers += fmt::format("{}{} {:.1f}", peers.empty() ? "" : "; ", name, value);
    }
  }
  const double ratio = best == 0 ? 0 : (higher_is_better ? ours / best : best / ours);
  std::printf("%-34s PostgreSQL %9.1f  SQLite %9.1f  ours/best peer %5.2fx | %s | peers: %s\n", label.c_str(), ours,
              median_of(sqlite_runs, field), ratio, cpu.c_str(), peers.c_str());
}

int run_postgres(Options options, const std::string& peers) {
  ::setenv(kConninfoVariable, options.postgres.c_str(), 1);
  if (options.server_pid_file.empty()) {
    const char* file = std::getenv("ACTIVATION_TEST_POSTGRES_PID_FILE");
    if (file != nullptr) options.server_pid_file = file;
  }
  const pid_t postmaster = read_postmaster_pid(options.server_pid_file);
  const int threads = options.threads > 1 ? options.threads : 4;
  options.store = fmt::format("pg:queue_bench_{}", ::getpid());

  // The SQLite store runs the same measurements in the same run, beside the server's.
  Options sqlite_options = options;
  std::string dir = options.dir;
  const bool remove_dir = dir.empty();
  if (remove_dir) {
    char pattern[] = "/tmp/queue-bench-XXXXXX";
    if (mkdtemp(pattern) == nullptr) die("mkdtemp failed");
    dir = pattern;
  }
  sqlite_options.store = dir + "/bench.db";

  std::printf("queue_bench: PostgreSQL store (schema %s) and SQLite store (%s, WAL, synchronous=NORMAL); "
              "%d jobs per run; %d threads per worker process; prefetch %d\n",
              options.store.c_str() + 3, sqlite_options.store.c_str(), options.jobs, threads, options.prefetch);
  std::printf("server CPU: %s\n", postmaster > 0 ? fmt::format("postmaster {} and its children", postmaster).c_str()
                                                 : "not measured (no --server-pid-file)");
  std::printf("peers: %s\n\n", peers.c_str());

  StoreRuns postgres, sqlite;
  for (int run = 0; run < options.repeat; ++run) {
    measure_store(options, threads, postmaster, postgres);
    measure_store(sqlite_options, threads, -1, sqlite);
  }
  if (remove_dir) std::filesystem::remove_all(dir);

  std::printf("median of %d runs; CPU seconds of the PostgreSQL run\n", options.repeat);
  print_postgres_row("enqueue_single", "enqueue one by one (jobs/s)", postgres.single, sqlite.single, "jobs_per_s",
                     true);
  print_postgres_row("enqueue_bulk", "enqueue bulk, 1000 per call (jobs/s)", postgres.bulk, sqlite.bulk,
                     "jobs_per_s", true);
  print_postgres_row("process_1", fmt::format("process, 1 process x {} (jobs/s)", threads), postgres.process_1,
                     sqlite.process_1, "jobs_per_s", true);
  print_postgres_row("process_16", fmt::format("process, 4 processes x {} (jobs/s)", threads), postgres.process_4,
                     sqlite.process_4, "jobs_per_s", true);
  print_postgres_row("latency_p50", "claim latency p50 (ms)", postgres.latency, sqlite.latency, "p50_ms", false);
  print_postgres_row("latency_p99", "claim latency p99 (ms)", postgres.latency, sqlite.latency, "p99_ms", false);

  std::printf("\nevery run:\n");
  for (int run = 0; run < options.repeat; ++run) {
    const auto r = static_cast<std::size_t>(run);
    for (const auto& [name, runs] : {std::pair<const char*, StoreRuns*>{"PostgreSQL", &postgres}, {"SQLite", &sqlite}}) {
      std::printf("  run %d, %s\n", run + 1, name);
      std::printf("    enqueue one by one:   %s\n", runs->single[r].dump().c_str());
      std::printf("    enqueue bulk:         %s\n", runs->bulk[r].dump().c_str());
      std::printf("    process 1 process:    %s\n", runs->process_1[r].dump().c_str());
      std::printf("    process 4 processes:  %s\n", runs->process_4[r].dump().c_str());
      std::printf("    latency:              %s\n", runs->latency[r].dump().c_str());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse(argc, argv);
  if (!options.child.empty()) {
    if (options.child == "enqueue_single") child_enqueue(options, false);
    else if (options.child == "enqueue_bulk") child_enqueue(options, true);
    else if (options.child == "process") child_process(options);
    else if (options.child == "latency") child_latency(options);
    else die("unknown child scenario " + options.child);
    return 0;
  }
  // Read --peers-results before any store is created, so that a bad file stops the bench at once.
  const std::string peers = peers_source(options);
  if (!options.postgres.empty()) return run_postgres(options, peers);

  std::string dir = options.dir;
  bool remove_dir = false;
  if (dir.empty()) {
    char pattern[] = "/tmp/queue-bench-XXXXXX";
    if (mkdtemp(pattern) == nullptr) die("mkdtemp failed");
    dir = pattern;
    remove_dir = true;
  }
  options.store = dir + "/bench.db";

  std::printf("queue_bench: SQLite store in %s, WAL, synchronous=NORMAL; %d jobs per run; prefetch %d\n",
              dir.c_str(), options.jobs, options.prefetch);
  std::printf("peers: %s\n\n", peers.c_str());

  std::vector<nlohmann::json> single, bulk, process_1, process_16, latency;
  for (int run = 0; run < options.repeat; ++run) {
    remove_store(options.store);
    single.push_back(run_simple(options, "enqueue_single"));
    remove_store(options.store);
    bulk.push_back(run_simple(options, "enqueue_bulk"));
    remove_store(options.store);
    process_1.push_back(run_processing(options, 1));
    remove_store(options.store);
    process_16.push_back(run_processing(options, 16));
    remove_store(options.store);
    latency.push_back(run_latency(options));
    remove_store(options.store);
  }
  const auto median = [](const std::vector<nlohmann::json>& runs, const char* field) {
    std::vector<double> values;
    for (const auto& run : runs) values.push_back(run[field].get<double>());
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
  };

  std::printf("median of %d runs\n", options.repeat);
  print_row("enqueue_single", "enqueue one by one (jobs/s)", median(single, "jobs_per_s"), "", false);
  print_row("enqueue_bulk", "enqueue bulk, 1000 per call (jobs/s)", median(bulk, "jobs_per_s"), "", false);
  print_row("process_1", "process, 1 worker (jobs/s)", median(process_1, "jobs_per_s"), "", false);
  print_row("process_16", "process, 16 workers (jobs/s)", median(process_16, "jobs_per_s"), "", false);
  print_row("latency_p50", "claim latency p50 (ms)", median(latency, "p50_ms"), "", true);
  print_row("latency_p99", "claim latency p99 (ms)", median(latency, "p99_ms"), "", true);
  print_row("rss", "worker peak RSS, 16 workers (MiB)", median(process_16, "rss_mib"), "", true);

  std::printf("\nevery run:\n");
  for (int run = 0; run < options.repeat; ++run) {
    const auto r = static_cast<std::size_t>(run);
    std::printf("  run %d\n", run + 1);
    std::printf("    enqueue one by one: %s\n", single[r].dump().c_str());
    std::printf("    enqueue bulk:       %s\n", bulk[r].dump().c_str());
    std::printf("    process 1 worker:   %s\n", process_1[r].dump().c_str());
    std::printf("    process 16 workers: %s\n", process_16[r].dump().c_str());
    std::printf("    latency:            %s\n", latency[r].dump().c_str());
  }

  if (remove_dir) std::filesystem::remove_all(dir);
  return 0;
}
