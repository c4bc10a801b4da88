// activate status, jobs, cancel, retry and dlq: inspect and change jobs in the store.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "commands.hpp"

namespace activate {
namespace {

// One row of the jobs table. ROWS is the audience's source rows, read once per destination, so the
// table shows the most any destination read (a destination that failed early read fewer), not the
// sum. ACCEPTED is per destination too: one count when every destination accepted the same rows,
// else the lowest and the highest count. A sum over ten destinations would show ten times the
// audience.
std::vector<std::string> job_row(const activation::DistributionJob& job) {
  std::string destinations;
  for (const auto& name : job.destinations) destinations += (destinations.empty() ? "" : ",") + name;
  std::uint64_t rows = 0;
  std::optional<std::uint64_t> lowest;
  std::uint64_t highest = 0;
  for (const auto& destination : job.progress.destinations) {
    rows = std::max(rows, destination.counters.rows_read);
    const std::uint64_t accepted = destination.counters.outcome(activation::RowOutcome::kAccepted);
    lowest = std::min(lowest.value_or(accepted), accepted);
    highest = std::max(highest, accepted);
  }
  std::string accepted = format_count(highest);
  if (lowest && *lowest != highest) accepted = format_count(*lowest) + "-" + accepted;
  return {std::to_string(job.id),
          job_status_label(job),
          job.audience,
          destinations,
          std::string(activation::priority_name(job.priority)),
          (job.dry_run ? "dry-" : "") + std::string(activation::sync_mode_name(job.mode)),
          format_count(rows),
          accepted,
          format_time(job.created_at)};
}

// Prints the table with each column as wide as its widest value; numbers are right-aligned.
void print_job_table(const std::vector<activation::DistributionJob>& jobs) {
  std::vector<std::vector<std::string>> table = {
      {"JOB", "STATUS", "AUDIENCE", "DESTINATIONS", "PRIORITY", "MODE", "ROWS", "ACCEPTED", "CREATED"}};
  for (const auto& job : jobs) table.push_back(job_row(job));
  const std::vector<bool> right_aligned = {false, false, false, false, false, false, true, true, false};

  std::vector<std::size_t> widths(table.front().size(), 0);
  for (const auto& row : table) {
    for (std::size_t column = 0; column < row.size(); ++column) widths[column] = std::max(widths[column], row[column].size());
  }
  for (const auto& row : table) {
    std::string line;
    for (std::size_t column = 0; column < row.size(); ++column) {
      const std::string& cell = row[column];
      std::string padding(widths[column] - cell.size(), ' ');
      if (column > 0) line += "  ";
      const bool last = column + 1 == row.size();
      line += right_aligned[column] ? padding + cell : (last ? cell : cell + padding);
    }
    std::printf("%s\n", line.c_str());
  }
}

void print_jobs_json(const std::vector<activation::DistributionJob>& jobs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& job : jobs) out.push_back(nlohmann::json::parse(job_summary_json(job)));
  std::printf("%s\n", out.dump(2).c_str());
}

// The common shape of the commands that take one JOB argument.
std::optional<std::pair<Args, activation::JobId>> job_command(const std::string& command,
                                                              const std::vector<std::string>& raw_args,
                                                              const char* usage, bool& help) {
  auto args = parse_args(command, raw_args, {"config"}, {"json", "help"});
  if (!args) return std::nullopt;
  if (args->has("help")) {
    help = true;
    std::fputs(usage, stdout);
    return std::nullopt;
  }
  if (args->positional.size() != 1) {
    std::fprintf(stderr, "activate %s: expected one job id\n\n%s", command.c_str(), usage);
    return std::nullopt;
  }
  auto id = parse_job_id(command, args->positional[0]);
  if (!id) return std::nullopt;
  return std::pair{std::move(*args), *id};
}

}  // namespace

int run_status(const std::vector<std::string>& raw_args) {
  const char* usage =
      "usage: activate status JOB [--config FILE] [--json]\n\n"
      "Prints the status of a job and, per destination, its rows and outcomes.\n"
      "Exit status: 0 when the job completed, 1 otherwise.\n";
  bool help = false;
  auto parsed = job_command("status", raw_args, usage, help);
  if (!parsed) return help ? 0 : 2;
  auto engine = open_engine("status", parsed->first);
  if (!engine) return 1;
  auto job = engine->job(parsed->second);
  if (!job.is_ok()) {
    print_error("status", job.status());
    return 1;
  }
  if (parsed->first.has("json")) {
    std::printf("%s\n", job_summary_json(*job).c_str());
  } else {
    print_job_text(*job, stdout);
  }
  return job->status == activation::DistributionStatus::kCompleted ? 0 : 1;
}

