// The libcurl transport against the platform server on loopback.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "activation/backend/transport.hpp"
#include "platform/meta_client.hpp"
#include "platform/server_process.hpp"

using activation::CurlTransportOptions;
using activation::HttpMethod;
using activation::HttpRequest;
using activation::LogLevel;
using activation::TransportErrorKind;
using activation::testing::Json;
using activation::testing::make_test_transport;
using activation::testing::MetaClient;
using activation::testing::ServerProcess;

TEST_CASE("redact_url hides secret parameters") {
  CHECK(activation::redact_url(
            "https://graph.facebook.com/v24.0/1/users?access_token=EAAB&appsecret_proof=9f&x=1") ==
        "https://graph.facebook.com/v24.0/1/users?access_token=REDACTED&appsecret_proof=REDACTED&x=1");
  CHECK(activation::redact_url("http://h/p?fields=id#frag") == "http://h/p?fields=id#frag");
  CHECK(activation::redact_url("POST http://h/p?Client_Secret=abc failed: x") ==
        "POST http://h/p?Client_Secret=REDACTED failed: x");
  CHECK(activation::redact_url("access_token=abc&token=def") == "access_token=REDACTED&token=REDACTED");
  CHECK(activation::redact_url("http://h/p?my_access_token=abc") == "http://h/p?my_access_token=abc");

  CHECK(activation::is_secret_header("Authorization"));
  CHECK(activation::is_secret_header("x-goog-api-key"));
  CHECK(activation::is_secret_header("X-Refresh-Token"));
  CHECK_FALSE(activation::is_secret_header("Content-Type"));
}

TEST_CASE("curl transport options are validated") {
  CurlTransportOptions options;
  options.connect_timeout = std::chrono::milliseconds(0);
  auto result = activation::make_curl_transport(options);
  REQUIRE_FALSE(result.is_ok());
  CHECK(result.status().message() == "connect_timeout must be positive, got 0 ms");
}

TEST_CASE("curl transport reuses one connection") {
  ServerProcess server({});
  auto transport = make_test_transport();
  for (int i = 0; i < 20; ++i) {
    HttpRequest request;
    request.url = server.meta_url() + "/act_1/customaudiences?access_token=t";
    auto result = transport->send(request);
    REQUIRE(result.has_response());
    CHECK(result.response().status == 200);
  }
  MetaClient inspector(server);
  CHECK(inspector.stats()["client_connections"] == 1);
}

TEST_CASE("curl transport decodes compressed answers") {
  ServerProcess server({});
  MetaClient client(server);
  std::string audience = client.create_audience("act_1", "Compression");
  Json rows = Json::array();
  for (int i = 0; i < 2'000; ++i)
    rows.push_back(activation::testing::hashed_row(std::to_string(i) + "@x.com", ""));
  REQUIRE(client.upload(audience, HttpMethod::kPost, rows, Json()).response().status == 200);

  auto transport = make_test_transport();
  HttpRequest request;
  request.url = server.base_url() + "/__inspect/meta/audiences/" + audience;
  auto result = transport->send(request);
  REQUIRE(result.has_response());
  auto encoding = result.response().header("Content-Encoding");
  REQUIRE(encoding);
  CHECK(*encoding == "gzip");
  CHECK(Json::parse(result.response().body)["member_count"] == 2'000);
}

TEST_CASE("curl transport times out on a slow server") {
  ServerProcess server({"--latency-ms", "2000"});
  CurlTransportOptions options;
  options.total_timeout = std::chrono::milliseconds(200);
  auto transport = make_test_transport(options);
  HttpRequest request;
  request.url = server.meta_url() + "/act_1/customaudiences?access_token=t";
  auto result = transport->send(request);
  REQUIRE_FALSE(result.has_response());
  CHECK(result.error().kind == TransportErrorKind::kTimedOut);
  CHECK(result.status().code() == activation::StatusCode::kDeadlineExceeded);

  // A per-request timeout overrides the default.
  request.timeout = std::chrono::milliseconds(5000);
  CHECK(transport->send(request).has_response());
}

TEST_CASE("curl transport reports a refused connection") {
  int port = 0;
  {
    ServerProcess server({});
    port = server.port();
  }
  auto transport = make_test_transport();
  HttpRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(port) + "/meta/v24.0/me?access_token=SECRET123";
  auto result = transport->send(request);
  REQUIRE_FALSE(result.has_response());
  CHECK(result.error().kind == TransportErrorKind::kConnectFailed);
  CHECK(result.error().message.find("access_token=REDACTED") != std::string::npos);
  CHECK(result.error().message.find("SECRET123") == std::string::npos);
}

TEST_CASE("curl transport rejects unusable urls") {
  auto transport = make_test_transport();
  HttpRequest request;
  request.url = "ftp://127.0.0.1/file";
  auto result = transport->send(request);
  REQUIRE_FALSE(result.has_response());
  CHECK(result.error().kind == TransportErrorKind::kInvalidRequest);
  CHECK(result.status().code() == activation::StatusCode::kInvalidArgument);
}

TEST_CASE("curl transport limits the response size") {
  ServerProcess server({});
  MetaClient client(server);
  client.create_audience("act_1", "A name long enough to exceed the limit");
  CurlTransportOptions options;
  options.max_response_bytes = 16;
  auto transport = make_test_transport(options);
  HttpRequest request;
  request.url = server.base_url() + "/__inspect/meta/audiences";
  request.headers = {{"Accept-Encoding", "identity"}};
  auto result = transport->send(request);
  REQUIRE_FALSE(result.has_response());
  CHECK(result.error().kind == TransportErrorKind::kResponseTooLarge);
}

TEST_CASE("curl transport logs without secrets") {
  ServerProcess server({"--token", "SECRET456"});
  std::mutex mutex;
  std::vector<std::string> lines;
  CurlTransportOptions options;
  options.logger = activation::Logger(
      [&](LogLevel, std::string_view, std::string_view message) {
        std::lock_guard<std::mutex> lock(mutex);
        lines.emplace_back(message);
      },
      LogLevel::kTrace);
  auto transport = make_test_transport(options);

  HttpRequest request;
  request.method = HttpMethod::kPost;
  request.url = server.meta_url() + "/act_1/customaudiences?access_token=SECRET456&appsecret_proof=PROOF789";
  request.headers = {{"Content-Type", "application/json"}, {"Authorization", "Bearer SECRET456"}};
  request.body = R"({"name":"BODYSECRET","subtype":"CUSTOM","customer_file_source":"USER_PROVIDED_ONLY"})";
  auto result = transport->send(request);
  REQUIRE(result.has_response());
  CHECK(result.response().status == 200);

  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("access_token=REDACTED") != std::string::npos);
  CHECK(lines[0].find("-> 200") != std::string::npos);
  for (const std::string& line : lines) {
    CHECK(line.find("SECRET456") == std::string::npos);
    CHECK(line.find("PROOF789") == std::string::npos);
    CHECK(line.find("BODYSECRET") == std::string::npos);
  }
}

TEST_CASE("curl transport serves many threads at once") {
  ServerProcess server({});
  auto transport = make_test_transport();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        HttpRequest request;
        request.url = server.meta_url() + "/act_1/customaudiences?access_token=t";
        auto result = transport->send(request);
        if (result.has_response() && result.response().status == 200) ++ok;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(ok.load() == 100);
  MetaClient inspector(server);
  CHECK(inspector.stats()["client_connections"] <= 4);
}
