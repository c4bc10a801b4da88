// The LinkedIn adapter. Each batch becomes one BATCH_CREATE request to /dmpSegments/{id}/users, one
// element per member operation, removes first. LinkedIn returns one status per element in
// request order, so a bad element is rejected with LinkedIn's message and the others go on.
#include "platforms/linkedin/linkedin_destination.hpp"

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "platforms/common/platform_client.hpp"

namespace activation::platforms::linkedin {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

constexpr const char* kRejectedCode = "linkedin_rejected";
constexpr const char* kRequestRejectedCode = "linkedin_request_rejected";
constexpr const char* kNoKeyCode = "linkedin_no_key";
constexpr const char* kAccountUrnPrefix = "urn:li:sponsoredAccount:";
// Pages of the segment search, each of up to 100 segments.
constexpr int kMaxSegmentPages = 50;

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string percent_encode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

Status parse_segment(const SettingsReader& reader, LinkedInSettings& out) {
  ACT_ASSIGN_OR_RETURN(out.segment_id, reader.id_text("segment_id", ""));
  if (!out.segment_id.empty() && (!all_digits(out.segment_id) || out.segment_id.size() > 20)) {
    return reader.error("segment_id", "the numeric id of a DMP segment", Json(out.segment_id));
  }
  ACT_ASSIGN_OR_RETURN(out.segment_name, reader.text("segment_name", ""));
  if (out.segment_id.empty() == out.segment_name.empty()) {
    return invalid_argument(reader.where() +
                            ": set exactly one of segment_id (an existing DMP segment) and segment_name (the "
                            "segment to find or create by name)");
  }
  ACT_ASSIGN_OR_RETURN(out.source_platform, reader.text("source_platform", ""));
  if (!out.segment_name.empty() && out.source_platform.empty()) {
    return invalid_argument(reader.where() +
                            ".source_platform: missing; creating a segment by name needs the source platform "
                            "value that LinkedIn issued to your integration");
  }
  return Status::ok();
}

Status parse_limits(const SettingsReader& reader, LinkedInSettings& out) {
  ACT_ASSIGN_OR_RETURN(out.api_version, reader.text("api_version", out.api_version));
  if (out.api_version.size() != 6 || !all_digits(out.api_version)) {
    return reader.error("api_version", "a LinkedIn-Version such as \"202604\" (YYYYMM)",
                        Json(out.api_version));
  }
  ACT_ASSIGN_OR_RETURN(std::int64_t elements,
                       reader.integer("max_elements_per_request", kMaxElementsPerRequest, 1,
                                      static_cast<std::int64_t>(kMaxElementsPerRequest)));
  out.max_elements_per_request = static_cast<std::size_t>(elements);
  ACT_ASSIGN_OR_RETURN(double delay, reader.number("segment_ready_delay_seconds", 10, 0, 3600));
  out.segment_ready_delay = milliseconds(static_cast<std::int64_t>(delay * 1000));
  ACT_ASSIGN_OR_RETURN(double timeout, reader.number("segment_ready_timeout_seconds", 180, 0, 86400));
  out.segment_ready_timeout = milliseconds(static_cast<std::int64_t>(timeout * 1000));
  ACT_ASSIGN_OR_RETURN(out.maid_id_type, reader.text("maid_id_type", out.maid_id_type));
  if (out.maid_id_type != "GOOGLE_AID" && out.maid_id_type != "APPLE_IDFA") {
    return reader.error("maid_id_type", "GOOGLE_AID or APPLE_IDFA", Json(out.maid_id_type));
  }
  return Status::ok();
}

// The session state: the segment's id, and when this run created it (0 when it existed), so that
// a resumed run still waits out the delay after creation.
struct SegmentState {
  std::string segment_id;
  std::int64_t created_unix_ms = 0;

  std::string to_json() const {
    return Json{{"segment_id", segment_id}, {"created_unix_ms", created_unix_ms}}.dump();
  }
};

Result<SegmentState> read_state(std::string_view text, const std::string& destination) {
  SegmentState state;
  if (text.empty() || text == "{}") return state;
  Json parsed = Json::parse(text, nullptr, false);
  if (!parsed.is_object() || !parsed.value("segment_id", Json()).is_string()) {
    return Status(StatusCode::kDataLoss, "destination '" + destination +
                                             "': the checkpoint's session state is not one the linkedin "
                                             "adapter writes");
  }
  state.segment_id = parsed["segment_id"].get<std::string>();
  state.created_unix_ms = parsed.value("created_unix_ms", std::int64_t{0});
  return state;
}

class LinkedInDestination final : public DestinationAdapter {
 public:
  LinkedInDestination(std::string name, LinkedInSettings settings, Logger logger)
      : name_(std::move(name)), settings_(std::move(settings)), logger_(std::move(logger)) {}

