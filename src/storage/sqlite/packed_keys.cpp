#include "storage/sqlite/packed_keys.hpp"

#include <array>
#include <cstdint>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

#if !defined(__SSE2__)
// The value of each lowercase hex digit, and -1 for every other byte.
constexpr std::array<std::int8_t, 256> kHexValues = [] {
  std::array<std::int8_t, 256> values{};
  values.fill(-1);
  for (int i = 0; i < 10; ++i) values['0' + i] = static_cast<std::int8_t>(i);
  for (int i = 0; i < 6; ++i) values['a' + i] = static_cast<std::int8_t>(10 + i);
  return values;
}();
#endif

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
  // Most bodies have no escape: the first quote ends them.
  const std::size_t quote = text.find('"', at);
  if (quote == std::string_view::npos) return false;
  if (text.substr(at, quote - at).find('\\') == std::string_view::npos) {
    at = quote;
    return true;
  }
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

// Decodes 64 lowercase hex digits into `digest` after the kDigest byte. Returns false for any other
// text.
bool decode_digest(std::string_view value, std::array<char, 33>& digest) {
  if (value.size() != 64) return false;
  digest[0] = kDigest;
#if defined(__SSE2__)
  // Sixteen digits at a time. Compared as signed bytes, those from 0x80 fall outside both ranges.
  const __m128i zero_below = _mm_set1_epi8('0' - 1);
  const __m128i nine_above = _mm_set1_epi8('9' + 1);
  const __m128i a_below = _mm_set1_epi8('a' - 1);
  const __m128i f_above = _mm_set1_epi8('f' + 1);
  const __m128i low_byte = _mm_set1_epi16(0x00ff);
  for (int block = 0; block < 4; ++block) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(value.data() + 16 * block));
    const __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, zero_below), _mm_cmplt_epi8(v, nine_above));
    const __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(v, a_below), _mm_cmplt_epi8(v, f_above));
    if (_mm_movemask_epi8(_mm_or_si128(digit, letter)) != 0xffff) return false;
    // A digit's value is v - '0', and a letter's is v - 'a' + 10, that is v - '0' - 39.
    const __m128i nibbles =
        _mm_sub_epi8(_mm_sub_epi8(v, _mm_set1_epi8('0')), _mm_and_si128(letter, _mm_set1_epi8(39)));
    // Each 16-bit lane has a high digit in its low byte and a low digit in its high byte.
    const __m128i pairs =
        _mm_or_si128(_mm_slli_epi16(_mm_and_si128(nibbles, low_byte), 4), _mm_srli_epi16(nibbles, 8));
    const __m128i bytes = _mm_packus_epi16(pairs, pairs);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(digest.data() + 1 + 8 * block), bytes);
  }
  return true;
#else
  // NOTE: x86-64 always has SSE2, so the tests run this loop only on other processors.
  int invalid = 0;
  for (std::size_t i = 0; i < 32; ++i) {
    const int high = kHexValues[static_cast<unsigned char>(value[2 * i])];
    const int low = kHexValues[static_cast<unsigned char>(value[2 * i + 1])];
    invalid |= high | low;  // Negative when either is not a hex digit.
    digest[i + 1] = static_cast<char>((high << 4) | (low & 0x0f));
  }
  return invalid >= 0;
#endif
}

void append_value(std::string& packed, std::string_view value) {
  std::array<char, 33> digest;
  if (decode_digest(value, digest)) {
    packed.append(digest.data(), digest.size());
    return;
  }
  packed += kLiteralValue;
  append_length(packed, value.size());
  packed.append(value);
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
      char hex[64];
      for (std::size_t i = 0; i < 32; ++i) {
        const auto byte = static_cast<unsigned char>(packed[at + i]);
        hex[2 * i] = kHex[byte >> 4];
        hex[2 * i + 1] = kHex[byte & 0x0f];
      }
      json_text.append(hex, sizeof hex);
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
