// The file destination. Files land in <directory>/job-<id>/ as batch-<number>-<add|remove>.<ext>,
// each written under a temporary name, flushed to disk and renamed, so a reader never sees half a
// file. Each finished file is also appended to manifest.partial (one JSON line); finish() folds
// those lines into manifest.json. A batch re-sent after a crash overwrites its own files and its
// later manifest line wins, so the manifest lists every file once.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "destinations/file/file_destination.hpp"

namespace activation::destinations {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// Google's Data Manager API takes at most this many identifiers per audience member.
constexpr std::size_t kGoogleMaxIdentifiers = 10;

std::string errno_text(int error) {
  return std::strerror(error);
}

// Writes `body` to `path` through a temporary file in the same folder and an atomic rename.
Status write_atomically(const fs::path& path, std::string_view body, bool sync) {
  fs::path temporary = path.parent_path() / ("." + path.filename().string() + ".tmp");
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("cannot create '" + temporary.string() + "': " + errno_text(errno));
  const char* data = body.data();
  std::size_t left = body.size();
  while (left > 0) {
    ssize_t written = ::write(fd, data, left);
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) {
      int error = errno;
      ::close(fd);
      ::unlink(temporary.c_str());
      StatusCode code =
          error == ENOSPC || error == EDQUOT ? StatusCode::kResourceExhausted : StatusCode::kIoError;
      return Status(code, "writing '" + temporary.string() + "' failed: " + errno_text(error));
    }
    data += written;
    left -= static_cast<std::size_t>(written);
  }
  if (sync && ::fsync(fd) != 0) {
    int error = errno;
    ::close(fd);
    ::unlink(temporary.c_str());
    return io_error("flushing '" + temporary.string() + "' to disk failed: " + errno_text(error));
  }
  if (::close(fd) != 0) return io_error("closing '" + temporary.string() + "' failed: " + errno_text(errno));
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    int error = errno;
    ::unlink(temporary.c_str());
    return io_error("renaming '" + temporary.string() + "' to '" + path.string() +
                    "' failed: " + errno_text(error));
  }
  return Status::ok();
}

Status append_line(const fs::path& path, const std::string& line, bool sync) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("cannot open '" + path.string() + "': " + errno_text(errno));
  std::string text = line + "\n";
  ssize_t written = ::write(fd, text.data(), text.size());
  int error = errno;
  if (sync) (void)::fsync(fd);
  ::close(fd);
  if (written != static_cast<ssize_t>(text.size())) {
    return io_error("appending to '" + path.string() + "' failed: " + errno_text(error));
  }
  return Status::ok();
}

// Checks that `directory` exists or can be created, and that a file can be created in it.
Status check_writable(const std::string& destination, const fs::path& directory) {
  std::error_code error;
  fs::create_directories(directory, error);
  if (error) {
    return Status(StatusCode::kPermissionDenied, "destination '" + destination + "': directory '" +
                                                     directory.string() +
                                                     "' cannot be created: " + error.message());
  }
  if (!fs::is_directory(directory, error)) {
    return Status(StatusCode::kPermissionDenied,
                  "destination '" + destination + "': '" + directory.string() + "' is not a directory");
  }
  fs::path probe = directory / (".write-check-" + std::to_string(::getpid()));
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status(StatusCode::kPermissionDenied, "destination '" + destination + "': directory '" +
                                                     directory.string() +
                                                     "' is not writable: " + errno_text(errno));
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return Status::ok();
}

const char* extension(FileFormat format) {
  return format == FileFormat::kMetaJson || format == FileFormat::kGoogleJson ? "json" : "csv";
}

