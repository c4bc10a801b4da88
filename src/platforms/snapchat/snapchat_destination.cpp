// The Snapchat adapter. Each batch becomes POST (adds) and DELETE (removes) requests to
// /segments/{id}/users, removes first. Snapchat returns no per-identifier status, so a request
// refused as invalid is split in halves until the members that cause it are rejected alone. An
// access token that Snapchat rejects is refreshed once through the OAuth client. A refresh token
// that the token endpoint rejects ends the run with a message naming its environment variable.
#include "platforms/snapchat/snapchat_destination.hpp"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "platforms/common/isolation.hpp"
#include "platforms/common/platform_client.hpp"
#include "platforms/oauth/oauth_client.hpp"

namespace activation::platforms::snapchat {
namespace {

using Json = nlohmann::json;

constexpr const char* kRejectedCode = "snapchat_rejected";
constexpr const char* kNoKeyCode = "snapchat_no_key";
constexpr std::size_t kMaxIsolationRequests = 64;

std::string_view schema_of(Field field) {
  switch (field) {
    case Field::kEmail: return "EMAIL_SHA256";
    case Field::kPhone: return "PHONE_SHA256";
    case Field::kMaid: return "MOBILE_AD_ID_SHA256";
    default: return {};
  }
}

std::size_t identifier_count(const MemberOperation& operation) {
  return static_cast<std::size_t>(
      std::count_if(operation.identifiers.begin(), operation.identifiers.end(),
                    [](const WireIdentifier& id) { return !schema_of(id.field).empty(); }));
}

bool is_account_id(std::string_view text) {
  return !text.empty() && text.size() <= 64 && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
  });
}

class SnapchatDestination final : public DestinationAdapter {
 public:
  SnapchatDestination(std::string name, SnapchatSettings settings, Logger logger)
      : name_(std::move(name)), settings_(std::move(settings)), logger_(std::move(logger)) {}

  Platform profile() const override { return Platform::kSnapchat; }
  std::size_t max_batch_size() const override { return settings_.max_members_per_request; }

  Status begin(const DestinationRun& run) override;
  BatchResult send(const Batch& batch) override;
  Status finish(const DestinationRunSummary& summary) override;

 private:
  // The response of a request sent with a fresh access token, or the Status of a failed refresh.
  struct AuthorizedResponse {
    Status token_failure;
    PlatformResponse response;
  };

  AuthorizedResponse call(HttpMethod method, const std::string& path, const std::string& body,
                          bool with_retries);
  Status failure(const AuthorizedResponse& outcome, std::string_view what) const;
  Status resolve_segment();
  Result<std::string> find_segment_by_name();
  Result<std::string> create_segment();
  std::string account_path() const { return "/adaccounts/" + settings_.ad_account_id + "/segments"; }
  std::string credential_hint() const {
    return "the access token issued for the refresh token in the environment variable " +
           settings_.refresh_token_variable + " (secret refresh_token)";
  }

  const std::string name_;
  const SnapchatSettings settings_;
  const Logger logger_;
  std::unique_ptr<PlatformClient> client_;
  std::shared_ptr<oauth::OAuthClient> oauth_;
  DestinationRun run_;
  std::string segment_id_;
};

SnapchatDestination::AuthorizedResponse SnapchatDestination::call(HttpMethod method, const std::string& path,
                                                                  const std::string& body,
                                                                  bool with_retries) {
  AuthorizedResponse out;
  // A token Snapchat rejects is refreshed once: a second rejection of a fresh token is not a
  // matter of expiry.
  for (int attempt = 0; attempt < 2; ++attempt) {
    Result<std::string> token = oauth_->access_token();
    if (!token.is_ok()) {
      out.token_failure = token.status();
      return out;
    }
    HttpRequest request;
    request.method = method;
    request.url = path;
    request.headers = {{"Authorization", "Bearer " + *token}, {"Accept", "application/json"}};
    if (!body.empty()) {
      request.headers.push_back({"Content-Type", "application/json"});
      request.body = body;
    }
    out.response = with_retries ? client_->call_with_retries(request) : client_->call(std::move(request));
    bool expired = out.response.sent && out.response.http_status == 401;
    if (!expired || attempt == 1) return out;
    oauth_->invalidate(*token);
    logger_.log(LogLevel::kInfo, "snapchat",
                "destination {}: Snapchat rejected the access token; refreshing it", name_);
  }
  return out;
}

