// The "google_ads" destination: a Customer Match list through the Google Ads API's
// OfflineUserDataJob. The run keeps at most one open job per operation: removes go into a remove
// job and adds into an add job, because Google rejects a job that mixes them. Operations are added
// with partial failure on, so a bad member fails alone and its index in the request names its row.
// finish() runs the remove job, waits for SUCCESS or FAILED, then does the same with the add job,
// so that a member whose keys changed is removed with its old keys before its new keys arrive.
// A replace is one add job whose first operation is removeAll.
#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "platforms/google/google_client.hpp"
#include "platforms/google/google_destinations.hpp"
#include "platforms/google/google_payload.hpp"
#include "platforms/google/google_settings.hpp"

namespace activation::platforms::google {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

constexpr const char* kNoKeyCode = "google_no_key";
constexpr const char* kRejectedCode = "google_rejected";
// A run waits this long for another run of the process to finish with the same list.
constexpr auto kListLockWait = std::chrono::minutes(10);
constexpr int kMaxConcurrentModificationRetries = 8;

// One upload at a time per user list in this process. Two runs writing one list would get
// CONCURRENT_MODIFICATION from Google, and their jobs could run in either order.
class ListLocks {
 public:
  bool acquire(const std::string& list) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kListLockWait, [&] { return active_.insert(list).second; });
  }
  void release(const std::string& list) {
    {
      std::lock_guard lock(mutex_);
      active_.erase(list);
    }
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::set<std::string> active_;
};

ListLocks& list_locks() {
  static auto* locks = new ListLocks();
  return *locks;
}

// The open job of one operation kind.
struct JobSlot {
  std::string resource;  // "customers/<cid>/offlineUserDataJobs/<id>"; empty when none is open.
  std::string id;
  std::int64_t operations = 0;
  bool run = false;  // :run was sent.
};

struct AdsState {
  std::string list_resource;
  JobSlot remove;
  JobSlot add;
  bool remove_all_sent = false;  // Replace: the add job's removeAll went out.

  JobSlot& slot(OperationType type) { return type == OperationType::kRemove ? remove : add; }

  static Json slot_json(const JobSlot& slot) {
    return Json{
        {"resource", slot.resource}, {"id", slot.id}, {"operations", slot.operations}, {"run", slot.run}};
  }
  static JobSlot read_slot(const Json& json) {
    JobSlot slot;
    if (!json.is_object()) return slot;
    slot.resource = json.value("resource", std::string());
    slot.id = json.value("id", std::string());
    slot.operations = json.value("operations", std::int64_t{0});
    slot.run = json.value("run", false);
    return slot;
  }

  std::string to_json() const {
    return Json{{"list", list_resource},
                {"remove_job", slot_json(remove)},
                {"add_job", slot_json(add)},
                {"remove_all_sent", remove_all_sent}}
        .dump();
  }

  static Result<AdsState> from_json(std::string_view text) {
    AdsState state;
    if (text.empty() || text == "{}") return state;
    Json json = Json::parse(text, nullptr, false);
    if (!json.is_object() || !json.contains("list")) {
      return Status(StatusCode::kDataLoss, "the checkpoint's session state is not a Google Ads state");
    }
    state.list_resource = json.value("list", std::string());
    state.remove = read_slot(json.value("remove_job", Json()));
    state.add = read_slot(json.value("add_job", Json()));
    state.remove_all_sent = json.value("remove_all_sent", false);
    return state;
  }
};

std::string last_segment(const std::string& resource) {
  return resource.substr(resource.rfind('/') + 1);
}

class AdsDestination final : public DestinationAdapter {
 public:
  AdsDestination(std::string name, GoogleSettings settings, Logger logger)
      : name_(std::move(name)), settings_(std::move(settings)), logger_(std::move(logger)) {}

  ~AdsDestination() override { unlock(); }

  Platform profile() const override { return Platform::kGoogle; }
  std::size_t max_batch_size() const override { return settings_.max_members_per_request; }

  Status begin(const DestinationRun& run) override;
  BatchResult send(const Batch& batch) override;
  Status finish(const DestinationRunSummary& summary) override;

 private:
  struct Pending {
    std::int64_t number = 0;
    std::vector<bool> done;
    std::vector<OperationResult> results;
    AdsState state;
  };

  struct StepOutcome {
    Status status;
    std::optional<milliseconds> retry_after;
  };