  Platform profile() const override { return Platform::kLinkedIn; }
  std::size_t max_batch_size() const override { return settings_.max_elements_per_request; }

  Status begin(const DestinationRun& run) override;
  BatchResult send(const Batch& batch) override;
  Status finish(const DestinationRunSummary& summary) override;

 private:
  HttpRequest request(HttpMethod method, std::string path, std::string body = {}) const;
  std::string credential_hint() const {
    return "the access token in the environment variable " + settings_.access_token_variable +
           " (secret access_token)";
  }
  Status resolve_segment();
  Result<std::string> find_segment_by_name();
  Result<std::string> create_segment();
  Status failure(const PlatformResponse& response, std::string_view what) const;
  bool segment_may_be_settling() const;

  const std::string name_;
  const LinkedInSettings settings_;
  const Logger logger_;
  std::unique_ptr<PlatformClient> client_;
  DestinationRun run_;
  SegmentState state_;
};

HttpRequest LinkedInDestination::request(HttpMethod method, std::string path, std::string body) const {
  HttpRequest out;
  out.method = method;
  out.url = std::move(path);
  out.headers = {{"Authorization", "Bearer " + settings_.access_token},
                 {"LinkedIn-Version", settings_.api_version},
                 {"X-Restli-Protocol-Version", "2.0.0"},
                 {"Accept", "application/json"}};
  if (!body.empty()) {
    out.headers.push_back({"Content-Type", "application/json"});
    out.body = std::move(body);
  }
  return out;
}

Status LinkedInDestination::failure(const PlatformResponse& response, std::string_view what) const {
  // A sunset LinkedIn-Version fails every request the same way until the setting changes.
  if (response.sent && response.http_status == 426) {
    return failed_precondition(fmt::format(
        "destination '{}': {}: LinkedIn no longer serves settings.api_version {}; set a current version "
        "(YYYYMM): {}",
        name_, what, settings_.api_version, response.classification.summary()));
  }
  return client_->failure_status(response, what, credential_hint());
}

Status LinkedInDestination::begin(const DestinationRun& run) {
  run_ = run;
  if (run.mode == SyncMode::kReplace) {
    return invalid_argument("destination '" + name_ +
                            "': LinkedIn DMP segments have no full replace; use mode mirror, which removes "
                            "the members that left the source");
  }
  if (!client_) {
    PlatformClientOptions options;
    options.platform = "linkedin";
    options.label = "LinkedIn";
    options.destination = name_;
    // LinkedIn counts its per-minute limit per member (the token), which one ad account's runs share.
    options.account = "urn:li:sponsoredAccount:" + settings_.ad_account_id;
    options.http = settings_.http;
    options.classifier = classify_linkedin_response;
    options.logger = logger_;
    ACT_ASSIGN_OR_RETURN(client_, PlatformClient::create(std::move(options)));
  }
  ACT_ASSIGN_OR_RETURN(state_, read_state(run.session_state, name_));
  ACT_RETURN_IF_ERROR(resolve_segment());

  // LinkedIn rejects users sent to a segment in its first seconds.
  if (state_.created_unix_ms > 0) {
    std::int64_t ready_at = state_.created_unix_ms + settings_.segment_ready_delay.count();
    std::int64_t wait = ready_at - unix_ms_now();
    if (wait > 0) {
      logger_.log(LogLevel::kInfo, "linkedin", "job {} destination {}: waiting {} ms for new segment {}",
                  run.job_id, name_, wait, state_.segment_id);
      std::this_thread::sleep_for(milliseconds(wait));
    }
  }
  logger_.log(LogLevel::kInfo, "linkedin", "job {} destination {}: {} to DMP segment {} of account {}{}",
              run.job_id, name_, sync_mode_name(run.mode), state_.segment_id, settings_.ad_account_id,
              run.resumed ? " (resumed)" : "");
  return Status::ok();
}

Status LinkedInDestination::resolve_segment() {
  if (!state_.segment_id.empty()) return Status::ok();

  if (!settings_.segment_id.empty()) {
    const std::string& id = settings_.segment_id;
    PlatformResponse response = client_->call_with_retries(request(HttpMethod::kGet, "/dmpSegments/" + id));
    if (response.sent && response.http_status == 404) {
      return not_found("destination '" + name_ + "': settings.segment_id: LinkedIn has no DMP segment " + id +
                       " that this access token can read: " + response.classification.summary());
    }
    if (!response.ok()) return failure(response, "reading DMP segment " + id);
    state_.segment_id = id;
    return Status::ok();
  }

  ACT_ASSIGN_OR_RETURN(state_.segment_id,
                       find_or_create([this] { return find_segment_by_name(); }, [this] { return create_segment(); }));
  return Status::ok();
}

Result<std::string> LinkedInDestination::find_segment_by_name() {
  const std::string account = percent_encode(kAccountUrnPrefix + settings_.ad_account_id);
  for (int page = 0; page < kMaxSegmentPages; ++page) {
    std::string path =
        "/dmpSegments?q=account&account=" + account + "&start=" + std::to_string(page * 100) + "&count=100";
    PlatformResponse response = client_->call_with_retries(request(HttpMethod::kGet, path));
    if (!response.ok())
      return failure(response, "searching the DMP segments of account " + settings_.ad_account_id);
    const Json& elements =
        response.body.is_object() ? response.body.value("elements", Json::array()) : Json();
    if (!elements.is_array()) break;
    for (const Json& segment : elements) {
      if (!segment.is_object() || json_string(segment, {"name"}) != settings_.segment_name) continue;
      // An archived or expired segment no longer takes users; a new one is created instead.
      bool usable = true;
      for (const Json& destination : segment.value("destinations", Json::array())) {
        std::string status = json_string(destination, {"status"});
        if (status == "ARCHIVED" || status == "EXPIRED") usable = false;
      }
      if (!usable) continue;
      const Json& id = segment.value("id", Json());
      if (id.is_number_integer()) return id.dump();
      if (id.is_string()) return id.get<std::string>();
    }
    if (elements.size() < 100) break;
  }
  return std::string();
}

Result<std::string> LinkedInDestination::create_segment() {
  Json body = {{"name", settings_.segment_name},
               {"sourcePlatform", settings_.source_platform},
               {"account", kAccountUrnPrefix + settings_.ad_account_id},
               {"type", "USER"},
               {"accessPolicy", "PRIVATE"},
               {"destinations", Json::array({{{"destination", "LINKEDIN"}}})}};
  // One attempt only: a create that failed without a clear response may have made the segment, so
  // find_or_create() looks for it by name before it creates again.
  PlatformResponse response = client_->call(request(HttpMethod::kPost, "/dmpSegments", body.dump()));
  std::string what =
      "creating DMP segment '" + settings_.segment_name + "' in account " + settings_.ad_account_id;
  if (!response.ok()) return failure(response, what);

  std::string id;
  for (const char* header : {"x-restli-id", "x-linkedin-id"}) {
    if (auto value = find_header(response.headers, header); value && id.empty()) id = std::string(*value);
  }
  if (id.empty()) {
    if (auto location = find_header(response.headers, "Location")) {
      std::string_view text = *location;
      id = std::string(text.substr(text.rfind('/') + 1));
    }
  }
  if (!all_digits(id)) {
    return unavailable("destination '" + name_ + "': " + what +
                       ": LinkedIn's response names no segment id in x-restli-id or Location");
  }
  state_.created_unix_ms = unix_ms_now();
  logger_.log(LogLevel::kInfo, "linkedin", "destination {}: created DMP segment '{}' as {}", name_,
              settings_.segment_name, id);
  return id;
}

bool LinkedInDestination::segment_may_be_settling() const {
  return state_.created_unix_ms > 0 &&
         unix_ms_now() - state_.created_unix_ms < settings_.segment_ready_timeout.count();
}

BatchResult LinkedInDestination::send(const Batch& batch) {
  BatchResult result;
  result.session_state = state_.to_json();
  std::vector<OperationResult> results(batch.operations.size());

  std::vector<std::size_t> sendable;
  Json elements = Json::array();
  for (std::size_t i = 0; i < batch.operations.size(); ++i) {
    Json element = render_element(batch.operations[i], settings_.maid_id_type);
    if (element.is_null()) {
      results[i] = {RowOutcome::kRejected,
                    Reason{kNoKeyCode,
                           "the member has no email or mobile ad id, and not both a first and a "
                           "last name, which LinkedIn needs at the least"}};
      continue;
    }
    sendable.push_back(i);
    elements.push_back(std::move(element));
  }

  // The engine's batches are at most max_elements_per_request long, so one request suffices. A
  // batch sent again is harmless: LinkedIn returns 201 for an ADD of a present member and a REMOVE
  // of an absent one.
  if (!sendable.empty()) {
    HttpRequest upload = request(HttpMethod::kPost, "/dmpSegments/" + state_.segment_id + "/users",
                                 Json{{"elements", std::move(elements)}}.dump());
    upload.headers.push_back({"X-RestLi-Method", "BATCH_CREATE"});
    PlatformResponse response = client_->call(std::move(upload));
    std::string what = fmt::format("sending batch {} ({} elements)", batch.number, sendable.size());

    if (!response.ok()) {
      PlatformErrorClass failed = response.error_class();
      bool not_ready = response.sent && (response.http_status == 404 || response.http_status == 409);
      if (not_ready && segment_may_be_settling()) {
        // A new segment takes a while before it accepts users: wait and send the batch again.
        result.transport =
            unavailable(fmt::format("destination '{}': {}: DMP segment {} is not ready yet: {}", name_, what,
                                    state_.segment_id, response.classification.summary()));
        result.retry_after = std::max(settings_.segment_ready_delay / 2, milliseconds(500));
        return result;
      }
      if (failed == PlatformErrorClass::kInvalidRequest && response.http_status != 426 &&
          response.http_status != 404) {
        // LinkedIn refused the whole request: every element gets its message, and the run goes on.
        Reason reason{kRequestRejectedCode,
                      "LinkedIn rejected the request: " + response.classification.summary()};
        for (std::size_t index : sendable) results[index] = {RowOutcome::kRejected, reason};
        logger_.log(LogLevel::kWarn, "linkedin", "job {} destination {}: {}: {}", run_.job_id, name_, what,
                    reason.message);
        result.results = std::move(results);
        return result;
      }
      Status status = failure(response, what);
      if (response.sent && response.http_status == 404) {
        status = failed_precondition(status.message() + "; the segment may have been deleted");
      }
      result.transport = status;
      result.retry_after = response.retry_after;
      return result;
    }

    const Json statuses = response.body.is_object() ? response.body.value("elements", Json()) : Json();
    if (!statuses.is_array() || statuses.size() != sendable.size()) {
      result.transport = unavailable(
          fmt::format("destination '{}': {}: LinkedIn returned {} element statuses for {} elements", name_,
                      what, statuses.is_array() ? statuses.size() : 0, sendable.size()));
      return result;
    }
    for (std::size_t k = 0; k < sendable.size(); ++k) {
      const Json& entry = statuses[k];
      const Json status_value = entry.is_object() ? entry.value("status", Json()) : Json();
      int status = status_value.is_number_integer() ? status_value.get<int>() : 0;
      if (status >= 200 && status < 300) continue;
      std::string message;
      if (entry.is_object() && entry.contains("error")) message = json_string(entry["error"], {"message"});
      if (message.empty()) message = "no message";
      results[sendable[k]] = {
          RowOutcome::kRejected,
          Reason{kRejectedCode,
                 fmt::format("LinkedIn rejected the element (status {}): {}", status, message)}};
    }
  }
  result.results = std::move(results);
  return result;
}

Status LinkedInDestination::finish(const DestinationRunSummary& summary) {
  logger_.log(LogLevel::kInfo, "linkedin",
              "job {} destination {}: done with DMP segment {}: {} batches, {} adds and {} removes sent",
              run_.job_id, name_, state_.segment_id, summary.batches, summary.adds_sent,
              summary.removes_sent);
  return Status::ok();
}

}  // namespace