Status SnapchatDestination::failure(const AuthorizedResponse& outcome, std::string_view what) const {
  if (!outcome.token_failure.is_ok()) {
    return Status(outcome.token_failure.code(),
                  fmt::format("destination '{}': {}: {}", name_, what, outcome.token_failure.message()));
  }
  return client_->failure_status(outcome.response, what, credential_hint());
}

Status SnapchatDestination::begin(const DestinationRun& run) {
  run_ = run;
  if (run.mode == SyncMode::kReplace) {
    return invalid_argument("destination '" + name_ +
                            "': the snapchat destination does not replace a segment; use mode mirror, which "
                            "removes the members that left the source");
  }
  if (!client_) {
    PlatformClientOptions options;
    options.platform = "snapchat";
    options.label = "Snapchat";
    options.destination = name_;
    options.account = "adaccount:" + settings_.ad_account_id;
    options.http = settings_.http;
    options.classifier = classify_snapchat_response;
    options.logger = logger_;
    ACT_ASSIGN_OR_RETURN(client_, PlatformClient::create(std::move(options)));

    oauth::OAuthSettings oauth;
    oauth.token_url = settings_.token_url;
    oauth.client_id = settings_.client_id;
    oauth.client_secret = settings_.client_secret;
    oauth.refresh_token = settings_.refresh_token;
    oauth.client_id_variable = settings_.client_id_variable;
    oauth.client_secret_variable = settings_.client_secret_variable;
    oauth.refresh_token_variable = settings_.refresh_token_variable;
    oauth.platform = "Snapchat";
    oauth.destination = name_;
    // Snapchat's access tokens live about 30 minutes.
    oauth.default_lifetime = std::chrono::seconds(1800);
    oauth.transport.total_timeout = settings_.http.timeout;
    oauth.transport.ca_file = settings_.http.ca_file;
    oauth.transport.proxy = settings_.http.proxy;
    oauth.transport.no_proxy = settings_.http.no_proxy;
    oauth.transport.logger = logger_;
    ACT_ASSIGN_OR_RETURN(oauth_, oauth::shared_oauth_client(oauth, logger_));
  }

  segment_id_.clear();
  Json state = Json::parse(run.session_state.empty() ? "{}" : run.session_state, nullptr, false);
  if (state.is_object() && state.value("segment_id", Json()).is_string()) {
    segment_id_ = state["segment_id"].get<std::string>();
  }
  if (segment_id_.empty()) ACT_RETURN_IF_ERROR(resolve_segment());
  logger_.log(LogLevel::kInfo, "snapchat", "job {} destination {}: {} to segment {} of ad account {}{}",
              run.job_id, name_, sync_mode_name(run.mode), segment_id_, settings_.ad_account_id,
              run.resumed ? " (resumed)" : "");
  return Status::ok();
}

Status SnapchatDestination::resolve_segment() {
  if (!settings_.segment_id.empty()) {
    const std::string& id = settings_.segment_id;
    AuthorizedResponse read = call(HttpMethod::kGet, "/segments/" + id, "", true);
    if (read.token_failure.is_ok() && read.response.sent && read.response.http_status == 404) {
      return not_found("destination '" + name_ + "': settings.segment_id: Snapchat has no segment " + id +
                       " that this token can read: " + read.response.classification.summary());
    }
    if (!read.response.ok()) return failure(read, "reading segment " + id);
    segment_id_ = id;
    return Status::ok();
  }

  ACT_ASSIGN_OR_RETURN(segment_id_, find_or_create([this] { return find_segment_by_name(); },
                                                    [this] { return create_segment(); }));
  return Status::ok();
}

