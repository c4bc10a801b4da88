#include "identifiers/email.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "identifiers/text.hpp"

namespace activation::identifiers {
namespace {

constexpr std::size_t kMaxLocalPart = 64;
constexpr std::size_t kMaxAddress = 254;
constexpr std::size_t kMaxLabel = 63;

// Byte classes of an address: bit 1 for the local part (dot-atom text), bit 2 for a domain label.
// Bytes from 0x80 are UTF-8 of an internationalized address (RFC 6531), allowed in both.
constexpr std::uint8_t kAtom = 1;
constexpr std::uint8_t kLabel = 2;
constexpr std::uint8_t kUpper = 4;    // 'A'..'Z'; the shift by 3 below turns it into the case bit 0x20.
constexpr std::uint8_t kSpecial = 8;  // ASCII whitespace and '@', which the folding loop handles apart.
constexpr std::uint8_t kDot = 16;
constexpr std::uint8_t kHyphen = 32;
constexpr std::uint8_t kDigit = 64;

constexpr std::array<std::uint8_t, 256> kByteClasses = [] {
  std::array<std::uint8_t, 256> classes{};
  for (int c = 'A'; c <= 'Z'; ++c) classes[c] = kUpper;
  for (char c : std::string_view(" \t\n\v\f\r@")) classes[static_cast<unsigned char>(c)] = kSpecial;
  classes['.'] = kDot;
  for (int c = 0x80; c < 0x100; ++c) classes[c] = kAtom | kLabel;
  for (int c = 'a'; c <= 'z'; ++c) classes[c] = kAtom | kLabel;
  for (int c = '0'; c <= '9'; ++c) classes[c] = kAtom | kLabel;
  for (int c = '0'; c <= '9'; ++c) classes[c] |= kDigit;
  classes['-'] = kAtom | kLabel | kHyphen;
  for (char c : std::string_view("!#$%&'*+/=?^_`{|}~")) classes[static_cast<unsigned char>(c)] = kAtom;
  return classes;
}();

// True when the lowercased address, with its '@' at `at`, certainly passes check_local_part() and
// check_domain(). It tests the same rules without a branch per character, which makes the common
// case fast. When it returns false, the detailed checks find the message.
bool quick_check(std::string_view address, std::size_t at) {
  const std::size_t domain_size = address.size() - at - 1;
  if (at == 0 || at > kMaxLocalPart || domain_size < 3) return false;

  const auto* bytes = reinterpret_cast<const unsigned char*>(address.data());
  std::uint8_t local = kAtom | kDot;
  std::uint8_t previous = kDot;  // Treats the start like a dot: a leading dot counts as a double dot.
  std::uint8_t bad = 0;
  for (std::size_t i = 0; i < at; ++i) {
    std::uint8_t kind = kByteClasses[bytes[i]];
    local &= kind | (kind >> 4);  // A dot counts as an atom character here.
    bad |= previous & kind & kDot;
    previous = kind;
  }
  bad |= previous & kDot;  // A trailing dot.
  if ((local & kAtom) == 0 || bad) return false;

  std::uint8_t domain = kLabel;
  std::size_t label_length = 0;
  std::size_t longest_label = 0;
  std::size_t dots = 0;
  bool top_all_digits = true;
  previous = kDot;
  for (std::size_t i = at + 1; i < address.size(); ++i) {
    std::uint8_t kind = kByteClasses[bytes[i]];
    std::uint8_t is_dot = kind & kDot;
    domain &= kind | (is_dot >> 3);  // A dot counts as a label character here.
    // Empty labels (dot after dot) and hyphens next to a dot.
    bad |= (previous & is_dot) | ((previous >> 4) & (kind >> 5) & 1) | ((previous >> 5) & (is_dot >> 4));
    std::size_t dot = is_dot >> 4;
    dots += dot;
    label_length = (label_length + 1) * (1 - dot);
    longest_label = std::max(longest_label, label_length);
    top_all_digits = (top_all_digits || dot) && ((kind & kDigit) || dot);
    previous = kind;
  }
  bad |= previous & (kDot | kHyphen);  // A trailing dot or hyphen.
  return (domain & kLabel) && !bad && dots > 0 && longest_label <= kMaxLabel && !top_all_digits &&
         address.size() <= kMaxAddress;
}

std::uint8_t byte_class(char c) {
  return kByteClasses[static_cast<unsigned char>(c)];
}

const char* check_local_part(std::string_view local) {
  if (local.empty()) return "nothing before the '@'";
  if (local.size() > kMaxLocalPart) return "the part before the '@' is longer than 64 bytes";
  if (local.front() == '.' || local.back() == '.') return "the part before the '@' starts or ends with a dot";
  char previous = 0;
  for (char c : local) {
    if (c == '.') {
      if (previous == '.') return "two dots in a row before the '@'";
    } else if ((byte_class(c) & kAtom) == 0) {
      return "a character that an address cannot contain before the '@'";
    }
    previous = c;
  }
  return nullptr;
}

const char* check_domain(std::string_view domain) {
  if (domain.empty()) return "nothing after the '@'";
  std::size_t labels = 0;
  std::size_t label_start = 0;
  bool label_all_digits = true;
  for (std::size_t i = 0; i <= domain.size(); ++i) {
    if (i < domain.size() && domain[i] != '.') {
      char c = domain[i];
      if ((byte_class(c) & kLabel) == 0) return "a character that a domain name cannot contain";
      label_all_digits = label_all_digits && c >= '0' && c <= '9';
      continue;
    }
    // The end of a label.
    std::size_t length = i - label_start;
    if (length == 0) return "an empty label in the domain";
    if (length > kMaxLabel) return "a domain label longer than 63 bytes";
    if (domain[label_start] == '-' || domain[i - 1] == '-')
      return "a domain label starts or ends with a hyphen";
    ++labels;
    if (i < domain.size()) {
      label_start = i + 1;
      label_all_digits = true;
    }
  }
  if (labels < 2) return "the domain has no dot";
  if (label_all_digits) return "the domain ends in a number, not a name";
  return nullptr;
}

#if defined(__SSE2__)
// The common case in sixteen-byte steps: an ASCII address of at most 64 bytes made of letters,
// digits, dots, hyphens and, before the '@', '+' and '_'. Returns true when the address is valid by
// the same rules as check_local_part() and check_domain(), with `out` holding it lowercased and `at`
// the position of its '@'. Returns false for anything else, which the byte-by-byte path then
// handles and explains.
bool fold_and_check_simd(std::string_view value, std::string& out, std::size_t& at) {
  const std::size_t n = value.size();
  if (n < 5 || n > 64) return false;
  alignas(16) char buffer[64] = {};
  std::memcpy(buffer, value.data(), n);

  std::uint64_t letters = 0;
  std::uint64_t digits = 0;
  std::uint64_t dots = 0;
  std::uint64_t hyphens = 0;
  std::uint64_t ats = 0;
  std::uint64_t local_extras = 0;  // '+' and '_'
  auto in_range = [](__m128i v, char low, char high) {
    return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(static_cast<char>(low - 1))),
                         _mm_cmplt_epi8(v, _mm_set1_epi8(static_cast<char>(high + 1))));
  };
  auto bits = [](__m128i mask) {
    return static_cast<std::uint64_t>(static_cast<unsigned>(_mm_movemask_epi8(mask)));
  };
  for (std::size_t chunk = 0; chunk * 16 < n; ++chunk) {
    __m128i v = _mm_load_si128(reinterpret_cast<const __m128i*>(buffer + 16 * chunk));
    v = _mm_or_si128(v, _mm_and_si128(in_range(v, 'A', 'Z'), _mm_set1_epi8(0x20)));
    _mm_store_si128(reinterpret_cast<__m128i*>(buffer + 16 * chunk), v);
    const unsigned shift = static_cast<unsigned>(16 * chunk);
    letters |= bits(in_range(v, 'a', 'z')) << shift;
    digits |= bits(in_range(v, '0', '9')) << shift;
    dots |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8('.'))) << shift;
    hyphens |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8('-'))) << shift;
    ats |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8('@'))) << shift;
    local_extras |=
        bits(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('+')), _mm_cmpeq_epi8(v, _mm_set1_epi8('_'))))
        << shift;
  }
  const std::uint64_t all = n == 64 ? ~0ull : (1ull << n) - 1;
  ats &= all;
  if (ats == 0 || (ats & (ats - 1)) != 0) return false;
  const unsigned position = static_cast<unsigned>(__builtin_ctzll(ats));
  if (position == 0 || n - position - 1 < 3) return false;
  const std::uint64_t local = (1ull << position) - 1;
  const std::uint64_t domain = all & ~((2ull << position) - 1);
  const std::uint64_t alphanumeric = letters | digits;

  // Only the usual characters on each side.
  if ((local & ~(alphanumeric | dots | hyphens | local_extras)) != 0) return false;
  if ((domain & ~(alphanumeric | dots | hyphens)) != 0) return false;
  // Local part: no dot first, last, or twice in a row.
  if ((dots & 1) || ((dots >> (position - 1)) & 1) || (dots & (dots >> 1) & local)) return false;
  // Domain: starts and ends with a letter or digit, no empty label, no hyphen beside a dot, a dot.
  const std::uint64_t domain_dots = dots & domain;
  const std::uint64_t domain_hyphens = hyphens & domain;
  if (!((alphanumeric >> (position + 1)) & 1) || !((alphanumeric >> (n - 1)) & 1)) return false;
  if (domain_dots == 0 || (domain_dots & (domain_dots << 1)) || (domain_hyphens & (domain_dots << 1)) ||
      (domain_dots & (domain_hyphens << 1))) {
    return false;
  }
  // The top-level label is not all digits.
  const unsigned last_dot = 63 - static_cast<unsigned>(__builtin_clzll(domain_dots));
  const std::uint64_t top = domain & ~((2ull << last_dot) - 1);
  if ((top & ~digits) == 0) return false;

  out.assign(buffer, n);
  at = position;
  return true;
}
#endif

