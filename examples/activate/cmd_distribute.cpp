// activate distribute: queues a distribution, and with --wait runs it here with progress bars.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>

#include "cli_common.hpp"
#include "commands.hpp"

namespace activate {
namespace {

constexpr const char* kUsage =
    "usage: activate distribute AUDIENCE DESTINATION... [options]\n"
    "\n"
    "Queues a distribution of AUDIENCE to each DESTINATION of the configuration.\n"
    "\n"
    "options:\n"
    "  --config FILE        configuration file (default: $ACTIVATION_CONFIG, else ./activation.json)\n"
    "  --mode MODE          add, remove, replace or mirror (default: add)\n"
    "  --dry-run            run the pipeline without sending or writing the ledger\n"
    "  --priority P         low, normal, high or critical (default: normal)\n"
    "  --batch-size N       operations per batch (default: the destination's, else the engine's)\n"
    "  --parallelism N      destinations run at once, 1 to 64 (default: the engine's setting)\n"
    "  --delay SECONDS      start no earlier than SECONDS from now\n"
    "  --expire-after SECONDS  cancel the job if no worker started it within SECONDS\n"
    "  --metadata KEY=VALUE stored with the job; may be repeated as --metadata=a=1,b=2\n"
    "  --wait               run workers in this process until the job ends, showing progress; they\n"
    "                       take any other queued job too while they run\n"
    "  --json               with --wait, print one JSON summary at the end\n"
    "\n"
    "Exit status: 0 when the job was queued (without --wait) or completed (with --wait), 1 when it\n"
    "ended otherwise or could not be queued, 2 for a usage error.\n";

std::atomic<bool> interrupted{false};

void on_interrupt(int) {
  interrupted = true;
}

}  // namespace

int run_distribute(const std::vector<std::string>& raw_args) {
  const std::string command = "distribute";
  auto args = parse_args(
      command, raw_args,
      {"config", "mode", "priority", "batch-size", "parallelism", "delay", "expire-after", "metadata"},
      {"dry-run", "wait", "json", "help"});
  if (!args) return 2;
  if (args->has("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (args->positional.size() < 2) {
    std::fprintf(stderr, "activate distribute: expected an audience and at least one destination\n\n%s",
                 kUsage);
    return 2;
  }

  activation::DistributeOptions options;
  options.dry_run = args->has("dry-run");
  if (auto mode = args->get("mode")) {
    auto parsed = activation::parse_sync_mode(*mode);
    if (!parsed) {
      std::fprintf(stderr, "activate distribute: --mode expects add, remove, replace or mirror, got '%s'\n",
                   mode->c_str());
      return 2;
    }
    options.mode = *parsed;
  }
  if (auto priority = args->get("priority")) {
    auto parsed = activation::parse_priority(*priority);
    if (!parsed) {
      std::fprintf(stderr,
                   "activate distribute: --priority expects low, normal, high or critical, got '%s'\n",
                   priority->c_str());
      return 2;
    }
    options.priority = *parsed;
  }
  if (auto batch = args->get("batch-size")) {
    auto value = parse_count(command, "batch-size", *batch);
    if (!value || *value == 0) {
      if (value) std::fprintf(stderr, "activate distribute: --batch-size must be at least 1\n");
      return 2;
    }
    options.batch_size = static_cast<std::size_t>(*value);
  }
  if (auto parallelism = args->get("parallelism")) {
    auto value = parse_count(command, "parallelism", *parallelism);
    if (!value || *value == 0 || *value > 64) {
      if (value) {
        std::fprintf(stderr, "activate distribute: --parallelism is %llu; expected 1 to 64\n",
                     static_cast<unsigned long long>(*value));
      }
      return 2;
    }
    options.parallelism = static_cast<int>(*value);
  }
  if (auto delay = args->get("delay")) {
    auto value = parse_count(command, "delay", *delay);
    if (!value) return 2;
    options.scheduled_at = std::chrono::system_clock::now() + std::chrono::seconds(*value);
  }
  if (auto expire = args->get("expire-after")) {
    auto value = parse_count(command, "expire-after", *expire);
    if (!value) return 2;
    options.expires_at = std::chrono::system_clock::now() + std::chrono::seconds(*value);
  }
  if (auto metadata = args->get("metadata")) {
    std::string text = *metadata;
    std::size_t start = 0;
    while (start <= text.size()) {
      std::size_t comma = text.find(',', start);
      std::string pair = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      auto equals = pair.find('=');
      if (equals == std::string::npos || equals == 0) {
        std::fprintf(stderr, "activate distribute: --metadata expects KEY=VALUE pairs, got '%s'\n",
                     pair.c_str());
        return 2;
      }
      options.metadata[pair.substr(0, equals)] = pair.substr(equals + 1);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }

  const bool wait = args->has("wait");
  const bool json = args->has("json");
  auto engine = open_engine(command, *args, /*verbose=*/false);
  if (!engine) return 1;

  std::string audience = args->positional[0];
  std::vector<std::string> destinations(args->positional.begin() + 1, args->positional.end());
  auto queued = engine->distribute(audience, destinations, options);
  if (!queued.is_ok()) {
    print_error(command, queued.status());
    return 1;
  }
  if (!wait) {
    if (json) {
      std::printf("%s\n", job_summary_json(*queued).c_str());
    } else {
      std::printf("job %lld queued: %s to %zu destination(s), mode %s%s\n",
                  static_cast<long long>(queued->id), audience.c_str(), destinations.size(),
                  std::string(activation::sync_mode_name(options.mode)).c_str(),
                  options.dry_run ? " (dry run)" : "");
    }
    return 0;
  }

  if (!json) {
    std::fprintf(stderr,
                 "job %lld queued; running it here, with any other queued job (Ctrl-C stops and leaves it to "
                 "another worker)\n",
                 static_cast<long long>(queued->id));
  }
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  auto started = engine->start_workers();
  if (!started.is_ok()) {
    print_error(command, started);
    return 1;
  }

  ProgressBars bars(stderr, /*plain_lines=*/!json);
  activation::DistributionJob job = *queued;
  while (!interrupted) {
    auto current = engine->job(queued->id);
    if (current.is_ok()) job = std::move(*current);
    auto live = engine->progress().job(queued->id);
    bool ended = activation::is_terminal(job.queue_state);
    bars.draw(ended || !live ? job.progress : *live, destinations, ended);
    if (ended) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  bars.finish();
  auto stopped = engine->stop_workers(std::chrono::seconds(10));
  if (!stopped.is_ok()) print_error(command, stopped);
  if (interrupted && !activation::is_terminal(job.queue_state)) {
    std::fprintf(stderr, "activate distribute: interrupted; job %lld goes back to the queue\n",
                 static_cast<long long>(job.id));
    return 130;
  }
  auto final_job = engine->job(queued->id);
  if (final_job.is_ok()) job = std::move(*final_job);
  if (json) {
    std::printf("%s\n", job_summary_json(job).c_str());
  } else {
    print_job_text(job, stdout);
  }
  return job.status == activation::DistributionStatus::kCompleted ? 0 : 1;
}

}  // namespace activate