Result<std::string> SnapchatDestination::find_segment_by_name() {
  AuthorizedResponse list = call(HttpMethod::kGet, account_path(), "", true);
  if (!list.token_failure.is_ok() || !list.response.ok()) {
    return failure(list, "listing the segments of ad account " + settings_.ad_account_id);
  }
  const Json listed =
      list.response.body.is_object() ? list.response.body.value("segments", Json()) : Json();
  for (const Json& entry : listed.is_array() ? listed : Json::array()) {
    const Json segment = entry.is_object() ? entry.value("segment", Json()) : Json();
    if (json_string(segment, {"name"}) == settings_.segment_name && !json_string(segment, {"id"}).empty()) {
      return json_string(segment, {"id"});
    }
  }
  return std::string();
}

Result<std::string> SnapchatDestination::create_segment() {
  Json wanted = {{"name", settings_.segment_name},
                 {"description", settings_.segment_description},
                 {"source_type", "FIRST_PARTY"},
                 {"retention_in_days", settings_.retention_in_days},
                 {"ad_account_id", settings_.ad_account_id}};
  // One attempt only: a create that failed without a clear response may have made the segment, so
  // find_or_create() looks for it by name before it creates again.
  AuthorizedResponse created =
      call(HttpMethod::kPost, account_path(), Json{{"segments", Json::array({wanted})}}.dump(), false);
  std::string what =
      "creating segment '" + settings_.segment_name + "' in ad account " + settings_.ad_account_id;
  if (!created.token_failure.is_ok() || !created.response.ok()) return failure(created, what);
  const Json segments =
      created.response.body.is_object() ? created.response.body.value("segments", Json()) : Json();
  std::string id;
  if (segments.is_array() && !segments.empty() && segments[0].is_object()) {
    id = json_string(segments[0].value("segment", Json()), {"id"});
  }
  if (id.empty()) {
    return unavailable("destination '" + name_ + "': " + what + ": Snapchat's response contains no segment id");
  }
  logger_.log(LogLevel::kInfo, "snapchat", "destination {}: created segment '{}' as {}", name_,
              settings_.segment_name, id);
  return id;
}

BatchResult SnapchatDestination::send(const Batch& batch) {
  BatchResult result;
  result.session_state = Json{{"segment_id", segment_id_}}.dump();
  std::vector<OperationResult> results(batch.operations.size());

  std::vector<std::size_t> removes;
  std::vector<std::size_t> adds;
  for (std::size_t i = 0; i < batch.operations.size(); ++i) {
    const MemberOperation& operation = batch.operations[i];
    if (identifier_count(operation) == 0) {
      results[i] = {RowOutcome::kRejected,
                    Reason{kNoKeyCode, "the member has no email, phone or MAID that Snapchat takes"}};
      continue;
    }
    (operation.type == OperationType::kAdd ? adds : removes).push_back(i);
  }

  // A batch sent again is harmless: Snapchat's segment is a set of identifiers.
  std::optional<Status> token_failure;
  auto reason_of = [](const PlatformResponse& response) {
    return Reason{kRejectedCode, "Snapchat rejected the request: " + response.classification.summary()};
  };
  for (OperationType type : {OperationType::kRemove, OperationType::kAdd}) {
    const std::vector<std::size_t>& indexes = type == OperationType::kAdd ? adds : removes;
    const HttpMethod method = type == OperationType::kAdd ? HttpMethod::kPost : HttpMethod::kDelete;
    auto sender = [&](const std::vector<std::size_t>& group) {
      std::vector<const MemberOperation*> operations;
      for (std::size_t index : group) operations.push_back(&batch.operations[index]);
      AuthorizedResponse outcome =
          call(method, "/segments/" + segment_id_ + "/users", render_users(operations).dump(), false);
      if (!outcome.token_failure.is_ok()) {
        token_failure = outcome.token_failure;
        // Reported as an auth failure so that send_isolating() stops at once.
        PlatformResponse stop;
        stop.sent = true;
        stop.classification.error_class = PlatformErrorClass::kAuth;
        return stop;
      }
      return outcome.response;
    };

    // Requests hold at most max_identifiers_per_request identifiers, so long groups are cut first.
    std::vector<std::vector<std::size_t>> chunks(1);
    std::size_t in_chunk = 0;
    for (std::size_t index : indexes) {
      std::size_t count = identifier_count(batch.operations[index]);
      if (!chunks.back().empty() && in_chunk + count > settings_.max_identifiers_per_request) {
        chunks.emplace_back();
        in_chunk = 0;
      }
      chunks.back().push_back(index);
      in_chunk += count;
    }
    for (const auto& chunk : chunks) {
      std::optional<PlatformResponse> failed =
          send_isolating(chunk, sender, reason_of, kMaxIsolationRequests, results);
      if (!failed) continue;
      std::string what = fmt::format("sending batch {} ({}s of {} members)", batch.number,
                                     operation_type_name(type), chunk.size());
      result.transport = token_failure ? failure(AuthorizedResponse{*token_failure, {}}, what)
                                       : client_->failure_status(*failed, what, credential_hint());
      result.retry_after = failed->retry_after;
      return result;
    }
  }
  result.results = std::move(results);
  return result;
}

