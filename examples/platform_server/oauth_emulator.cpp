#include "oauth_emulator.hpp"

namespace platform_server {

namespace {

void send_json(httplib::Response& response, int status, const Json& body) {
  response.status = status;
  response.set_header("Cache-Control", "no-store");
  response.set_content(body.dump(), "application/json; charset=utf-8");
}

}  // namespace

OAuthEmulator::OAuthEmulator(ServerCore& core, OAuthOptions options)
    : core_(core), initial_(options), options_(std::move(options)) {}

void OAuthEmulator::register_routes(httplib::Server& server) {
  server.Post("/oauth2/token", [this](const httplib::Request& request, httplib::Response& response) {
    token(request, response);
  });

  server.Post(
      "/__inspect/oauth/revoke", [this](const httplib::Request& request, httplib::Response& response) {
        Json body = Json::parse(request.body, nullptr, false);
        if (!body.is_object() || !body.contains("refresh_token") || !body["refresh_token"].is_string()) {
          send_json(response, 400, Json{{"error", "expected a JSON body {\"refresh_token\": \"...\"}"}});
          return;
        }
        std::string refresh = body["refresh_token"].get<std::string>();
        std::lock_guard<std::mutex> lock(mutex_);
        options_.revoked_refresh_tokens.insert(refresh);
        std::int64_t revoked = 0;
        for (auto& [token, issued] : issued_) {
          if (issued.refresh_token == refresh && !issued.expired) {
            issued.expired = true;
            ++revoked;
          }
        }
        send_json(response, 200, Json{{"revoked", true}, {"access_tokens_expired", revoked}});
      });

  server.Post("/__inspect/oauth/expire", [this](const httplib::Request&, httplib::Response& response) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::int64_t expired = 0;
    for (auto& [token, issued] : issued_) {
      if (!issued.expired) ++expired;
      issued.expired = true;
    }
    send_json(response, 200, Json{{"access_tokens_expired", expired}});
  });
}

void OAuthEmulator::token(const httplib::Request& request, httplib::Response& response) {
  core_.note_connection(request);
  std::map<std::string, std::string> form;
  parse_form(request.body, form);
  std::lock_guard<std::mutex> lock(mutex_);

  if (form["grant_type"] != "refresh_token") {
    send_json(response, 400,
              Json{{"error", "unsupported_grant_type"},
                   {"error_description", "Invalid grant_type: " + form["grant_type"]}});
    return;
  }
  const std::string& client_id = form["client_id"];
  if (client_id.empty() ||
      (!options_.clients.empty() &&
       (options_.clients.count(client_id) == 0 || options_.clients[client_id] != form["client_secret"]))) {
    ++invalid_clients_;
    send_json(response, 401,
              Json{{"error", "invalid_client"}, {"error_description", "The OAuth client was not found."}});
    return;
  }
  const std::string& refresh = form["refresh_token"];
  if (refresh.empty() || options_.revoked_refresh_tokens.count(refresh) != 0) {
    ++invalid_grants_;
    send_json(response, 400,
              Json{{"error", "invalid_grant"}, {"error_description", "Token has been expired or revoked."}});
    return;
  }

  std::string access = "ya29.test-" + std::to_string(next_token_++);
  issued_[access] = Issued{refresh, std::chrono::steady_clock::now() + options_.token_lifetime, 0, false};
  ++refreshes_;
  send_json(response, 200,
            Json{{"access_token", access},
                 {"expires_in", options_.token_lifetime.count()},
                 {"scope",
                  form.count("scope") != 0 ? form["scope"] : "https://www.googleapis.com/auth/datamanager"},
                 {"token_type", "Bearer"}});
}

TokenCheck OAuthEmulator::check_access_token(const std::string& authorization_header) {
  const std::string prefix = "Bearer ";
  if (authorization_header.size() <= prefix.size() ||
      authorization_header.compare(0, prefix.size(), prefix) != 0)
    return TokenCheck::kMissing;
  std::string token = authorization_header.substr(prefix.size());
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = issued_.find(token);
  if (found == issued_.end()) return TokenCheck::kUnknown;
  Issued& issued = found->second;
  if (options_.revoked_refresh_tokens.count(issued.refresh_token) != 0) return TokenCheck::kRevoked;
  ++issued.uses;
  if (options_.expire_after_uses > 0 && issued.uses > options_.expire_after_uses) issued.expired = true;
  if (std::chrono::steady_clock::now() >= issued.expires_at) issued.expired = true;
  if (issued.expired) {
    ++expired_rejections_;
    return TokenCheck::kExpired;
  }
  return TokenCheck::kValid;
}

Json OAuthEmulator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return Json{{"access_tokens_issued", refreshes_},
              {"invalid_grant", invalid_grants_},
              {"invalid_client", invalid_clients_},
              {"expired_token_rejections", expired_rejections_},
              {"revoked_refresh_tokens", options_.revoked_refresh_tokens.size()}};
}

void OAuthEmulator::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  options_ = initial_;
  issued_.clear();
  next_token_ = 1;
  refreshes_ = 0;
  invalid_grants_ = 0;
  invalid_clients_ = 0;
  expired_rejections_ = 0;
}

}  // namespace platform_server