  Status resolve_list();
  StepOutcome open_job(JobSlot& slot);
  StepOutcome add_operations(OperationType type, const std::vector<std::size_t>& operations,
                             const Batch& batch, Pending& pending);
  Status run_and_wait(JobSlot& slot, std::string_view kind);
  std::string customer_path() const { return "/customers/" + settings_.customer_id; }
  void unlock() {
    if (!locked_list_.empty()) list_locks().release(locked_list_);
    locked_list_.clear();
  }

  const std::string name_;
  const GoogleSettings settings_;
  const Logger logger_;
  std::unique_ptr<GoogleClient> client_;
  DestinationRun run_;
  AdsState state_;
  Pending pending_;
  std::string locked_list_;
};

Status AdsDestination::begin(const DestinationRun& run) {
  run_ = run;
  pending_ = Pending{};
  if (!client_) {
    ACT_ASSIGN_OR_RETURN(client_, GoogleClient::create(settings_, name_, logger_));
  }
  auto state = AdsState::from_json(run.session_state);
  if (!state.is_ok())
    return Status(state.status().code(), "destination '" + name_ + "': " + state.status().message());
  state_ = std::move(*state);
  ACT_RETURN_IF_ERROR(resolve_list());

  unlock();
  if (!list_locks().acquire(state_.list_resource)) {
    return unavailable(fmt::format(
        "destination '{}': another run of this process kept uploading to {} for {} minutes", name_,
        state_.list_resource, std::chrono::duration_cast<std::chrono::minutes>(kListLockWait).count()));
  }
  locked_list_ = state_.list_resource;
  logger_.log(LogLevel::kInfo, "google", "job {} destination {}: {} to {} ({}){}", run.job_id, name_,
              sync_mode_name(run.mode), state_.list_resource, upload_key_type_name(settings_.upload_key_type),
              run.resumed ? " (resumed)" : "");
  return Status::ok();
}

Status AdsDestination::resolve_list() {
  if (!state_.list_resource.empty()) return Status::ok();
  if (!settings_.user_list_id.empty()) {
    state_.list_resource = customer_path().substr(1) + "/userLists/" + settings_.user_list_id;
    return Status::ok();
  }

  // GAQL string literals are quoted with single quotes; a quote in the name is escaped.
  std::string quoted;
  for (char c : settings_.user_list_name) {
    if (c == '\'' || c == '\\') quoted += '\\';
    quoted += c;
  }
  Json query = {{"query", "SELECT user_list.id, user_list.name FROM user_list WHERE user_list.name = '" +
                              quoted + "'"}};
  auto find = [&]() -> Status {
    GoogleResponse found =
        client_->call_with_retries(HttpMethod::kPost, customer_path() + "/googleAds:search", query.dump());
    if (!found.ok()) {
      return client_->failure_status(
          found, "finding user list '" + settings_.user_list_name + "' of customer " + settings_.customer_id);
    }
    for (const Json& row : found.body.value("results", Json::array())) {
      std::string resource = row.value("userList", Json::object()).value("resourceName", std::string());
      if (!resource.empty()) {
        state_.list_resource = resource;
        break;
      }
    }
    return Status::ok();
  };
  ACT_RETURN_IF_ERROR(find());
  if (!state_.list_resource.empty()) return Status::ok();

  Json list = {{"name", settings_.user_list_name},
               {"membershipStatus", "OPEN"},
               {"membershipLifeSpan", std::to_string(settings_.membership_life_span_days)},
               {"crmBasedUserList",
                {{"uploadKeyType", upload_key_type_name(settings_.upload_key_type)},
                 {"dataSourceType", "FIRST_PARTY"}}}};
  if (!settings_.user_list_description.empty()) list["description"] = settings_.user_list_description;
  Json request = {{"operations", Json::array({{{"create", list}}})}};
  GoogleResponse created =
      client_->call_with_retries(HttpMethod::kPost, customer_path() + "/userLists:mutate", request.dump());
  std::string what =
      "creating user list '" + settings_.user_list_name + "' in customer " + settings_.customer_id;
  if (!created.ok()) {
    // A create whose response was lost may have made the list; the retry then finds the name taken.
    std::vector<GoogleError> errors = created.body.is_object() && created.body.contains("error")
                                          ? read_google_errors(created.body["error"])
                                          : std::vector<GoogleError>{};
    bool taken = std::any_of(errors.begin(), errors.end(), [](const GoogleError& error) {
      return error.code == "userListError: NAME_ALREADY_USED";
    });
    if (taken) {
      ACT_RETURN_IF_ERROR(find());
      if (!state_.list_resource.empty()) return Status::ok();
    }
    return client_->failure_status(created, what);
  }
  auto results = created.body.value("results", Json::array());
  std::string resource = results.empty() ? std::string() : results[0].value("resourceName", std::string());
  if (resource.empty())
    return unavailable("destination '" + name_ + "': " + what + ": the response names no user list");
  state_.list_resource = resource;
  logger_.log(LogLevel::kInfo, "google", "destination {}: created user list '{}' as {}", name_,
              settings_.user_list_name, resource);
  return Status::ok();
}