// Lowercases ASCII `value` into `out` in one pass, dropping or refusing whitespace, and finds the
// one '@'. On success `at` is its position in `out`.
const char* fold_ascii(std::string_view value, const EmailRules& rules, std::string& out, std::size_t& at) {
  out.assign(value);
  auto* text = reinterpret_cast<unsigned char*>(out.data());
  std::size_t write = 0;
  at = std::string::npos;
  for (std::size_t read = 0; read < value.size(); ++read) {
    unsigned char c = text[read];
    std::uint8_t kind = kByteClasses[c];
    if (kind & kSpecial) {
      if (c == '@') {
        if (at != std::string::npos) return "more than one '@'";
        at = write;
      } else if (!rules.remove_inner_whitespace) {
        return "whitespace inside the address";
      } else {
        continue;
      }
    }
    text[write++] = static_cast<unsigned char>(c | ((kind & kUpper) << 3));
  }
  out.resize(write);
  return nullptr;
}

// Lowercases and NFC-normalizes non-ASCII `value` into `out` through ICU, dropping or refusing
// Unicode whitespace.
const char* fold_unicode(std::string_view value, const EmailRules& rules, std::string& out) {
  if (!fold_case(value, false, out)) return "the address could not be lowercased";
  std::size_t write = 0;
  for (std::size_t read = 0; read < out.size();) {
    std::size_t start = read;
    char32_t c = static_cast<unsigned char>(out[read]) < 0x80 ? static_cast<unsigned char>(out[read++])
                                                              : next_code_point(out, read);
    if (classify(c) == CharClass::kWhitespace) {
      if (!rules.remove_inner_whitespace) return "whitespace inside the address";
      continue;
    }
    for (std::size_t k = start; k < read; ++k) out[write++] = out[k];
  }
  out.resize(write);
  return nullptr;
}

}  // namespace

