// The "google" destination: a Customer Match list through the Data Manager API. Each batch
// becomes `audienceMembers:remove` and `audienceMembers:ingest` requests of at most 10,000
// members. Google validates a request at once and processes it later, so the request ids go into
// the checkpoint's session state and are polled with `requestStatus:retrieve` (after each batch
// or at the end of the run, by settings.status_polling).
#include "platforms/google/google_destinations.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "platforms/google/google_client.hpp"
#include "platforms/google/google_payload.hpp"
#include "platforms/google/google_settings.hpp"

namespace activation::platforms::google {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

constexpr const char* kNoKeyCode = "google_no_key";
constexpr const char* kRejectedCode = "google_rejected";
constexpr const char* kFailedCode = "google_processing_failed";
// A request whose members Google rejected goes again without them; a third rejection in a row
// rejects the rest with the last message.
constexpr int kMaxRejectionRounds = 3;

// One request that Google accepted and has not reported as processed.
struct PendingRequest {
  std::string id;
  std::string operation;  // "ingest" or "remove".
  std::int64_t members = 0;
};

struct DataManagerState {
  std::deque<PendingRequest> pending;
  std::int64_t processed = 0;
  std::int64_t partial = 0;
  std::int64_t failed = 0;            // Failed after their rows were counted as accepted.
  std::int64_t rejected = 0;          // Failed, and their rows were rejected.
  std::vector<std::string> failures;  // The first few failure descriptions, for finish().

  std::string to_json() const {
    Json requests = Json::array();
    for (const auto& request : pending) {
      requests.push_back(
          {{"id", request.id}, {"operation", request.operation}, {"members", request.members}});
    }
    return Json{{"pending", requests}, {"processed", processed}, {"partial", partial},
                {"failed", failed},    {"rejected", rejected},   {"failures", failures}}
        .dump();
  }

  static Result<DataManagerState> from_json(std::string_view text) {
    DataManagerState state;
    if (text.empty() || text == "{}") return state;
    Json json = Json::parse(text, nullptr, false);
    if (!json.is_object() || !json.contains("pending") || !json["pending"].is_array()) {
      return Status(StatusCode::kDataLoss, "the checkpoint's session state is not a Data Manager state");
    }
    for (const Json& request : json["pending"]) {
      state.pending.push_back(PendingRequest{request.value("id", std::string()),
                                             request.value("operation", std::string("ingest")),
                                             request.value("members", std::int64_t{0})});
    }
    state.processed = json.value("processed", std::int64_t{0});
    state.partial = json.value("partial", std::int64_t{0});
    state.failed = json.value("failed", std::int64_t{0});
    state.rejected = json.value("rejected", std::int64_t{0});
    if (json.contains("failures") && json["failures"].is_array()) {
      for (const Json& failure : json["failures"]) {
        if (failure.is_string()) state.failures.push_back(failure.get<std::string>());
      }
    }
    return state;
  }
};

// The processing outcome of one request, read from requestStatus:retrieve.
struct RequestOutcome {
  std::string status;  // "PROCESSING", "SUCCESS", "PARTIAL_SUCCESS" or "FAILURE".
  std::string detail;  // The error counts by reason, for logs and rejected rows.
};

RequestOutcome read_request_status(const Json& body) {
  RequestOutcome outcome{"PROCESSING", ""};
  auto per_destination = body.find("requestStatusPerDestination");
  if (per_destination == body.end() || !per_destination->is_array() || per_destination->empty())
    return outcome;
  // One destination per request: the adapter sends one.
  const Json& status = per_destination->front();
  outcome.status = status.value("requestStatus", std::string("PROCESSING"));
  auto error_info = status.find("errorInfo");
  if (error_info != status.end() && error_info->is_object() && error_info->contains("errorCounts")) {
    for (const Json& count : (*error_info)["errorCounts"]) {
      if (!outcome.detail.empty()) outcome.detail += ", ";
      std::string records = count.contains("recordCount") ? count["recordCount"].dump() : "?";
      records.erase(std::remove(records.begin(), records.end(), '"'), records.end());
      outcome.detail += count.value("reason", std::string("UNKNOWN")) + " (" + records + " records)";
    }
  }
  return outcome;
}

bool is_done(const std::string& status) {
  return status == "SUCCESS" || status == "PARTIAL_SUCCESS" || status == "FAILURE";
}

class DataManagerDestination final : public DestinationAdapter {
 public:
  DataManagerDestination(std::string name, GoogleSettings settings, Logger logger)
      : name_(std::move(name)), settings_(std::move(settings)), logger_(std::move(logger)) {}

