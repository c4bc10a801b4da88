#include "identifiers/text.hpp"

#include <array>
#include <cstdint>
#include <cstring>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>

namespace activation::identifiers {
namespace {

bool is_ascii_space(unsigned char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

// Per-thread UTF-16 buffers, so that folding a value allocates only when a longer value than any
// before arrives on this thread.
struct IcuBuffers {
  std::u16string input;
  std::u16string scratch;
  std::u16string output;
};

IcuBuffers& icu_buffers() {
  thread_local IcuBuffers buffers;
  return buffers;
}

// Converts UTF-8 to UTF-16 into `out`. Returns false on an ICU error.
bool to_utf16(std::string_view text, std::u16string& out) {
  UErrorCode status = U_ZERO_ERROR;
  int32_t length = 0;
  out.resize(text.size() + 1);
  u_strFromUTF8(out.data(), static_cast<int32_t>(out.size()), &length, text.data(),
                static_cast<int32_t>(text.size()), &status);
  if (U_FAILURE(status)) return false;
  out.resize(static_cast<std::size_t>(length));
  return true;
}

bool to_utf8(const std::u16string& text, std::string& out) {
  UErrorCode status = U_ZERO_ERROR;
  int32_t length = 0;
  out.resize(text.size() * 3 + 1);
  u_strToUTF8(out.data(), static_cast<int32_t>(out.size()), &length, text.data(),
              static_cast<int32_t>(text.size()), &status);
  if (U_FAILURE(status)) return false;
  out.resize(static_cast<std::size_t>(length));
  return true;
}

// Normalizes `in` into `out` with `normalizer`, growing `out` to the size that ICU reports.
bool normalize(const UNormalizer2* normalizer, const std::u16string& in, std::u16string& out) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    UErrorCode status = U_ZERO_ERROR;
    if (out.size() < in.size() + 8) out.resize(in.size() * 2 + 8);
    int32_t length = unorm2_normalize(normalizer, in.data(), static_cast<int32_t>(in.size()), out.data(),
                                      static_cast<int32_t>(out.size()), &status);
    if (status == U_BUFFER_OVERFLOW_ERROR) {
      out.resize(static_cast<std::size_t>(length) + 8);
      continue;
    }
    if (U_FAILURE(status)) return false;
    out.resize(static_cast<std::size_t>(length));
    return true;
  }
  return false;
}

bool lowercase(const std::u16string& in, std::u16string& out) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    UErrorCode status = U_ZERO_ERROR;
    if (out.size() < in.size() + 8) out.resize(in.size() * 2 + 8);
    int32_t length = u_strToLower(out.data(), static_cast<int32_t>(out.size()), in.data(),
                                  static_cast<int32_t>(in.size()), "", &status);
    if (status == U_BUFFER_OVERFLOW_ERROR) {
      out.resize(static_cast<std::size_t>(length) + 8);
      continue;
    }
    if (U_FAILURE(status)) return false;
    out.resize(static_cast<std::size_t>(length));
    return true;
  }
  return false;
}

const UNormalizer2* nfc() {
  UErrorCode status = U_ZERO_ERROR;
  static const UNormalizer2* const kNfc = unorm2_getNFCInstance(&status);
  return kNfc;
}

const UNormalizer2* nfd() {
  UErrorCode status = U_ZERO_ERROR;
  static const UNormalizer2* const kNfd = unorm2_getNFDInstance(&status);
  return kNfd;
}

CharClass classify_with_icu(char32_t c) {
  // Invisible characters (variation selectors, joiners, the combining grapheme joiner, bidi
  // controls) are not part of a name even where their category is a mark.
  if (u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_DEFAULT_IGNORABLE_CODE_POINT))
    return CharClass::kOther;
  switch (u_charType(static_cast<UChar32>(c))) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER: return CharClass::kLetter;
    case U_NON_SPACING_MARK:
    case U_COMBINING_SPACING_MARK:
    case U_ENCLOSING_MARK: return CharClass::kMark;
    case U_DECIMAL_DIGIT_NUMBER: return CharClass::kDigit;
    default: return CharClass::kOther;
  }
}

