// Distributes an audience through the C++ API and shows the progress of each destination.
//
//   activation-example-cpp CONFIG AUDIENCE DESTINATION...
//
// CONFIG is an activation.json (docs/configuration.md). The program queues the distribution, runs
// it with the worker pool of this process, and prints a line each time a destination passes
// another tenth of its source. Exit status: 0 when the job completed, 1 otherwise.
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <activation/engine.hpp>

namespace {

int report(const char* what, const activation::Status& status) {
  std::fprintf(stderr, "activation-example-cpp: %s: %s\n", what, status.to_string().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s CONFIG AUDIENCE DESTINATION...\n", argv[0]);
    return 2;
  }
  auto config = activation::load_config(argv[1]);
  if (!config.is_ok()) return report("reading the configuration", config.status());
  auto engine = activation::DistributionEngine::open(std::move(*config));
  if (!engine.is_ok()) return report("opening the engine", engine.status());

  // Progress arrives on worker threads, possibly for several destinations at once.
  std::mutex print_mutex;
  std::map<std::string, int> last_tenth;
  auto subscription = (*engine)->progress().subscribe([&](const activation::DestinationProgress& progress) {
    double percent = progress.state == activation::RunState::kDone ? 100.0 : progress.percent.value_or(0.0);
    int tenth = static_cast<int>(percent / 10);
    std::lock_guard lock(print_mutex);
    auto [entry, added] = last_tenth.emplace(progress.destination, -1);
    if (!added && entry->second == tenth && progress.state == activation::RunState::kRunning) return;
    entry->second = tenth;
    const auto& counters = progress.counters;
    std::printf("%-16s %5.1f%%  %8llu rows read  %8llu accepted  %6llu invalid  %s\n",
                progress.destination.c_str(), percent, static_cast<unsigned long long>(counters.rows_read),
                static_cast<unsigned long long>(counters.outcome(activation::RowOutcome::kAccepted)),
                static_cast<unsigned long long>(counters.outcome(activation::RowOutcome::kInvalid)),
                std::string(activation::run_state_name(progress.state)).c_str());
    std::fflush(stdout);
  });

  std::vector<std::string> destinations(argv + 3, argv + argc);
  auto job = (*engine)->distribute(argv[2], destinations);
  if (!job.is_ok()) return report("queuing the distribution", job.status());
  activation::Status started = (*engine)->start_workers();
  if (!started.is_ok()) return report("starting the workers", started);

  // The job's end is recorded in the store, where any process can read it.
  activation::DistributionJob current = *job;
  while (!activation::is_terminal(current.queue_state)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto read = (*engine)->job(job->id);
    if (!read.is_ok()) return report("reading the job", read.status());
    current = std::move(*read);
  }
  (*engine)->progress().unsubscribe(subscription);
  activation::Status stopped = (*engine)->stop_workers(std::chrono::seconds(10));
  if (!stopped.is_ok()) report("stopping the workers", stopped);

  std::printf("job %lld: %s\n", static_cast<long long>(current.id),
              std::string(activation::distribution_status_name(current.status)).c_str());
  if (!current.last_error.empty()) std::printf("last error: %s\n", current.last_error.c_str());
  return current.status == activation::DistributionStatus::kCompleted ? 0 : 1;
}
