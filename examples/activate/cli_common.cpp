#include "cli_common.hpp"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>

#include <unistd.h>

#include <nlohmann/json.hpp>

namespace activate {

using activation::DistributionJob;
using activation::RowOutcome;

std::optional<Args> parse_args(const std::string& command, const std::vector<std::string>& args,
                               const std::set<std::string>& with_value,
                               const std::set<std::string>& switches) {
  Args parsed;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 3 || arg.rfind("--", 0) != 0) {
      parsed.positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto equals = name.find('='); equals != std::string::npos) {
      value = name.substr(equals + 1);
      name = name.substr(0, equals);
    }
    if (switches.count(name) && !value) {
      parsed.flags.insert(name);
    } else if (with_value.count(name)) {
      if (!value) {
        if (i + 1 >= args.size()) {
          std::fprintf(stderr, "activate %s: option --%s needs a value\n", command.c_str(), name.c_str());
          return std::nullopt;
        }
        value = args[++i];
      }
      parsed.options[name] = *value;
    } else {
      std::fprintf(stderr, "activate %s: unknown option --%s (see 'activate %s --help')\n", command.c_str(),
                   name.c_str(), command.c_str());
      return std::nullopt;
    }
  }
  return parsed;
}

std::optional<long long> parse_count(const std::string& command, const std::string& option,
                                     const std::string& text) {
  char* end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || end == nullptr || *end != '\0' || value < 0) {
    std::fprintf(stderr, "activate %s: --%s expects a non-negative integer, got '%s'\n", command.c_str(),
                 option.c_str(), text.c_str());
    return std::nullopt;
  }
  return value;
}

std::string config_path(const Args& args) {
  if (auto path = args.get("config")) return *path;
  if (const char* env = std::getenv("ACTIVATION_CONFIG"); env != nullptr && *env != '\0') return env;
  return "activation.json";
}

void print_error(const std::string& command, const activation::Status& status) {
  std::fprintf(stderr, "activate %s: %s\n", command.c_str(), status.message().c_str());
}

namespace {

// Prints the error of a configuration file that does not exist: the folder searched, where the
// name came from, and how to name another file.
void print_missing_config(const std::string& command, const Args& args, const std::string& path) {
  std::error_code ignored;
  std::filesystem::path absolute = std::filesystem::absolute(path, ignored);
  std::string folder = absolute.parent_path().string();
  std::string file = absolute.filename().string();
  std::string origin;
  if (args.get("config")) {
    origin = "named by --config";
  } else if (const char* env = std::getenv("ACTIVATION_CONFIG"); env != nullptr && *env != '\0') {
    origin = "named by $ACTIVATION_CONFIG";
  } else {
    origin = "the default, because neither --config nor $ACTIVATION_CONFIG is set";
  }
  std::fprintf(stderr,
               "activate %s: configuration file %s (%s) not found in %s\n"
               "  Pass --config FILE to use another file. examples/activation.json in the source tree is a\n"
               "  complete configuration to start from; docs/configuration.md describes every key.\n",
               command.c_str(), file.c_str(), origin.c_str(), folder.c_str());
}

}  // namespace

std::unique_ptr<activation::DistributionEngine> open_engine(const std::string& command, const Args& args,
                                                            bool verbose) {
  const std::string path = config_path(args);
  auto config = activation::load_config(path);
  if (!config.is_ok()) {
    std::error_code ignored;
    if (config.status().code() == activation::StatusCode::kNotFound && !std::filesystem::exists(path, ignored)) {
      print_missing_config(command, args, path);
    } else {
      print_error(command, config.status());
    }
    return nullptr;
  }
  activation::EngineOptions options;
  if (verbose) {
    options.logger = activation::Logger(
        [](activation::LogLevel level, std::string_view component, std::string_view message) {
          std::fprintf(stderr, "[%s] %.*s: %.*s\n", std::string(activation::log_level_name(level)).c_str(),
                       static_cast<int>(component.size()), component.data(), static_cast<int>(message.size()),
                       message.data());
        },
        activation::LogLevel::kInfo);
  }
  auto engine = activation::DistributionEngine::open(std::move(*config), std::move(options));
  if (!engine.is_ok()) {
    print_error(command, engine.status());
    return nullptr;
  }
  return std::move(*engine);
}

std::optional<activation::JobId> parse_job_id(const std::string& command, const std::string& text) {
  char* end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value <= 0) {
    std::fprintf(stderr, "activate %s: '%s' is not a job id (a positive integer)\n", command.c_str(),
                 text.c_str());
    return std::nullopt;
  }
  return value;
}

std::string format_count(std::uint64_t value) {
  std::string digits = std::to_string(value);
  std::string out;
  int count = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (count > 0 && count % 3 == 0) out.insert(out.begin(), ',');
    out.insert(out.begin(), *it);
    ++count;
  }
  return out;
}

std::string format_time(activation::Timestamp time) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%SZ", &utc);
  return text;
}

