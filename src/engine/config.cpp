// Parsing and validation of the JSON configuration. Every error names the key path, what was
// expected and what was found, so a user can fix the file without reading the code.
#include "activation/config.hpp"

#include "activation/backend/store.hpp"
#include "destinations/settings_check.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace activation {
namespace {

using Json = nlohmann::ordered_json;

std::string field_names() {
  std::string names;
  for (int i = 0; i < kFieldCount; ++i) {
    if (!names.empty()) names += ", ";
    names += field_name(static_cast<Field>(i));
  }
  return names;
}

std::string platform_names() {
  std::string names;
  for (int i = 0; i < kPlatformCount; ++i) {
    if (!names.empty()) names += ", ";
    names += platform_name(static_cast<Platform>(i));
  }
  return names;
}

std::string describe(const Json& value) {
  if (value.is_string()) return "\"" + value.get<std::string>() + "\"";
  if (value.is_object()) return "an object";
  if (value.is_array()) return "an array";
  if (value.is_null()) return "null";
  return value.dump();
}

// Turns nlohmann's "[json.exception.parse_error.101] parse error at line 7, column 3: syntax
// error ..." into "line 7, column 3: syntax error ...", dropping the library's internal tag.
std::string describe_parse_error(std::string_view message) {
  if (message.rfind("[json.exception.", 0) == 0) {
    std::size_t end = message.find("] ");
    if (end != std::string_view::npos) message.remove_prefix(end + 2);
  }
  for (std::string_view lead : {"parse error at ", "parse error: "}) {
    if (message.rfind(lead, 0) == 0) {
      message.remove_prefix(lead.size());
      break;
    }
  }
  if (message.rfind("line ", 0) == 0) return std::string(message);
  return "not valid JSON: " + std::string(message);
}

// Collects the key path of the value being read, for error messages.
class Reader {
 public:
  Reader(std::string_view origin, std::string_view base_dir) : origin_(origin), base_dir_(base_dir) {}

  Status error(const std::string& path, const std::string& what) const {
    return invalid_argument(origin_ + ": " + path + ": " + what);
  }

  Status check_keys(const Json& object, const std::string& path,
                    std::initializer_list<std::string_view> allowed) const {
    for (const auto& [key, value] : object.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (auto name : allowed) list += (list.empty() ? "" : ", ") + std::string(name);
        return error(path.empty() ? key : path + "." + key, "unknown key; expected one of " + list);
      }
    }
    return Status::ok();
  }

  Result<std::string> string(const Json& object, const std::string& path, const char* key, bool required,
                             std::string fallback = {}) const {
    auto found = object.find(key);
    if (found == object.end()) {
      if (required) return error(join(path, key), "missing; expected a string");
      return fallback;
    }
    if (!found->is_string()) return error(join(path, key), "expected a string, got " + describe(*found));
    return found->get<std::string>();
  }

  Result<double> number(const Json& object, const std::string& path, const char* key, double fallback,
                        double minimum, double maximum) const {
    auto found = object.find(key);
    if (found == object.end()) return fallback;
    if (!found->is_number()) return error(join(path, key), "expected a number, got " + describe(*found));
    double value = found->get<double>();
    if (value < minimum || value > maximum) {
      return error(join(path, key), "expected a number from " + format(minimum) + " to " + format(maximum) +
                                        ", got " + found->dump());
    }
    return value;
  }

  Result<std::int64_t> integer(const Json& object, const std::string& path, const char* key,
                               std::int64_t fallback, std::int64_t minimum, std::int64_t maximum) const {
    auto found = object.find(key);
    if (found == object.end()) return fallback;
    if (!found->is_number_integer())
      return error(join(path, key), "expected an integer, got " + describe(*found));
    auto value = found->get<std::int64_t>();
    if (value < minimum || value > maximum) {
      return error(join(path, key), "expected an integer from " + std::to_string(minimum) + " to " +
                                        std::to_string(maximum) + ", got " + std::to_string(value));
    }
    return value;
  }

  std::string resolve(const std::string& path) const {
    if (path.empty() || base_dir_.empty()) return path;
    std::filesystem::path p(path);
    if (p.is_absolute()) return path;
    return (std::filesystem::path(base_dir_) / p).lexically_normal().string();
  }