  Platform profile() const override { return Platform::kGoogle; }
  std::size_t max_batch_size() const override { return settings_.max_members_per_request; }

  Status begin(const DestinationRun& run) override;
  BatchResult send(const Batch& batch) override;
  Status finish(const DestinationRunSummary& summary) override;

 private:
  // The progress of the batch being sent, kept across the engine's retries of that batch so that
  // requests Google accepted already are not sent again.
  struct Pending {
    std::int64_t number = 0;
    std::vector<bool> done;  // Per operation: its outcome is final.
    std::vector<OperationResult> results;
    DataManagerState state;
    std::vector<std::pair<std::string, std::vector<std::size_t>>> requests;  // Sent: id, operations.
  };

  struct StepOutcome {
    Status status;
    std::optional<milliseconds> retry_after;
  };

  StepOutcome send_request(OperationType type, std::vector<std::size_t> operations, const Batch& batch,
                           Pending& pending);
  std::string request_body(OperationType type, const std::vector<Json>& members) const;
  // Polls the requests until each is processed or `deadline` passes; returns their outcomes by id.
  Result<std::map<std::string, RequestOutcome>> poll(const std::vector<std::string>& ids);
  void record_outcome(DataManagerState& state, const PendingRequest& request, const RequestOutcome& outcome);

