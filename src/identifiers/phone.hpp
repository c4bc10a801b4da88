// Phone number parsing with libphonenumber, the region policy, and E.164 output.
//
// Thread safety: stateless functions over libphonenumber's thread-safe singleton and the immutable
// PhoneFastPath; safe from any thread.
#ifndef ACTIVATION_SRC_IDENTIFIERS_PHONE_HPP_
#define ACTIVATION_SRC_IDENTIFIERS_PHONE_HPP_

#include <string>
#include <string_view>

namespace activation::identifiers {

// True when libphonenumber has numbering rules for `region`, an uppercase ISO 3166-1 alpha-2 code.
bool is_phone_region(std::string_view region);

// The fit of a parsed number to its numbering plan.
enum class PhoneCheck {
  kNotPossible,  // Parse() failed, or the length is wrong for the calling code.
  kPossible,     // IsPossibleNumberWithReason() is IS_POSSIBLE, but IsValidNumber() is false.
  kValid,        // IsValidNumber(): in a range the numbering plan assigns.
};

// Parses `text` as libphonenumber's Parse(text, region) and checks the number, writing
// "+<country code><number>" to `e164` unless the result is kNotPossible. `region` is a supported
// region, or "ZZ" when the text must carry its own country code. The fast path decides when it
// can, and libphonenumber decides the rest.
PhoneCheck parse_phone(std::string_view text, std::string_view region, std::string& e164);

// The same through libphonenumber only; the tests compare it with parse_phone().
PhoneCheck parse_phone_with_libphonenumber(std::string_view text, std::string_view region, std::string& e164);

struct PhoneOutcome {
  enum class Kind { kAccepted, kNoDigits, kAllZeros, kNotPossible };
  Kind kind = Kind::kNotPossible;
  std::string_view row_region;     // The row's country as a region with known numbering, if it was needed.
  bool international = false;      // The text carried its own country code ('+' or "00").
  bool region_guessed = false;     // Read as a number of the default region, not of the row's country.
  bool row_region_failed = false;  // The row's country was tried first and did not fit.
  bool valid = false;              // In an assigned range; otherwise only of a possible length.
};

// Applies the region policy. A number written with '+' or "00" carries its own country. Any other
// number is tried as a number of the row's country (`row_country`, any spelling that
// lookup_country() accepts, ignored when empty, unknown or without phone numbering), then of
// `default_region`; a valid number wins over a merely possible one, and the row's country wins a
// tie. On kAccepted, `e164` holds the number. REQUIRES: `value` valid UTF-8 without surrounding
// whitespace; `default_region` supported.
PhoneOutcome normalize_phone(std::string_view value, std::string_view row_country,
                             std::string_view default_region, std::string& e164);

}  // namespace activation::identifiers

#endif  // ACTIVATION_SRC_IDENTIFIERS_PHONE_HPP_
