// The request pipeline of the Meta emulator: faults, parsing, authentication, throttling, routing,
// and the usage headers. The audience and upload handlers are in meta_audiences.cpp.
#include "meta_emulator.hpp"

#include <algorithm>
#include <cctype>
#include <thread>

namespace platform_server {

namespace {

// Graph API paths, with or without a version segment such as "v24.0".
constexpr const char* kVersion = R"(/meta(?:/v(\d+)\.\d+)?)";

std::string upper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::toupper(c); });
  return text;
}

std::string endpoint_name(MetaEmulator::Endpoint endpoint) {
  switch (endpoint) {
    case MetaEmulator::Endpoint::kAccountAudiences: return "customaudiences";
    case MetaEmulator::Endpoint::kUsersOfAnyAudience: return "usersofanyaudience";
    case MetaEmulator::Endpoint::kUsers: return "users";
    case MetaEmulator::Endpoint::kUsersReplace: return "usersreplace";
    case MetaEmulator::Endpoint::kSessions: return "sessions";
    case MetaEmulator::Endpoint::kAudience: return "audience";
  }
  return "unknown";
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char difference = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    difference |= static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(a[i])) ^
                                             std::tolower(static_cast<unsigned char>(b[i])));
  }
  return difference == 0;
}

}  // namespace

MetaEmulator::MetaEmulator(ServerCore& core) : core_(core) {}

void MetaEmulator::register_routes(httplib::Server& server) {
  struct Route {
    std::string pattern;
    Endpoint endpoint;
  };
  const std::string prefix = kVersion;
  const std::vector<Route> routes = {
      {prefix + R"(/act_(\d+)/customaudiences)", Endpoint::kAccountAudiences},
      {prefix + R"(/act_(\d+)/usersofanyaudience)", Endpoint::kUsersOfAnyAudience},
      {prefix + R"(/(\d+)/users)", Endpoint::kUsers},
      {prefix + R"(/(\d+)/usersreplace)", Endpoint::kUsersReplace},
      {prefix + R"(/(\d+)/sessions)", Endpoint::kSessions},
      {prefix + R"(/(\d+))", Endpoint::kAudience},
  };

  for (const Route& route : routes) {
    Endpoint endpoint = route.endpoint;
    server.Get(route.pattern, [this, endpoint](const httplib::Request& request, httplib::Response& response) {
      serve(request, response, nullptr, endpoint);
    });
    server.Post(route.pattern, [this, endpoint](const httplib::Request& request, httplib::Response& response,
                                                const httplib::ContentReader& reader) {
      serve(request, response, &reader, endpoint);
    });
    server.Delete(route.pattern,
                  [this, endpoint](const httplib::Request& request, httplib::Response& response,
                                   const httplib::ContentReader& reader) {
                    serve(request, response, &reader, endpoint);
                  });
  }
}

void MetaEmulator::serve(const httplib::Request& request, httplib::Response& response,
                         const httplib::ContentReader* reader, Endpoint endpoint) {
  core_.note_connection(request);
  FaultPlan plan = core_.draw_faults("meta");
  if (plan.latency.count() > 0) std::this_thread::sleep_for(plan.latency);

  // The body is read in every case, so that a fault injected before the request is applied
  // still leaves the connection in a clean state for keep-alive.
  Call call;
  call.http = &request;
  std::string problem = read_request(request, reader, call.data);

  if (plan.kind != FaultKind::kNone && !plan.after_apply) {
    inject_fault(plan, request, response, "");
    return;
  }

  Reply reply = problem.empty() ? dispatch(request, call, endpoint)
                                : error(400, 100, std::nullopt, "GraphMethodException", "(#100) " + problem);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++requests_by_endpoint_[endpoint_name(endpoint)];
    if (reply.status >= 400 && reply.body.contains("error")) {
      ++errors_by_code_[std::to_string(reply.body["error"].value("code", 0))];
    }
  }

  if (plan.kind != FaultKind::kNone) {
    inject_fault(plan, request, response, reply.account);
    return;
  }
  send(response, reply);
}