const char* normalize_email(std::string_view value, bool ascii, const EmailRules& rules, std::string& out) {
  std::size_t at = std::string::npos;
  bool checked = false;
#if defined(__SSE2__)
  if (ascii) checked = fold_and_check_simd(value, out, at);
#endif
  if (checked) {
    // Valid and lowercased already.
  } else if (ascii) {
    if (const char* problem = fold_ascii(value, rules, out, at)) return problem;
  } else {
    if (const char* problem = fold_unicode(value, rules, out)) return problem;
    at = out.find('@');
    if (at != std::string::npos && out.find('@', at + 1) != std::string::npos) return "more than one '@'";
  }
  if (at == std::string::npos) return "no '@'";
  checked = checked || quick_check(out, at);
  if (!checked) {
    if (out.size() > kMaxAddress) return "longer than 254 bytes";
    if (const char* problem = check_domain(std::string_view(out).substr(at + 1))) return problem;
  }

  std::string_view domain = std::string_view(out).substr(at + 1);
  if (rules.canonicalize_gmail && (domain == "gmail.com" || domain == "googlemail.com")) {
    // Gmail ignores dots and everything from a '+' on in the local part.
    std::size_t write = 0;
    std::size_t end = out.find('+');
    if (end == std::string::npos || end > at) end = at;
    for (std::size_t read = 0; read < end; ++read) {
      if (out[read] != '.') out[write++] = out[read];
    }
    if (write == 0)
      return "nothing is left before the '@' after removing the dots and the +tag that Gmail ignores";
    out.erase(write, at - write);
    at = write;
  }
  return checked ? nullptr : check_local_part(std::string_view(out).substr(0, at));
}

}  // namespace activation::identifiers
