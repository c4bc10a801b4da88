#include <doctest/doctest.h>

#include <random>
#include <string>

#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include "activation/identifiers.hpp"
#include "identifiers/text.hpp"

using activation::Field;
using activation::Normalizer;
using activation::Platform;
using activation::identifiers::fold_case;
using activation::identifiers::fold_case_with_icu;
using activation::identifiers::scan_text;
using activation::identifiers::TextProblem;
using activation::identifiers::trim;

namespace {

// Meta's name rule computed entirely through ICU, code point by code point, as a reference for
// the library's shortcuts: letters, the marks that follow a kept character, and no
// default-ignorable characters.
std::string letters_through_icu(const std::string& text) {
  std::string folded;
  REQUIRE(fold_case_with_icu(text, folded));
  std::string letters;
  bool previous_kept = false;
  int32_t i = 0;
  const auto* bytes = reinterpret_cast<const uint8_t*>(folded.data());
  while (i < static_cast<int32_t>(folded.size())) {
    int32_t start = i;
    UChar32 c = 0;
    U8_NEXT(bytes, i, static_cast<int32_t>(folded.size()), c);
    int8_t type = u_charType(c);
    bool ignorable = u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT);
    bool letter =
        !ignorable && (type == U_UPPERCASE_LETTER || type == U_LOWERCASE_LETTER ||
                       type == U_TITLECASE_LETTER || type == U_MODIFIER_LETTER || type == U_OTHER_LETTER);
    bool mark = !ignorable &&
                (type == U_NON_SPACING_MARK || type == U_COMBINING_SPACING_MARK || type == U_ENCLOSING_MARK);
    previous_kept = letter || (mark && previous_kept);
    if (previous_kept)
      letters.append(folded, static_cast<std::size_t>(start), static_cast<std::size_t>(i - start));
  }
  return letters;
}

std::string random_ascii(std::mt19937_64& rng) {
  std::string text;
  std::size_t length = 1 + rng() % 24;
  for (std::size_t i = 0; i < length; ++i) {
    // Printable ASCII and the three controls that values may hold.
    int pick = static_cast<int>(rng() % 100);
    if (pick < 3) {
      text += "\t\n\r"[rng() % 3];
    } else {
      text += static_cast<char>(' ' + rng() % 95);
    }
  }
  return text;
}

}  // namespace

TEST_CASE("scan_text finds invalid UTF-8 and control characters") {
  CHECK(scan_text("plain").problem == TextProblem::kNone);
  CHECK(scan_text("plain").ascii);
  CHECK_FALSE(scan_text("caf\u00e9").ascii);
  CHECK(scan_text("tab\there").problem == TextProblem::kNone);

  auto problem_at = [](std::string_view text) {
    auto scan = scan_text(text);
    return std::make_pair(scan.problem, scan.offset);
  };
  CHECK(problem_at(std::string_view("a\0b", 3)) ==
        std::make_pair(TextProblem::kControlCharacter, std::size_t{1}));
  CHECK(problem_at("a\x7f") == std::make_pair(TextProblem::kControlCharacter, std::size_t{1}));
  CHECK(problem_at("ab\xc2\x85") == std::make_pair(TextProblem::kControlCharacter, std::size_t{2}));
  CHECK(problem_at("\xc3") == std::make_pair(TextProblem::kInvalidUtf8, std::size_t{0}));
  CHECK(problem_at("a\xc3(") == std::make_pair(TextProblem::kInvalidUtf8, std::size_t{1}));
  CHECK(problem_at("\xe0\x80\xaf") == std::make_pair(TextProblem::kInvalidUtf8, std::size_t{0}));
  CHECK(problem_at("\xed\xbf\xbf") == std::make_pair(TextProblem::kInvalidUtf8, std::size_t{0}));
  CHECK(problem_at("\xf8\x88\x80\x80\x80") == std::make_pair(TextProblem::kInvalidUtf8, std::size_t{0}));
  CHECK(scan_text("\xf0\x9f\x98\x80").problem == TextProblem::kNone);
}

TEST_CASE("scan_text finds a bad byte at every place of short values") {
  // Values up to 24 bytes take the word-wise paths: whole words, overlapping halves, padding.
  for (std::size_t length = 1; length <= 24; ++length) {
    const std::string clean(length, 'k');
    CHECK(scan_text(clean).problem == TextProblem::kNone);
    CHECK(scan_text(clean).ascii);
    for (std::size_t at = 0; at < length; ++at) {
      CAPTURE(length);
      CAPTURE(at);
      std::string control = clean;
      control[at] = '\x01';
      CHECK(scan_text(control).problem == TextProblem::kControlCharacter);
      CHECK(scan_text(control).offset == at);
      std::string high = clean;
      high[at] = '\xff';
      CHECK(scan_text(high).problem == TextProblem::kInvalidUtf8);
      CHECK(scan_text(high).offset == at);
    }
  }
}

TEST_CASE("trim removes Unicode whitespace and invisible characters") {
  CHECK(trim("  a b \t\r\n") == "a b");
  CHECK(trim("\u00a0\u2003\u3000x\u2028\u2029") == "x");
  CHECK(trim("\ufeff\u200bx\u2060") == "x");
  CHECK(trim("\u00a0") == "");
  CHECK(trim("\u00e9\u00a0") == "\u00e9");
  CHECK(trim("x\u00a0y") == "x\u00a0y");
}

