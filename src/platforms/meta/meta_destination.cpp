// The Meta adapter. Each batch becomes one or more requests to the users endpoints, removes
// first, each in the upload session of its operation. The sessions' state goes into the
// checkpoint so that a resumed run continues them. finish() closes the add and replace sessions
// with last_batch_flag.
#include "platforms/meta/meta_destination.hpp"

#include <chrono>

#include <nlohmann/json.hpp>

#include "platforms/meta/graph_client.hpp"
#include "platforms/meta/meta_payload.hpp"
#include "platforms/meta/meta_plan.hpp"
#include "platforms/meta/meta_session.hpp"
#include "platforms/meta/meta_settings.hpp"

namespace activation::platforms::meta {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

constexpr const char* kInvalidEntryCode = "meta_invalid_entry";
constexpr const char* kRequestRejectedCode = "meta_request_rejected";
constexpr const char* kNoMetaKeyCode = "meta_no_key";
// How many replace sessions of one job begin() looks through for one that is still open.
constexpr int kMaxReplaceLookups = 20;
// Meta may close a session under a request (timed out, or finished); the request then goes in a
// new session. Two closures in a row would mean something else is wrong.
constexpr int kMaxSessionRounds = 3;

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Meta sends ids as strings; the emulator and older versions sometimes as numbers.
std::string id_text(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return value.dump();
  return {};
}

std::int64_t int_field(const Json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end()) return 0;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (it->is_string()) {
    try {
      return std::stoll(it->get<std::string>());
    } catch (const std::exception&) {
      return 0;
    }
  }
  return 0;
}

// Invalid requests that concern the audience or the API version rather than the rows. Every
// later request would fail the same way, so the run stops instead of rejecting every row. The
// codes: 100/33 is an audience that does not exist or is not accessible, 100/1487366 a deleted
// audience, and 100/1713230 a flagged audience whose uploads are blocked. 2635 is a deprecated
// API version, 2650 without subcode a data-source mismatch, and 2650/1870144 a replace of an
// audience of 100 million members or more.
bool is_audience_error(const GraphResponse& response) {
  const ResponseClassification& failure = response.classification;
  if (!response.sent || failure.error_class != PlatformErrorClass::kInvalidRequest || !failure.code)
    return false;
  switch (*failure.code) {
    case 100: return failure.subcode == 33 || failure.subcode == 1487366 || failure.subcode == 1713230;
    case 2635: return true;
    case 2650: return !failure.subcode || *failure.subcode == 1870144;
    default: return false;
  }
}

std::vector<std::string> copy_row(const RowCells& row) {
  std::vector<std::string> out;
  out.reserve(row.size());
  for (const std::string* cell : row) out.push_back(cell == nullptr ? std::string() : *cell);
  return out;
}

class MetaDestination final : public DestinationAdapter {
 public:
  MetaDestination(std::string name, MetaSettings settings, Logger logger)
      : name_(std::move(name)), settings_(std::move(settings)), logger_(std::move(logger)) {}

  Platform profile() const override { return Platform::kMeta; }
  std::size_t max_batch_size() const override { return settings_.max_rows_per_request; }

  Status begin(const DestinationRun& run) override;
  BatchResult send(const Batch& batch) override;
  Status finish(const DestinationRunSummary& summary) override;

 private:
  // The progress of the batch being sent, kept across the engine's retries of that batch so that
  // requests that Meta already accepted are not sent again.
  struct Pending {
    std::int64_t number = 0;
    std::size_t next_request = 0;
    std::vector<OperationResult> results;
    SessionState state;
  };

  // The outcome of one step that the engine may retry.
  struct StepOutcome {
    Status status;
    std::optional<milliseconds> retry_after;
  };

  Status resolve_audience();
  StepOutcome find_replace_session(SessionSlot& slot, const std::string& audience_id, bool with_retries);
  StepOutcome send_request(const PlannedRequest& request, Pending& pending);
  StepOutcome fail_or_reject(const GraphResponse& response, const PlannedRequest& request, Pending& pending);
  void record_rows(const GraphResponse& response, const PlannedRequest& request, Pending& pending,
                   SessionSlot* slot);
  void rotate(SessionSlot& slot, SessionKind kind, std::string_view why);
  Status close_session(SessionKind kind);
  std::string users_path(const std::string& audience_id, bool replace) const {
    return "/" + audience_id + (replace ? "/usersreplace" : "/users");
  }

