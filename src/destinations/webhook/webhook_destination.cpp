// The webhook adapter. A batch is one signed POST. A 2xx response accepts every operation except
// those the receiver lists in "rejected". A 4xx response other than 401, 403, 408 and 429 rejects
// every operation with the receiver's message.
#include "destinations/webhook/webhook_destination.hpp"

#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "platforms/common/platform_client.hpp"

namespace activation::destinations {
namespace {

using Json = nlohmann::json;
using platforms::PlatformClient;
using platforms::PlatformResponse;

constexpr std::size_t kDefaultMembersPerRequest = 1'000;
constexpr std::size_t kMaxMembersPerRequest = 100'000;
constexpr const char* kRejectedCode = "webhook_rejected";

struct WebhookSettings {
  std::size_t max_members_per_request = kDefaultMembersPerRequest;
  platforms::HttpSettings http;  // base_url is the receiver's URL.
  Platform profile = Platform::kMeta;
  std::string signing_secret;
  std::string signing_secret_variable;
};

std::string identifier_key(const WireIdentifier& identifier) {
  std::string key(field_name(identifier.field));
  switch (identifier.part) {
    case DatePart::kWhole: break;
    case DatePart::kYear: key += "_year"; break;
    case DatePart::kMonth: key += "_month"; break;
    case DatePart::kDay: key += "_day"; break;
  }
  return key;
}

Result<WebhookSettings> parse_webhook_settings(
    const DestinationConfig& config, const std::function<Result<std::string>(std::string_view)>& secret) {
  const std::string where = "destination '" + config.name + "'";
  ACT_ASSIGN_OR_RETURN(Json settings, platforms::parse_settings_object(config));
  platforms::SettingsReader reader(where + ": settings", settings);
  ACT_RETURN_IF_ERROR(
      reader.check_keys({"url", "max_members_per_request", "timeout_seconds", "max_throttle_wait_seconds",
                         "rate_limit", "circuit_breaker", "ca_file", "proxy", "no_proxy"}));
  WebhookSettings out;
  if (reader.find("url") == nullptr) {
    return invalid_argument(where +
                            ": settings.url: missing; expected the receiver's URL, such as "
                            "\"https://hooks.example.com/audiences\"");
  }
  ACT_ASSIGN_OR_RETURN(std::string url, reader.text("url", ""));
  ACT_ASSIGN_OR_RETURN(std::int64_t members,
                       reader.integer("max_members_per_request", kDefaultMembersPerRequest, 1,
                                      static_cast<std::int64_t>(kMaxMembersPerRequest)));
  out.max_members_per_request = static_cast<std::size_t>(members);

  // parse_http_settings() reads the URL from "base_url", which a webhook calls "url".
  Json http = settings;
  http.erase("url");
  http.erase("max_members_per_request");
  http["base_url"] = url;
  platforms::SettingsReader http_reader(where + ": settings", http);
  RateLimitPolicy fallback;
  fallback.algorithm = RateLimitAlgorithm::kTokenBucket;
  fallback.rate_per_second = 20;
  fallback.burst = 5;
  auto parsed = platforms::parse_http_settings(http_reader, "webhook", url, fallback);
  if (!parsed.is_ok()) {
    std::string message = parsed.status().message();
    // The reader names the key it was given; the user wrote "url".
    if (auto at = message.find("settings.base_url"); at != std::string::npos)
      message.replace(at, 17, "settings.url");
    return Status(parsed.status().code(), message);
  }
  out.http = std::move(*parsed);
  out.profile = config.profile.value_or(Platform::kMeta);

  ACT_RETURN_IF_ERROR(platforms::check_secret_names(config, {"signing_secret"},
                                                    {{"signing_secret", "WEBHOOK_SIGNING_SECRET"}}));
  out.signing_secret_variable = config.secret_env.at("signing_secret");
  if (!secret) return internal_error(where + ": no secret reader was given to the webhook adapter");
  ACT_ASSIGN_OR_RETURN(out.signing_secret, secret("signing_secret"));
  if (out.signing_secret.empty()) {
    return invalid_argument(where + ": secrets.signing_secret: the environment variable " +
                            out.signing_secret_variable + " is empty; a signature needs a key");
  }
  return out;
}

class WebhookDestination final : public DestinationAdapter {
 public:
  WebhookDestination(std::string name, WebhookSettings settings, Logger logger)
      : name_(std::move(name)), settings_(std::move(settings)), logger_(std::move(logger)) {}

  Platform profile() const override { return settings_.profile; }
  std::size_t max_batch_size() const override { return settings_.max_members_per_request; }

  Status begin(const DestinationRun& run) override {
    run_ = run;
    if (run.mode == SyncMode::kReplace) {
      return invalid_argument("destination '" + name_ +
                              "': the webhook destination has no full replace; use mode mirror, which sends "
                              "removes for the members that left the source");
    }
    if (!client_) {
      platforms::PlatformClientOptions options;
      options.platform = "webhook";
      options.label = "the webhook receiver";
      options.destination = name_;
      options.account = "webhook";
      options.http = settings_.http;
      options.logger = logger_;
      ACT_ASSIGN_OR_RETURN(client_, PlatformClient::create(std::move(options)));
    }
    logger_.log(LogLevel::kInfo, "webhook", "job {} destination {}: {} to {}{}", run.job_id, name_,
                sync_mode_name(run.mode), redact_url(settings_.http.base_url),
                run.resumed ? " (resumed)" : "");
    return Status::ok();
  }