  static std::string join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }

 private:
  static std::string format(double value) {
    std::ostringstream out;
    out << value;
    return out.str();
  }

  std::string origin_;
  std::string base_dir_;
};

Result<std::vector<ColumnMapping>> read_mapping(const Reader& reader, const Json& value,
                                                const std::string& path) {
  std::vector<ColumnMapping> mapping;
  auto add = [&](const std::string& column, const Json& field, const std::string& at) -> Status {
    if (!field.is_string())
      return reader.error(at, "expected a field name (" + field_names() + "), got " + describe(field));
    auto parsed = parse_field(field.get<std::string>());
    if (!parsed)
      return reader.error(at, "expected a field name (" + field_names() + "), got " + describe(field));
    if (column.empty()) return reader.error(at, "the column name is empty");
    mapping.push_back(ColumnMapping{column, *parsed});
    return Status::ok();
  };

  if (value.is_object()) {
    for (const auto& [column, field] : value.items()) {
      ACT_RETURN_IF_ERROR(add(column, field, path + "." + column));
    }
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      const Json& entry = value[i];
      std::string at = path + "[" + std::to_string(i) + "]";
      if (!entry.is_object()) return reader.error(at, "expected an object {\"column\": ..., \"field\": ...}");
      ACT_RETURN_IF_ERROR(reader.check_keys(entry, at, {"column", "field"}));
      ACT_ASSIGN_OR_RETURN(std::string column, reader.string(entry, at, "column", true));
      auto field = entry.find("field");
      if (field == entry.end()) return reader.error(at + ".field", "missing; expected a field name");
      ACT_RETURN_IF_ERROR(add(column, *field, at + ".field"));
    }
  } else {
    return reader.error(path, "expected an object of column -> field, got " + describe(value));
  }
  if (mapping.empty()) return reader.error(path, "the mapping is empty; map at least one column");
  return mapping;
}

Result<AudienceConfig> read_audience(const Reader& reader, const std::string& name, const Json& value,
                                     const std::string& path) {
  if (!value.is_object()) return reader.error(path, "expected an object, got " + describe(value));
  ACT_RETURN_IF_ERROR(
      reader.check_keys(value, path, {"source", "mapping", "default_region", "google_canonicalize_gmail"}));

  AudienceConfig audience;
  audience.name = name;
  auto source = value.find("source");
  if (source == value.end())
    return reader.error(path + ".source", "missing; expected an object with type and path");
  std::string source_path = path + ".source";
  if (!source->is_object()) return reader.error(source_path, "expected an object, got " + describe(*source));
  ACT_RETURN_IF_ERROR(reader.check_keys(
      *source, source_path, {"type", "path", "delimiter", "query", "max_row_bytes", "count_rows"}));

  ACT_ASSIGN_OR_RETURN(std::string type, reader.string(*source, source_path, "type", true));
  auto parsed_type = parse_source_type(type);
  if (!parsed_type)
    return reader.error(source_path + ".type", "expected csv, ndjson or sqlite, got \"" + type + "\"");
  audience.source.type = *parsed_type;
  ACT_ASSIGN_OR_RETURN(std::string file, reader.string(*source, source_path, "path", true));
  if (file.empty()) return reader.error(source_path + ".path", "expected a file path, got an empty string");
  audience.source.path = reader.resolve(file);

  ACT_ASSIGN_OR_RETURN(std::string delimiter, reader.string(*source, source_path, "delimiter", false, ","));
  if (delimiter == "\\t" || delimiter == "tab") delimiter = "\t";
  if (delimiter.size() != 1) {
    return reader.error(source_path + ".delimiter", "expected one character, got \"" + delimiter + "\"");
  }
  if (audience.source.type != SourceType::kCsv && source->contains("delimiter")) {
    return reader.error(source_path + ".delimiter", "applies to csv sources only");
  }
  audience.source.delimiter = delimiter[0];

  ACT_ASSIGN_OR_RETURN(audience.source.query, reader.string(*source, source_path, "query", false));
  if (audience.source.type == SourceType::kSqlite && audience.source.query.empty()) {
    return reader.error(source_path + ".query", "missing; a sqlite source needs a SELECT query");
  }
  if (audience.source.type != SourceType::kSqlite && !audience.source.query.empty()) {
    return reader.error(source_path + ".query", "applies to sqlite sources only");
  }
  ACT_ASSIGN_OR_RETURN(auto max_row_bytes, reader.integer(*source, source_path, "max_row_bytes", 1 << 20, 64,
                                                          std::int64_t{1} << 30));
  audience.source.max_row_bytes = static_cast<std::size_t>(max_row_bytes);
  if (auto count = source->find("count_rows"); count != source->end()) {
    if (!count->is_boolean()) return reader.error(source_path + ".count_rows", "expected true or false");
    audience.source.count_rows = count->get<bool>();
  }

  auto mapping = value.find("mapping");
  if (mapping == value.end())
    return reader.error(path + ".mapping", "missing; expected an object of column -> field");
  ACT_ASSIGN_OR_RETURN(audience.source.mapping, read_mapping(reader, *mapping, path + ".mapping"));

  ACT_ASSIGN_OR_RETURN(audience.default_region, reader.string(value, path, "default_region", false, "US"));
  if (auto gmail = value.find("google_canonicalize_gmail"); gmail != value.end()) {
    if (!gmail->is_boolean())
      return reader.error(path + ".google_canonicalize_gmail", "expected true or false");
    audience.google_canonicalize_gmail = gmail->get<bool>();
  }
  Status valid = validate_audience(audience);
  if (!valid.is_ok()) return reader.error(path, valid.message());
  return audience;
}

