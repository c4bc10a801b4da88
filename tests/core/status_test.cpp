#include <doctest/doctest.h>

#include <string>

#include "activation/status.hpp"

using activation::Result;
using activation::Status;
using activation::StatusCode;

namespace {

Result<int> parse_positive(int value) {
  if (value <= 0) return activation::invalid_argument("value must be positive, got " + std::to_string(value));
  return value;
}

Result<int> doubled(int value) {
  ACT_ASSIGN_OR_RETURN(int parsed, parse_positive(value));
  return parsed * 2;
}

}  // namespace

TEST_CASE("status prints its code name and message") {
  CHECK(Status().to_string() == "ok");
  CHECK(activation::not_found("job 7 does not exist").to_string() == "not_found: job 7 does not exist");
  CHECK(activation::status_code_name(StatusCode::kConflict) == "conflict");
}

TEST_CASE("result carries a value or the error") {
  auto good = doubled(21);
  REQUIRE(good.is_ok());
  CHECK(*good == 42);

  auto bad = doubled(-1);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK(bad.status().message() == "value must be positive, got -1");
}