TEST_CASE("fold_case lowercases fully and composes") {
  std::string out;
  auto folded = [&](std::string_view text) {
    REQUIRE(fold_case(text, scan_text(text).ascii, out));
    return out;
  };
  CHECK(folded("MiXeD") == "mixed");
  CHECK(folded("\u00c0\u00c9\u00ce") == "\u00e0\u00e9\u00ee");
  CHECK(folded("E\u0301") == "\u00e9");
  CHECK(folded("\u0391\u0392\u0393") == "\u03b1\u03b2\u03b3");
  CHECK(folded("STRA\u1e9eE") == "stra\u00dfe");
  CHECK(folded("\u0130") == "i\u0307");
  CHECK(folded("\u05e9\u05dc\u05d5\u05dd") == "\u05e9\u05dc\u05d5\u05dd");
}

TEST_CASE("ASCII shortcut agrees with ICU on generated text") {
  Normalizer meta = Normalizer::create(Platform::kMeta).value();
  Normalizer google = Normalizer::create(Platform::kGoogle).value();
  std::mt19937_64 rng(7);
  int compared = 0;
  for (int i = 0; i < 30000; ++i) {
    std::string text = random_ascii(rng);
    CAPTURE(text);

    std::string fast;
    std::string slow;
    REQUIRE(fold_case(text, true, fast));
    REQUIRE(fold_case_with_icu(text, slow));
    REQUIRE(fast == slow);

    std::string_view trimmed = trim(text);
    if (trimmed.empty()) continue;

    // Meta's first name: the library's ASCII path against ICU code-point classes.
    auto name = meta.normalize(Field::kFirstName, text);
    std::string expected = letters_through_icu(std::string(trimmed));
    if (expected.empty()) {
      REQUIRE_FALSE(name.ok());
    } else {
      REQUIRE(name.ok());
      REQUIRE(name.normalized == expected);
    }

    // Google's first name: trimmed and folded through ICU.
    auto google_name = google.normalize(Field::kFirstName, text);
    if (google_name.ok()) {
      std::string reference;
      REQUIRE(fold_case_with_icu(trimmed, reference));
      REQUIRE(google_name.normalized == reference);
    }
    ++compared;
  }
  CHECK(compared > 25000);
}

TEST_CASE("Latin table agrees with ICU on generated text") {
  Normalizer meta = Normalizer::create(Platform::kMeta).value();
  std::mt19937_64 rng(13);
  for (int i = 0; i < 30000; ++i) {
    // Code points up to U+024F, the table's range, with now and then a combining accent or a
    // character beyond it, which must send the text through ICU with the same result.
    std::string text;
    std::size_t count = 1 + rng() % 10;
    for (std::size_t k = 0; k < count; ++k) {
      char32_t c = 0x20 + static_cast<char32_t>(rng() % (0x250 - 0x20));
      if (c >= 0x7f && c < 0xa0) c = 'x';
      if (rng() % 20 == 0) c = 0x300 + static_cast<char32_t>(rng() % 0x70);
      if (rng() % 40 == 0) c = 0x391 + static_cast<char32_t>(rng() % 0x30);
      activation::identifiers::append_utf8(c, text);
    }
    CAPTURE(text);
    std::string table_path;
    std::string icu_path;
    REQUIRE(fold_case(text, false, table_path));
    REQUIRE(fold_case_with_icu(text, icu_path));
    REQUIRE(table_path == icu_path);

    std::string_view trimmed = trim(text);
    if (trimmed.empty()) continue;
    auto name = meta.normalize(Field::kFirstName, text);
    std::string expected = letters_through_icu(std::string(trimmed));
    if (expected.empty()) {
      REQUIRE_FALSE(name.ok());
    } else {
      REQUIRE(name.ok());
      REQUIRE(name.normalized == expected);
    }
  }
}

TEST_CASE("non-ASCII names follow ICU letter classes") {
  Normalizer meta = Normalizer::create(Platform::kMeta).value();
  // Latin with accents, Greek, Cyrillic, Arabic, Hebrew, Devanagari, CJK, emoji, punctuation.
  const char* const pieces[] = {
      "\u00c9", "\u00f1",     "o\u0308", "\u03a3", "\u0416", "\u0645", "\u05d0", "\u0915\u093f",
      "\u5c71", "\U0001F600", "\u2014",  "\u00bf", " ",      "-",      "'",      "3",
      "\u0301", "\ufe0f",     "\u200d",  "\u034f", "\u20e3"};
  std::mt19937_64 rng(11);
  for (int i = 0; i < 5000; ++i) {
    std::string text;
    std::size_t count = 1 + rng() % 8;
    for (std::size_t k = 0; k < count; ++k) text += pieces[rng() % (sizeof(pieces) / sizeof(pieces[0]))];
    CAPTURE(text);
    auto name = meta.normalize(Field::kLastName, text);
    std::string expected = letters_through_icu(std::string(trim(text)));
    if (expected.empty()) {
      REQUIRE_FALSE(name.ok());
    } else {
      REQUIRE(name.ok());
      REQUIRE(name.normalized == expected);
    }
  }
}