ProgressBars::ProgressBars(std::FILE* out, bool plain_lines)
    : out_(out), terminal_(::isatty(::fileno(out)) == 1), plain_lines_(plain_lines) {}

void ProgressBars::draw(const activation::JobProgress& progress, const std::vector<std::string>& destinations,
                        bool last) {
  // Off a terminal (a log, CI), one plain block every few seconds instead of redrawing in place.
  auto now = std::chrono::steady_clock::now();
  if (!terminal_) {
    if (!plain_lines_ || (!last && now - last_plain_ < std::chrono::seconds(2))) return;
    last_plain_ = now;
  }
  std::string text;
  if (terminal_ && lines_drawn_ > 0) text += "\x1b[" + std::to_string(lines_drawn_) + "F";
  int lines = 0;
  int name_width = 16;
  for (const auto& name : destinations) name_width = std::max(name_width, static_cast<int>(name.size()));
  for (const auto& name : destinations) {
    const activation::DestinationProgress* found = nullptr;
    for (const auto& destination : progress.destinations) {
      if (destination.destination == name) found = &destination;
    }
    constexpr int kWidth = 24;
    double percent = found && found->percent ? *found->percent : 0.0;
    if (found && found->state == activation::RunState::kDone) percent = 100.0;
    int filled = static_cast<int>(percent / 100.0 * kWidth);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar += std::string(static_cast<std::size_t>(kWidth - filled), '-');
    char line[512];
    if (found) {
      const auto& counters = found->counters;
      // Invalid rows never left this machine (no usable identifier after normalization). Rejected
      // rows were refused by the destination, and deferred ones were not delivered yet. The words
      // are those of `activate status`.
      std::uint64_t invalid = counters.outcome(RowOutcome::kInvalid);
      std::string eta = found->seconds_remaining
                            ? std::to_string(static_cast<long long>(*found->seconds_remaining)) + "s"
                            : "-";
      std::string state(activation::run_state_name(found->state));
      if (!found->waiting.empty()) state += " (" + found->waiting + ")";
      if (!found->circuit.empty() && found->circuit != "closed") state += ", circuit " + found->circuit;
      std::snprintf(line, sizeof line,
                    "%-*s [%s] %5.1f%%  %12s rows  accepted %12s  invalid %10s  rejected %9s  deferred %9s  %9s "
                    "rows/s  ETA %6s  %s",
                    name_width, name.c_str(), bar.c_str(), percent, format_count(counters.rows_read).c_str(),
                    format_count(counters.outcome(RowOutcome::kAccepted)).c_str(), format_count(invalid).c_str(),
                    format_count(counters.outcome(RowOutcome::kRejected)).c_str(),
                    format_count(counters.outcome(RowOutcome::kDeferred)).c_str(),
                    format_count(static_cast<std::uint64_t>(found->rows_per_second)).c_str(), eta.c_str(),
                    state.c_str());
    } else {
      std::snprintf(line, sizeof line, "%-*s [%s]   0.0%%  waiting", name_width, name.c_str(), bar.c_str());
    }
    text += line;
    text += terminal_ ? "\x1b[K\n" : "\n";
    ++lines;
  }
  lines_drawn_ = lines;
  std::fputs(text.c_str(), out_);
  std::fflush(out_);
}

void ProgressBars::finish() {
  lines_drawn_ = 0;
}

std::string job_status_label(const DistributionJob& job) {
  if (job.queue_state == activation::JobState::kDead) return "dead";
  return std::string(activation::distribution_status_name(job.status));
}