MetaEmulator::Reply MetaEmulator::dispatch(const httplib::Request& request, Call& call, Endpoint endpoint) {
  call.method = request.method;
  auto override_it = call.data.params.find("method");
  if (request.method == "POST" && override_it != call.data.params.end() && override_it->second.is_string() &&
      upper(override_it->second.get<std::string>()) == "DELETE") {
    call.method = "DELETE";
  }
  call.api_version = request.matches.size() > 1 ? std::string(request.matches[1]) : std::string();

  int minimum = core_.options().min_api_version;
  // The route's pattern admits only digits; more than six of them is a version far in the future.
  bool older =
      !call.api_version.empty() && call.api_version.size() <= 6 && std::stoi(call.api_version) < minimum;
  if (minimum > 0 && older) {
    return error(400, 2635, std::nullopt, "OAuthException",
                 "(#2635) API version v" + call.api_version + ".0 is deprecated; use v" +
                     std::to_string(minimum) + ".0 or newer.");
  }
  if (auto failure = authenticate(call)) return *failure;

  std::string id = request.matches.size() > 2 ? std::string(request.matches[2]) : std::string();
  std::lock_guard<std::mutex> lock(mutex_);

  // Account-level endpoints.
  if (endpoint == Endpoint::kAccountAudiences || endpoint == Endpoint::kUsersOfAnyAudience) {
    std::string account = "act_" + id;
    WindowCheck check = core_.admit_request("meta:" + account);
    if (!check.allowed) return throttle_error(account, check);
    Reply reply;
    if (endpoint == Endpoint::kAccountAudiences && call.method == "GET") {
      reply = list_audiences(account, call);
    } else if (endpoint == Endpoint::kAccountAudiences && call.method == "POST") {
      reply = create_audience(account, call);
    } else if (endpoint == Endpoint::kUsersOfAnyAudience && call.method == "DELETE") {
      reply = remove_from_all(account, call);
    } else {
      reply = error(400, 100, std::nullopt, "GraphMethodException",
                    "Unsupported " + call.method + " request on " + endpoint_name(endpoint));
    }
    reply.account = account;
    return reply;
  }

  // Audience-level endpoints.
  auto it = audiences_.find(id);
  bool uploads = endpoint == Endpoint::kUsers || endpoint == Endpoint::kUsersReplace;
  if (it == audiences_.end() || (it->second.deleted && !uploads)) {
    return error(
        400, 100, 33, "GraphMethodException",
        "Unsupported " + call.method + " request: object '" + id +
            "' does not exist, is not accessible with this token, or does not support this operation.");
  }
  Audience& audience = it->second;
  if (audience.deleted) {
    Reply reply =
        error(400, 100, 1487366, "OAuthException", "(#100) The custom audience " + id + " has been deleted.");
    reply.account = audience.account;
    return reply;
  }
  expire_replace_if_due(audience);

  WindowCheck check = core_.admit_request("meta:" + audience.account);
  if (!check.allowed) return throttle_error(audience.account, check);

  Reply reply;
  if (endpoint == Endpoint::kUsers && call.method == "POST") {
    reply = upload_users(audience, call, "add");
  } else if (endpoint == Endpoint::kUsers && call.method == "DELETE") {
    reply = upload_users(audience, call, "remove");
  } else if (endpoint == Endpoint::kUsersReplace && call.method == "POST") {
    reply = replace_users(audience, call);
  } else if (endpoint == Endpoint::kSessions && call.method == "GET") {
    reply = list_sessions(audience, call);
  } else if (endpoint == Endpoint::kAudience && call.method == "GET") {
    reply = read_audience(audience, call);
  } else if (endpoint == Endpoint::kAudience && call.method == "DELETE") {
    reply = delete_audience(audience);
  } else {
    reply = error(400, 100, std::nullopt, "GraphMethodException",
                  "Unsupported " + call.method + " request on " + endpoint_name(endpoint));
  }
  reply.account = audience.account;
  return reply;
}

// The token may come as an Authorization header ("Bearer" or "OAuth") or as the access_token
// parameter in the query string, a form or multipart field, or the JSON body.
std::optional<MetaEmulator::Reply> MetaEmulator::authenticate(Call& call) {
  const ServerOptions& options = core_.options();
  std::string token;
  std::string authorization = call.http->get_header_value("Authorization");
  for (const char* scheme : {"Bearer ", "OAuth "}) {
    std::string prefix(scheme);
    if (authorization.size() > prefix.size() && authorization.compare(0, prefix.size(), prefix) == 0) {
      token = authorization.substr(prefix.size());
      call.token_via = "bearer";
    }
  }
  auto param = call.data.params.find("access_token");
  if (token.empty() && param != call.data.params.end() && param->second.is_string()) {
    token = param->second.get<std::string>();
    call.token_via = call.data.sources["access_token"];
  }

  if (token.empty()) {
    return error(400, 104, std::nullopt, "OAuthException", "An access token is required for this request.");
  }
  bool known = options.tokens.empty() ||
               std::find(options.tokens.begin(), options.tokens.end(), token) != options.tokens.end();
  if (!known) {
    return error(400, 190, std::nullopt, "OAuthException",
                 "The access token is not valid: it could not be parsed.");
  }
  std::int64_t uses = core_.count_token_use(token);
  if (options.token_expire_after > 0 && uses > options.token_expire_after) {
    return error(400, 190, 463, "OAuthException",
                 "The access token has expired: the test server expires it after " +
                     std::to_string(options.token_expire_after) + " requests.");
  }

  if (options.app_secret.empty()) return std::nullopt;
  auto proof = call.data.params.find("appsecret_proof");
  if (proof == call.data.params.end() || !proof->second.is_string()) {
    return error(400, 100, std::nullopt, "GraphMethodException",
                 "This app requires an appsecret_proof parameter with every server call.");
  }
  // Two variants are in use: HMAC of the token, and HMAC of "token|time" sent with appsecret_time.
  std::string message = token;
  auto time = call.data.params.find("appsecret_time");
  if (time != call.data.params.end()) {
    std::string value = time->second.is_string() ? time->second.get<std::string>() : time->second.dump();
    message += "|" + value;
  }
  if (!constant_time_equal(proof->second.get<std::string>(), hmac_sha256_hex(options.app_secret, message))) {
    return error(400, 100, std::nullopt, "GraphMethodException",
                 "The appsecret_proof parameter does not match the access token.");
  }
  return std::nullopt;
}