// Lowercasing and character classes of the code points below U+0250 (ASCII, Latin-1 Supplement,
// Latin Extended-A and -B), read from ICU once, so that the names and places of European customer
// lists skip ICU's UTF-16 round trip. A code point is `simple` when its full lowercase form is one
// code point, and both are NFC_Quick_Check=Yes with combining class 0: a string of simple code
// points is then in NFC, stays in NFC when lowercased one code point at a time, and root-locale
// lowercasing has no context rule for them. Everything else goes through ICU.
constexpr char32_t kLatinEnd = 0x250;

struct LatinTable {
  std::array<char16_t, kLatinEnd> lower{};
  std::array<CharClass, kLatinEnd> kind{};
  std::array<bool, kLatinEnd> simple{};
};

const LatinTable& latin_table() {
  static const LatinTable* const kTable = [] {
    auto* table = new LatinTable();
    for (char32_t c = 0; c < kLatinEnd; ++c) {
      UChar source[1] = {static_cast<UChar>(c)};
      UChar lowered[4] = {};
      UErrorCode status = U_ZERO_ERROR;
      int32_t length = u_strToLower(lowered, 4, source, 1, "", &status);
      table->kind[c] = classify_with_icu(c);
      if (U_FAILURE(status) || length != 1) continue;
      auto nfc_yes = [](UChar32 code_point) {
        return u_getIntPropertyValue(code_point, UCHAR_NFC_QUICK_CHECK) == UNORM_YES &&
               u_getCombiningClass(code_point) == 0;
      };
      table->lower[c] = lowered[0];
      table->simple[c] = lowered[0] < kLatinEnd && nfc_yes(static_cast<UChar32>(c)) && nfc_yes(lowered[0]);
    }
    return table;
  }();
  return *kTable;
}

// Lowercases `text` through the Latin table; false, with `out` unspecified, when a code point is
// not simple.
bool fold_latin(std::string_view text, std::string& out) {
  const LatinTable& table = latin_table();
  out.clear();
  for (std::size_t i = 0; i < text.size();) {
    unsigned char b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      out.push_back(static_cast<char>(table.lower[b]));
      ++i;
      continue;
    }
    char32_t c = next_code_point(text, i);
    if (c >= kLatinEnd || !table.simple[c]) return false;
    append_utf8(table.lower[c], out);
  }
  return true;
}

}  // namespace

