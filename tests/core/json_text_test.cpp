// Hand-written JSON string literals: each must parse back to the original text.
#include <doctest/doctest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "core/json_text.hpp"

using activation::internal::append_json_string;

namespace {

std::string literal(std::string_view value) {
  std::string out;
  append_json_string(out, value);
  return out;
}

}  // namespace

TEST_CASE("json string plain text") {
  CHECK(literal("") == "\"\"");
  CHECK(literal("4d3c2b1a") == "\"4d3c2b1a\"");
  CHECK(literal("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
}

TEST_CASE("json string escapes") {
  CHECK(literal("a\"b") == "\"a\\\"b\"");
  CHECK(literal("a\\b") == "\"a\\\\b\"");
  CHECK(literal("\n\r\t") == "\"\\n\\r\\t\"");
  CHECK(literal(std::string("x\x01y\x1f", 4)) == "\"x\\u0001y\\u001f\"");
  CHECK(literal(std::string("\0", 1)) == "\"\\u0000\"");
}

TEST_CASE("json string round trip") {
  std::string all;
  for (int c = 1; c < 128; ++c) all += static_cast<char>(c);
  all += "\xe2\x82\xac end";
  std::string out = "[";
  append_json_string(out, all);
  out += ",";
  append_json_string(out, "second");
  out += "]";
  auto parsed = nlohmann::json::parse(out);
  REQUIRE(parsed.size() == 2);
  CHECK(parsed[0].get<std::string>() == all);
  CHECK(parsed[1].get<std::string>() == "second");
}

TEST_CASE("json string escape at every place") {
  // Long values are checked sixteen bytes at a time: a character that needs an escape, or a byte
  // of a UTF-8 sequence, must be found wherever it sits.
  for (const std::string& special : {std::string("\""), std::string("\\"), std::string("\n"),
                                    std::string("\x7f"), std::string("\xc3\xa9")}) {
    for (std::size_t at = 0; at < 40; ++at) {
      CAPTURE(at);
      std::string value(40, 'a');
      value.insert(at, special);
      auto parsed = nlohmann::json::parse(literal(value));
      CHECK(parsed.get<std::string>() == value);
      CHECK(literal(value) == nlohmann::json(value).dump());
    }
  }
}