MetaEmulator::Reply MetaEmulator::error(int status, int code, std::optional<std::int64_t> subcode,
                                        const std::string& type, const std::string& message, bool transient) {
  Json envelope = {{"message", message},
                   {"type", type},
                   {"code", code},
                   {"is_transient", transient},
                   {"fbtrace_id", core_.next_trace_id()}};
  if (subcode) envelope["error_subcode"] = *subcode;
  Reply reply;
  reply.status = status;
  reply.body = Json{{"error", envelope}};
  return reply;
}

MetaEmulator::Reply MetaEmulator::throttle_error(const std::string& account, const WindowCheck& check) {
  Reply reply;
  switch (core_.options().throttle_code) {
    case 4:
      reply =
          error(400, 4, 1504022, "OAuthException", "(#4) The app's request limit has been reached.", true);
      break;
    case 17:
      reply =
          error(400, 17, 2446079, "OAuthException", "(#17) The user's request limit has been reached.", true);
      break;
    case 613:
      reply = error(400, 613, 1487742, "OAuthException",
                    "(#613) Too many calls to this API: the rate limit is exceeded.", true);
      break;
    default:
      reply = error(
          400, 80003, 2446079, "OAuthException",
          "(#80003) Too many calls to the custom audience endpoints of this ad account; wait and try again.",
          true);
      break;
  }
  reply.account = account;
  reply.throttle = check;
  return reply;
}

void MetaEmulator::inject_fault(const FaultPlan& plan, const httplib::Request& request,
                                httplib::Response& response, const std::string& account) {
  core_.count_fault("meta", plan);
  switch (plan.kind) {
    case FaultKind::kNone: return;
    case FaultKind::kDrop:
      core_.drop_connection(request);
      response.status = 500;
      response.set_content("", "text/plain");
      return;
    case FaultKind::kHtml5xx:
      send_html_error(response, plan.status);
      add_usage_headers(response, account, nullptr);
      return;
    case FaultKind::kJson5xx: {
      Reply reply = plan.status == 503
                        ? error(503, 2, std::nullopt, "OAuthException",
                                "(#2) The service is temporarily unavailable.", true)
                        : error(plan.status, 1, std::nullopt, "OAuthException",
                                "An unexpected error occurred. Please retry your request later.", true);
      reply.account = account;
      send(response, reply);
      return;
    }
  }
}

void MetaEmulator::send(httplib::Response& response, const Reply& reply) {
  response.status = reply.status;
  add_usage_headers(response, reply.account, reply.throttle ? &*reply.throttle : nullptr);
  response.set_content(reply.body.dump(), "application/json; charset=UTF-8");
}

// X-App-Usage goes on every response. X-Business-Use-Case-Usage goes on every response that
// concerns an ad account, keyed by the account's numeric id, with one custom_audience entry.
void MetaEmulator::add_usage_headers(httplib::Response& response, const std::string& account,
                                     const WindowCheck* throttled) {
  const ServerOptions& options = core_.options();
  WindowCheck window = throttled != nullptr
                           ? *throttled
                           : (account.empty() ? WindowCheck{} : core_.peek_window("meta:" + account));
  int percent = static_cast<int>(std::min(100.0, window.usage_percent));
  if (throttled != nullptr) percent = 100;
  std::int64_t regain_minutes =
      throttled != nullptr ? std::max<std::int64_t>(1, (window.regain.count() + 59'999) / 60'000) : 0;

  // The app-wide figures follow the account's when the configured throttle is an app or user
  // limit (codes 4 and 17). Otherwise the app is shown far from its limit.
  bool app_limit = options.throttle_code == 4 || options.throttle_code == 17;
  int app_percent = app_limit ? percent : percent / 10;
  Json app = {
      {"call_count", app_percent}, {"total_cputime", app_percent / 2}, {"total_time", app_percent / 2}};
  response.set_header("X-App-Usage", app.dump());

  if (account.empty()) return;
  std::string account_id = account.substr(account.find('_') + 1);
  Json entry = {{"type", "custom_audience"},
                {"call_count", percent},
                {"total_cputime", percent / 2},
                {"total_time", percent / 2},
                {"estimated_time_to_regain_access", regain_minutes},
                {"ads_api_access_tier", "standard_access"}};
  response.set_header("X-Business-Use-Case-Usage", Json{{account_id, Json::array({entry})}}.dump());
}

Json MetaEmulator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Json out;
  out["audiences"] = audiences_.size();
  out["sessions"] = sessions_.size();
  out["requests_by_endpoint"] = requests_by_endpoint_;
  out["errors_by_code"] = errors_by_code_;
  return out;
}

void MetaEmulator::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  audiences_.clear();
  audience_order_.clear();
  sessions_.clear();
  next_audience_ = 1;
  next_auto_session_ = 1;
  requests_by_endpoint_.clear();
  errors_by_code_.clear();
}

}  // namespace platform_server
