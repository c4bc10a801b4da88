#include "platforms/oauth/oauth_client.hpp"

#include <cctype>
#include <cstdio>
#include <map>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace activation::platforms::oauth {
namespace {

using Json = nlohmann::json;

std::string form_encode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char buffer[4];
      std::snprintf(buffer, sizeof buffer, "%%%02X", c);
      out += buffer;
    }
  }
  return out;
}

bool is_loopback_url(std::string_view url) {
  std::size_t start = url.find("://");
  if (start == std::string_view::npos) return false;
  std::string_view host = url.substr(start + 3);
  for (std::string_view loopback : {"127.0.0.1", "localhost", "[::1]"}) {
    if (host.rfind(loopback, 0) == 0 &&
        (host.size() == loopback.size() || host[loopback.size()] == ':' || host[loopback.size()] == '/')) {
      return true;
    }
  }
  return false;
}

// Returns the endpoint's `error` and `error_description` as one line. The body of a response that
// is not an OAuth error (an HTML page of a proxy) is left out, because it can be long.
std::string describe(const HttpResponse& response, std::string* error_code) {
  Json body = Json::parse(response.body, nullptr, false);
  std::string code;
  std::string description;
  if (body.is_object()) {
    auto error = body.find("error");
    if (error != body.end() && error->is_string()) code = error->get<std::string>();
    // Some endpoints nest a Google-style envelope: {"error": {"status": ..., "message": ...}}.
    if (error != body.end() && error->is_object()) {
      code = error->value("status", std::string());
      description = error->value("message", std::string());
    }
    auto text = body.find("error_description");
    if (text != body.end() && text->is_string()) description = text->get<std::string>();
  }
  if (error_code != nullptr) *error_code = code;
  std::string out = code.empty() ? "no OAuth error code" : code;
  if (!description.empty()) out += ": " + description;
  return fmt::format("{} [HTTP {}]", out, response.status);
}

}  // namespace

OAuthClient::OAuthClient(OAuthSettings settings, const Logger& logger, std::unique_ptr<Transport> transport)
    : settings_(std::move(settings)), logger_(logger), transport_(std::move(transport)) {}

Result<std::unique_ptr<OAuthClient>> OAuthClient::create(OAuthSettings settings, const Logger& logger) {
  const std::string where = "destination '" + settings.destination + "'";
  const std::string& url = settings.token_url;
  if (url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0) {
    return invalid_argument(
        fmt::format("{}: settings.token_url: expected an http:// or https:// URL, got \"{}\"", where, url));
  }
  const std::pair<const std::string*, const char*> required[] = {
      {&settings.client_id, "client_id"},
      {&settings.client_secret, "client_secret"},
      {&settings.refresh_token, "refresh_token"},
  };
  for (const auto& [value, name] : required) {
    if (value->empty())
      return invalid_argument(fmt::format("{}: secrets.{}: the value is empty", where, name));
  }
  if (!settings.clock) settings.clock = real_clock();
  if (settings.refresh_margin.count() < 0) settings.refresh_margin = std::chrono::seconds(0);

  CurlTransportOptions options = settings.transport;
  if (options.no_proxy.empty() && is_loopback_url(url)) options.no_proxy = "127.0.0.1,localhost,::1";
  options.logger = logger;
  auto transport = make_curl_transport(std::move(options));
  if (!transport.is_ok()) {
    return Status(transport.status().code(),
                  where + ": OAuth token endpoint: " + transport.status().message());
  }
  return std::unique_ptr<OAuthClient>(new OAuthClient(std::move(settings), logger, std::move(*transport)));
}

Result<std::string> OAuthClient::access_token() {
  // The lock is held across the request, so that callers who find no valid token wait for one
  // refresh instead of each sending their own.
  std::lock_guard lock(mutex_);
  Clock::TimePoint now = settings_.clock->now();
  if (cached_ && cached_->expires_at - settings_.refresh_margin > now) return cached_->value;

  ACT_ASSIGN_OR_RETURN(AccessToken token, request_token());
  cached_ = token;
  ++refresh_count_;
  auto lifetime = std::chrono::duration_cast<std::chrono::seconds>(token.expires_at - now);
  logger_.log(LogLevel::kInfo, "oauth", "destination {}: new {} access token, valid for {} s",
              settings_.destination, settings_.platform, lifetime.count());
  return token.value;
}

bool OAuthClient::invalidate(std::string_view rejected_token) {
  std::lock_guard lock(mutex_);
  if (!cached_ || cached_->value != rejected_token) return false;
  cached_.reset();
  logger_.log(LogLevel::kInfo, "oauth",
              "destination {}: {} rejected the access token; a new one will be fetched",
              settings_.destination, settings_.platform);
  return true;
}

std::int64_t OAuthClient::refresh_count() const {
  std::lock_guard lock(mutex_);
  return refresh_count_;
}

