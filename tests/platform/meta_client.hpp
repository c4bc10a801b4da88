// Small helpers that drive the Meta emulator through the curl transport in tests.
#ifndef ACTIVATION_TESTS_PLATFORM_META_CLIENT_HPP_
#define ACTIVATION_TESTS_PLATFORM_META_CLIENT_HPP_

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "activation/backend/transport.hpp"
#include "platform/server_process.hpp"

namespace activation::testing {

using Json = nlohmann::json;

inline std::string sha256_of(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  std::string hex;
  char buffer[3];
  for (unsigned char byte : digest) {
    std::snprintf(buffer, sizeof buffer, "%02x", byte);
    hex += buffer;
  }
  return hex;
}

inline std::string hmac_sha256_of(const std::string& key, const std::string& message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  std::string hex;
  char buffer[3];
  for (unsigned int i = 0; i < length; ++i) {
    std::snprintf(buffer, sizeof buffer, "%02x", digest[i]);
    hex += buffer;
  }
  return hex;
}

inline std::string form_encode(const std::map<std::string, std::string>& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out.push_back('&');
    for (const std::string* part : {&name, &value}) {
      for (unsigned char c : *part) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
          out.push_back(static_cast<char>(c));
        } else {
          char buffer[4];
          std::snprintf(buffer, sizeof buffer, "%%%02X", c);
          out += buffer;
        }
      }
      if (part == &name) out.push_back('=');
    }
  }
  return out;
}

// The test server is on loopback, which must not go through a proxy set in the environment.
inline std::unique_ptr<Transport> make_test_transport(CurlTransportOptions options = {}) {
  if (options.no_proxy.empty()) options.no_proxy = "127.0.0.1,localhost";
  auto transport = make_curl_transport(std::move(options));
  REQUIRE(transport.is_ok());
  return std::move(*transport);
}

// A multi-key row of hashed email and phone; an empty string leaves that cell empty.
inline Json hashed_row(const std::string& email, const std::string& phone) {
  return Json::array({email.empty() ? "" : sha256_of(email), phone.empty() ? "" : sha256_of(phone)});
}

class MetaClient {
 public:
  MetaClient(const ServerProcess& server, std::string token = "test-token")
      : base_(server.meta_url()),
        inspect_base_(server.base_url()),
        token_(std::move(token)),
        transport_(make_test_transport()) {}

  Transport& transport() { return *transport_; }
  const std::string& base() const { return base_; }

  HttpResult send(HttpMethod method, const std::string& path, const Json& body) {
    HttpRequest request;
    request.method = method;
    request.url = base_ + path;
    request.headers = {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + token_}};
    request.body = body.dump();
    return transport_->send(request);
  }

  HttpResult get(const std::string& path_and_query) {
    HttpRequest request;
    request.url = base_ + path_and_query;
    request.headers = {{"Authorization", "Bearer " + token_}};
    return transport_->send(request);
  }

  // Creates an audience and returns its id.
  std::string create_audience(const std::string& account, const std::string& name) {
    auto result =
        send(HttpMethod::kPost, "/" + account + "/customaudiences",
             Json{{"name", name}, {"subtype", "CUSTOM"}, {"customer_file_source", "USER_PROVIDED_ONLY"}});
    REQUIRE(result.has_response());
    REQUIRE(result.response().status == 200);
    return Json::parse(result.response().body).at("id").get<std::string>();
  }

  HttpResult upload(const std::string& audience, HttpMethod method, const Json& rows, const Json& session,
                    const Json& schema = Json::array({"EMAIL", "PHONE"})) {
    Json body = {{"payload", {{"schema", schema}, {"data", rows}}}};
    if (!session.is_null()) body["session"] = session;
    return send(method, "/" + audience + "/users", body);
  }

  HttpResult replace(const std::string& audience, const Json& rows, std::int64_t session_id, int batch_seq,
                     bool last) {
    Json body = {
        {"payload", {{"schema", Json::array({"EMAIL", "PHONE"})}, {"data", rows}}},
        {"session", {{"session_id", session_id}, {"batch_seq", batch_seq}, {"last_batch_flag", last}}}};
    return send(HttpMethod::kPost, "/" + audience + "/usersreplace", body);
  }

  Json inspect(const std::string& audience) { return inspect_path("/__inspect/meta/audiences/" + audience); }
  Json stats() { return inspect_path("/__inspect/stats"); }

  Json inspect_path(const std::string& path) {
    HttpRequest request;
    request.url = inspect_base_ + path;
    auto result = transport_->send(request);
    REQUIRE(result.has_response());
    REQUIRE(result.response().status == 200);
    return Json::parse(result.response().body);
  }

 private:
  std::string base_;
  std::string inspect_base_;
  std::string token_;
  std::unique_ptr<Transport> transport_;
};

inline Json session(std::int64_t id, int seq, bool last) {
  return Json{{"session_id", id}, {"batch_seq", seq}, {"last_batch_flag", last}};
}

inline Json body_of(const HttpResult& result) {
  REQUIRE(result.has_response());
  return Json::parse(result.response().body);
}

}  // namespace activation::testing

#endif  // ACTIVATION_TESTS_PLATFORM_META_CLIENT_HPP_