Result<DestinationConfig> read_destination(const Reader& reader, const std::string& name, const Json& value,
                                           const std::string& path) {
  if (!value.is_object()) return reader.error(path, "expected an object, got " + describe(value));
  ACT_RETURN_IF_ERROR(reader.check_keys(
      value, path, {"type", "profile", "settings", "secrets", "batch_size", "expected_rows_per_second"}));

  DestinationConfig destination;
  destination.name = name;
  ACT_ASSIGN_OR_RETURN(destination.type, reader.string(value, path, "type", true));
  if (destination.type.empty()) return reader.error(path + ".type", "expected a destination type, got \"\"");

  ACT_ASSIGN_OR_RETURN(std::string profile, reader.string(value, path, "profile", false));
  if (!profile.empty()) {
    auto parsed = parse_platform(profile);
    if (!parsed)
      return reader.error(path + ".profile",
                          "expected one of " + platform_names() + ", got \"" + profile + "\"");
    destination.profile = *parsed;
  }

  if (auto settings = value.find("settings"); settings != value.end()) {
    if (!settings->is_object())
      return reader.error(path + ".settings", "expected an object, got " + describe(*settings));
    // Folder settings of the file destination are paths relative to the configuration file.
    Json resolved = *settings;
    for (const char* key : {"directory"}) {
      auto found = resolved.find(key);
      if (found != resolved.end() && found->is_string()) *found = reader.resolve(found->get<std::string>());
    }
    destination.settings = resolved.dump();
  }

  if (auto secrets = value.find("secrets"); secrets != value.end()) {
    if (!secrets->is_object()) {
      return reader.error(path + ".secrets",
                          "expected an object of secret name -> environment variable name");
    }
    for (const auto& [secret, variable] : secrets->items()) {
      if (!variable.is_string() || variable.get<std::string>().empty()) {
        return reader.error(
            path + ".secrets." + secret,
            "expected the name of the environment variable that holds the secret, got " + describe(variable));
      }
      destination.secret_env[secret] = variable.get<std::string>();
    }
  }

  ACT_ASSIGN_OR_RETURN(auto batch_size, reader.integer(value, path, "batch_size", 0, 0, 1'000'000));
  destination.batch_size = static_cast<std::size_t>(batch_size);
  ACT_ASSIGN_OR_RETURN(destination.expected_rows_per_second,
                       reader.number(value, path, "expected_rows_per_second", 0, 0, 1e9));
  return destination;
}