Result<AccessToken> OAuthClient::request_token() {
  HttpRequest request;
  request.method = HttpMethod::kPost;
  request.url = settings_.token_url;
  request.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
  request.headers.push_back({"Accept", "application/json"});
  // Tokens are fetched about once an hour, and a process-wide client would otherwise hold an idle
  // keep-alive connection to the endpoint for the life of the process.
  request.headers.push_back({"Connection", "close"});
  request.body = "grant_type=refresh_token&refresh_token=" + form_encode(settings_.refresh_token) +
                 "&client_id=" + form_encode(settings_.client_id) +
                 "&client_secret=" + form_encode(settings_.client_secret);
  if (!settings_.scope.empty()) request.body += "&scope=" + form_encode(settings_.scope);

  Clock::TimePoint sent_at = settings_.clock->now();
  HttpResult result = transport_->send(request);
  const std::string prefix = fmt::format("destination '{}': refreshing the {} access token at {}",
                                         settings_.destination, settings_.platform, settings_.token_url);
  if (!result.has_response()) {
    Status status = result.status();
    return Status(status.code(), prefix + " failed: " + result.error().message);
  }
  const HttpResponse& response = result.response();
  if (response.status < 200 || response.status > 299) return endpoint_failure(response);

  Json body = Json::parse(response.body, nullptr, false);
  if (!body.is_object() || !body.contains("access_token") || !body["access_token"].is_string() ||
      body["access_token"].get<std::string>().empty()) {
    return invalid_argument(prefix + ": the response contains no access_token");
  }
  std::chrono::seconds lifetime = settings_.default_lifetime;
  auto expires_in = body.find("expires_in");
  // Some endpoints send expires_in as a string of digits.
  if (expires_in != body.end() && expires_in->is_number()) {
    lifetime = std::chrono::seconds(expires_in->get<std::int64_t>());
  } else if (expires_in != body.end() && expires_in->is_string()) {
    try {
      lifetime = std::chrono::seconds(std::stoll(expires_in->get<std::string>()));
    } catch (const std::exception&) {
      return invalid_argument(prefix + ": expires_in is not a number of seconds");
    }
  }
  // The lifetime counts from when the endpoint issued the token, which is no earlier than when the
  // request left.
  return AccessToken{body["access_token"].get<std::string>(), sent_at + lifetime};
}

Status OAuthClient::endpoint_failure(const HttpResponse& response) const {
  std::string code;
  std::string summary = describe(response, &code);
  const std::string prefix = fmt::format("destination '{}': refreshing the {} access token at {}",
                                         settings_.destination, settings_.platform, settings_.token_url);
  if (code == "invalid_grant") {
    return Status(
        StatusCode::kUnauthenticated,
        fmt::format("{} failed: {} rejected the refresh token ({}). Authorize the app again and put the "
                    "new refresh token in the environment variable {} (secret refresh_token), then "
                    "retry the job",
                    prefix, settings_.platform, summary, settings_.refresh_token_variable));
  }
  if (code == "invalid_client" || code == "unauthorized_client") {
    return Status(
        StatusCode::kUnauthenticated,
        fmt::format("{} failed: {} rejected the OAuth client ({}). Check the environment variables {} "
                    "(secret client_id) and {} (secret client_secret), then retry the job",
                    prefix, settings_.platform, summary, settings_.client_id_variable,
                    settings_.client_secret_variable));
  }
  if (response.status == 429) {
    return Status(StatusCode::kResourceExhausted, prefix + " was throttled: " + summary);
  }
  if (response.status >= 500 || response.status == 408) {
    return unavailable(prefix + " failed on the endpoint's side: " + summary);
  }
  if (response.status == 401 || response.status == 403) {
    return Status(
        StatusCode::kUnauthenticated,
        fmt::format("{} failed: {}. Check the secrets in the environment variables {}, {} and {}, then "
                    "retry the job",
                    prefix, summary, settings_.client_id_variable, settings_.client_secret_variable,
                    settings_.refresh_token_variable));
  }
  return invalid_argument(prefix + " failed: " + summary);
}

Result<std::shared_ptr<OAuthClient>> shared_oauth_client(const OAuthSettings& settings,
                                                         const Logger& logger) {
  using Key = std::tuple<std::string, std::string, std::string, std::string>;
  static std::mutex mutex;
  static auto* clients = new std::map<Key, std::shared_ptr<OAuthClient>>();

  Key key{settings.destination, settings.token_url, settings.client_id, settings.refresh_token};
  std::lock_guard lock(mutex);
  auto found = clients->find(key);
  if (found != clients->end()) return found->second;
  ACT_ASSIGN_OR_RETURN(std::unique_ptr<OAuthClient> created, OAuthClient::create(settings, logger));
  std::shared_ptr<OAuthClient> shared = std::move(created);
  clients->emplace(std::move(key), shared);
  return shared;
}

}  // namespace activation::platforms::oauth
