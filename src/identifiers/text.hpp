// Unicode text helpers over ICU: input checks, trimming, case folding and character classes.
//
// Every helper takes UTF-8 and writes UTF-8. ASCII-only input skips ICU entirely; for ASCII, NFC
// is the identity and full Unicode lowercasing equals ASCII lowercasing, so both paths give the
// same bytes (the identifiers tests compare them on generated text).
//
// Thread safety: all functions are safe to call from any thread; ICU work buffers are per thread.
#ifndef ACTIVATION_SRC_IDENTIFIERS_TEXT_HPP_
#define ACTIVATION_SRC_IDENTIFIERS_TEXT_HPP_

#include <cstddef>
#include <string>
#include <string_view>

namespace activation::identifiers {

enum class TextProblem { kNone, kInvalidUtf8, kControlCharacter };

struct TextScan {
  TextProblem problem = TextProblem::kNone;
  bool ascii = true;       // Every byte is below 0x80.
  std::size_t offset = 0;  // Byte offset of the first problem.
};

// Validates `text` as UTF-8 (shortest forms only, no surrogates, at most U+10FFFF) and rejects
// control characters: C0 controls other than tab, line feed and carriage return, DEL, and the C1
// controls U+0080..U+009F.
TextScan scan_text(std::string_view text) noexcept;

// True for the code points trimmed from both ends of a value: Unicode White_Space, plus the
// invisible U+200B ZERO WIDTH SPACE, U+2060 WORD JOINER and U+FEFF BYTE ORDER MARK that copying
// from documents leaves behind.
bool is_trimmable(char32_t c) noexcept;

// Returns `text` without trimmable code points at either end. REQUIRES: valid UTF-8.
std::string_view trim(std::string_view text) noexcept;

// Writes NFC(lowercase(NFC(text))) to `out`, with full Unicode lowercasing in the root locale
// ("Straße" stays "straße", "ÀÉ" becomes "àé"). Returns false only when ICU fails, which valid
// UTF-8 input does not cause. REQUIRES: valid UTF-8.
bool fold_case(std::string_view text, bool ascii, std::string& out);

// The same through ICU even for ASCII input; the tests compare it with fold_case().
bool fold_case_with_icu(std::string_view text, std::string& out);

// Writes NFC(text) to `out` without changing case. REQUIRES: valid UTF-8.
bool to_nfc(std::string_view text, bool ascii, std::string& out);

// What a code point is, as far as the field rules care.
enum class CharClass {
  kLetter,      // General categories L* (any script).
  kMark,        // M*: combining accents and the vowel signs of Indic scripts.
  kDigit,       // Nd.
  kWhitespace,  // White_Space and the invisible characters is_trimmable() also removes.
  kOther,       // Punctuation, symbols (emoji), format characters (bidi controls) and the rest.
};

CharClass classify(char32_t c) noexcept;

// Decodes the code point at `text[i]` and advances `i`. REQUIRES: valid UTF-8, i < size.
char32_t next_code_point(std::string_view text, std::size_t& i) noexcept;

// Appends the UTF-8 encoding of `c` to `out`.
void append_utf8(char32_t c, std::string& out);

// Writes the characters of `text` whose class is kept to `out`: letters and marks always, digits
// when `keep_digits`. REQUIRES: valid UTF-8.
void keep_letters(std::string_view text, bool keep_digits, std::string& out);

// Counts the code points of valid UTF-8 text.
std::size_t count_code_points(std::string_view text) noexcept;

// Writes `text` folded for lookups in the country and state tables: letters lowercased and
// stripped of accents ("Côte d'Ivoire" becomes "cote d ivoire"), '&' spelled "and", every other
// non-alphanumeric run turned into one space, no leading or trailing space. REQUIRES: valid UTF-8.
void fold_for_lookup(std::string_view text, bool ascii, std::string& out);

}  // namespace activation::identifiers

#endif  // ACTIVATION_SRC_IDENTIFIERS_TEXT_HPP_