Result<LinkedInSettings> parse_linkedin_settings(
    const DestinationConfig& config, const std::function<Result<std::string>(std::string_view)>& secret) {
  const std::string where = "destination '" + config.name + "'";
  ACT_ASSIGN_OR_RETURN(Json settings, parse_settings_object(config));
  if (config.profile && *config.profile != Platform::kLinkedIn) {
    return invalid_argument(where + ": profile: the linkedin destination needs the linkedin profile, got " +
                            std::string(platform_name(*config.profile)));
  }
  SettingsReader reader(where + ": settings", settings);
  ACT_RETURN_IF_ERROR(
      reader.check_keys({"ad_account_id", "segment_id", "segment_name", "source_platform", "api_version",
                         "max_elements_per_request", "segment_ready_delay_seconds",
                         "segment_ready_timeout_seconds", "maid_id_type", ACT_HTTP_SETTINGS_KEYS}));
  LinkedInSettings out;
  ACT_ASSIGN_OR_RETURN(std::string account, reader.id_text("ad_account_id", ""));
  if (account.rfind(kAccountUrnPrefix, 0) == 0) account.erase(0, std::string_view(kAccountUrnPrefix).size());
  if (!all_digits(account) || account.size() > 20) {
    if (reader.find("ad_account_id") == nullptr) {
      return invalid_argument(where +
                              ": settings.ad_account_id: missing; expected the ad account, such as "
                              "\"urn:li:sponsoredAccount:507404993\" or \"507404993\"");
    }
    return reader.error("ad_account_id", "an ad account such as \"urn:li:sponsoredAccount:507404993\"",
                        *reader.find("ad_account_id"));
  }
  out.ad_account_id = account;
  ACT_RETURN_IF_ERROR(parse_segment(reader, out));
  ACT_RETURN_IF_ERROR(parse_limits(reader, out));
  ACT_ASSIGN_OR_RETURN(out.http, parse_http_settings(reader, "linkedin", kDefaultBaseUrl));

  ACT_RETURN_IF_ERROR(
      check_secret_names(config, {"access_token"}, {{"access_token", "LINKEDIN_ACCESS_TOKEN"}}));
  out.access_token_variable = config.secret_env.at("access_token");
  if (!secret) return internal_error(where + ": no secret reader was given to the linkedin adapter");
  ACT_ASSIGN_OR_RETURN(out.access_token, secret("access_token"));
  return out;
}

