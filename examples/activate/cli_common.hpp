// Shared pieces of the activate subcommands: option parsing, opening the engine from a
// configuration file, progress bars and summaries.
#ifndef ACTIVATE_CLI_COMMON_HPP_
#define ACTIVATE_CLI_COMMON_HPP_

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "activation/engine.hpp"

namespace activate {

// Parsed command-line arguments: --name value options, --flag switches and positional arguments.
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
  std::set<std::string> flags;

  bool has(const std::string& flag) const { return flags.count(flag) > 0; }
  std::optional<std::string> get(const std::string& name) const {
    auto found = options.find(name);
    if (found == options.end()) return std::nullopt;
    return found->second;
  }
};

// Parses `args`: names in `with_value` take the next argument as their value (or --name=value);
// names in `switches` take none. Returns nullopt after printing the error for an unknown option
// or a missing value.
std::optional<Args> parse_args(const std::string& command, const std::vector<std::string>& args,
                               const std::set<std::string>& with_value,
                               const std::set<std::string>& switches);

// Parses a non-negative integer option; prints an error naming the option and returns nullopt.
std::optional<long long> parse_count(const std::string& command, const std::string& option,
                                     const std::string& text);

// The configuration file: --config, else $ACTIVATION_CONFIG, else ./activation.json.
std::string config_path(const Args& args);

// Opens the engine of the configuration; prints the error and returns nullptr on failure. With
// `verbose`, the library's log goes to stderr.
std::unique_ptr<activation::DistributionEngine> open_engine(const std::string& command, const Args& args,
                                                            bool verbose = false);

// Parses a job id argument; prints an error and returns nullopt when it is not a positive integer.
std::optional<activation::JobId> parse_job_id(const std::string& command, const std::string& text);

void print_error(const std::string& command, const activation::Status& status);

// Live progress bars, one line per destination, redrawn in place on a terminal. Off a terminal,
// with `plain_lines`, the same lines are printed every two seconds.
class ProgressBars {
 public:
  ProgressBars(std::FILE* out, bool plain_lines);
  // `last` draws even off a terminal between the two-second marks, so the final state shows.
  void draw(const activation::JobProgress& progress, const std::vector<std::string>& destinations,
            bool last = false);
  // Leaves the last drawing on screen and moves below it.
  void finish();

 private:
  std::FILE* out_;
  bool terminal_;
  bool plain_lines_;
  int lines_drawn_ = 0;
  std::chrono::steady_clock::time_point last_plain_{};
};

// Prints a job as text (status, then one block per destination), or as the JSON summary.
// Returns the job's status for text output: the distribution status, except "dead" for a failed
// job that the queue moved to the dead-letter queue (the one `activate dlq` lists).
std::string job_status_label(const activation::DistributionJob& job);
void print_job_text(const activation::DistributionJob& job, std::FILE* out);
std::string job_summary_json(const activation::DistributionJob& job);

std::string format_count(std::uint64_t value);
std::string format_time(activation::Timestamp time);

}  // namespace activate

#endif  // ACTIVATE_CLI_COMMON_HPP_
