// TikTok's error classes: the codes it returns inside HTTP 200, mapped onto the engine's classes.
// This file includes no engine header, because activation/platform_errors.hpp and
// activation/job_queue.hpp both define activation::RetryPolicy.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "activation/platform_errors.hpp"
#include "platforms/tiktok/tiktok_destination.hpp"

namespace activation::testing {
namespace {

using Json = nlohmann::json;

HttpResponse response_of(int status, const std::string& body) {
  HttpResponse response;
  response.status = status;
  response.body = body;
  return response;
}

}  // namespace

TEST_CASE("tiktok codes inside HTTP 200 map to error classes") {
  using platforms::tiktok::classify_tiktok_response;
  struct Row {
    std::int64_t code;
    PlatformErrorClass expected;
  };
  const Row rows[] = {{0, PlatformErrorClass::kNone},
                      {40100, PlatformErrorClass::kThrottled},
                      {40102, PlatformErrorClass::kAuth},
                      {40105, PlatformErrorClass::kAuth},
                      {40001, PlatformErrorClass::kAuth},
                      {40002, PlatformErrorClass::kInvalidRequest},
                      {40062, PlatformErrorClass::kInvalidRequest},
                      {40202, PlatformErrorClass::kPlatform5xx},
                      {50002, PlatformErrorClass::kPlatform5xx},
                      {51001, PlatformErrorClass::kPlatform5xx}};
  for (const Row& row : rows) {
    CAPTURE(row.code);
    Json body = {{"code", row.code}, {"message", "m"}, {"request_id", "r1"}, {"data", Json::object()}};
    ResponseClassification classified = classify_tiktok_response(response_of(200, body.dump()));
    CHECK(classified.error_class == row.expected);
  }
  CHECK(classify_tiktok_response(response_of(200, "<html>")).error_class == PlatformErrorClass::kPlatform5xx);
  CHECK(classify_tiktok_response(response_of(503, "")).error_class == PlatformErrorClass::kPlatform5xx);
  ResponseClassification permission = classify_tiktok_response(
      response_of(200, R"({"code":40001,"message":"No permission","request_id":"r2"})"));
  CHECK(permission.error_type == "permission");
  CHECK(permission.summary() == "auth: (#40001) No permission (request_id r2) [HTTP 200]");
}

}  // namespace activation::testing