AdsDestination::StepOutcome AdsDestination::open_job(JobSlot& slot) {
  Json metadata = {{"userList", state_.list_resource}};
  Json consent = ads_consent(settings_.consent);
  if (!consent.is_null()) metadata["consent"] = consent;
  Json request = {
      {"job", {{"type", "CUSTOMER_MATCH_USER_LIST"}, {"customerMatchUserListMetadata", metadata}}}};
  GoogleResponse response =
      client_->call(HttpMethod::kPost, customer_path() + "/offlineUserDataJobs:create", request.dump());
  if (!response.ok()) {
    Status failure =
        client_->failure_status(response, "creating an offline user data job for " + state_.list_resource);
    // Every request-level rejection of a job (not allow-listed, wrong list) would repeat.
    if (failure.code() == StatusCode::kInvalidArgument) failure = failed_precondition(failure.message());
    return {failure, response.retry_after};
  }
  slot = JobSlot{};
  slot.resource = response.body.value("resourceName", std::string());
  slot.id = last_segment(slot.resource);
  if (slot.resource.empty())
    return {unavailable("destination '" + name_ + "': the job creation response names no job"), std::nullopt};
  logger_.log(LogLevel::kInfo, "google", "job {} destination {}: opened {}", run_.job_id, name_,
              slot.resource);
  return {};
}

BatchResult AdsDestination::send(const Batch& batch) {
  BatchResult result;
  if (pending_.number != batch.number || pending_.results.size() != batch.operations.size()) {
    pending_ = Pending{};
    pending_.number = batch.number;
    pending_.state = state_;
    pending_.results.assign(batch.operations.size(), OperationResult{});
    pending_.done.assign(batch.operations.size(), false);
  }

  for (OperationType type : {OperationType::kRemove, OperationType::kAdd}) {
    // Requests of at most max_operations_per_request operations and 100,000 identifiers.
    std::vector<std::size_t> chunk;
    std::size_t identifiers = 0;
    auto flush = [&]() -> StepOutcome {
      if (chunk.empty()) return {};
      StepOutcome outcome = add_operations(type, chunk, batch, pending_);
      chunk.clear();
      identifiers = 0;
      return outcome;
    };
    for (std::size_t i = 0; i < batch.operations.size(); ++i) {
      if (pending_.done[i] || batch.operations[i].type != type) continue;
      std::size_t count = std::min(batch.operations[i].identifiers.size(), kMaxAdsIdentifiers);
      if (chunk.size() == settings_.max_members_per_request ||
          identifiers + count > kMaxAdsIdentifiersPerRequest) {
        StepOutcome outcome = flush();
        if (!outcome.status.is_ok()) {
          result.transport = outcome.status;
          result.retry_after = outcome.retry_after;
          return result;
        }
      }
      chunk.push_back(i);
      identifiers += count;
    }
    StepOutcome outcome = flush();
    if (!outcome.status.is_ok()) {
      result.transport = outcome.status;
      result.retry_after = outcome.retry_after;
      return result;
    }
  }

  state_ = std::move(pending_.state);
  result.results = std::move(pending_.results);
  result.session_state = state_.to_json();
  pending_ = Pending{};
  return result;
}