Status read_engine(const Reader& reader, const Json& value, EngineSettings& engine) {
  const std::string path = "engine";
  if (!value.is_object()) return reader.error(path, "expected an object, got " + describe(value));
  ACT_RETURN_IF_ERROR(
      reader.check_keys(value, path,
                        {"workers", "parallelism", "batch_size", "lease_seconds", "heartbeat_seconds",
                         "max_attempts", "batch_attempts", "batch_retry_base_ms", "shared_rate_limits",
                         "alerts"}));
  ACT_ASSIGN_OR_RETURN(auto workers, reader.integer(value, path, "workers", engine.workers, 1, 256));
  ACT_ASSIGN_OR_RETURN(auto parallelism,
                       reader.integer(value, path, "parallelism", engine.parallelism, 1, 64));
  ACT_ASSIGN_OR_RETURN(
      auto batch_size,
      reader.integer(value, path, "batch_size", static_cast<std::int64_t>(engine.batch_size), 1, 1'000'000));
  ACT_ASSIGN_OR_RETURN(auto lease, reader.number(value, path, "lease_seconds",
                                                 engine.lease_duration.count() / 1000.0, 1, 86400));
  ACT_ASSIGN_OR_RETURN(auto heartbeat, reader.number(value, path, "heartbeat_seconds",
                                                     engine.heartbeat_interval.count() / 1000.0, 0.1, 86400));
  if (heartbeat >= lease) {
    return reader.error(path + ".heartbeat_seconds",
                        "must be below lease_seconds (" + std::to_string(lease) + ")");
  }
  ACT_ASSIGN_OR_RETURN(auto attempts,
                       reader.integer(value, path, "max_attempts", engine.max_attempts, 1, 100));
  ACT_ASSIGN_OR_RETURN(auto batch_attempts,
                       reader.integer(value, path, "batch_attempts", engine.batch_attempts, 1, 100));
  ACT_ASSIGN_OR_RETURN(auto retry_base, reader.integer(value, path, "batch_retry_base_ms",
                                                       engine.batch_retry_base.count(), 0, 600'000));
  engine.workers = static_cast<int>(workers);
  engine.parallelism = static_cast<int>(parallelism);
  engine.batch_size = static_cast<std::size_t>(batch_size);
  engine.lease_duration = std::chrono::milliseconds(static_cast<std::int64_t>(lease * 1000));
  engine.heartbeat_interval = std::chrono::milliseconds(static_cast<std::int64_t>(heartbeat * 1000));
  engine.max_attempts = static_cast<int>(attempts);
  engine.batch_attempts = static_cast<int>(batch_attempts);
  engine.batch_retry_base = std::chrono::milliseconds(retry_base);
  if (auto shared = value.find("shared_rate_limits"); shared != value.end()) {
    if (!shared->is_boolean()) return reader.error(path + ".shared_rate_limits", "expected true or false");
    engine.shared_rate_limits = shared->get<bool>();
  }

  if (auto alerts = value.find("alerts"); alerts != value.end()) {
    const std::string at = "engine.alerts";
    if (!alerts->is_object()) return reader.error(at, "expected an object, got " + describe(*alerts));
    ACT_RETURN_IF_ERROR(reader.check_keys(
        *alerts, at, {"queue_backlog", "stalled_jobs", "error_rate", "error_rate_min_rows"}));
    ACT_ASSIGN_OR_RETURN(
        engine.alerts.queue_backlog,
        reader.integer(*alerts, at, "queue_backlog", engine.alerts.queue_backlog, 0, INT64_MAX));
    ACT_ASSIGN_OR_RETURN(
        engine.alerts.stalled_jobs,
        reader.integer(*alerts, at, "stalled_jobs", engine.alerts.stalled_jobs, 1, INT64_MAX));
    ACT_ASSIGN_OR_RETURN(engine.alerts.error_rate,
                         reader.number(*alerts, at, "error_rate", engine.alerts.error_rate, 0, 1));
    ACT_ASSIGN_OR_RETURN(
        auto min_rows,
        reader.integer(*alerts, at, "error_rate_min_rows",
                       static_cast<std::int64_t>(engine.alerts.error_rate_min_rows), 0, INT64_MAX));
    engine.alerts.error_rate_min_rows = static_cast<std::uint64_t>(min_rows);
  }
  return Status::ok();
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

const char* kNameRule = "names use letters, digits, '_', '-' and '.' only (at most 128)";

// Rewords an adapter's "destination 'NAME': settings.key: ..." as the configuration error
// "<origin>: destinations.NAME.settings.key: ...", the form of every other error of the file.
Status destination_settings_error(const Reader& reader, const std::string& name, const std::string& message) {
  const std::string path = "destinations." + name;
  const std::string prefix = "destination '" + name + "': ";
  if (message.rfind(prefix, 0) != 0) return reader.error(path, message);
  std::string rest = message.substr(prefix.size());
  std::size_t colon = rest.find(": ");
  for (std::string_view key : {"settings", "secrets", "profile"}) {
    if (colon == std::string::npos || rest.rfind(key, 0) != 0) continue;
    char next = rest[key.size()];
    if (next == '.' || next == ':') return reader.error(path + "." + rest.substr(0, colon), rest.substr(colon + 2));
  }
  return reader.error(path, rest);
}

}  // namespace

const AudienceConfig* Config::find_audience(std::string_view name) const noexcept {
  for (const auto& audience : audiences) {
    if (audience.name == name) return &audience;
  }
  return nullptr;
}

const DestinationConfig* Config::find_destination(std::string_view name) const noexcept {
  for (const auto& destination : destinations) {
    if (destination.name == name) return &destination;
  }
  return nullptr;
}

Status validate_audience(const AudienceConfig& audience) {
  if (!valid_name(audience.name))
    return invalid_argument("invalid audience name '" + audience.name + "': " + kNameRule);
  if (audience.source.path.empty())
    return invalid_argument("audience '" + audience.name + "' has no source path");
  if (audience.source.mapping.empty())
    return invalid_argument("audience '" + audience.name + "' has an empty mapping");
  if (audience.source.type == SourceType::kSqlite && audience.source.query.empty()) {
    return invalid_argument("audience '" + audience.name + "': a sqlite source needs a query");
  }
  NormalizerOptions options;
  options.default_region = audience.default_region;
  auto normalizer = Normalizer::create(Platform::kMeta, options);
  if (!normalizer.is_ok()) {
    return invalid_argument("audience '" + audience.name + "': default_region \"" + audience.default_region +
                            "\" is not an ISO 3166-1 alpha-2 region code");
  }
  return Status::ok();
}

Status validate_destination(const DestinationConfig& destination) {
  if (!valid_name(destination.name)) {
    return invalid_argument("invalid destination name '" + destination.name + "': " + kNameRule);
  }
  if (destination.type.empty()) return invalid_argument("destination '" + destination.name + "' has no type");
  auto settings = nlohmann::json::parse(destination.settings, nullptr, false);
  if (settings.is_discarded() || !settings.is_object()) {
    return invalid_argument("destination '" + destination.name + "': settings must be a JSON object");
  }
  if (destination.batch_size > 1'000'000) {
    return invalid_argument("destination '" + destination.name + "': batch_size must be at most 1000000");
  }
  if (destination.expected_rows_per_second < 0) {
    return invalid_argument("destination '" + destination.name +
                            "': expected_rows_per_second must not be negative");
  }
  return Status::ok();
}

Result<Config> parse_config(std::string_view json_text, std::string_view origin, std::string_view base_dir) {
  Reader reader(origin.empty() ? "configuration" : origin, base_dir);
  Json root = Json::parse(json_text.begin(), json_text.end(), nullptr, false);
  if (root.is_discarded()) {
    // Parse again with exceptions for the position of the syntax error.
    try {
      Json strict = Json::parse(json_text.begin(), json_text.end());
      (void)strict;
    } catch (const Json::parse_error& error) {
      return invalid_argument(std::string(origin) + ": " + describe_parse_error(error.what()));
    }
    return invalid_argument(std::string(origin) + ": not valid JSON");
  }
  if (!root.is_object())
    return invalid_argument(std::string(origin) + ": expected a JSON object at the top level");
  ACT_RETURN_IF_ERROR(reader.check_keys(root, "", {"store", "engine", "audiences", "destinations"}));

  Config config;
  ACT_ASSIGN_OR_RETURN(std::string store, reader.string(root, "", "store", true));
  if (store.empty()) {
    return reader.error("store", "expected the path of the store file or a postgresql:// URL, got \"\"");
  }
  // A PostgreSQL URL is passed on as it is; only a file path is relative to the configuration.
  config.store_path = is_postgresql_url(store) ? store : reader.resolve(store);

  if (auto engine = root.find("engine"); engine != root.end())
    ACT_RETURN_IF_ERROR(read_engine(reader, *engine, config.engine));

  auto audiences = root.find("audiences");
  if (audiences == root.end() || !audiences->is_object()) {
    return reader.error("audiences", "expected an object of audience name -> audience");
  }
  for (const auto& [name, value] : audiences->items()) {
    std::string path = "audiences." + name;
    if (!valid_name(name)) return reader.error(path, kNameRule);
    ACT_ASSIGN_OR_RETURN(auto audience, read_audience(reader, name, value, path));
    config.audiences.push_back(std::move(audience));
  }

  auto destinations = root.find("destinations");
  if (destinations == root.end() || !destinations->is_object()) {
    return reader.error("destinations", "expected an object of destination name -> destination");
  }
  for (const auto& [name, value] : destinations->items()) {
    std::string path = "destinations." + name;
    if (!valid_name(name)) return reader.error(path, kNameRule);
    ACT_ASSIGN_OR_RETURN(auto destination, read_destination(reader, name, value, path));
    Status settings = check_destination_settings(destination);
    if (!settings.is_ok()) return destination_settings_error(reader, name, settings.message());
    config.destinations.push_back(std::move(destination));
  }
  return config;
}

Result<Config> load_config(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error))
    return not_found("configuration file '" + path + "' does not exist");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(StatusCode::kPermissionDenied, "configuration file '" + path + "' is not readable");
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return io_error("reading configuration file '" + path + "' failed");
  std::string base_dir = std::filesystem::absolute(path, error).parent_path().string();
  return parse_config(buffer.str(), path, base_dir);
}

