// engine_bench: end-to-end throughput and peak memory of a distribution to the file destination,
// next to the identifier-only work on the same rows, measured in the same run.
//
// For each audience size it generates a sample audience (activate sample's generator), then runs
// one `add` distribution of it to a file destination in a child process, and reports rows per
// second and the child's peak RSS. The baseline normalizes and hashes the same fields of the first
// rows (up to 1,000,000, held in memory) with the same Meta profile and nothing else: no parsing,
// no ledger, no files. Targets: peak RSS flat in audience size (the largest run within 10% of the
// smallest), and end-to-end throughput at least 70% of the baseline.
//
// usage: engine_bench [--sizes 1000000,10000000,50000000] [--dir DIR] [--seed S] [--keep]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "activation/audience.hpp"
#include "activation/engine.hpp"
#include "activation/identifiers.hpp"
#include "destinations/file/file_destination.hpp"
#include "engine/member.hpp"
#include "engine/sample.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// The sample columns this bench maps: the usual keys of an activation (external id, email, two
// phones) and the country that phones are parsed with.
std::vector<activation::ColumnMapping> bench_mapping() {
  return {{"CUSTOMERID", activation::Field::kExternalId},
          {"EMAIL", activation::Field::kEmail},
          {"PHONE1", activation::Field::kPhone},
          {"PHONE2", activation::Field::kPhone},
          {"COUNTRY", activation::Field::kCountry}};
}

constexpr std::uint64_t kBaselineRows = 1'000'000;
// The engine's batch size in the runs, and the rows of each file the render stage makes.
constexpr std::size_t kBatchSize = 10000;

bool generate(const std::string& path, std::uint64_t rows, std::uint64_t seed) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  return out && activation::engine::write_sample_csv(out, rows, seed);
}

// Opens `path` as a CSV source with the bench's mapping, or exits with the error.
std::unique_ptr<activation::AudienceSource> open_csv(const std::string& path) {
  activation::SourceSpec spec;
  spec.path = path;
  spec.mapping = bench_mapping();
  auto source = activation::open_source(spec);
  if (!source.is_ok()) {
    std::fprintf(stderr, "engine_bench: %s\n", source.status().message().c_str());
    std::exit(1);
  }
  return std::move(*source);
}