AdsDestination::StepOutcome AdsDestination::add_operations(OperationType type,
                                                           const std::vector<std::size_t>& operations,
                                                           const Batch& batch, Pending& pending) {
  const bool remove = type == OperationType::kRemove;
  Json list = Json::array();
  std::vector<std::size_t> sent;
  for (std::size_t operation : operations) {
    std::optional<Json> user_data = ads_user_data(batch.operations[operation], settings_.upload_key_type);
    if (!user_data) {
      pending.results[operation] =
          OperationResult{RowOutcome::kRejected,
                          Reason{kNoKeyCode, fmt::format("the member has no identifier that a {} list takes",
                                                         upload_key_type_name(settings_.upload_key_type))}};
      pending.done[operation] = true;
      continue;
    }
    list.push_back({{remove ? "remove" : "create", std::move(*user_data)}});
    sent.push_back(operation);
  }
  if (sent.empty()) return {};

  for (int attempt = 0;; ++attempt) {
    JobSlot& slot = pending.state.slot(type);
    if (slot.resource.empty() || slot.run) {
      StepOutcome opened = open_job(slot);
      if (!opened.status.is_ok()) return opened;
    }
    // A replace clears the list with the add job's first operation.
    bool remove_all =
        !remove && run_.mode == SyncMode::kReplace && !pending.state.remove_all_sent && slot.operations == 0;
    Json body_operations = list;
    if (remove_all) body_operations.insert(body_operations.begin(), Json{{"removeAll", true}});
    Json body = {{"operations", body_operations}, {"enablePartialFailure", true}};

    GoogleResponse response = client_->call(HttpMethod::kPost, "/" + slot.resource + ":addOperations",
                                            body.dump(), static_cast<double>(body_operations.size()));
    std::string what = fmt::format("adding batch {} ({} of {} members) to {}", pending.number,
                                   remove ? "removes" : "adds", sent.size(), slot.resource);
    if (response.concurrent_modification && attempt < kMaxConcurrentModificationRetries) {
      // Another writer touched the job or the list. It clears once that writer is done.
      auto delay = milliseconds(200) * (1 << std::min(attempt, 5));
      logger_.log(LogLevel::kInfo, "google",
                  "job {} destination {}: {}: CONCURRENT_MODIFICATION; retrying in {} ms", run_.job_id, name_,
                  what, delay.count());
      std::this_thread::sleep_for(delay);
      continue;
    }
    if (!response.ok()) {
      std::vector<GoogleError> errors = response.body.is_object() && response.body.contains("error")
                                            ? read_google_errors(response.body["error"])
                                            : std::vector<GoogleError>{};
      bool started = std::any_of(errors.begin(), errors.end(), [](const GoogleError& error) {
        return error.code == "offlineUserDataJobError: JOB_ALREADY_STARTED";
      });
      if (started && attempt < 2) {
        // A run resumed after finish() had started the job: the operations go into a new job.
        slot.run = true;
        continue;
      }
      if (response.error_class() != PlatformErrorClass::kInvalidRequest || response.concurrent_modification) {
        return {client_->failure_status(response, what), response.retry_after};
      }
      Reason reason{kRejectedCode, "Google rejected the request: " + response.classification.summary()};
      for (std::size_t operation : sent) {
        pending.results[operation] = OperationResult{RowOutcome::kRejected, reason};
        pending.done[operation] = true;
      }
      logger_.log(LogLevel::kWarn, "google", "job {} destination {}: {}: {}", run_.job_id, name_, what,
                  reason.message);
      return {};
    }

    // Partial failure: errors inside a 200, each naming the index of its operation in this request.
    std::map<std::size_t, std::string> rejected;
    if (response.body.contains("partialFailureError")) {
      for (const GoogleError& error : read_google_errors(response.body["partialFailureError"])) {
        if (!error.index) continue;
        std::size_t index = *error.index - (remove_all ? 1 : 0);
        if (index >= sent.size() || (remove_all && *error.index == 0)) continue;
        std::string& text = rejected[index];
        if (text.empty()) text = error.code + ": " + error.message;
      }
    }
    for (std::size_t i = 0; i < sent.size(); ++i) {
      auto found = rejected.find(i);
      pending.results[sent[i]] =
          found == rejected.end()
              ? OperationResult{}
              : OperationResult{RowOutcome::kRejected,
                                Reason{kRejectedCode, "Google rejected the member: " + found->second}};
      pending.done[sent[i]] = true;
    }
    slot.operations += static_cast<std::int64_t>(sent.size() - rejected.size());
    if (remove_all) pending.state.remove_all_sent = true;
    return {};
  }
}