ResponseClassification classify_linkedin_response(const HttpResponse& response) {
  ResponseClassification out = classify_http_response(response);
  if (out.ok()) return out;
  Json body = Json::parse(response.body, nullptr, false);
  if (!body.is_object()) {
    if (!response.body.empty() && response.body.front() == '<') out.message += " (an HTML page, not JSON)";
    return out;
  }
  if (auto code = body.find("serviceErrorCode"); code != body.end() && code->is_number_integer()) {
    out.code = code->get<std::int64_t>();
  }
  out.error_type = json_string(body, {"code"});
  std::string message = json_string(body, {"message"});
  if (!message.empty()) out.message = out.error_type.empty() ? message : out.error_type + ": " + message;
  // 65600 and 65601 (an invalid and a revoked access token) come with HTTP 401, which is auth already.
  return out;
}

Json render_element(const MemberOperation& operation, const std::string& maid_id_type) {
  Json user_ids = Json::array();
  Json element = {{"action", operation.type == OperationType::kAdd ? "ADD" : "REMOVE"}};
  for (const WireIdentifier& identifier : operation.identifiers) {
    switch (identifier.field) {
      case Field::kEmail:
        user_ids.push_back({{"idType", "SHA256_EMAIL"}, {"idValue", identifier.value}});
        break;
      case Field::kMaid: user_ids.push_back({{"idType", maid_id_type}, {"idValue", identifier.value}}); break;
      case Field::kFirstName:
        if (!element.contains("firstName")) element["firstName"] = identifier.value;
        break;
      case Field::kLastName:
        if (!element.contains("lastName")) element["lastName"] = identifier.value;
        break;
      case Field::kCountry:
        if (!element.contains("country")) element["country"] = identifier.value;
        break;
      default: break;
    }
  }
  bool named = element.contains("firstName") && element.contains("lastName");
  if (user_ids.empty() && !named) return nullptr;
  element["userIds"] = std::move(user_ids);
  return element;
}

Result<std::unique_ptr<DestinationAdapter>> make_linkedin_destination(
    const DestinationConfig& config, const DestinationEnvironment& environment) {
  ACT_ASSIGN_OR_RETURN(LinkedInSettings settings, parse_linkedin_settings(config, environment.secret));
  return std::unique_ptr<DestinationAdapter>(
      std::make_unique<LinkedInDestination>(config.name, std::move(settings), environment.logger));
}

}  // namespace activation::platforms::linkedin
