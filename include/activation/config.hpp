// The configuration of an engine: where its store lives, the audiences with their sources and
// column mappings, and the destinations with their type, settings and the names of the
// environment variables that hold their secrets. docs/configuration.md describes the JSON form.
//
// Thread safety: these are plain values; distinct objects may be used from distinct threads.
#ifndef ACTIVATION_CONFIG_HPP_
#define ACTIVATION_CONFIG_HPP_

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "activation/audience.hpp"
#include "activation/export.hpp"
#include "activation/identifiers.hpp"
#include "activation/status.hpp"

namespace activation {

// An audience: a source, and the options its identifiers are normalized with.
struct AudienceConfig {
  std::string name;
  SourceSpec source;
  // Region for phone numbers of rows without a usable country (ISO 3166-1 alpha-2).
  std::string default_region = "US";
  bool google_canonicalize_gmail = true;
};

// A destination: one list on one platform, or one folder of files.
struct DestinationConfig {
  std::string name;
  std::string type;  // "file", or the type of a registered platform adapter ("meta", ...).
  // The identifier rule profile; nullopt = the adapter's own default.
  std::optional<Platform> profile;
  std::string settings = "{}";  // JSON object text, read by the adapter of `type`.
  // Secret name (such as "access_token") -> the environment variable that holds its value. Only
  // the variable names are stored; the values are read when a job runs and never logged.
  std::map<std::string, std::string> secret_env;
  std::size_t batch_size = 0;  // 0 = the engine's default, capped by the adapter's maximum.
  // The rows per second this destination is expected to reach; 0 = no slow-job alert.
  double expected_rows_per_second = 0;
};

// Thresholds of the alerts that the engine publishes as events.
struct AlertThresholds {
  std::int64_t queue_backlog = 1000;        // Waiting + delayed jobs above this raise alert.queue_backlog.
  std::int64_t stalled_jobs = 1;            // Stalled jobs at or above this raise alert.stalled_jobs.
  double error_rate = 0.05;                 // A destination's (rejected + deferred) / sent above this.
  std::uint64_t error_rate_min_rows = 100;  // Rows sent before the error rate is judged.
};

// Engine-wide settings.
struct EngineSettings {
  int workers = 2;      // Jobs run at once by one process's worker pool.
  int parallelism = 2;  // Destinations of one job run at once.
  std::size_t batch_size = 10000;
  std::chrono::milliseconds lease_duration{std::chrono::seconds(30)};
  std::chrono::milliseconds heartbeat_interval{std::chrono::seconds(10)};
  int max_attempts = 3;    // Attempts of a job before it goes to the dead-letter queue.
  int batch_attempts = 4;  // Sends of one batch before its destination fails.
  std::chrono::milliseconds batch_retry_base{std::chrono::milliseconds(500)};
  // On a PostgreSQL store, the rate limiter of each platform account also takes its tokens from the
  // store, so that all processes on the store together stay within the account's rate. An SQLite
  // store always keeps the limiters in the process.
  bool shared_rate_limits = true;
  AlertThresholds alerts;
};

struct Config {
  // The SQLite store file (relative paths are resolved by load_config()), or a postgresql:// URL.
  std::string store_path;
  EngineSettings engine;
  std::vector<AudienceConfig> audiences;
  std::vector<DestinationConfig> destinations;

  const AudienceConfig* find_audience(std::string_view name) const noexcept;
  const DestinationConfig* find_destination(std::string_view name) const noexcept;
};

// Parses configuration JSON. Relative paths (the store, source files) are resolved against
// `base_dir` when it is not empty. `origin` names the text in error messages, such as the file
// path. Errors are kInvalidArgument and name the key path and what was expected, such as
// "activation.json: audiences.customers.mapping.PHONE3: expected a field name (email, phone, ...),
// got \"fone\"".
ACT_EXPORT Result<Config> parse_config(std::string_view json_text, std::string_view origin,
                                       std::string_view base_dir = {});

// Reads and parses a configuration file; relative paths in it are resolved against its folder.
// Returns kNotFound when the file does not exist.
ACT_EXPORT Result<Config> load_config(const std::string& path);

// Checks the parts of one audience or destination that do not need the file system: names,
// mapping, region, batch size, settings JSON. The engine checks the rest before queuing a job.
ACT_EXPORT Status validate_audience(const AudienceConfig& audience);
ACT_EXPORT Status validate_destination(const DestinationConfig& destination);

// Converts to and from the JSON object form used in job payloads and the configuration file.
ACT_EXPORT std::string audience_to_json(const AudienceConfig& audience);
ACT_EXPORT std::string destination_to_json(const DestinationConfig& destination);
ACT_EXPORT Result<AudienceConfig> audience_from_json(std::string_view name, std::string_view json_text);
ACT_EXPORT Result<DestinationConfig> destination_from_json(std::string_view name, std::string_view json_text);

}  // namespace activation

#endif  // ACTIVATION_CONFIG_HPP_