  const std::string name_;
  const GoogleSettings settings_;
  const Logger logger_;
  std::unique_ptr<GoogleClient> client_;
  DestinationRun run_;
  DataManagerState state_;
  Pending pending_;
};

Status DataManagerDestination::begin(const DestinationRun& run) {
  run_ = run;
  pending_ = Pending{};
  if (!client_) {
    ACT_ASSIGN_OR_RETURN(client_, GoogleClient::create(settings_, name_, logger_));
  }
  auto state = DataManagerState::from_json(run.session_state);
  if (!state.is_ok())
    return Status(state.status().code(), "destination '" + name_ + "': " + state.status().message());
  state_ = std::move(*state);
  logger_.log(LogLevel::kInfo, "google", "job {} destination {}: {} to user list {} of customer {} ({}){}",
              run.job_id, name_, sync_mode_name(run.mode), settings_.user_list_id, settings_.customer_id,
              upload_key_type_name(settings_.upload_key_type), run.resumed ? " (resumed)" : "");
  if (run.mode == SyncMode::kReplace) {
    return invalid_argument(
        "destination '" + name_ +
        "': the Data Manager API has no full replace of a list; use the mirror mode, which "
        "removes the members who left the source");
  }
  return Status::ok();
}

std::string DataManagerDestination::request_body(OperationType type, const std::vector<Json>& members) const {
  Json destination = {
      {"operatingAccount", {{"accountType", settings_.account_type}, {"accountId", settings_.customer_id}}},
      {"productDestinationId", settings_.user_list_id}};
  if (!settings_.login_customer_id.empty()) {
    destination["loginAccount"] = {{"accountType", settings_.account_type},
                                   {"accountId", settings_.login_customer_id}};
  }
  Json body = {
      {"destinations", Json::array({destination})}, {"audienceMembers", members}, {"encoding", "HEX"}};
  Json consent = data_manager_consent(settings_.consent);
  if (!consent.is_null()) body["consent"] = consent;
  if (type == OperationType::kAdd && settings_.accept_terms_of_service) {
    body["termsOfService"] = {{"customerMatchTermsOfServiceStatus", "ACCEPTED"}};
  }
  return body.dump();
}

BatchResult DataManagerDestination::send(const Batch& batch) {
  BatchResult result;
  if (pending_.number != batch.number || pending_.results.size() != batch.operations.size()) {
    pending_ = Pending{};
    pending_.number = batch.number;
    pending_.state = state_;
    pending_.results.assign(batch.operations.size(), OperationResult{});
    pending_.done.assign(batch.operations.size(), false);
  }

  // Removes first, as the engine orders them, each run of one type in requests of at most
  // max_members_per_request members.
  for (OperationType type : {OperationType::kRemove, OperationType::kAdd}) {
    std::vector<std::size_t> chunk;
    auto flush = [&]() -> StepOutcome {
      if (chunk.empty()) return {};
      StepOutcome outcome = send_request(type, std::move(chunk), batch, pending_);
      chunk.clear();
      return outcome;
    };
    for (std::size_t i = 0; i < batch.operations.size(); ++i) {
      if (pending_.done[i] || batch.operations[i].type != type) continue;
      chunk.push_back(i);
      if (chunk.size() == settings_.max_members_per_request) {
        StepOutcome outcome = flush();
        if (!outcome.status.is_ok()) {
          result.transport = outcome.status;
          result.retry_after = outcome.retry_after;
          return result;
        }
      }
    }
    StepOutcome outcome = flush();
    if (!outcome.status.is_ok()) {
      result.transport = outcome.status;
      result.retry_after = outcome.retry_after;
      return result;
    }
  }

  // Polling after each batch: a request that Google failed to process rejects its members.
  if (settings_.status_polling == StatusPolling::kEachBatch && !pending_.requests.empty()) {
    std::vector<std::string> ids;
    for (const auto& [id, operations] : pending_.requests) ids.push_back(id);
    auto outcomes = poll(ids);
    if (!outcomes.is_ok()) {
      result.transport = outcomes.status();
      return result;
    }
    for (const auto& [id, operations] : pending_.requests) {
      const RequestOutcome& outcome = (*outcomes)[id];
      if (outcome.status == "FAILURE") {
        Reason reason{kFailedCode,
                      "Google failed to process request " + id + ": " +
                          (outcome.detail.empty() ? std::string("no reason given") : outcome.detail)};
        for (std::size_t operation : operations)
          pending_.results[operation] = OperationResult{RowOutcome::kRejected, reason};
      }
      auto found = std::find_if(pending_.state.pending.begin(), pending_.state.pending.end(),
                                [&](const PendingRequest& request) { return request.id == id; });
      if (found != pending_.state.pending.end()) {
        // The failure is on the rows already, so it does not fail the run in finish().
        RequestOutcome logged = outcome;
        if (logged.status == "FAILURE") logged.status = "FAILURE_REJECTED";
        record_outcome(pending_.state, *found, logged);
        pending_.state.pending.erase(found);
      }
    }
  }

  // Too many unprocessed requests would make the checkpoint grow with the audience: the oldest
  // are polled until few enough remain.
  while (pending_.state.pending.size() > settings_.max_pending_requests) {
    std::vector<std::string> oldest;
    std::size_t excess = pending_.state.pending.size() - settings_.max_pending_requests;
    for (std::size_t i = 0; i < excess; ++i) oldest.push_back(pending_.state.pending[i].id);
    auto outcomes = poll(oldest);
    if (!outcomes.is_ok()) {
      result.transport = outcomes.status();
      return result;
    }
    for (std::size_t i = 0; i < excess; ++i) {
      record_outcome(pending_.state, pending_.state.pending.front(),
                     (*outcomes)[pending_.state.pending.front().id]);
      pending_.state.pending.pop_front();
    }
  }

  state_ = std::move(pending_.state);
  result.results = std::move(pending_.results);
  result.session_state = state_.to_json();
  pending_ = Pending{};
  return result;
}

DataManagerDestination::StepOutcome DataManagerDestination::send_request(OperationType type,
                                                                         std::vector<std::size_t> operations,
                                                                         const Batch& batch,
                                                                         Pending& pending) {
  const bool remove = type == OperationType::kRemove;
  const std::string path = remove ? "/audienceMembers:remove" : "/audienceMembers:ingest";

  for (int round = 0; round < kMaxRejectionRounds && !operations.empty(); ++round) {
    // Members without a key of the list's type never go out.
    std::vector<Json> members;
    std::vector<std::size_t> sent;
    for (std::size_t operation : operations) {
      std::optional<Json> member =
          data_manager_member(batch.operations[operation], settings_.upload_key_type);
      if (!member) {
        pending.results[operation] = OperationResult{
            RowOutcome::kRejected,
            Reason{kNoKeyCode, fmt::format("the member has no identifier that a {} list takes",
                                           upload_key_type_name(settings_.upload_key_type))}};
        pending.done[operation] = true;
        continue;
      }
      members.push_back(std::move(*member));
      sent.push_back(operation);
    }
    if (sent.empty()) return {};

    GoogleResponse response = client_->call(HttpMethod::kPost, path, request_body(type, members));
    std::string what = fmt::format("sending batch {} ({} of {} members)", pending.number,
                                   remove ? "removes" : "adds", sent.size());
    if (response.ok()) {
      std::string id = response.body.value("requestId", std::string());
      for (std::size_t operation : sent) {
        pending.results[operation] = OperationResult{};
        pending.done[operation] = true;
      }
      if (!id.empty() && settings_.status_polling != StatusPolling::kOff) {
        pending.state.pending.push_back(
            PendingRequest{id, remove ? "remove" : "ingest", static_cast<std::int64_t>(sent.size())});
        pending.requests.emplace_back(id, sent);
      }
      return {};
    }
    if (response.error_class() != PlatformErrorClass::kInvalidRequest) {
      return {client_->failure_status(response, what), response.retry_after};
    }

    // Google rejects the whole request for a bad member and names it in a field violation. The
    // named members are rejected with Google's reason, and the others go again.
    std::vector<GoogleError> errors = response.body.is_object() && response.body.contains("error")
                                          ? read_google_errors(response.body["error"])
                                          : std::vector<GoogleError>{};
    std::map<std::size_t, std::string> by_member;
    bool request_level = errors.empty();
    for (const GoogleError& error : errors) {
      if (!error.index || *error.index >= sent.size()) {
        request_level = true;
        continue;
      }
      std::string& reason = by_member[*error.index];
      if (reason.empty()) reason = (error.code.empty() ? "" : error.code + ": ") + error.message;
    }
    if (response.classification.http_status == 404 ||
        std::any_of(errors.begin(), errors.end(), [](const GoogleError& error) {
          return error.message.find("field destinations") != std::string::npos;
        })) {
      // The list or account is wrong: every later request would fail the same way.
      return {failed_precondition(client_->failure_status(response, what).message()), std::nullopt};
    }
    if (request_level || by_member.empty()) {
      Reason reason{kRejectedCode, "Google rejected the request: " + response.classification.summary()};
      for (std::size_t operation : sent) {
        pending.results[operation] = OperationResult{RowOutcome::kRejected, reason};
        pending.done[operation] = true;
      }
      logger_.log(LogLevel::kWarn, "google", "job {} destination {}: {}: {}", run_.job_id, name_, what,
                  reason.message);
      return {};
    }
    std::vector<std::size_t> again;
    for (std::size_t i = 0; i < sent.size(); ++i) {
      auto found = by_member.find(i);
      if (found == by_member.end()) {
        again.push_back(sent[i]);
        continue;
      }
      pending.results[sent[i]] = OperationResult{
          RowOutcome::kRejected, Reason{kRejectedCode, "Google rejected the member: " + found->second}};
      pending.done[sent[i]] = true;
    }
    logger_.log(LogLevel::kInfo, "google",
                "job {} destination {}: {}: Google rejected {} member(s); sending {} again", run_.job_id,
                name_, what, by_member.size(), again.size());
    operations = std::move(again);
  }
  if (!operations.empty()) {
    Reason reason{kRejectedCode, "Google rejected the request " + std::to_string(kMaxRejectionRounds) +
                                     " times in a row, each time for other members"};
    for (std::size_t operation : operations) {
      pending.results[operation] = OperationResult{RowOutcome::kRejected, reason};
      pending.done[operation] = true;
    }
  }
  return {};
}

Result<std::map<std::string, RequestOutcome>> DataManagerDestination::poll(
    const std::vector<std::string>& ids) {
  std::map<std::string, RequestOutcome> outcomes;
  auto deadline = std::chrono::steady_clock::now() + settings_.poll_timeout;
  milliseconds interval = settings_.poll_interval;
  while (true) {
    std::size_t open = 0;
    for (const std::string& id : ids) {
      if (outcomes.count(id) != 0 && is_done(outcomes[id].status)) continue;
      GoogleResponse response =
          client_->call_with_retries(HttpMethod::kGet, "/requestStatus:retrieve?requestId=" + id, "");
      if (!response.ok()) return client_->failure_status(response, "reading the status of request " + id);
      outcomes[id] = read_request_status(response.body);
      if (!is_done(outcomes[id].status)) ++open;
    }
    if (open == 0) return outcomes;
    if (std::chrono::steady_clock::now() + interval > deadline) {
      return Status(
          StatusCode::kDeadlineExceeded,
          fmt::format("destination '{}': {} request(s) were still being processed by Google after {} s of "
                      "polling (settings.poll_timeout_seconds); the job can be retried to poll again",
                      name_, open,
                      std::chrono::duration_cast<std::chrono::seconds>(settings_.poll_timeout).count()));
    }
    logger_.log(LogLevel::kDebug, "google",
                "job {} destination {}: {} request(s) still processing; next poll in {} ms", run_.job_id,
                name_, open, interval.count());
    std::this_thread::sleep_for(interval);
    interval = std::min(interval * 2, settings_.poll_max_interval);
  }
}

void DataManagerDestination::record_outcome(DataManagerState& state, const PendingRequest& request,
                                            const RequestOutcome& outcome) {
  ++state.processed;
  if (outcome.status == "SUCCESS") return;
  std::string status = outcome.status == "FAILURE_REJECTED" ? "FAILURE" : outcome.status;
  std::string description =
      fmt::format("request {} ({} of {} members): {}{}", request.id, request.operation, request.members,
                  status, outcome.detail.empty() ? "" : ": " + outcome.detail);
  if (outcome.status == "PARTIAL_SUCCESS") ++state.partial;
  if (outcome.status == "FAILURE_REJECTED") ++state.rejected;
  if (outcome.status != "FAILURE") {
    logger_.log(LogLevel::kWarn, "google", "job {} destination {}: {}", run_.job_id, name_, description);
    return;
  }
  ++state.failed;
  if (state.failures.size() < 5) state.failures.push_back(description);
  logger_.log(LogLevel::kError, "google", "job {} destination {}: {}", run_.job_id, name_, description);
}

Status DataManagerDestination::finish(const DestinationRunSummary& summary) {
  if (!client_) return failed_precondition("destination '" + name_ + "': finish() was called before begin()");
  if (!state_.pending.empty()) {
    std::vector<std::string> ids;
    for (const auto& request : state_.pending) ids.push_back(request.id);
    ACT_ASSIGN_OR_RETURN(auto outcomes, poll(ids));
    for (const auto& request : state_.pending) record_outcome(state_, request, outcomes[request.id]);
    state_.pending.clear();
  }
  logger_.log(
      LogLevel::kInfo, "google",
      "job {} destination {}: done with user list {}: {} batches, {} adds and {} removes sent, {} request(s) "
      "processed, {} partly, {} not (rows rejected) and {} not after acceptance",
      run_.job_id, name_, settings_.user_list_id, summary.batches, summary.adds_sent, summary.removes_sent,
      state_.processed, state_.partial, state_.rejected, state_.failed);
  if (state_.failed > 0) {
    std::string list;
    for (const auto& failure : state_.failures) list += (list.empty() ? "" : "; ") + failure;
    return failed_precondition(
        fmt::format("destination '{}': Google failed to process {} request(s) after accepting them, so their "
                    "members, counted "
                    "as accepted, are not in user list {}: {}. Fix the cause and run the job again",
                    name_, state_.failed, settings_.user_list_id, list));
  }
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<DestinationAdapter>> make_data_manager_destination(
    const DestinationConfig& config, const DestinationEnvironment& environment) {
  ACT_ASSIGN_OR_RETURN(GoogleSettings settings,
                       parse_google_settings(config, GoogleApi::kDataManager, environment.secret));
  return std::unique_ptr<DestinationAdapter>(
      std::make_unique<DataManagerDestination>(config.name, std::move(settings), environment.logger));
}

}  // namespace activation::platforms::google