  const std::string name_;
  const MetaSettings settings_;
  const Logger logger_;
  std::unique_ptr<GraphClient> client_;
  DestinationRun run_;
  std::vector<MetaColumn> columns_;
  SessionState state_;
  Pending pending_;
  // A first replace batch failed without a clear response, so Meta may have started the replace
  // with it.
  bool replace_start_uncertain_ = false;
};

Status MetaDestination::begin(const DestinationRun& run) {
  run_ = run;
  pending_ = Pending{};
  if (!client_) {
    ACT_ASSIGN_OR_RETURN(client_, GraphClient::create(settings_, name_, logger_));
  }
  auto state = SessionState::from_json(run.session_state);
  if (!state.is_ok())
    return Status(state.status().code(), "destination '" + name_ + "': " + state.status().message());
  state_ = std::move(*state);

  columns_ = schema_columns(run.field_slots);
  if (columns_.empty()) {
    return invalid_argument(
        "destination '" + name_ +
        "': the audience maps no field that Meta's multi-key schema takes; map at least an "
        "email, phone, MAID, external id, or first and last name");
  }
  std::vector<std::string> keys = column_keys(columns_);
  if (!state_.schema.empty() && state_.schema != keys) {
    // Meta keeps the first batch's schema for a whole session, so new columns need new sessions.
    // A replace cannot move to another session without starting over.
    if (state_.slot(SessionKind::kReplace).started() && !state_.replace_applied) {
      return failed_precondition("destination '" + name_ +
                                 "': the audience's columns changed during a replace; run the replace again");
    }
    rotate(state_.slot(SessionKind::kAdd), SessionKind::kAdd, "the audience's columns changed");
    rotate(state_.slot(SessionKind::kRemove), SessionKind::kRemove, "the audience's columns changed");
  }
  state_.schema = std::move(keys);

  ACT_RETURN_IF_ERROR(resolve_audience());
  if (run.mode == SyncMode::kReplace && !state_.replace_applied &&
      !state_.slot(SessionKind::kReplace).started()) {
    // A run restarted after a crash may have sent the replace's first batch without committing
    // it. Sending batch_seq 1 again would restart the replace, so look for that session first.
    StepOutcome found = find_replace_session(state_.slot(SessionKind::kReplace), state_.audience_id, true);
    ACT_RETURN_IF_ERROR(found.status);
  }
  std::string schema_text;
  for (const auto& key : state_.schema) schema_text += (schema_text.empty() ? "" : ",") + key;
  logger_.log(LogLevel::kInfo, "meta", "job {} destination {}: {} to audience {} of {} with schema [{}]{}",
              run.job_id, name_, sync_mode_name(run.mode), state_.audience_id, settings_.ad_account_id,
              schema_text, run.resumed ? " (resumed)" : "");
  return Status::ok();
}

Status MetaDestination::resolve_audience() {
  if (!state_.audience_id.empty()) return Status::ok();

  if (!settings_.audience_id.empty()) {
    const std::string& id = settings_.audience_id;
    GraphResponse response = client_->call_with_retries(HttpMethod::kGet, "/" + id, "",
                                                        {{"fields", "id,name,subtype,operation_status"}});
    if (response.is_error(100)) {
      return not_found("destination '" + name_ + "': settings.audience_id: Meta has no audience " + id +
                       " that this access token can read: " + response.classification.summary());
    }
    if (!response.ok()) return client_->failure_status(response, "reading audience " + id);
    std::string subtype = response.body.value("subtype", std::string("CUSTOM"));
    if (subtype != "CUSTOM") {
      return invalid_argument("destination '" + name_ + "': settings.audience_id: audience " + id + " is a " +
                              subtype + " audience; expected a customer-file (CUSTOM) audience");
    }
    state_.audience_id = id;
    return Status::ok();
  }

  Json request = {{"name", settings_.audience_name},
                  {"subtype", "CUSTOM"},
                  {"customer_file_source", settings_.customer_file_source},
                  {"enable_fetch_or_create", true}};
  if (!settings_.audience_description.empty()) request["description"] = settings_.audience_description;
  GraphResponse response = client_->call_with_retries(
      HttpMethod::kPost, "/" + settings_.ad_account_id + "/customaudiences", request.dump());
  std::string what =
      "finding or creating audience '" + settings_.audience_name + "' in " + settings_.ad_account_id;
  if (!response.ok()) return client_->failure_status(response, what);
  std::string id = response.body.is_object() ? id_text(response.body.value("id", Json())) : std::string();
  if (id.empty())
    return unavailable("destination '" + name_ + "': " + what + ": Meta's response contains no audience id");
  state_.audience_id = id;
  logger_.log(LogLevel::kInfo, "meta", "destination {}: audience '{}' is {}", name_, settings_.audience_name,
              id);
  return Status::ok();
}

