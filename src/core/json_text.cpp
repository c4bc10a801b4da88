#include "core/json_text.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace activation::internal {
namespace {

// The length of the longest prefix of `value` that a JSON string may contain without escapes and
// that is ASCII: from the space to 0x7f, without quotes or backslashes. Bytes from 0x80 end it
// too, and the caller's byte loop copies them.
std::size_t plain_ascii_prefix(std::string_view value) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(value.data());
  const std::size_t n = value.size();
  std::size_t i = 0;
#if defined(__SSE2__)
  // Sixteen bytes at a time. Compared as signed bytes, those from 0x80 are below a space too.
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + i));
    const __m128i stop = _mm_or_si128(_mm_cmplt_epi8(v, space),
                                      _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
    const int mask = _mm_movemask_epi8(stop);
    if (mask != 0) return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  }
#endif
  while (i < n && bytes[i] >= 0x20 && bytes[i] < 0x80 && bytes[i] != '"' && bytes[i] != '\\') ++i;
  return i;
}

}  // namespace

void append_json_string(std::string& out, std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  // Most values, such as hex digests, need no escape at all.
  const std::size_t plain = plain_ascii_prefix(value);
  std::size_t plain_from = 0;  // Start of the characters not yet copied, none of which need escaping.
  for (std::size_t i = plain; i < value.size(); ++i) {
    auto c = static_cast<unsigned char>(value[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;

    out.append(value.data() + plain_from, i - plain_from);
    plain_from = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
    }
  }
  out.append(value.data() + plain_from, value.size() - plain_from);
  out += '"';
}

}  // namespace activation::internal