std::string iso_time_now() {
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

class FileDestination final : public DestinationAdapter {
 public:
  FileDestination(DestinationConfig config, FileFormat format, Platform profile, fs::path directory,
                  bool sync, Logger logger)
      : config_(std::move(config)),
        format_(format),
        profile_(profile),
        directory_(std::move(directory)),
        sync_(sync),
        logger_(std::move(logger)) {}

  Platform profile() const override { return profile_; }

  std::size_t max_batch_size() const override {
    // Meta and Google take at most 10,000 rows per request, and these files mirror their requests.
    return format_ == FileFormat::kHashedCsv ? 1'000'000 : 10'000;
  }

  // A batch sent again rewrites the file of its number, and finish() keeps one manifest entry per
  // file name.
  bool replaces_resent_batches() const override { return true; }

  Status begin(const DestinationRun& run) override {
    run_ = run;
    job_directory_ = directory_ / ("job-" + std::to_string(run.job_id));
    ACT_RETURN_IF_ERROR(check_writable(config_.name, job_directory_));
    if (!run.resumed) {
      // A fresh run owns the folder: files of an earlier attempt of this job would be misleading.
      std::error_code ignored;
      for (const auto& entry : fs::directory_iterator(job_directory_, ignored))
        fs::remove(entry.path(), ignored);
    }
    logger_.log(LogLevel::kInfo, "file", "job {} destination {}: writing {} files to {}", run.job_id,
                config_.name, file_format_name(format_), job_directory_.string());
    return Status::ok();
  }

  BatchResult send(const Batch& batch) override {
    BatchResult result;
    result.results.resize(batch.operations.size());

    std::vector<const MemberOperation*> removes;
    std::vector<const MemberOperation*> adds;
    for (std::size_t i = 0; i < batch.operations.size(); ++i) {
      const MemberOperation& operation = batch.operations[i];
      if (format_ == FileFormat::kGoogleJson && operation.identifiers.size() > kGoogleMaxIdentifiers) {
        result.results[i].outcome = RowOutcome::kRejected;
        result.results[i].reason =
            Reason{"too_many_identifiers", "the member has " + std::to_string(operation.identifiers.size()) +
                                               " identifiers; Google takes at most 10 per member"};
        continue;
      }
      (operation.type == OperationType::kAdd ? adds : removes).push_back(&operation);
    }

    for (auto [type, operations] :
         {std::pair{OperationType::kRemove, &removes}, std::pair{OperationType::kAdd, &adds}}) {
      if (operations->empty()) continue;
      Status written = write_batch_file(batch.number, type, *operations);
      if (!written.is_ok()) {
        result.transport = written;
        result.results.clear();
        return result;
      }
    }
    return result;
  }

  Status finish(const DestinationRunSummary& summary) override {
    fs::path partial = job_directory_ / "manifest.partial";
    std::map<std::string, Json> files;
    auto add_entry = [&files](Json entry) {
      if (!entry.is_object() || !entry.contains("file") || !entry["file"].is_string()) return;
      std::string file = entry["file"].get<std::string>();
      files[file] = std::move(entry);
    };

    // A finish() repeated after a crash finds the files of the first one in manifest.json and
    // manifest.partial gone.
    std::ifstream previous(job_directory_ / "manifest.json");
    if (previous) {
      Json manifest = Json::parse(previous, nullptr, false);
      if (!manifest.is_discarded() && manifest.contains("files") && manifest["files"].is_array()) {
        for (auto& entry : manifest["files"]) add_entry(std::move(entry));
      }
    }
    std::ifstream in(partial);
    std::string line;
    while (std::getline(in, line)) {
      // A line cut short by a crash is skipped; its batch was re-sent and logged again.
      Json entry = Json::parse(line, nullptr, false);
      if (!entry.is_discarded()) add_entry(std::move(entry));
    }

    std::vector<Json> ordered;
    for (auto& [name, entry] : files) ordered.push_back(std::move(entry));
    std::sort(ordered.begin(), ordered.end(), [](const Json& a, const Json& b) {
      return std::pair(a["batch"].get<std::int64_t>(), a["operation"].get<std::string>() == "add") <
             std::pair(b["batch"].get<std::int64_t>(), b["operation"].get<std::string>() == "add");
    });
    std::uint64_t add_rows = 0;
    std::uint64_t remove_rows = 0;
    for (const auto& entry : ordered) {
      (entry["operation"] == "add" ? add_rows : remove_rows) += entry["rows"].get<std::uint64_t>();
    }

    Json manifest = {
        {"job_id", run_.job_id},
        {"audience", run_.audience},
        {"destination", config_.name},
        {"format", std::string(file_format_name(format_))},
        {"profile", std::string(platform_name(profile_))},
        {"mode", std::string(sync_mode_name(run_.mode))},
        {"created_at", iso_time_now()},
        {"files", ordered},
        {"totals",
         {{"files", ordered.size()},
          {"add_rows", add_rows},
          {"remove_rows", remove_rows},
          {"rows_read", summary.rows_read},
          {"accepted", summary.outcome_counts[static_cast<int>(RowOutcome::kAccepted)]},
          {"rejected", summary.outcome_counts[static_cast<int>(RowOutcome::kRejected)]},
          {"deferred", summary.outcome_counts[static_cast<int>(RowOutcome::kDeferred)]},
          {"invalid", summary.outcome_counts[static_cast<int>(RowOutcome::kInvalid)]}}},
    };
    ACT_RETURN_IF_ERROR(write_atomically(job_directory_ / "manifest.json", manifest.dump(2) + "\n", sync_));
    std::error_code ignored;
    fs::remove(partial, ignored);
    logger_.log(LogLevel::kInfo, "file", "job {} destination {}: manifest lists {} file{}", run_.job_id,
                config_.name, ordered.size(), ordered.size() == 1 ? "" : "s");
    return Status::ok();
  }

 private:
  Status write_batch_file(std::int64_t number, OperationType type,
                          const std::vector<const MemberOperation*>& operations) {
    char name[64];
    std::snprintf(name, sizeof name, "batch-%06lld-%s.%s", static_cast<long long>(number),
                  type == OperationType::kAdd ? "add" : "remove", extension(format_));
    std::string& body = body_;
    render_file(format_, run_.field_slots, operations, type, config_.settings, body);
    ACT_RETURN_IF_ERROR(write_atomically(job_directory_ / name, body, sync_));

    Json entry = {{"file", name},
                  {"batch", number},
                  {"operation", std::string(operation_type_name(type))},
                  {"rows", operations.size()},
                  {"bytes", body.size()},
                  {"sha256", sha256_hex(body)}};
    return append_line(job_directory_ / "manifest.partial", entry.dump(), sync_);
  }

  DestinationConfig config_;
  FileFormat format_;
  Platform profile_;
  fs::path directory_;
  bool sync_;
  Logger logger_;
  DestinationRun run_;
  fs::path job_directory_;
  std::string body_;  // The file being written; kept between batches for its capacity.
};

}  // namespace

