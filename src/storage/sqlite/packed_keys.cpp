#include "storage/sqlite/packed_keys.hpp"

#include <array>
#include <cstdint>

namespace activation::internal {
namespace {

// Layout: a format byte, then per pair a name and a value.
//   name:  one byte, an index into kNames, or kLiteralName followed by a length and the bytes.
//   value: kDigest followed by 32 bytes, for a value of 64 lowercase hex digits. Any other value
//          is kLiteralValue followed by a length and the bytes between the quotes, escapes included.
// Lengths are LEB128 varints.
constexpr char kFormat = 1;
constexpr unsigned char kLiteralName = 0xff;
constexpr char kDigest = 0;
constexpr char kLiteralValue = 1;

// Field names as encode_keys() writes them (activation::field_name() and the date of birth parts).
// Append only: the index of a name is stored on disk.
constexpr std::array<std::string_view, 16> kNames = {
    "email", "phone", "first_name", "last_name", "first_initial", "city", "state", "zip",
    "country", "dob", "gender", "maid", "external_id", "dob_year", "dob_month", "dob_day"};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

void append_length(std::string& out, std::size_t length) {
  while (length >= 0x80) {
    out += static_cast<char>((length & 0x7f) | 0x80);
    length >>= 7;
  }
  out += static_cast<char>(length);
}

bool read_length(std::string_view data, std::size_t& at, std::size_t& length) {
  length = 0;
  for (int shift = 0; shift < 28; shift += 7) {
    if (at >= data.size()) return false;
    const auto byte = static_cast<unsigned char>(data[at++]);
    length |= static_cast<std::size_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return length <= data.size() - at;
  }
  return false;
}

// Appends the length-prefixed bytes at `at` to `out` and moves `at` past them.
bool append_literal(std::string_view packed, std::size_t& at, std::string& out) {
  std::size_t length = 0;
  if (!read_length(packed, at, length)) return false;
  out.append(packed.substr(at, length));
  at += length;
  return true;
}

// Reads a JSON string body from `text` at `at` (just after its opening quote) up to its closing
// quote, which `at` is left on. Returns false when the text ends first.
bool read_string_body(std::string_view text, std::size_t& at) {
  while (at < text.size()) {
    if (text[at] == '"') return true;
    at += text[at] == '\\' ? 2 : 1;
  }
  return false;
}

void append_name(std::string& packed, std::string_view name) {
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) {
      packed += static_cast<char>(i);
      return;
    }
  }
  packed += static_cast<char>(kLiteralName);
  append_length(packed, name.size());
  packed.append(name);
}

void append_value(std::string& packed, std::string_view value) {
  bool digest = value.size() == 64;
  for (std::size_t i = 0; digest && i < value.size(); ++i) digest = hex_value(value[i]) >= 0;
  if (!digest) {
    packed += kLiteralValue;
    append_length(packed, value.size());
    packed.append(value);
    return;
  }
  packed += kDigest;
  for (std::size_t i = 0; i < 64; i += 2) {
    packed += static_cast<char>(hex_value(value[i]) * 16 + hex_value(value[i + 1]));
  }
}

}  // namespace

bool pack_keys(std::string_view json_text, std::string& packed) {
  packed.clear();
  packed += kFormat;
  if (json_text.size() < 2 || json_text.front() != '[' || json_text.back() != ']') return false;
  std::size_t at = 1;
  const std::size_t end = json_text.size() - 1;
  while (at < end) {
    if (at > 1 && json_text[at++] != ',') return false;
    if (json_text.substr(at, 2) != "[\"") return false;
    at += 2;
    const std::size_t name_start = at;
    if (!read_string_body(json_text, at)) return false;
    const std::string_view name = json_text.substr(name_start, at - name_start);
    if (json_text.substr(at, 3) != "\",\"") return false;
    at += 3;
    const std::size_t value_start = at;
    if (!read_string_body(json_text, at)) return false;
    const std::string_view value = json_text.substr(value_start, at - value_start);
    if (json_text.substr(at, 2) != "\"]") return false;
    at += 2;
    append_name(packed, name);
    append_value(packed, value);
  }
  // unpack_keys() gives back the same bytes: the layout is fixed, names and literal values are
  // copied as they are, and a digest is packed only when it is lowercase hex.
  return at == end;
}

bool unpack_keys(std::string_view packed, std::string& json_text) {
  static constexpr char kHex[] = "0123456789abcdef";
  json_text.clear();
  if (packed.empty() || packed[0] != kFormat) return false;
  json_text += '[';
  std::size_t at = 1;
  while (at < packed.size()) {
    if (json_text.size() > 1) json_text += ',';
    json_text += "[\"";
    const auto name_byte = static_cast<unsigned char>(packed[at++]);
    if (name_byte < kNames.size()) {
      json_text += kNames[name_byte];
    } else if (name_byte == kLiteralName) {
      if (!append_literal(packed, at, json_text)) return false;
    } else {
      return false;
    }
    json_text += "\",\"";
    if (at >= packed.size()) return false;
    const char kind = packed[at++];
    if (kind == kDigest) {
      if (packed.size() - at < 32) return false;
      for (std::size_t i = 0; i < 32; ++i) {
        const auto byte = static_cast<unsigned char>(packed[at + i]);
        json_text += kHex[byte >> 4];
        json_text += kHex[byte & 0x0f];
      }
      at += 32;
    } else if (kind == kLiteralValue) {
      if (!append_literal(packed, at, json_text)) return false;
    } else {
      return false;
    }
    json_text += "\"]";
  }
  json_text += ']';
  return true;
}

}  // namespace activation::internal