MetaDestination::StepOutcome MetaDestination::find_replace_session(SessionSlot& slot,
                                                                   const std::string& audience_id,
                                                                   bool with_retries) {
  for (int lookup = 0; lookup < kMaxReplaceLookups; ++lookup) {
    std::int64_t id =
        derive_session_id(run_.job_id, name_, audience_id, SessionKind::kReplace, slot.generation);
    std::string path = "/" + audience_id + "/sessions";
    QueryParams query = {{"session_id", std::to_string(id)}};
    GraphResponse response = with_retries ? client_->call_with_retries(HttpMethod::kGet, path, "", query)
                                          : client_->call(HttpMethod::kGet, path, "", query);
    if (!response.ok()) {
      return {client_->failure_status(response, "looking up replace session " + std::to_string(id)),
              response.retry_after};
    }

    const Json* found = nullptr;
    auto data = response.body.is_object() ? response.body.find("data") : response.body.end();
    if (response.body.is_object() && data != response.body.end() && data->is_array()) {
      for (const Json& entry : *data) {
        if (entry.is_object() && int_field(entry, "session_id") == id) found = &entry;
      }
    }
    if (found == nullptr) return {};  // Never opened: batch_seq 1 is safe to send.

    // Meta reports end_time 0 while a session takes batches.
    if (int_field(*found, "end_time") == 0) {
      slot.session_id = id;
      slot.batch_seq = std::max<std::int64_t>(slot.batch_seq, 1);
      slot.started_unix = int_field(*found, "start_time");
      logger_.log(
          LogLevel::kInfo, "meta",
          "job {} destination {}: replace session {} is open already; continuing it after batch_seq 1",
          run_.job_id, name_, id);
      return {};
    }
    // A finished session of an earlier run of this job: the replace starts in a new one.
    ++slot.generation;
  }
  return {failed_precondition("destination '" + name_ + "': " + std::to_string(kMaxReplaceLookups) +
                              " replace sessions of job " + std::to_string(run_.job_id) +
                              " exist already; queue the replace as a new job"),
          std::nullopt};
}