Status SnapchatDestination::finish(const DestinationRunSummary& summary) {
  logger_.log(
      LogLevel::kInfo, "snapchat",
      "job {} destination {}: done with segment {}: {} batches, {} adds and {} removes sent; {} token "
      "refreshes in this process",
      run_.job_id, name_, segment_id_, summary.batches, summary.adds_sent, summary.removes_sent,
      oauth_ ? oauth_->refresh_count() : 0);
  return Status::ok();
}

}  // namespace

Result<SnapchatSettings> parse_snapchat_settings(
    const DestinationConfig& config, const std::function<Result<std::string>(std::string_view)>& secret) {
  const std::string where = "destination '" + config.name + "'";
  ACT_ASSIGN_OR_RETURN(Json settings, parse_settings_object(config));
  if (config.profile && *config.profile != Platform::kSnapchat) {
    return invalid_argument(where + ": profile: the snapchat destination needs the snapchat profile, got " +
                            std::string(platform_name(*config.profile)));
  }
  SettingsReader reader(where + ": settings", settings);
  ACT_RETURN_IF_ERROR(reader.check_keys(
      {"ad_account_id", "segment_id", "segment_name", "segment_description", "retention_in_days",
       "max_members_per_request", "max_identifiers_per_request", "token_url", ACT_HTTP_SETTINGS_KEYS}));
  SnapchatSettings out;
  if (reader.find("ad_account_id") == nullptr) {
    return invalid_argument(where +
                            ": settings.ad_account_id: missing; expected the ad account id, such as "
                            "\"8adc3db7-8148-4fbf-999c-8d2266369d74\"");
  }
  ACT_ASSIGN_OR_RETURN(out.ad_account_id, reader.text("ad_account_id", ""));
  if (!is_account_id(out.ad_account_id)) {
    return reader.error("ad_account_id", "an ad account id of letters, digits and hyphens",
                        Json(out.ad_account_id));
  }
  ACT_ASSIGN_OR_RETURN(out.segment_id, reader.id_text("segment_id", ""));
  if (!out.segment_id.empty() && !is_account_id(out.segment_id)) {
    return reader.error("segment_id", "a segment id of letters, digits and hyphens", Json(out.segment_id));
  }
  ACT_ASSIGN_OR_RETURN(out.segment_name, reader.text("segment_name", ""));
  if (out.segment_id.empty() == out.segment_name.empty()) {
    return invalid_argument(
        reader.where() +
        ": set exactly one of segment_id (an existing segment) and segment_name (the segment "
        "to find or create by name)");
  }
  if (out.segment_name.size() > 375) {
    return reader.error("segment_name", "a name of at most 375 characters", Json(out.segment_name));
  }
  ACT_ASSIGN_OR_RETURN(out.segment_description, reader.text("segment_description", ""));
  ACT_ASSIGN_OR_RETURN(out.retention_in_days, reader.integer("retention_in_days", 9999, 1, 9999));
  ACT_ASSIGN_OR_RETURN(std::int64_t members,
                       reader.integer("max_members_per_request", kDefaultMembersPerRequest, 1,
                                      static_cast<std::int64_t>(kMaxIdentifiersPerRequest)));
  out.max_members_per_request = static_cast<std::size_t>(members);
  ACT_ASSIGN_OR_RETURN(std::int64_t identifiers,
                       reader.integer("max_identifiers_per_request", kMaxIdentifiersPerRequest, 1,
                                      static_cast<std::int64_t>(kMaxIdentifiersPerRequest)));
  out.max_identifiers_per_request = static_cast<std::size_t>(identifiers);
  ACT_ASSIGN_OR_RETURN(out.token_url, reader.text("token_url", out.token_url));
  if (out.token_url.rfind("https://", 0) != 0 && out.token_url.rfind("http://", 0) != 0) {
    return reader.error("token_url", "an http:// or https:// URL", Json(out.token_url));
  }
  ACT_ASSIGN_OR_RETURN(out.http, parse_http_settings(reader, "snapchat", kDefaultBaseUrl));

  ACT_RETURN_IF_ERROR(check_secret_names(config, {"client_id", "client_secret", "refresh_token"},
                                         {{"client_id", "SNAPCHAT_CLIENT_ID"},
                                          {"client_secret", "SNAPCHAT_CLIENT_SECRET"},
                                          {"refresh_token", "SNAPCHAT_REFRESH_TOKEN"}}));
  out.client_id_variable = config.secret_env.at("client_id");
  out.client_secret_variable = config.secret_env.at("client_secret");
  out.refresh_token_variable = config.secret_env.at("refresh_token");
  if (!secret) return internal_error(where + ": no secret reader was given to the snapchat adapter");
  ACT_ASSIGN_OR_RETURN(out.client_id, secret("client_id"));
  ACT_ASSIGN_OR_RETURN(out.client_secret, secret("client_secret"));
  ACT_ASSIGN_OR_RETURN(out.refresh_token, secret("refresh_token"));
  return out;
}