Status AdsDestination::run_and_wait(JobSlot& slot, std::string_view kind) {
  if (!slot.run) {
    GoogleResponse response =
        client_->call_with_retries(HttpMethod::kPost, "/" + slot.resource + ":run", "{}");
    bool started_already = false;
    if (!response.ok() && response.body.is_object() && response.body.contains("error")) {
      for (const GoogleError& error : read_google_errors(response.body["error"])) {
        if (error.code == "offlineUserDataJobError: JOB_ALREADY_STARTED") started_already = true;
      }
    }
    if (!response.ok() && !started_already)
      return client_->failure_status(response, "running " + slot.resource);
    slot.run = true;
  }

  auto deadline = std::chrono::steady_clock::now() + settings_.poll_timeout;
  milliseconds interval = settings_.poll_interval;
  Json query = {
      {"query",
       "SELECT offline_user_data_job.id, offline_user_data_job.status, offline_user_data_job.failure_reason, "
       "offline_user_data_job.operation_metadata.match_rate_range FROM offline_user_data_job WHERE "
       "offline_user_data_job.id = " +
           slot.id}};
  while (true) {
    GoogleResponse response =
        client_->call_with_retries(HttpMethod::kPost, customer_path() + "/googleAds:search", query.dump());
    if (!response.ok()) return client_->failure_status(response, "reading the status of " + slot.resource);
    auto results = response.body.value("results", Json::array());
    Json job = results.empty() ? Json::object() : results[0].value("offlineUserDataJob", Json::object());
    std::string status = job.value("status", std::string("UNKNOWN"));
    if (status == "SUCCESS") {
      logger_.log(
          LogLevel::kInfo, "google",
          "job {} destination {}: {} job {} succeeded with {} operations, match rate {}", run_.job_id, name_,
          kind, slot.id, slot.operations,
          job.value("operationMetadata", Json::object()).value("matchRateRange", std::string("unknown")));
      return Status::ok();
    }
    if (status == "FAILED") {
      return failed_precondition(
          fmt::format("destination '{}': Google ended {} job {} as FAILED ({}); its {} operations did "
                      "not reach {}. Run the job again",
                      name_, kind, slot.resource, job.value("failureReason", std::string("no reason given")),
                      slot.operations, state_.list_resource));
    }
    if (std::chrono::steady_clock::now() + interval > deadline) {
      return Status(
          StatusCode::kDeadlineExceeded,
          fmt::format(
              "destination '{}': {} was still {} after {} s of polling (settings.poll_timeout_seconds); "
              "the job can be retried to poll again",
              name_, slot.resource, status,
              std::chrono::duration_cast<std::chrono::seconds>(settings_.poll_timeout).count()));
    }
    std::this_thread::sleep_for(interval);
    interval = std::min(interval * 2, settings_.poll_max_interval);
  }
}

Status AdsDestination::finish(const DestinationRunSummary& summary) {
  if (!client_) return failed_precondition("destination '" + name_ + "': finish() was called before begin()");
  // Removes first. A job that never received an operation is left unrun; it stays PENDING at
  // Google and changes nothing.
  for (OperationType type : {OperationType::kRemove, OperationType::kAdd}) {
    JobSlot& slot = state_.slot(type);
    if (slot.resource.empty() ||
        (slot.operations == 0 && !(type == OperationType::kAdd && state_.remove_all_sent)))
      continue;
    Status done = run_and_wait(slot, type == OperationType::kRemove ? "remove" : "add");
    if (!done.is_ok()) {
      unlock();
      return done;
    }
  }
  if (run_.mode == SyncMode::kReplace && !state_.remove_all_sent) {
    unlock();
    return failed_precondition(
        "destination '" + name_ +
        "': the replace sent no member because the source has no valid row, so the list was "
        "left as it was");
  }
  logger_.log(LogLevel::kInfo, "google",
              "job {} destination {}: done with {}: {} batches, {} adds and {} removes sent", run_.job_id,
              name_, state_.list_resource, summary.batches, summary.adds_sent, summary.removes_sent);
  unlock();
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<DestinationAdapter>> make_ads_destination(const DestinationConfig& config,
                                                                 const DestinationEnvironment& environment) {
  ACT_ASSIGN_OR_RETURN(GoogleSettings settings,
                       parse_google_settings(config, GoogleApi::kAds, environment.secret));
  return std::unique_ptr<DestinationAdapter>(
      std::make_unique<AdsDestination>(config.name, std::move(settings), environment.logger));
}

}  // namespace activation::platforms::google