BatchResult MetaDestination::send(const Batch& batch) {
  BatchResult result;
  if (pending_.number != batch.number || pending_.results.size() != batch.operations.size()) {
    pending_ = Pending{};
    pending_.number = batch.number;
    pending_.state = state_;
    pending_.results.assign(batch.operations.size(), OperationResult{});
  }

  // The plan points into `batch`, so it is made again on every call; it comes out the same.
  BatchPlan plan = plan_batch(batch, columns_, settings_.max_rows_per_request);
  for (std::size_t index : plan.unsendable) {
    pending_.results[index] =
        OperationResult{RowOutcome::kRejected,
                        Reason{kNoMetaKeyCode, "the member has no identifier that Meta's schema takes"}};
  }
  for (; pending_.next_request < plan.requests.size(); ++pending_.next_request) {
    StepOutcome outcome = send_request(plan.requests[pending_.next_request], pending_);
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

MetaDestination::StepOutcome MetaDestination::send_request(const PlannedRequest& request, Pending& pending) {
  const bool remove = request.type == OperationType::kRemove;
  const HttpMethod method = remove ? HttpMethod::kDelete : HttpMethod::kPost;
  const std::string& audience_id = pending.state.audience_id;

  if (!request.in_session) {
    GraphResponse response = client_->call(method, users_path(audience_id, false),
                                           render_upload_body(request.columns, request.rows, std::nullopt));
    if (!response.ok()) return fail_or_reject(response, request, pending);
    record_rows(response, request, pending, nullptr);
    return {};
  }

  SessionKind kind = remove ? SessionKind::kRemove
                            : (run_.mode == SyncMode::kReplace ? SessionKind::kReplace : SessionKind::kAdd);
  for (int round = 0; round < kMaxSessionRounds; ++round) {
    if (kind == SessionKind::kReplace && pending.state.replace_applied) kind = SessionKind::kAdd;
    SessionSlot& slot = pending.state.slot(kind);
    if (kind != SessionKind::kReplace && slot.started() &&
        unix_now() - slot.started_unix >= settings_.session_max_age.count()) {
      rotate(slot, kind, "it is older than settings.session_max_age_seconds");
    }
    if (kind == SessionKind::kReplace && !slot.started() && replace_start_uncertain_) {
      StepOutcome found = find_replace_session(slot, audience_id, false);
      if (!found.status.is_ok()) return found;
      replace_start_uncertain_ = false;
    }

    SessionParams params;
    params.session_id = slot.started()
                            ? slot.session_id
                            : derive_session_id(run_.job_id, name_, audience_id, kind, slot.generation);
    params.batch_seq = slot.batch_seq + 1;
    bool starts_replace = kind == SessionKind::kReplace && params.batch_seq == 1;
    GraphResponse response =
        client_->call(method, users_path(audience_id, kind == SessionKind::kReplace),
                      render_upload_body(columns_, request.rows, params), {}, starts_replace);
    if (response.ok()) {
      if (!slot.started()) {
        slot.session_id = params.session_id;
        slot.started_unix = unix_now();
      }
      slot.batch_seq = params.batch_seq;
      record_rows(response, request, pending, &slot);
      return {};
    }

    PlatformErrorClass failure = response.error_class();
    if (starts_replace &&
        (failure == PlatformErrorClass::kNetwork || failure == PlatformErrorClass::kPlatform5xx)) {
      replace_start_uncertain_ = true;
    }
    if (response.is_error(2650, 1870158) || response.is_error(2650, 1870159)) {
      if (kind == SessionKind::kReplace) {
        // Meta applied the replace with the rows it had received; the rest go as adds.
        pending.state.replace_applied = true;
        logger_.log(
            LogLevel::kWarn, "meta",
            "job {} destination {}: Meta ended replace session {} ({}); the remaining rows go as adds",
            run_.job_id, name_, params.session_id, response.classification.summary());
      } else {
        rotate(slot, kind, "Meta closed it: " + response.classification.summary());
      }
      continue;
    }
    if (kind == SessionKind::kReplace && response.is_error(2650, 1870147)) {
      return {failed_precondition("destination '" + name_ +
                                  "': Meta has no record of the first batch of replace " + "session " +
                                  std::to_string(params.session_id) +
                                  ", so the replace cannot go on; run the replace again as a new job: " +
                                  response.classification.summary()),
              std::nullopt};
    }
    return fail_or_reject(response, request, pending);
  }
  return {unavailable("destination '" + name_ + "': Meta closed " + std::to_string(kMaxSessionRounds) +
                      " upload sessions in a row under one request"),
          std::nullopt};
}

MetaDestination::StepOutcome MetaDestination::fail_or_reject(const GraphResponse& response,
                                                             const PlannedRequest& request,
                                                             Pending& pending) {
  std::string what = "sending batch " + std::to_string(pending.number) + " (" +
                     std::string(operation_type_name(request.type)) + "s of " +
                     std::to_string(request.rows.size()) + " rows)";
  if (!response.sent || response.error_class() != PlatformErrorClass::kInvalidRequest) {
    return {client_->failure_status(response, what), response.retry_after};
  }
  if (is_audience_error(response)) {
    return {Status(StatusCode::kFailedPrecondition, client_->failure_status(response, what).message()),
            std::nullopt};
  }

  // One bad request fails its own rows, with Meta's message, and the run goes on.
  Reason reason{kRequestRejectedCode, "Meta rejected the request: " + response.classification.summary()};
  for (std::size_t operation : request.row_operation) {
    pending.results[operation] = OperationResult{RowOutcome::kRejected, reason};
  }
  logger_.log(LogLevel::kWarn, "meta", "job {} destination {}: {}: {}", run_.job_id, name_, what,
              reason.message);
  return {};
}

void MetaDestination::record_rows(const GraphResponse& response, const PlannedRequest& request,
                                  Pending& pending, SessionSlot* slot) {
  InvalidEntries entries = read_invalid_entries(response.body);
  bool closing_row_set = false;
  std::size_t row = 0;
  while (row < request.rows.size()) {
    // The rows of one operation are next to each other. It is rejected only when Meta found
    // every one of its rows invalid; otherwise its valid rows are in the audience.
    std::size_t operation = request.row_operation[row];
    std::size_t rows = 0;
    std::size_t invalid = 0;
    std::string reason;
    for (; row < request.rows.size() && request.row_operation[row] == operation; ++row, ++rows) {
      std::optional<std::string> why = invalid_row_reason(entries, request.columns, request.rows[row]);
      if (why) {
        ++invalid;
        if (reason.empty()) reason = std::move(*why);
      } else if (slot != nullptr && !closing_row_set) {
        slot->closing_row = copy_row(request.rows[row]);
        closing_row_set = true;
      }
    }
    if (invalid == rows) {
      pending.results[operation] = OperationResult{
          RowOutcome::kRejected, Reason{kInvalidEntryCode, "Meta counted an invalid entry: " + reason}};
    } else {
      pending.results[operation] = OperationResult{};
    }
  }
  if (slot != nullptr && slot->closing_row.empty() && !request.rows.empty()) {
    slot->closing_row = copy_row(request.rows.front());
  }
}

void MetaDestination::rotate(SessionSlot& slot, SessionKind kind, std::string_view why) {
  if (slot.started()) {
    logger_.log(LogLevel::kInfo, "meta",
                "job {} destination {}: starting a new {} session after session {}: {}", run_.job_id, name_,
                session_kind_name(kind), slot.session_id, why);
  }
  ++slot.generation;
  slot.session_id = 0;
  slot.batch_seq = 0;
  slot.started_unix = 0;
  slot.closing_row.clear();
}

Status MetaDestination::finish(const DestinationRunSummary& summary) {
  if (!client_) return failed_precondition("destination '" + name_ + "': finish() was called before begin()");
  if (run_.mode == SyncMode::kReplace && !state_.replace_applied &&
      !state_.slot(SessionKind::kReplace).started()) {
    return failed_precondition(
        "destination '" + name_ +
        "': the replace sent no member because the source has no valid row. Meta cannot replace an "
        "audience with an empty list, so the audience was left as it was");
  }
  // A closing request must carry a row, so it sends one row of the session again. Set semantics
  // make that harmless for an add or a replace. A repeated remove would be harmless too, but Meta
  // counts it as a removal that matched no one, so remove sessions are left to close by
  // themselves 90 minutes after their first batch.
  int closed = 0;
  for (SessionKind kind : {SessionKind::kAdd, SessionKind::kReplace}) {
    if (kind == SessionKind::kReplace && state_.replace_applied) continue;
    if (!state_.slot(kind).started()) continue;
    ACT_RETURN_IF_ERROR(close_session(kind));
    ++closed;
  }
  logger_.log(
      LogLevel::kInfo, "meta",
      "job {} destination {}: done with audience {}: {} batches, {} adds and {} removes sent, {} session(s) "
      "closed",
      run_.job_id, name_, state_.audience_id, summary.batches, summary.adds_sent, summary.removes_sent,
      closed);
  return Status::ok();
}

Status MetaDestination::close_session(SessionKind kind) {
  SessionSlot& slot = state_.slot(kind);
  if (slot.closing_row.size() != columns_.size()) {
    // Without a row there is no closing request. Meta closes an add session by itself 90 minutes
    // after its first batch.
    logger_.log(LogLevel::kWarn, "meta", "job {} destination {}: {} session {} has no row to close it with",
                run_.job_id, name_, session_kind_name(kind), slot.session_id);
    return kind == SessionKind::kReplace
               ? failed_precondition("destination '" + name_ + "': replace session " +
                                     std::to_string(slot.session_id) + " cannot be closed without a row")
               : Status::ok();
  }
  RowCells cells;
  for (const std::string& value : slot.closing_row) cells.push_back(value.empty() ? nullptr : &value);
  SessionParams params{slot.session_id, slot.batch_seq + 1, true};
  HttpMethod method = kind == SessionKind::kRemove ? HttpMethod::kDelete : HttpMethod::kPost;
  GraphResponse response =
      client_->call_with_retries(method, users_path(state_.audience_id, kind == SessionKind::kReplace),
                                 render_upload_body(columns_, {cells}, params));
  // 1870159: a finish() repeated after a crash finds the session closed already.
  if (response.ok() || response.is_error(2650, 1870159)) return Status::ok();
  if (response.is_error(2650, 1870158)) {
    logger_.log(LogLevel::kWarn, "meta",
                "job {} destination {}: {} session {} had timed out; Meta applied what it received",
                run_.job_id, name_, session_kind_name(kind), slot.session_id);
    return Status::ok();
  }
  return client_->failure_status(response, "closing " + std::string(session_kind_name(kind)) + " session " +
                                               std::to_string(slot.session_id));
}

}  // namespace

Result<std::unique_ptr<DestinationAdapter>> make_meta_destination(const DestinationConfig& config,
                                                                  const DestinationEnvironment& environment) {
  ACT_ASSIGN_OR_RETURN(MetaSettings settings, parse_meta_settings(config, environment.secret));
  return std::unique_ptr<DestinationAdapter>(
      std::make_unique<MetaDestination>(config.name, std::move(settings), environment.logger));
}

}  // namespace activation::platforms::meta