ResponseClassification classify_snapchat_response(const HttpResponse& response) {
  ResponseClassification out = classify_http_response(response);
  Json body = Json::parse(response.body, nullptr, false);
  bool error_envelope = body.is_object() && body.value("request_status", std::string()) == "ERROR";
  if (out.ok() && !error_envelope) return out;
  if (out.ok()) out.error_class = PlatformErrorClass::kInvalidRequest;
  if (error_envelope) {
    std::string message = json_string(body, {"debug_message", "display_message"});
    std::string code = json_string(body, {"error_code"});
    out.message = (code.empty() ? "" : code + " ") + (message.empty() ? "no message" : message);
    std::string request_id = json_string(body, {"request_id"});
    if (!request_id.empty()) out.message += " (request_id " + request_id + ")";
    // E3002: the caller lacks a permission on the ad account.
    if (code == "E3002") {
      out.error_class = PlatformErrorClass::kAuth;
      out.error_type = "permission";
    }
  } else if (response.status == 401 && !response.body.empty() && response.body.size() < 200) {
    out.message += ": " + response.body;
  }
  return out;
}

Json render_users(const std::vector<const MemberOperation*>& operations) {
  // Snapchat takes one schema per entry, so identifiers are grouped by schema, each value once.
  const std::string_view order[] = {"EMAIL_SHA256", "PHONE_SHA256", "MOBILE_AD_ID_SHA256"};
  std::vector<Json> data(3, Json::array());
  std::vector<std::set<std::string>> seen(3);
  for (const MemberOperation* operation : operations) {
    for (const WireIdentifier& identifier : operation->identifiers) {
      std::string_view schema = schema_of(identifier.field);
      if (schema.empty()) continue;
      std::size_t slot =
          static_cast<std::size_t>(std::find(std::begin(order), std::end(order), schema) - order);
      if (seen[slot].insert(identifier.value).second) data[slot].push_back(Json::array({identifier.value}));
    }
  }
  Json users = Json::array();
  for (std::size_t slot = 0; slot < 3; ++slot) {
    if (data[slot].empty()) continue;
    users.push_back({{"schema", Json::array({std::string(order[slot])})}, {"data", std::move(data[slot])}});
  }
  return Json{{"users", std::move(users)}};
}

Result<std::unique_ptr<DestinationAdapter>> make_snapchat_destination(
    const DestinationConfig& config, const DestinationEnvironment& environment) {
  ACT_ASSIGN_OR_RETURN(SnapchatSettings settings, parse_snapchat_settings(config, environment.secret));
  return std::unique_ptr<DestinationAdapter>(
      std::make_unique<SnapchatDestination>(config.name, std::move(settings), environment.logger));
}

}  // namespace activation::platforms::snapchat
