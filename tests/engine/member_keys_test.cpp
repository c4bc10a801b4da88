// The ledger's text form of a member's keys: what encode_keys writes, decode_keys reads back.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/member.hpp"

using activation::DatePart;
using activation::Field;
using activation::WireIdentifier;
using activation::engine::decode_keys;
using activation::engine::encode_keys;

TEST_CASE("member keys usual form") {
  const std::string digest(64, 'a');
  std::vector<WireIdentifier> keys = {{Field::kEmail, digest, DatePart::kWhole},
                                      {Field::kDob, "1990", DatePart::kYear}};
  CHECK(encode_keys(keys) == "[[\"email\",\"" + digest + "\"],[\"dob_year\",\"1990\"]]");
  CHECK(encode_keys({}) == "[]");
}

TEST_CASE("member keys round trip") {
  std::vector<WireIdentifier> keys = {{Field::kExternalId, "id \"7\" \\ tab\there\nline", DatePart::kWhole},
                                      {Field::kExternalId, std::string("nul\0x", 5), DatePart::kWhole},
                                      {Field::kPhone, std::string(64, 'f'), DatePart::kWhole}};
  auto decoded = decode_keys(encode_keys(keys));
  REQUIRE(decoded.is_ok());
  CHECK(decoded.value() == keys);
}