void print_job_text(const DistributionJob& job, std::FILE* out) {
  std::fprintf(out, "job %lld: %s\n", static_cast<long long>(job.id), job_status_label(job).c_str());
  std::fprintf(out, "  audience     %s\n", job.audience.c_str());
  std::string destinations;
  for (const auto& name : job.destinations) destinations += (destinations.empty() ? "" : ", ") + name;
  std::fprintf(out, "  destinations %s\n", destinations.c_str());
  std::fprintf(out, "  mode         %s%s\n", std::string(activation::sync_mode_name(job.mode)).c_str(),
               job.dry_run ? " (dry run)" : "");
  std::fprintf(out, "  priority     %s\n", std::string(activation::priority_name(job.priority)).c_str());
  std::fprintf(out, "  attempts     %d of %d\n", job.attempts, job.max_attempts);
  std::fprintf(out, "  created      %s\n", format_time(job.created_at).c_str());
  if (job.finished_at) std::fprintf(out, "  finished     %s\n", format_time(*job.finished_at).c_str());
  if (!job.last_error.empty()) std::fprintf(out, "  last error   %s\n", job.last_error.c_str());
  if (!job.reason.empty()) std::fprintf(out, "  reason       %s\n", job.reason.c_str());

  for (const auto& destination : job.progress.destinations) {
    const auto& counters = destination.counters;
    std::fprintf(out, "  %s: %s\n", destination.destination.c_str(),
                 std::string(activation::run_state_name(destination.state)).c_str());
    std::fprintf(out, "    rows read %s, accepted %s, invalid %s, rejected %s, deferred %s\n",
                 format_count(counters.rows_read).c_str(),
                 format_count(counters.outcome(RowOutcome::kAccepted)).c_str(),
                 format_count(counters.outcome(RowOutcome::kInvalid)).c_str(),
                 format_count(counters.outcome(RowOutcome::kRejected)).c_str(),
                 format_count(counters.outcome(RowOutcome::kDeferred)).c_str());
    std::fprintf(out, "    %s %s adds, %s removes (%s members left), %s unchanged, %s %s\n",
                 job.dry_run ? "would send" : "sent", format_count(counters.adds_sent).c_str(),
                 format_count(counters.removes_sent).c_str(), format_count(counters.members_left).c_str(),
                 format_count(counters.unchanged).c_str(), format_count(counters.batches).c_str(),
                 counters.batches == 1 ? "batch" : "batches");

    std::string fields;
    for (int f = 0; f < activation::kFieldCount; ++f) {
      const auto& field = counters.fields[f];
      if (field.valid == 0 && field.dropped == 0) continue;
      fields += (fields.empty() ? "" : ", ") +
                std::string(activation::field_name(static_cast<activation::Field>(f))) + " " +
                format_count(field.valid) + "/" + format_count(field.valid + field.dropped);
    }
    if (!fields.empty()) std::fprintf(out, "    usable identifiers: %s\n", fields.c_str());

    if (!counters.reasons.empty()) {
      std::string reasons;
      for (const auto& [code, count] : counters.reasons) {
        reasons += (reasons.empty() ? "" : ", ") + code + " " + format_count(count);
      }
      std::fprintf(out, "    reasons: %s\n", reasons.c_str());
    }
    if (!destination.error.empty()) {
      std::string code = destination.error_code.empty() ? "" : " (" + destination.error_code + ")";
      std::fprintf(out, "    error%s: %s\n", code.c_str(), destination.error.c_str());
    }
  }
}

std::string job_summary_json(const DistributionJob& job) {
  nlohmann::json destinations = nlohmann::json::object();
  for (const auto& destination : job.progress.destinations) {
    const auto& counters = destination.counters;
    nlohmann::json by_field = nlohmann::json::object();
    for (int f = 0; f < activation::kFieldCount; ++f) {
      const auto& field = counters.fields[f];
      if (field.valid == 0 && field.dropped == 0) continue;
      nlohmann::json rows = nlohmann::json::object();
      for (int o = 0; o < activation::kRowOutcomeCount; ++o) {
        rows[std::string(activation::row_outcome_name(static_cast<RowOutcome>(o)))] = field.rows[o];
      }
      by_field[std::string(activation::field_name(static_cast<activation::Field>(f)))] = {
          {"valid", field.valid}, {"dropped", field.dropped}, {"rows", rows}};
    }
    nlohmann::json entry = {{"state", std::string(activation::run_state_name(destination.state))},
                            {"rows_read", counters.rows_read},
                            {"accepted", counters.outcome(RowOutcome::kAccepted)},
                            {"rejected", counters.outcome(RowOutcome::kRejected)},
                            {"deferred", counters.outcome(RowOutcome::kDeferred)},
                            {"invalid", counters.outcome(RowOutcome::kInvalid)},
                            {"members_left", counters.members_left},
                            {"unchanged", counters.unchanged},
                            {"batches", counters.batches},
                            {"by_identifier", by_field},
                            {"reasons", counters.reasons}};
    // A dry run sent nothing: its counts are of what a real run would send.
    entry[job.dry_run ? "adds_to_send" : "adds_sent"] = counters.adds_sent;
    entry[job.dry_run ? "removes_to_send" : "removes_sent"] = counters.removes_sent;
    if (!destination.error.empty()) entry["error"] = destination.error;
    if (!destination.error_code.empty()) entry["error_code"] = destination.error_code;
    destinations[destination.destination] = entry;
  }
  // Times in ISO 8601, UTC.
  auto iso_time = [](activation::Timestamp time) {
    std::string text = format_time(time);
    text[10] = 'T';
    return text;
  };
  nlohmann::json out = {{"job_id", job.id},
                        {"status", std::string(activation::distribution_status_name(job.status))},
                        {"audience", job.audience},
                        {"mode", std::string(activation::sync_mode_name(job.mode))},
                        {"dry_run", job.dry_run},
                        {"priority", std::string(activation::priority_name(job.priority))},
                        {"attempts", job.attempts},
                        {"max_attempts", job.max_attempts},
                        {"created_at", iso_time(job.created_at)},
                        {"destinations", destinations}};
  if (job.finished_at) out["finished_at"] = iso_time(*job.finished_at);
  if (!job.last_error.empty()) out["last_error"] = job.last_error;
  if (!job.reason.empty()) out["reason"] = job.reason;
  return out.dump(2);
}

}  // namespace activate