// Normalizes and hashes the mapped values of the first rows of `path`, and returns rows per second.
double identifier_baseline(const std::string& path, std::uint64_t* rows_measured) {
  auto source = open_csv(path);

  // Rows in memory first, so that only the identifier work is timed.
  struct Row {
    std::vector<std::pair<activation::Field, std::string>> values;
    std::string country;
  };
  std::vector<Row> rows;
  activation::SourceRow row;
  while (rows.size() < kBaselineRows) {
    auto more = source->next(row);
    if (!more.is_ok() || !*more) break;
    Row copy;
    for (const auto& value : row.values) {
      copy.values.emplace_back(value.field, std::string(value.value));
      if (value.field == activation::Field::kCountry && copy.country.empty())
        copy.country = std::string(value.value);
    }
    rows.push_back(std::move(copy));
  }

  auto normalizer = activation::Normalizer::create(activation::Platform::kMeta);
  if (!normalizer.is_ok()) std::exit(1);
  activation::NormalizedIdentifier out;
  std::uint64_t usable = 0;
  auto start = Clock::now();
  for (const auto& entry : rows) {
    activation::RowContext context;
    context.country = entry.country;
    for (const auto& [field, value] : entry.values) {
      normalizer->normalize_into(field, value, context, out);
      if (out.ok()) usable += out.wire_value().size() > 0 ? 1 : 0;
    }
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  *rows_measured = rows.size();
  if (usable == 0) std::fprintf(stderr, "engine_bench: no usable identifier in the baseline rows\n");
  return static_cast<double>(rows.size()) / seconds;
}

// The rates of the engine's first stages on the rows of `path`, on one thread. The first reads the
// CSV alone. The second also does the reading thread's work for each row: normalize and hash with
// the same profile, sort the identifiers, write the keys text and the member key. The third also
// renders each batch of 10,000 rows as the file destination's meta_csv body, in memory. Together
// they bound what the whole engine can reach, whatever its ledger and file writes cost.
struct StageRates {
  double read = 0;
  double read_and_process = 0;
  double read_process_render = 0;
};

enum class Stage { kRead, kProcess, kRender };

StageRates stage_rates(const std::string& path) {
  // The columns of the bench's mapping that the Meta profile sends, sorted as the engine sorts them.
  std::vector<std::pair<activation::Field, int>> field_slots = {
      {activation::Field::kEmail, 1}, {activation::Field::kPhone, 2}, {activation::Field::kCountry, 1},
      {activation::Field::kExternalId, 1}};
  std::sort(field_slots.begin(), field_slots.end());
  StageRates rates;
  for (Stage stage : {Stage::kRead, Stage::kProcess, Stage::kRender}) {
    auto source = open_csv(path);
    auto normalizer = activation::Normalizer::create(activation::Platform::kMeta);
    if (!normalizer.is_ok()) std::exit(1);
    activation::engine::RowProcessor processor(std::move(*normalizer));
    activation::engine::RowIdentifiers identifiers;
    activation::DestinationCounters counters;
    activation::SourceRow row;
    std::vector<activation::MemberOperation> operations(kBatchSize);
    std::vector<const activation::MemberOperation*> batch;
    std::string body;
    std::uint64_t rendered_bytes = 0;
    auto render = [&] {
      if (batch.empty()) return;
      activation::destinations::render_file(activation::destinations::FileFormat::kMetaCsv, field_slots, batch,
                                            activation::OperationType::kAdd, "{}", body);
      rendered_bytes += body.size();
      batch.clear();
    };
    std::uint64_t rows = 0;
    std::uint64_t valid = 0;
    auto start = Clock::now();
    while (true) {
      auto more = source->next(row);
      if (!more.is_ok() || !*more) break;
      ++rows;
      if (stage == Stage::kRead || !row.valid() || processor.process(row, identifiers, counters)) continue;
      ++valid;
      if (stage != Stage::kRender) continue;
      // As the engine does, the operation takes the row's identifiers by swap.
      activation::MemberOperation& operation = operations[batch.size()];
      operation.member_key.assign(identifiers.member_key);
      operation.line = row.line;
      std::swap(operation.identifiers, identifiers.identifiers);
      batch.push_back(&operation);
      if (batch.size() == kBatchSize) render();
    }
    render();
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (stage != Stage::kRead && valid == 0) std::fprintf(stderr, "engine_bench: no valid row in the stage rows\n");
    if (stage == Stage::kRender && rendered_bytes == 0) std::fprintf(stderr, "engine_bench: no file rendered\n");
    double rate = static_cast<double>(rows) / seconds;
    switch (stage) {
      case Stage::kRead: rates.read = rate; break;
      case Stage::kProcess: rates.read_and_process = rate; break;
      case Stage::kRender: rates.read_process_render = rate; break;
    }
  }
  return rates;
}

// Returns this process's peak resident set (VmHWM) in KiB. It is read in the child itself because
// exec starts a new address space with its own peak, while the rusage of a forked child also
// counts the pages it shared with the parent before exec.
long peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

// The child: one distribution of `csv` to a file destination under `dir`. Prints "<seconds>
// <rows read> <accepted> <invalid> <peak RSS KiB>" on stdout.
int run_child(const std::string& csv, const std::string& dir) {
  activation::Config config;
  config.store_path = dir + "/store/activation.db";
  config.engine.workers = 1;
  config.engine.batch_size = kBatchSize;
  activation::AudienceConfig audience;
  audience.name = "bench";
  audience.source.path = csv;
  audience.source.mapping = bench_mapping();
  config.audiences.push_back(audience);
  activation::DestinationConfig destination;
  destination.name = "files";
  destination.type = "file";
  destination.settings = "{\"directory\": \"" + dir + "/files\", \"format\": \"meta_csv\"}";
  config.destinations.push_back(destination);

  auto engine = activation::DistributionEngine::open(config);
  if (!engine.is_ok()) {
    std::fprintf(stderr, "engine_bench: %s\n", engine.status().message().c_str());
    return 1;
  }
  std::vector<std::string> destinations = {"files"};
  auto start = Clock::now();
  auto job = (*engine)->distribute("bench", destinations);
  if (!job.is_ok()) {
    std::fprintf(stderr, "engine_bench: %s\n", job.status().message().c_str());
    return 1;
  }
  auto stats = (*engine)->run_until_idle(std::chrono::hours(6));
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!stats.is_ok()) {
    std::fprintf(stderr, "engine_bench: %s\n", stats.status().message().c_str());
    return 1;
  }
  auto finished = (*engine)->job(job->id);
  if (!finished.is_ok() || finished->status != activation::DistributionStatus::kCompleted ||
      finished->progress.destinations.empty()) {
    std::fprintf(stderr, "engine_bench: the distribution did not complete: %s\n",
                 finished.is_ok() ? finished->last_error.c_str() : finished.status().message().c_str());
    return 1;
  }
  const auto& counters = finished->progress.destinations[0].counters;
  std::printf("%.3f %llu %llu %llu %ld\n", seconds, static_cast<unsigned long long>(counters.rows_read),
              static_cast<unsigned long long>(counters.outcome(activation::RowOutcome::kAccepted)),
              static_cast<unsigned long long>(counters.outcome(activation::RowOutcome::kInvalid)),
              peak_rss_kib());
  return 0;
}