std::string audience_to_json(const AudienceConfig& audience) {
  Json source = {{"type", std::string(source_type_name(audience.source.type))},
                 {"path", audience.source.path}};
  if (audience.source.type == SourceType::kCsv)
    source["delimiter"] = std::string(1, audience.source.delimiter);
  if (audience.source.type == SourceType::kSqlite) source["query"] = audience.source.query;
  source["max_row_bytes"] = audience.source.max_row_bytes;
  source["count_rows"] = audience.source.count_rows;
  Json mapping = Json::array();
  for (const auto& column : audience.source.mapping) {
    mapping.push_back({{"column", column.column}, {"field", std::string(field_name(column.field))}});
  }
  Json out = {{"source", source},
              {"mapping", mapping},
              {"default_region", audience.default_region},
              {"google_canonicalize_gmail", audience.google_canonicalize_gmail}};
  return out.dump();
}

std::string destination_to_json(const DestinationConfig& destination) {
  Json out = {{"type", destination.type}};
  if (destination.profile) out["profile"] = std::string(platform_name(*destination.profile));
  out["settings"] = Json::parse(destination.settings, nullptr, false);
  if (out["settings"].is_discarded()) out["settings"] = Json::object();
  Json secrets = Json::object();
  for (const auto& [name, variable] : destination.secret_env) secrets[name] = variable;
  out["secrets"] = secrets;
  out["batch_size"] = destination.batch_size;
  out["expected_rows_per_second"] = destination.expected_rows_per_second;
  return out.dump();
}

Result<AudienceConfig> audience_from_json(std::string_view name, std::string_view json_text) {
  Reader reader("audience", "");
  Json value = Json::parse(json_text.begin(), json_text.end(), nullptr, false);
  if (value.is_discarded()) return invalid_argument("audience '" + std::string(name) + "': not valid JSON");
  return read_audience(reader, std::string(name), value, "audiences." + std::string(name));
}

Result<DestinationConfig> destination_from_json(std::string_view name, std::string_view json_text) {
  Reader reader("destination", "");
  Json value = Json::parse(json_text.begin(), json_text.end(), nullptr, false);
  if (value.is_discarded())
    return invalid_argument("destination '" + std::string(name) + "': not valid JSON");
  return read_destination(reader, std::string(name), value, "destinations." + std::string(name));
}

}  // namespace activation