Result<FileSettings> parse_file_settings(const DestinationConfig& config) {
  const std::string where = "destination '" + config.name + "'";
  Json settings = Json::parse(config.settings, nullptr, false);
  if (settings.is_discarded() || !settings.is_object())
    return invalid_argument(where + ": settings must be a JSON object");
  for (const auto& [key, value] : settings.items()) {
    static const char* kKnown[] = {
        "directory", "format", "fsync", "operating_account_id", "product_destination_id", "account_type"};
    if (std::find_if(std::begin(kKnown), std::end(kKnown), [&](const char* known) { return key == known; }) ==
        std::end(kKnown)) {
      return invalid_argument(where + ": settings." + key +
                              ": unknown key; expected directory, format, fsync, operating_account_id, "
                              "product_destination_id or account_type");
    }
  }

  auto directory = settings.find("directory");
  if (directory == settings.end()) {
    return invalid_argument(where + ": settings.directory: missing; expected the folder to write files to");
  }
  if (!directory->is_string() || directory->get<std::string>().empty()) {
    return invalid_argument(where + ": settings.directory: expected the folder to write files to, got " +
                            directory->dump());
  }
  auto format_setting = settings.find("format");
  if (format_setting != settings.end() && !format_setting->is_string()) {
    return invalid_argument(where + ": settings.format: expected meta_csv, meta_json, google_json or hashed_csv, got " +
                            format_setting->dump());
  }
  std::string format_name = settings.value("format", std::string("hashed_csv"));
  auto format = parse_file_format(format_name);
  if (!format) {
    return invalid_argument(
        where + ": settings.format: expected meta_csv, meta_json, google_json or hashed_csv, got \"" +
        format_name + "\"");
  }
  for (const char* key : {"operating_account_id", "product_destination_id", "account_type"}) {
    auto found = settings.find(key);
    if (found != settings.end() && !found->is_string() && !found->is_number_unsigned()) {
      return invalid_argument(where + ": settings." + key + ": expected a string, got " + found->dump());
    }
  }
  auto fsync_setting = settings.find("fsync");
  if (fsync_setting != settings.end() && !fsync_setting->is_boolean()) {
    return invalid_argument(where + ": settings.fsync: expected true or false, got " + fsync_setting->dump());
  }

  FileSettings out;
  out.format = *format;
  out.sync = fsync_setting == settings.end() ? true : fsync_setting->get<bool>();
  out.directory = directory->get<std::string>();
  Platform default_profile = *format == FileFormat::kGoogleJson ? Platform::kGoogle : Platform::kMeta;
  out.profile = config.profile.value_or(default_profile);
  if ((*format == FileFormat::kMetaCsv || *format == FileFormat::kMetaJson) && out.profile != Platform::kMeta) {
    return invalid_argument(where + ": format " + format_name + " needs the meta profile, got " +
                            std::string(platform_name(out.profile)));
  }
  if (*format == FileFormat::kGoogleJson && out.profile != Platform::kGoogle) {
    return invalid_argument(where + ": format google_json needs the google profile, got " +
                            std::string(platform_name(out.profile)));
  }
  return out;
}

Result<std::unique_ptr<DestinationAdapter>> make_file_destination(const DestinationConfig& config,
                                                                  const DestinationEnvironment& environment) {
  ACT_ASSIGN_OR_RETURN(FileSettings settings, parse_file_settings(config));
  fs::path folder(settings.directory);
  ACT_RETURN_IF_ERROR(check_writable(config.name, folder));
  return std::unique_ptr<DestinationAdapter>(std::make_unique<FileDestination>(
      config, settings.format, settings.profile, folder, settings.sync, environment.logger));
}

}  // namespace activation::destinations