int run_jobs(const std::vector<std::string>& raw_args) {
  const char* usage =
      "usage: activate jobs [--audience NAME] [--limit N] [--config FILE] [--json]\n\n"
      "Lists distribution jobs, newest first (default: the last 20). ROWS is the audience's rows\n"
      "and ACCEPTED the rows each destination accepted (in a dry run, would accept), as a range\n"
      "when the destinations differ; activate status JOB shows each destination's counts. MODE is\n"
      "the sync mode, with \"dry-\" before it for a dry run (dry-mirror).\n";
  auto args = parse_args("jobs", raw_args, {"config", "audience", "limit"}, {"json", "help"});
  if (!args) return 2;
  if (args->has("help")) {
    std::fputs(usage, stdout);
    return 0;
  }
  long long limit = 20;
  if (auto text = args->get("limit")) {
    auto value = parse_count("jobs", "limit", *text);
    if (!value || *value == 0) return 2;
    limit = *value;
  }
  auto engine = open_engine("jobs", *args);
  if (!engine) return 1;
  auto jobs = engine->jobs(args->get("audience").value_or(""), static_cast<int>(limit));
  if (!jobs.is_ok()) {
    print_error("jobs", jobs.status());
    return 1;
  }
  if (args->has("json")) {
    print_jobs_json(*jobs);
  } else {
    print_job_table(*jobs);
  }
  return 0;
}

int run_cancel(const std::vector<std::string>& raw_args) {
  const char* usage =
      "usage: activate cancel JOB [--config FILE]\n\n"
      "Cancels a queued job at once, or asks a running one to stop after its batch in flight.\n";
  bool help = false;
  auto parsed = job_command("cancel", raw_args, usage, help);
  if (!parsed) return help ? 0 : 2;
  auto engine = open_engine("cancel", parsed->first);
  if (!engine) return 1;
  auto outcome = engine->cancel(parsed->second);
  if (!outcome.is_ok()) {
    print_error("cancel", outcome.status());
    return 1;
  }
  if (*outcome == activation::CancelOutcome::kCancelled) {
    std::printf("job %lld cancelled\n", static_cast<long long>(parsed->second));
  } else {
    std::printf("job %lld is running; its worker stops it after the batch in flight\n",
                static_cast<long long>(parsed->second));
  }
  return 0;
}

int run_retry(const std::vector<std::string>& raw_args) {
  const char* usage =
      "usage: activate retry JOB [--config FILE]\n\n"
      "Queues a failed, dead or cancelled job again; it resumes from its checkpoints. For a job that\n"
      "completed with errors, queues a new job of its failed destinations with the same audience,\n"
      "mode and options. Exit status 0 when a job was queued.\n";
  bool help = false;
  auto parsed = job_command("retry", raw_args, usage, help);
  if (!parsed) return help ? 0 : 2;
  auto engine = open_engine("retry", parsed->first);
  if (!engine) return 1;
  auto job = engine->retry(parsed->second);
  if (!job.is_ok()) {
    print_error("retry", job.status());
    return 1;
  }
  if (job->id == parsed->second) {
    std::printf("job %lld queued again\n", static_cast<long long>(job->id));
    return 0;
  }
  std::string names;
  for (const auto& name : job->destinations) names += (names.empty() ? "" : ", ") + name;
  std::printf("job %lld completed with errors; job %lld queued for its failed destinations: %s\n",
              static_cast<long long>(parsed->second), static_cast<long long>(job->id), names.c_str());
  return 0;
}

int run_dlq(const std::vector<std::string>& raw_args) {
  const char* usage =
      "usage: activate dlq [--limit N] [--config FILE] [--json]\n\n"
      "Lists the dead-letter queue: jobs whose every attempt failed with an error that a retry could\n"
      "cure (I/O, unavailable, timeout, rate limit), with their last error. A job that failed with a\n"
      "permanent error, such as a rejected credential, is 'failed' instead: see activate jobs.\n";
  auto args = parse_args("dlq", raw_args, {"config", "limit"}, {"json", "help"});
  if (!args) return 2;
  if (args->has("help")) {
    std::fputs(usage, stdout);
    return 0;
  }
  long long limit = 100;
  if (auto text = args->get("limit")) {
    auto value = parse_count("dlq", "limit", *text);
    if (!value || *value == 0) return 2;
    limit = *value;
  }

  auto engine = open_engine("dlq", *args);
  if (!engine) return 1;
  auto jobs = engine->dead_letters(static_cast<int>(limit));
  if (!jobs.is_ok()) {
    print_error("dlq", jobs.status());
    return 1;
  }

  if (args->has("json")) {
    print_jobs_json(*jobs);
    return 0;
  }
  if (jobs->empty()) {
    std::printf("the dead-letter queue is empty\n");
    return 0;
  }
  for (const auto& job : *jobs) {
    std::printf("job %lld  audience %s  attempts %d of %d  finished %s\n  last error: %s\n",
                static_cast<long long>(job.id), job.audience.c_str(), job.attempts, job.max_attempts,
                job.finished_at ? format_time(*job.finished_at).c_str() : "-", job.last_error.c_str());
  }
  return 0;
}

}  // namespace activate