TextScan scan_text(std::string_view text) noexcept {
  TextScan scan;
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;

  // Eight bytes at a time while they are all printable ASCII (0x20..0x7e), the common case. The
  // last few bytes are padded with spaces to a full word. High bits flag a byte below 0x20, a
  // byte 0x7f, or a byte from 0x80.
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHighBits = 0x8080808080808080ull;
  auto printable_ascii = [](std::uint64_t word) {
    std::uint64_t below_space = (word - kOnes * 0x20) & ~word;
    std::uint64_t is_delete = ((word ^ (kOnes * 0x7f)) - kOnes) & ~(word ^ (kOnes * 0x7f));
    return ((word | below_space | is_delete) & kHighBits) == 0;
  };
  while (i + 8 <= n) {
    std::uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    if (!printable_ascii(word)) break;
    i += 8;
  }
  if (i < n && n - i < 8) {
    // The last eight bytes in one load, overlapping bytes already checked. A value of four to
    // seven bytes is read as two overlapping halves, and a shorter one is padded with spaces.
    std::uint64_t word = kOnes * ' ';
    if (n >= 8) {
      std::memcpy(&word, bytes + n - 8, 8);
    } else if (n >= 4) {
      std::uint32_t low = 0;
      std::uint32_t high = 0;
      std::memcpy(&low, bytes, 4);
      std::memcpy(&high, bytes + n - 4, 4);
      word = low | (std::uint64_t{high} << 32);
    } else {
      for (std::size_t k = 0; k < n; ++k)
        word = (word & ~(0xffull << (8 * k))) | (std::uint64_t{bytes[k]} << (8 * k));
    }
    if (printable_ascii(word)) return scan;
  }

  while (i < n) {
    unsigned char b = bytes[i];
    if (b < 0x80) {
      if ((b < 0x20 && b != '\t' && b != '\n' && b != '\r') || b == 0x7f) {
        scan.problem = TextProblem::kControlCharacter;
        scan.offset = i;
        return scan;
      }
      ++i;
      continue;
    }
    scan.ascii = false;
    std::size_t length = 0;
    char32_t c = 0;
    char32_t min = 0;
    if (b >= 0xc2 && b <= 0xdf) {
      length = 2;
      c = b & 0x1f;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      length = 3;
      c = b & 0x0f;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4;
      c = b & 0x07;
      min = 0x10000;
    } else {
      scan.problem = TextProblem::kInvalidUtf8;
      scan.offset = i;
      return scan;
    }
    if (i + length > n) {
      scan.problem = TextProblem::kInvalidUtf8;
      scan.offset = i;
      return scan;
    }
    for (std::size_t k = 1; k < length; ++k) {
      unsigned char continuation = bytes[i + k];
      if ((continuation & 0xc0) != 0x80) {
        scan.problem = TextProblem::kInvalidUtf8;
        scan.offset = i;
        return scan;
      }
      c = (c << 6) | (continuation & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
      scan.problem = TextProblem::kInvalidUtf8;
      scan.offset = i;
      return scan;
    }
    if (c >= 0x80 && c <= 0x9f) {
      scan.problem = TextProblem::kControlCharacter;
      scan.offset = i;
      return scan;
    }
    i += length;
  }
  return scan;
}

bool is_trimmable(char32_t c) noexcept {
  if (c < 0x80) return is_ascii_space(static_cast<unsigned char>(c));
  return u_isUWhiteSpace(static_cast<UChar32>(c)) || c == 0x200b || c == 0x2060 || c == 0xfeff;
}

char32_t next_code_point(std::string_view text, std::size_t& i) noexcept {
  UChar32 c = 0;
  int32_t offset = static_cast<int32_t>(i);
  U8_NEXT(reinterpret_cast<const uint8_t*>(text.data()), offset, static_cast<int32_t>(text.size()), c);
  i = static_cast<std::size_t>(offset);
  return c < 0 ? 0xfffd : static_cast<char32_t>(c);
}

std::string_view trim(std::string_view text) noexcept {
  // Most values have nothing to trim: printable ASCII at both ends.
  if (text.empty()) return text;
  auto plain = [](char c) {
    return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x80;
  };
  if (plain(text.front()) && plain(text.back())) return text;

  // Leading side: decode forwards.
  std::size_t begin = 0;
  while (begin < text.size()) {
    unsigned char b = static_cast<unsigned char>(text[begin]);
    if (b < 0x80) {
      if (!is_ascii_space(b)) break;
      ++begin;
      continue;
    }
    std::size_t next = begin;
    if (!is_trimmable(next_code_point(text, next))) break;
    begin = next;
  }
  // Trailing side: step back over continuation bytes to the start of each code point.
  std::size_t end = text.size();
  while (end > begin) {
    unsigned char b = static_cast<unsigned char>(text[end - 1]);
    if (b < 0x80) {
      if (!is_ascii_space(b)) break;
      --end;
      continue;
    }
    std::size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(text[start]) & 0xc0) == 0x80) --start;
    std::size_t probe = start;
    if (!is_trimmable(next_code_point(text, probe))) break;
    end = start;
  }
  return text.substr(begin, end - begin);
}

bool fold_case_with_icu(std::string_view text, std::string& out) {
  IcuBuffers& buffers = icu_buffers();
  if (!to_utf16(text, buffers.input)) return false;
  if (!normalize(nfc(), buffers.input, buffers.scratch)) return false;
  if (!lowercase(buffers.scratch, buffers.output)) return false;

  // Lowercasing can leave a sequence that is not in NFC ("İ" becomes "i" + U+0307). Normalize again
  // only when ICU's quick check reports that it is needed.
  UErrorCode status = U_ZERO_ERROR;
  UNormalizationCheckResult check =
      unorm2_quickCheck(nfc(), buffers.output.data(), static_cast<int32_t>(buffers.output.size()), &status);
  if (U_FAILURE(status)) return false;
  if (check != UNORM_YES) {
    if (!normalize(nfc(), buffers.output, buffers.scratch)) return false;
    return to_utf8(buffers.scratch, out);
  }
  return to_utf8(buffers.output, out);
}

bool fold_case(std::string_view text, bool ascii, std::string& out) {
  if (!ascii) return fold_latin(text, out) || fold_case_with_icu(text, out);
  out.resize(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) out[i] = ascii_lower(text[i]);
  return true;
}

