// The process-wide table of destination types. "file" is built in; platform adapters add theirs.
#include <algorithm>
#include <map>
#include <mutex>

#include "activation/backend/destination.hpp"
#include "destinations/file/file_destination.hpp"
#include "destinations/settings_check.hpp"
#include "destinations/webhook/webhook_destination.hpp"
#include "platforms/google/google_destinations.hpp"
#include "platforms/linkedin/linkedin_destination.hpp"
#include "platforms/meta/meta_destination.hpp"
#include "platforms/snapchat/snapchat_destination.hpp"
#include "platforms/tiktok/tiktok_destination.hpp"

namespace activation {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, DestinationFactory, std::less<>> factories;
};

Registry& registry() {
  static Registry* instance = [] {
    auto* created = new Registry();
    created->factories.emplace("file", destinations::make_file_destination);
    created->factories.emplace("meta", platforms::meta::make_meta_destination);
    created->factories.emplace("google", platforms::google::make_data_manager_destination);
    created->factories.emplace("google_ads", platforms::google::make_ads_destination);
    created->factories.emplace("linkedin", platforms::linkedin::make_linkedin_destination);
    created->factories.emplace("tiktok", platforms::tiktok::make_tiktok_destination);
    created->factories.emplace("snapchat", platforms::snapchat::make_snapchat_destination);
    created->factories.emplace("webhook", destinations::make_webhook_destination);
    return created;
  }();
  return *instance;
}

// The types built into the library, whose factories only read the configuration (the file
// destination's also creates its folder, so it is checked without its factory).
constexpr std::string_view kBuiltInPlatformTypes[] = {"meta",   "google",   "google_ads", "linkedin",
                                                      "tiktok", "snapchat", "webhook"};

}  // namespace

Status check_destination_settings(const DestinationConfig& config) {
  if (config.type == "file") return destinations::parse_file_settings(config).status();
  if (std::find(std::begin(kBuiltInPlatformTypes), std::end(kBuiltInPlatformTypes), config.type) ==
      std::end(kBuiltInPlatformTypes)) {
    return Status::ok();
  }
  auto factory = find_destination_type(config.type);
  if (!factory) return Status::ok();

  // Secret values are read from the environment only when a job runs, so that commands which send
  // nothing work without them. Here every configured secret gets a stand-in value that the
  // factories only store.
  DestinationEnvironment environment;
  environment.secret = [&config](std::string_view name) -> Result<std::string> {
    if (config.secret_env.count(std::string(name)) == 0) {
      return invalid_argument("destination '" + config.name + "': secrets." + std::string(name) +
                              ": missing; name the environment variable that holds it");
    }
    return std::string("unread-secret");
  };
  auto adapter = (*factory)(config, environment);
  if (adapter.is_ok()) return Status::ok();
  return invalid_argument(adapter.status().message());
}

Status check_destination_mode(const DestinationConfig& config, SyncMode mode) {
  if (mode != SyncMode::kReplace) return Status::ok();
  // The built-in types whose platform cannot empty a list in one operation.
  static const std::map<std::string, std::string, std::less<>> kNoReplace = {
      {"google", "the Data Manager API"},
      {"linkedin", "LinkedIn DMP segments"},
      {"tiktok", "TikTok's segment API"},
      {"snapchat", "Snapchat's segment API"},
      {"webhook", "the webhook destination"}};
  auto found = kNoReplace.find(config.type);
  if (found == kNoReplace.end()) return Status::ok();
  return invalid_argument("destination '" + config.name + "': mode replace is not available, because " +
                          found->second +
                          " cannot empty a list in one operation; use mode mirror, which removes the members "
                          "that left the source");
}

std::string_view sync_mode_name(SyncMode mode) noexcept {
  switch (mode) {
    case SyncMode::kAdd: return "add";
    case SyncMode::kRemove: return "remove";
    case SyncMode::kReplace: return "replace";
    case SyncMode::kMirror: return "mirror";
  }
  return "unknown";
}

std::optional<SyncMode> parse_sync_mode(std::string_view name) noexcept {
  if (name == "add") return SyncMode::kAdd;
  if (name == "remove") return SyncMode::kRemove;
  if (name == "replace") return SyncMode::kReplace;
  if (name == "mirror") return SyncMode::kMirror;
  return std::nullopt;
}

std::string_view row_outcome_name(RowOutcome outcome) noexcept {
  switch (outcome) {
    case RowOutcome::kInvalid: return "invalid";
    case RowOutcome::kRejected: return "rejected";
    case RowOutcome::kDeferred: return "deferred";
    case RowOutcome::kAccepted: return "accepted";
  }
  return "unknown";
}

std::string_view operation_type_name(OperationType type) noexcept {
  return type == OperationType::kAdd ? "add" : "remove";
}

Status register_destination_type(std::string type, DestinationFactory factory) {
  if (type.empty() || !factory) return invalid_argument("a destination type needs a name and a factory");
  auto& table = registry();
  std::lock_guard lock(table.mutex);
  if (!table.factories.emplace(std::move(type), std::move(factory)).second) {
    return Status(StatusCode::kAlreadyExists, "destination type is registered already");
  }
  return Status::ok();
}

std::optional<DestinationFactory> find_destination_type(std::string_view type) {
  auto& table = registry();
  std::lock_guard lock(table.mutex);
  auto found = table.factories.find(type);
  if (found == table.factories.end()) return std::nullopt;
  return found->second;
}

std::vector<std::string> destination_types() {
  auto& table = registry();
  std::lock_guard lock(table.mutex);
  std::vector<std::string> names;
  for (const auto& [name, factory] : table.factories) names.push_back(name);
  return names;
}

}  // namespace activation