struct RunResult {
  double seconds = 0;
  unsigned long long rows = 0;
  unsigned long long accepted = 0;
  unsigned long long invalid = 0;
  long peak_rss_kib = 0;
};

bool run_in_child(const std::string& csv, const std::string& dir, RunResult& result) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return false;
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    ::execl("/proc/self/exe", "engine_bench", "--child", csv.c_str(), dir.c_str(),
            static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  ::close(pipe_fds[1]);
  std::string output;
  char buffer[256];
  ssize_t count;
  while ((count = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0)
    output.append(buffer, static_cast<std::size_t>(count));
  ::close(pipe_fds[0]);
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return false;
  return std::sscanf(output.c_str(), "%lf %llu %llu %llu %ld", &result.seconds, &result.rows,
                     &result.accepted, &result.invalid, &result.peak_rss_kib) == 5;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--child") return run_child(argv[2], argv[3]);

  std::vector<std::uint64_t> sizes = {1'000'000, 10'000'000, 50'000'000};
  std::string dir = (fs::temp_directory_path() / "activation-engine-bench").string();
  std::uint64_t seed = 1;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--sizes" && i + 1 < argc) {
      sizes.clear();
      std::string list = argv[++i];
      std::size_t start = 0;
      while (start < list.size()) {
        std::size_t comma = list.find(',', start);
        sizes.push_back(std::stoull(list.substr(start, comma - start)));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else if (arg == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (arg == "--seed" && i + 1 < argc) {
      seed = std::stoull(argv[++i]);
    } else if (arg == "--keep") {
      keep = true;
    } else {
      std::fprintf(stderr, "usage: engine_bench [--sizes N,N,...] [--dir DIR] [--seed S] [--keep]\n");
      return 2;
    }
  }
  if (sizes.empty()) return 2;
  fs::create_directories(dir);
  std::printf("engine_bench: add distributions of generated audiences to a meta_csv file destination\n");
  std::printf("fields: external_id, email, phone x2, country; Meta profile; batch size 10000; folder %s\n",
              dir.c_str());
  std::printf("machine: %u hardware threads\n\n", std::thread::hardware_concurrency());

  // The baseline on the first rows of the smallest audience (the generator's rows do not depend on
  // the audience size).
  std::string baseline_csv = dir + "/baseline.csv";
  if (!generate(baseline_csv, std::min<std::uint64_t>(kBaselineRows, sizes.front()), seed)) {
    std::fprintf(stderr, "engine_bench: cannot write %s\n", baseline_csv.c_str());
    return 1;
  }
  std::uint64_t baseline_rows = 0;
  double baseline = identifier_baseline(baseline_csv, &baseline_rows);
  StageRates stages = stage_rates(baseline_csv);
  fs::remove(baseline_csv);
  std::printf("identifier-only baseline: %.0f rows/s (%llu rows in memory, normalize + hash only)\n",
              baseline, static_cast<unsigned long long>(baseline_rows));
  std::printf("the same rows through the engine's first stages, one thread:\n");
  std::printf("  %-50s %10.0f rows/s\n", "read the CSV only:", stages.read);
  std::printf("  %-50s %10.0f rows/s (%.0f%% of baseline)\n", "read, normalize, hash, write keys and member key:",
              stages.read_and_process, 100.0 * stages.read_and_process / baseline);
  std::printf("  %-50s %10.0f rows/s (%.0f%% of baseline)\n", "the same, and render the meta_csv files in memory:",
              stages.read_process_render, 100.0 * stages.read_process_render / baseline);
  // The maximum this engine's row work allows on this machine: that work split evenly over every
  // hardware thread, with the ledger, the file writes and the store costing nothing.
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::printf("  %-50s %10.0f rows/s (%.0f%% of baseline)\n\n",
              fmt::format("the last split over {} threads, all else free:", threads).c_str(),
              threads * stages.read_process_render, 100.0 * threads * stages.read_process_render / baseline);

  std::printf("%12s %10s %10s %12s %10s %12s %10s\n", "rows", "csv MiB", "seconds", "rows/s", "vs base",
              "peak RSS MiB", "vs first");
  long first_rss = 0;
  bool throughput_met = true;
  bool memory_met = true;
  for (std::uint64_t rows : sizes) {
    std::string run_dir = dir + "/run-" + std::to_string(rows);
    fs::remove_all(run_dir);
    fs::create_directories(run_dir);
    std::string csv = run_dir + "/audience.csv";
    if (!generate(csv, rows, seed)) {
      std::fprintf(stderr, "engine_bench: cannot write %s\n", csv.c_str());
      return 1;
    }
    double csv_mib = static_cast<double>(fs::file_size(csv)) / (1024.0 * 1024.0);

    RunResult result;
    if (!run_in_child(csv, run_dir, result)) {
      std::fprintf(stderr, "engine_bench: the run of %llu rows failed\n",
                   static_cast<unsigned long long>(rows));
      return 1;
    }
    if (result.rows != rows || result.accepted + result.invalid != rows) {
      std::fprintf(stderr, "engine_bench: %llu rows read, %llu accepted, %llu invalid: rows are missing\n",
                   result.rows, result.accepted, result.invalid);
      return 1;
    }
    double rate = static_cast<double>(rows) / result.seconds;
    if (first_rss == 0) first_rss = result.peak_rss_kib;
    double rss_ratio = static_cast<double>(result.peak_rss_kib) / static_cast<double>(first_rss);
    std::printf("%12llu %10.0f %10.1f %12.0f %9.0f%% %12.1f %9.0f%%\n", static_cast<unsigned long long>(rows),
                csv_mib, result.seconds, rate, 100.0 * rate / baseline, result.peak_rss_kib / 1024.0,
                100.0 * rss_ratio);
    std::fflush(stdout);
    throughput_met = throughput_met && rate >= 0.7 * baseline;
    memory_met = memory_met && rss_ratio <= 1.10;
    if (!keep) fs::remove_all(run_dir);
  }
  std::printf("\ntarget throughput >= 70%% of baseline: %s\n", throughput_met ? "met" : "NOT met");
  std::printf("target peak RSS within 10%% of the first run: %s\n", memory_met ? "met" : "NOT met");
  return 0;
}
