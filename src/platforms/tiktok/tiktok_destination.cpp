// The TikTok adapter. Each batch becomes mapping requests of at most max_members_per_request
// members, removes ("delete") before adds. TikTok returns no per-row status, so a request refused
// as invalid is split in halves until the rows that cause it are found and rejected alone.
#include "platforms/tiktok/tiktok_destination.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "platforms/common/isolation.hpp"
#include "platforms/common/platform_client.hpp"

namespace activation::platforms::tiktok {
namespace {

using Json = nlohmann::json;

constexpr const char* kRejectedCode = "tiktok_rejected";
constexpr const char* kNoKeyCode = "tiktok_no_key";
// Requests one batch may spend on isolating bad rows, beyond its first ones.
constexpr std::size_t kMaxIsolationRequests = 64;
constexpr int kMaxAudiencePages = 50;

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string_view schema_of(Field field, const std::string& maid_schema) {
  switch (field) {
    case Field::kEmail: return "EMAIL_SHA256";
    case Field::kPhone: return "PHONE_SHA256";
    case Field::kMaid: return maid_schema;
    default: return {};
  }
}

bool code_in(std::int64_t code, std::initializer_list<std::int64_t> codes) {
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

class TikTokDestination final : public DestinationAdapter {
 public:
  TikTokDestination(std::string name, TikTokSettings settings, Logger logger)
      : name_(std::move(name)), settings_(std::move(settings)), logger_(std::move(logger)) {}

  Platform profile() const override { return Platform::kTikTok; }
  std::size_t max_batch_size() const override { return settings_.max_members_per_request; }

  Status begin(const DestinationRun& run) override;
  BatchResult send(const Batch& batch) override;
  Status finish(const DestinationRunSummary& summary) override;

 private:
  HttpRequest request(HttpMethod method, std::string path, std::string body = {}) const;
  std::string credential_hint() const {
    return "the access token in the environment variable " + settings_.access_token_variable +
           " (secret access_token)";
  }
  Status resolve_audience();
  Result<std::string> find_audience_by_name();
  Result<std::string> create_audience();
  PlatformResponse send_group(const Batch& batch, OperationType type, const std::vector<std::size_t>& group);

  const std::string name_;
  const TikTokSettings settings_;
  const Logger logger_;
  std::unique_ptr<PlatformClient> client_;
  DestinationRun run_;
  std::string audience_id_;
  std::vector<std::string> schema_;
};

HttpRequest TikTokDestination::request(HttpMethod method, std::string path, std::string body) const {
  HttpRequest out;
  out.method = method;
  out.url = std::move(path);
  out.headers = {{"Access-Token", settings_.access_token}, {"Accept", "application/json"}};
  if (!body.empty()) {
    out.headers.push_back({"Content-Type", "application/json"});
    out.body = std::move(body);
  }
  return out;
}

Status TikTokDestination::begin(const DestinationRun& run) {
  run_ = run;
  if (run.mode == SyncMode::kReplace) {
    return invalid_argument("destination '" + name_ +
                            "': TikTok's segment API has no full replace; use mode mirror, which removes the "
                            "members that left the source");
  }
  if (!client_) {
    PlatformClientOptions options;
    options.platform = "tiktok";
    options.label = "TikTok";
    options.destination = name_;
    options.account = "advertiser:" + settings_.advertiser_id;
    options.http = settings_.http;
    options.classifier = classify_tiktok_response;
    options.logger = logger_;
    ACT_ASSIGN_OR_RETURN(client_, PlatformClient::create(std::move(options)));
  }
  schema_ = id_schema_of(run.field_slots, settings_.maid_schema);
  if (schema_.empty()) {
    return invalid_argument(
        "destination '" + name_ +
        "': the audience maps no field that TikTok takes; map an email, a phone or a MAID");
  }

  audience_id_.clear();
  Json state = Json::parse(run.session_state.empty() ? "{}" : run.session_state, nullptr, false);
  if (state.is_object() && state.value("audience_id", Json()).is_string()) {
    audience_id_ = state["audience_id"].get<std::string>();
  }
  if (audience_id_.empty()) ACT_RETURN_IF_ERROR(resolve_audience());
  logger_.log(LogLevel::kInfo, "tiktok", "job {} destination {}: {} to audience {} of advertiser {}{}",
              run.job_id, name_, sync_mode_name(run.mode), audience_id_, settings_.advertiser_id,
              run.resumed ? " (resumed)" : "");
  return Status::ok();
}

Status TikTokDestination::resolve_audience() {
  if (!settings_.audience_id.empty()) {
    audience_id_ = settings_.audience_id;
    return Status::ok();
  }
  ACT_ASSIGN_OR_RETURN(audience_id_, find_or_create([this] { return find_audience_by_name(); },
                                                    [this] { return create_audience(); }));
  return Status::ok();
}

Result<std::string> TikTokDestination::create_audience() {
  Json body = {{"advertiser_id", settings_.advertiser_id},
               {"custom_audience_name", settings_.audience_name},
               {"action", "create"}};
  // One attempt only: a create that failed without a clear response may have made the audience,
  // so find_or_create() looks for it by name before it creates again.
  PlatformResponse response = client_->call(request(HttpMethod::kPost, "/segment/audience/", body.dump()));
  std::string what =
      "creating audience '" + settings_.audience_name + "' of advertiser " + settings_.advertiser_id;
  if (!response.ok()) return client_->failure_status(response, what, credential_hint());
  const Json data = response.body.is_object() ? response.body.value("data", Json()) : Json();
  Json id = data.is_object() ? data.value("audience_id", Json()) : Json();
  std::string created = id.is_string() ? id.get<std::string>() : (id.is_number_integer() ? id.dump() : "");
  if (created.empty()) {
    return unavailable("destination '" + name_ + "': " + what + ": TikTok's response contains no audience_id");
  }
  logger_.log(LogLevel::kInfo, "tiktok", "destination {}: created audience '{}' as {}", name_,
              settings_.audience_name, created);
  return created;
}

Result<std::string> TikTokDestination::find_audience_by_name() {
  for (int page = 1; page <= kMaxAudiencePages; ++page) {
    std::string path = "/dmp/custom_audience/list/?advertiser_id=" + settings_.advertiser_id +
                       "&page=" + std::to_string(page) + "&page_size=100";
    PlatformResponse response = client_->call_with_retries(request(HttpMethod::kGet, path));
    if (!response.ok()) {
      return client_->failure_status(
          response, "listing the audiences of advertiser " + settings_.advertiser_id, credential_hint());
    }
    const Json data = response.body.is_object() ? response.body.value("data", Json()) : Json();
    if (!data.is_object()) break;
    for (const Json& audience : data.value("list", Json::array())) {
      if (!audience.is_object() || json_string(audience, {"name"}) != settings_.audience_name) continue;
      Json id = audience.value("audience_id", Json());
      if (id.is_string()) return id.get<std::string>();
      if (id.is_number_integer()) return id.dump();
    }
    const Json page_info = data.value("page_info", Json());
    const Json total_pages = page_info.is_object() ? page_info.value("total_page", Json()) : Json();
    if (!total_pages.is_number_integer() || page >= total_pages.get<int>()) break;
  }
  return std::string();
}

PlatformResponse TikTokDestination::send_group(const Batch& batch, OperationType type,
                                               const std::vector<std::size_t>& group) {
  Json rows = Json::array();
  for (std::size_t index : group) {
    append_rows(batch.operations[index], schema_, settings_.maid_schema, audience_id_, rows);
  }
  Json body = {{"advertiser_ids", Json::array({settings_.advertiser_id})},
               {"action", type == OperationType::kAdd ? "add" : "delete"},
               {"id_schema", schema_},
               {"batch_data", std::move(rows)}};
  return client_->call(request(HttpMethod::kPost, "/segment/mapping/", body.dump()));
}

BatchResult TikTokDestination::send(const Batch& batch) {
  BatchResult result;
  result.session_state = Json{{"audience_id", audience_id_}}.dump();
  std::vector<OperationResult> results(batch.operations.size());

  // Removes first, so a member whose identifiers changed is removed before it is added again.
  std::vector<std::size_t> removes;
  std::vector<std::size_t> adds;
  Json probe = Json::array();
  for (std::size_t i = 0; i < batch.operations.size(); ++i) {
    const MemberOperation& operation = batch.operations[i];
    probe.clear();
    if (append_rows(operation, schema_, settings_.maid_schema, audience_id_, probe) == 0) {
      results[i] = {RowOutcome::kRejected,
                    Reason{kNoKeyCode, "the member has no email, phone or MAID that TikTok takes"}};
      continue;
    }
    (operation.type == OperationType::kAdd ? adds : removes).push_back(i);
  }

  // A batch sent again is harmless: adding a present member or removing an absent one changes
  // nothing on TikTok.
  auto reason_of = [](const PlatformResponse& response) {
    return Reason{kRejectedCode, "TikTok rejected the request: " + response.classification.summary()};
  };
  for (OperationType type : {OperationType::kRemove, OperationType::kAdd}) {
    const std::vector<std::size_t>& indexes = type == OperationType::kAdd ? adds : removes;
    auto sender = [&](const std::vector<std::size_t>& group) { return send_group(batch, type, group); };
    std::optional<PlatformResponse> failed =
        send_isolating(indexes, sender, reason_of, kMaxIsolationRequests, results);
    if (failed) {
      std::string what = fmt::format("sending batch {} ({}s of {} members)", batch.number,
                                     operation_type_name(type), indexes.size());
      result.transport = client_->failure_status(*failed, what, credential_hint());
      result.retry_after = failed->retry_after;
      return result;
    }
  }
  result.results = std::move(results);
  return result;
}

Status TikTokDestination::finish(const DestinationRunSummary& summary) {
  logger_.log(LogLevel::kInfo, "tiktok",
              "job {} destination {}: done with audience {}: {} batches, {} adds and {} removes sent",
              run_.job_id, name_, audience_id_, summary.batches, summary.adds_sent, summary.removes_sent);
  return Status::ok();
}

}  // namespace

Result<TikTokSettings> parse_tiktok_settings(
    const DestinationConfig& config, const std::function<Result<std::string>(std::string_view)>& secret) {
  const std::string where = "destination '" + config.name + "'";
  ACT_ASSIGN_OR_RETURN(Json settings, parse_settings_object(config));
  if (config.profile && *config.profile != Platform::kTikTok) {
    return invalid_argument(where + ": profile: the tiktok destination needs the tiktok profile, got " +
                            std::string(platform_name(*config.profile)));
  }
  SettingsReader reader(where + ": settings", settings);
  ACT_RETURN_IF_ERROR(reader.check_keys({"advertiser_id", "audience_id", "audience_name",
                                         "max_members_per_request", "maid_schema", ACT_HTTP_SETTINGS_KEYS}));
  TikTokSettings out;
  ACT_ASSIGN_OR_RETURN(out.advertiser_id, reader.id_text("advertiser_id", ""));
  if (!all_digits(out.advertiser_id) || out.advertiser_id.size() > 20) {
    if (reader.find("advertiser_id") == nullptr) {
      return invalid_argument(where +
                              ": settings.advertiser_id: missing; expected the advertiser id, such as "
                              "\"7012345678901234567\"");
    }
    return reader.error("advertiser_id", "the numeric id of a TikTok advertiser",
                        *reader.find("advertiser_id"));
  }
  ACT_ASSIGN_OR_RETURN(out.audience_id, reader.id_text("audience_id", ""));
  if (!out.audience_id.empty() && (!all_digits(out.audience_id) || out.audience_id.size() > 20)) {
    return reader.error("audience_id", "the numeric id of a TikTok audience", Json(out.audience_id));
  }
  ACT_ASSIGN_OR_RETURN(out.audience_name, reader.text("audience_name", ""));
  if (out.audience_id.empty() == out.audience_name.empty()) {
    return invalid_argument(reader.where() +
                            ": set exactly one of audience_id (an existing audience) and audience_name (the "
                            "audience to find or create by name)");
  }
  if (out.audience_name.size() > kMaxAudienceNameChars) {
    return reader.error("audience_name", "a name of at most 128 characters", Json(out.audience_name));
  }
  ACT_ASSIGN_OR_RETURN(std::int64_t members,
                       reader.integer("max_members_per_request", kDefaultMembersPerRequest, 1,
                                      static_cast<std::int64_t>(kMaxMembersPerRequest)));
  out.max_members_per_request = static_cast<std::size_t>(members);
  ACT_ASSIGN_OR_RETURN(out.maid_schema, reader.text("maid_schema", out.maid_schema));
  if (out.maid_schema != "AAID_SHA256" && out.maid_schema != "IDFA_SHA256") {
    return reader.error("maid_schema", "AAID_SHA256 or IDFA_SHA256", Json(out.maid_schema));
  }
  ACT_ASSIGN_OR_RETURN(out.http, parse_http_settings(reader, "tiktok", kDefaultBaseUrl));

  ACT_RETURN_IF_ERROR(
      check_secret_names(config, {"access_token"}, {{"access_token", "TIKTOK_ACCESS_TOKEN"}}));
  out.access_token_variable = config.secret_env.at("access_token");
  if (!secret) return internal_error(where + ": no secret reader was given to the tiktok adapter");
  ACT_ASSIGN_OR_RETURN(out.access_token, secret("access_token"));
  return out;
}

ResponseClassification classify_tiktok_response(const HttpResponse& response) {
  ResponseClassification out = classify_http_response(response);
  if (response.status != 200) return out;

  Json body = Json::parse(response.body, nullptr, false);
  if (!body.is_object() || !body.value("code", Json()).is_number_integer()) {
    out.error_class = PlatformErrorClass::kPlatform5xx;
    out.message = "HTTP 200 without TikTok's {\"code\", \"message\"} envelope";
    return out;
  }
  std::int64_t code = body["code"].get<std::int64_t>();
  if (code == 0) return out;
  out.code = code;
  out.message = json_string(body, {"message"});
  if (out.message.empty()) out.message = "no message";
  // The request id is what TikTok's support asks for.
  std::string request_id = json_string(body, {"request_id"});
  if (!request_id.empty()) out.message += " (request_id " + request_id + ")";

  if (code_in(code, {40100, 40132, 40133})) {
    out.error_class = PlatformErrorClass::kThrottled;
  } else if (code_in(code, {40102, 40104, 40105})) {
    out.error_class = PlatformErrorClass::kAuth;
  } else if (code_in(code, {40001, 40003})) {
    out.error_class = PlatformErrorClass::kAuth;
    out.error_type = "permission";
  } else if (code_in(code, {40200, 40201, 40202}) || (code >= 50000 && code <= 50002) ||
             (code >= 51000 && code <= 51003)) {
    out.error_class = PlatformErrorClass::kPlatform5xx;
  } else {
    out.error_class = PlatformErrorClass::kInvalidRequest;
  }
  return out;
}

std::vector<std::string> id_schema_of(const std::vector<std::pair<Field, int>>& field_slots,
                                      const std::string& maid_schema) {
  std::vector<std::string> schema;
  for (Field field : {Field::kEmail, Field::kPhone, Field::kMaid}) {
    bool mapped = std::any_of(field_slots.begin(), field_slots.end(),
                              [field](const auto& slot) { return slot.first == field && slot.second > 0; });
    if (mapped) schema.emplace_back(schema_of(field, maid_schema));
  }
  return schema;
}

std::size_t append_rows(const MemberOperation& operation, const std::vector<std::string>& schema,
                        const std::string& maid_schema, const std::string& audience_id, Json& rows) {
  std::vector<std::vector<const std::string*>> values(schema.size());
  for (const WireIdentifier& identifier : operation.identifiers) {
    std::string_view name = schema_of(identifier.field, maid_schema);
    auto position = std::find(schema.begin(), schema.end(), name);
    if (name.empty() || position == schema.end()) continue;
    values[static_cast<std::size_t>(position - schema.begin())].push_back(&identifier.value);
  }
  std::size_t count = 0;
  for (const auto& column : values) count = std::max(count, column.size());

  // Row i contains the i-th value of each identifier type, or its first, so every row keeps all of
  // the member's types. The rows depend only on the identifiers, so a remove built from the
  // ledger's keys repeats the rows of the add.
  for (std::size_t row = 0; row < count; ++row) {
    Json cells = Json::array();
    for (const auto& column : values) {
      if (column.empty()) {
        cells.push_back(Json::object());
        continue;
      }
      const std::string* value = row < column.size() ? column[row] : column.front();
      cells.push_back({{"id", *value}, {"audience_ids", Json::array({audience_id})}});
    }
    rows.push_back(std::move(cells));
  }
  return count;
}

Result<std::unique_ptr<DestinationAdapter>> make_tiktok_destination(
    const DestinationConfig& config, const DestinationEnvironment& environment) {
  ACT_ASSIGN_OR_RETURN(TikTokSettings settings, parse_tiktok_settings(config, environment.secret));
  return std::unique_ptr<DestinationAdapter>(
      std::make_unique<TikTokDestination>(config.name, std::move(settings), environment.logger));
}

}  // namespace activation::platforms::tiktok
