// activate worker: runs distribution jobs from the store until stopped.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include <unistd.h>

#include "cli_common.hpp"
#include "commands.hpp"

namespace activate {
namespace {

std::atomic<bool> stop_requested{false};

void on_signal(int) {
  stop_requested = true;
}

}  // namespace

int run_worker(const std::vector<std::string>& raw_args) {
  const char* usage =
      "usage: activate worker [--config FILE] [--threads N] [--until-idle] [--quiet]\n\n"
      "Claims distribution jobs from the store and runs them until SIGINT or SIGTERM; running jobs\n"
      "get 30 seconds to finish their batch, then go back to the queue for another worker.\n\n"
      "options:\n"
      "  --threads N     jobs run at once (default: the configuration's engine.workers)\n"
      "  --until-idle    exit once no job is waiting, delayed or running\n"
      "  --quiet         do not log job starts, ends and retries to stderr\n";
  auto args = parse_args("worker", raw_args, {"config", "threads"}, {"until-idle", "quiet", "help"});
  if (!args) return 2;
  if (args->has("help")) {
    std::fputs(usage, stdout);
    return 0;
  }
  std::optional<int> threads;
  if (auto text = args->get("threads")) {
    auto value = parse_count("worker", "threads", *text);
    if (!value || *value == 0) return 2;
    threads = static_cast<int>(*value);
  }
  auto engine = open_engine("worker", *args, /*verbose=*/!args->has("quiet"));
  if (!engine) return 1;

  if (args->has("until-idle")) {
    auto stats = engine->run_until_idle(std::chrono::hours(24 * 365));
    if (!stats.is_ok()) {
      print_error("worker", stats.status());
      return 1;
    }
    std::fprintf(
        stderr,
        "activate worker: idle after %lld job(s): %lld completed, %lld retried, %lld dead, %lld cancelled\n",
        static_cast<long long>(stats->claimed), static_cast<long long>(stats->completed),
        static_cast<long long>(stats->retried), static_cast<long long>(stats->dead),
        static_cast<long long>(stats->cancelled));
    return 0;
  }

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  auto started = engine->start_workers(threads);
  if (!started.is_ok()) {
    print_error("worker", started);
    return 1;
  }
  std::fprintf(stderr, "activate worker: running (pid %d); SIGINT or SIGTERM stops it\n",
               static_cast<int>(::getpid()));
  while (!stop_requested) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::fprintf(stderr, "activate worker: stopping\n");
  auto stopped = engine->stop_workers(std::chrono::seconds(30));
  if (!stopped.is_ok()) {
    print_error("worker", stopped);
    return 1;
  }
  return 0;
}

int run_rejects(const std::vector<std::string>& raw_args) {
  const char* usage =
      "usage: activate rejects JOB [--out FILE] [--config FILE]\n\n"
      "Writes the rows of a job that were not accepted (invalid, rejected, deferred) as CSV with\n"
      "their reasons: destination,line,operation,outcome,reason_code,reason,member_key. Lines are\n"
      "the source's line numbers; line 0 is a member who left the source (a mirror remove).\n";
  auto args = parse_args("rejects", raw_args, {"config", "out"}, {"help"});
  if (!args) return 2;
  if (args->has("help")) {
    std::fputs(usage, stdout);
    return 0;
  }
  if (args->positional.size() != 1) {
    std::fprintf(stderr, "activate rejects: expected one job id\n\n%s", usage);
    return 2;
  }
  auto id = parse_job_id("rejects", args->positional[0]);
  if (!id) return 2;
  auto engine = open_engine("rejects", *args);
  if (!engine) return 1;
  // Checked first, so that an unknown job prints only its error and --out leaves no empty file.
  if (auto job = engine->job(*id); !job.is_ok()) {
    print_error("rejects", job.status());
    return 1;
  }

  activation::Status written;
  if (auto path = args->get("out")) {
    std::ofstream out(*path, std::ios::binary | std::ios::trunc);
    if (!out) {
      std::fprintf(stderr, "activate rejects: cannot write '%s'\n", path->c_str());
      return 1;
    }
    written = engine->export_row_outcomes_csv(*id, out);
  } else {
    written = engine->export_row_outcomes_csv(*id, std::cout);
  }
  if (!written.is_ok()) {
    print_error("rejects", written);
    return 1;
  }
  return 0;
}

int run_metrics(const std::vector<std::string>& raw_args) {
  const char* usage =
      "usage: activate metrics [--config FILE]\n\n"
      "Prints queue and destination metrics in the Prometheus text format.\n";
  auto args = parse_args("metrics", raw_args, {"config"}, {"help"});
  if (!args) return 2;
  if (args->has("help")) {
    std::fputs(usage, stdout);
    return 0;
  }
  auto engine = open_engine("metrics", *args);
  if (!engine) return 1;
  auto text = engine->metrics_text();
  if (!text.is_ok()) {
    print_error("metrics", text.status());
    return 1;
  }
  std::fputs(text->c_str(), stdout);
  return 0;
}

}  // namespace activate
