// activate: runs distributions and inspects the job store from the command line.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "activation/version.h"
#include "commands.hpp"

namespace {

constexpr activate::Command kCommands[] = {
    {"hash", "normalize and hash identifiers read as NDJSON on stdin, as a platform would receive them",
     activate::run_hash},
    {"distribute", "queue a distribution of an audience to destinations; --wait runs it with progress",
     activate::run_distribute},
    {"status", "print a job's status and its rows and outcomes per destination", activate::run_status},
    {"jobs", "list distribution jobs, newest first", activate::run_jobs},
    {"cancel", "cancel a queued job, or stop a running one after its batch in flight", activate::run_cancel},
    {"retry", "queue a failed, dead or cancelled job again; it resumes from its checkpoints", activate::run_retry},
    {"worker", "run distribution jobs from the store until stopped", activate::run_worker},
    {"dlq", "list the dead-letter queue", activate::run_dlq},
    {"rejects", "write a job's invalid, rejected and deferred rows with their reasons as CSV",
     activate::run_rejects},
    {"metrics", "print queue and destination metrics in the Prometheus text format", activate::run_metrics},
    {"sample", "write a generated, messy sample audience as CSV", activate::run_sample},
};

void print_usage(std::FILE* out) {
  std::fprintf(out, "usage: activate COMMAND [OPTIONS]\n\ncommands:\n");
  for (const auto& command : kCommands) {
    std::fprintf(out, "  %-12s %s\n", command.name, command.summary);
  }
  std::fprintf(out, "\nRun 'activate COMMAND --help' for the options of one command.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  if (name == "--version") {
    std::printf("activate %s\n", ACT_VERSION_STRING);
    return 0;
  }

  std::vector<std::string> args(argv + 2, argv + argc);
  for (const auto& command : kCommands) {
    if (name == command.name) return command.run(args);
  }
  std::fprintf(stderr, "activate: unknown command '%.*s'\n\n", static_cast<int>(name.size()), name.data());
  print_usage(stderr);
  return 2;
}