bool to_nfc(std::string_view text, bool ascii, std::string& out) {
  if (ascii) {
    out.assign(text);
    return true;
  }
  IcuBuffers& buffers = icu_buffers();
  if (!to_utf16(text, buffers.input)) return false;
  if (!normalize(nfc(), buffers.input, buffers.output)) return false;
  return to_utf8(buffers.output, out);
}

CharClass classify(char32_t c) noexcept {
  if (c < 0x80) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return CharClass::kLetter;
    if (c >= '0' && c <= '9') return CharClass::kDigit;
    if (is_ascii_space(static_cast<unsigned char>(c))) return CharClass::kWhitespace;
    return CharClass::kOther;
  }
  if (is_trimmable(c)) return CharClass::kWhitespace;
  if (c < kLatinEnd) return latin_table().kind[c];
  return classify_with_icu(c);
}

void append_utf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
  }
}

void keep_letters(std::string_view text, bool keep_digits, std::string& out) {
  out.clear();
  // A combining mark stays only with the letter (or kept digit) it follows: one left behind by a
  // removed symbol or space would change the hash and match nothing.
  bool previous_kept = false;
  std::size_t i = 0;
  while (i < text.size()) {
    unsigned char b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      char c = static_cast<char>(b);
      previous_kept =
          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (keep_digits && c >= '0' && c <= '9');
      if (previous_kept) out.push_back(c);
      ++i;
      continue;
    }
    std::size_t start = i;
    CharClass kind = classify(next_code_point(text, i));
    previous_kept = kind == CharClass::kLetter || (kind == CharClass::kMark && previous_kept) ||
                    (keep_digits && kind == CharClass::kDigit);
    if (previous_kept) out.append(text.substr(start, i - start));
  }
}

std::size_t count_code_points(std::string_view text) noexcept {
  std::size_t count = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++count;
  }
  return count;
}

void fold_for_lookup(std::string_view text, bool ascii, std::string& out) {
  out.clear();
  bool pending_space = false;
  auto emit = [&](std::string_view piece) {
    if (pending_space && !out.empty()) out.push_back(' ');
    pending_space = false;
    out.append(piece);
  };
  auto emit_ascii = [&](char c) {
    if (c >= 'A' && c <= 'Z') c = ascii_lower(c);
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      emit(std::string_view(&c, 1));
    } else if (c == '&') {
      pending_space = true;
      emit("and");
      pending_space = true;
    } else if (c == '\'') {
      // "Cote d'Ivoire" and "Cote dIvoire" both become "cote d ivoire".
      pending_space = true;
    } else {
      pending_space = true;
    }
  };

  if (ascii) {
    for (char c : text) emit_ascii(c);
    return;
  }

  // Decompose, drop the combining marks, lowercase what is left.
  IcuBuffers& buffers = icu_buffers();
  if (!to_utf16(text, buffers.input) || !normalize(nfd(), buffers.input, buffers.scratch)) return;
  std::u16string& stripped = buffers.output;
  stripped.clear();
  for (std::size_t i = 0; i < buffers.scratch.size();) {
    UChar32 c = 0;
    U16_NEXT(buffers.scratch.data(), i, buffers.scratch.size(), c);
    if (u_charType(c) == U_NON_SPACING_MARK) continue;
    c = u_tolower(c);
    if (c < 0x80) {
      stripped.push_back(static_cast<char16_t>(c));
    } else if (u_isalnum(c)) {
      if (c > 0xffff) {
        stripped.push_back(U16_LEAD(c));
        stripped.push_back(U16_TRAIL(c));
      } else {
        stripped.push_back(static_cast<char16_t>(c));
      }
    } else {
      stripped.push_back(u' ');
    }
  }
  std::string utf8;
  if (!to_utf8(stripped, utf8)) return;
  for (std::size_t i = 0; i < utf8.size();) {
    unsigned char b = static_cast<unsigned char>(utf8[i]);
    if (b < 0x80) {
      emit_ascii(static_cast<char>(b));
      ++i;
      continue;
    }
    std::size_t start = i;
    next_code_point(utf8, i);
    emit(std::string_view(utf8).substr(start, i - start));
  }
}

}  // namespace activation::identifiers