  BatchResult send(const Batch& batch) override;

  Status finish(const DestinationRunSummary& summary) override {
    logger_.log(LogLevel::kInfo, "webhook",
                "job {} destination {}: done: {} batches, {} adds and {} removes sent", run_.job_id, name_,
                summary.batches, summary.adds_sent, summary.removes_sent);
    return Status::ok();
  }

 private:
  std::string render(const Batch& batch) const;

  const std::string name_;
  const WebhookSettings settings_;
  const Logger logger_;
  std::unique_ptr<PlatformClient> client_;
  DestinationRun run_;
};

std::string WebhookDestination::render(const Batch& batch) const {
  Json operations = Json::array();
  for (const MemberOperation& operation : batch.operations) {
    Json identifiers = Json::object();
    for (const WireIdentifier& identifier : operation.identifiers) {
      identifiers[identifier_key(identifier)].push_back(identifier.value);
    }
    operations.push_back({{"type", operation_type_name(operation.type)},
                          {"member_key", operation.member_key},
                          {"line", operation.line},
                          {"identifiers", std::move(identifiers)}});
  }
  // The delivery id repeats when a batch is sent again, so a receiver can drop the repeat.
  Json body = {{"delivery_id", fmt::format("{}.{}.{}", run_.job_id, name_, batch.number)},
               {"job_id", run_.job_id},
               {"destination", name_},
               {"audience", run_.audience},
               {"mode", sync_mode_name(run_.mode)},
               {"batch", batch.number},
               {"profile", platform_name(settings_.profile)},
               {"operations", std::move(operations)}};
  return body.dump();
}

BatchResult WebhookDestination::send(const Batch& batch) {
  BatchResult result;
  std::string body = render(batch);
  std::int64_t timestamp =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();

  HttpRequest request;
  request.method = HttpMethod::kPost;
  request.url = settings_.http.base_url;
  request.headers = {{"Content-Type", "application/json"},
                     {"Accept", "application/json"},
                     {kWebhookTimestampHeader, std::to_string(timestamp)},
                     {kWebhookSignatureHeader, webhook_signature(settings_.signing_secret, timestamp, body)},
                     {kWebhookDeliveryHeader, fmt::format("{}.{}.{}", run_.job_id, name_, batch.number)}};
  request.body = std::move(body);
  PlatformResponse response = client_->call(std::move(request));
  std::string what = fmt::format("sending batch {} ({} operations)", batch.number, batch.operations.size());
  std::vector<OperationResult> results(batch.operations.size());

  if (!response.ok()) {
    if (response.error_class() == PlatformErrorClass::kInvalidRequest) {
      std::string message = platforms::json_string(response.body, {"error", "message"});
      Reason reason{kRejectedCode,
                    fmt::format("the webhook receiver rejected the batch: {}{}",
                                response.classification.summary(), message.empty() ? "" : ": " + message)};
      for (auto& row : results) row = {RowOutcome::kRejected, reason};
      logger_.log(LogLevel::kWarn, "webhook", "job {} destination {}: {}: {}", run_.job_id, name_, what,
                  reason.message);
      result.results = std::move(results);
      return result;
    }
    std::string hint = "the signing secret in the environment variable " + settings_.signing_secret_variable +
                       " (secret signing_secret)";
    result.transport = client_->failure_status(response, what, hint);
    result.retry_after = response.retry_after;
    return result;
  }

  if (response.body.is_object() && response.body.contains("rejected") &&
      response.body["rejected"].is_array()) {
    for (const Json& entry : response.body["rejected"]) {
      if (!entry.is_object() || !entry.value("index", Json()).is_number_unsigned()) continue;
      std::size_t index = entry["index"].get<std::size_t>();
      if (index >= results.size()) continue;
      std::string reason = platforms::json_string(entry, {"reason"});
      results[index] = {
          RowOutcome::kRejected,
          Reason{kRejectedCode, "the webhook receiver rejected the member: " +
                                    (reason.empty() ? std::string("no reason given") : reason)}};
    }
  }
  result.results = std::move(results);
  return result;
}

}  // namespace

std::string webhook_signature(std::string_view secret, std::int64_t timestamp, std::string_view body) {
  std::string message = std::to_string(timestamp);
  message += '.';
  message.append(body);
  return "v1=" + platforms::hmac_sha256(secret, message);
}

Result<std::unique_ptr<DestinationAdapter>> make_webhook_destination(
    const DestinationConfig& config, const DestinationEnvironment& environment) {
  ACT_ASSIGN_OR_RETURN(WebhookSettings settings, parse_webhook_settings(config, environment.secret));
  return std::unique_ptr<DestinationAdapter>(
      std::make_unique<WebhookDestination>(config.name, std::move(settings), environment.logger));
}

}  // namespace activation::destinations
