#include "identifiers/phone.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <set>

#include <phonenumbers/phonenumberutil.h>

#include "core/per_thread.hpp"
#include "identifiers/phone_fast_path.hpp"
#include "identifiers/regions.hpp"
#include "identifiers/text.hpp"

namespace activation::identifiers {
namespace {

// True when `value` has a decimal digit of any script (Unicode category Nd), such as a fullwidth
// or an Arabic-Indic one, which libphonenumber reads as a digit. Only values without an ASCII
// digit come here.
bool has_decimal_digit(std::string_view value) {
  for (std::size_t i = 0; i < value.size();) {
    if (classify(next_code_point(value, i)) == CharClass::kDigit) return true;
  }
  return false;
}

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

// The maximum phone text. The field's length limit rejects longer values before parsing, and this
// bounds the stack buffer that contains the text after the "00" rewrite.
constexpr std::size_t kMaxPhoneText = 128;

// Indexed by the two letters of a region code: 26 * 26 slots.
const std::array<bool, 26 * 26>& supported_regions() {
  static const auto* const kRegions = [] {
    std::set<std::string> regions;
    PhoneNumberUtil::GetInstance()->GetSupportedRegions(&regions);
    auto* table = new std::array<bool, 26 * 26>{};
    for (const std::string& region : regions) {
      if (region.size() == 2) (*table)[(region[0] - 'A') * 26 + (region[1] - 'A')] = true;
    }
    return table;
  }();
  return *kRegions;
}

}  // namespace

bool is_phone_region(std::string_view region) {
  if (region.size() != 2 || region[0] < 'A' || region[0] > 'Z' || region[1] < 'A' || region[1] > 'Z')
    return false;
  return supported_regions()[(region[0] - 'A') * 26 + (region[1] - 'A')];
}

PhoneCheck parse_phone_with_libphonenumber(std::string_view text, std::string_view region,
                                           std::string& e164) {
  const PhoneNumberUtil* util = PhoneNumberUtil::GetInstance();
  PhoneNumber number;
  if (util->Parse(std::string(text), std::string(region), &number) != PhoneNumberUtil::NO_PARSING_ERROR) {
    return PhoneCheck::kNotPossible;
  }
  PhoneCheck check = PhoneCheck::kValid;
  if (!util->IsValidNumber(number)) {
    // A local-only length (a US number without its area code) cannot be matched: not possible here.
    if (util->IsPossibleNumberWithReason(number) != PhoneNumberUtil::IS_POSSIBLE)
      return PhoneCheck::kNotPossible;
    check = PhoneCheck::kPossible;
  }
  util->Format(number, PhoneNumberUtil::E164, &e164);
  return check;
}

namespace {

// Parses like parse_phone(), for a text whose layout is already read.
PhoneCheck parse_read_phone(const PhoneLayout& layout, std::string_view text, std::string_view region,
                            std::string& e164) {
  switch (PhoneFastPath::instance().parse(layout, region, e164)) {
    case FastPhoneOutcome::kValid: return PhoneCheck::kValid;
    case FastPhoneOutcome::kPossible: return PhoneCheck::kPossible;
    case FastPhoneOutcome::kNotPossible: return PhoneCheck::kNotPossible;
    case FastPhoneOutcome::kUnknown: break;
  }
  return parse_phone_with_libphonenumber(text, region, e164);
}

// Each thread's state of normalize_phone().
struct PhoneScratch {
  // The last row country looked up, and its region: every phone of a row has the same one.
  std::string last_country;
  std::string_view last_region;
  bool used = false;
  // The row's possible reading while the default region is tried; it keeps its capacity.
  std::string kept_row_reading;
};

// Returns the row's country as a region with phone numbering, or an empty view.
std::string_view row_phone_region(std::string_view row_country, PhoneScratch& scratch) {
  if (scratch.used && scratch.last_country == row_country) return scratch.last_region;

  std::string_view region;
  TextScan scan = scan_text(row_country);
  if (scan.problem == TextProblem::kNone) {
    std::string_view code = lookup_country(row_country, scan.ascii);
    if (is_phone_region(code)) region = code;
  }
  if (row_country.size() <= 64) {
    scratch.last_country.assign(row_country);
    scratch.last_region = region;
    scratch.used = true;
  }
  return region;
}

// Reads a number without a country code of its own in the row's country first, then in the default
// region. A valid reading beats a possible one. Returns `outcome` completed with the result.
PhoneOutcome read_in_regions(PhoneOutcome outcome, const PhoneLayout& layout, std::string_view text,
                             std::string_view row_country, std::string_view default_region, std::string& e164) {
  // The country is looked up only here, as a number with its own country code does not need it.
  PhoneScratch& scratch = internal::per_thread<PhoneScratch>();
  row_country = trim(row_country);
  if (!row_country.empty()) outcome.row_region = row_phone_region(row_country, scratch);
  const std::string_view row_region = outcome.row_region;
  PhoneCheck row_check = PhoneCheck::kNotPossible;
  if (!row_region.empty()) {
    row_check = parse_read_phone(layout, text, row_region, e164);
    if (row_check == PhoneCheck::kValid ||
        (row_check == PhoneCheck::kPossible && row_region == default_region)) {
      outcome.kind = PhoneOutcome::Kind::kAccepted;
      outcome.valid = row_check == PhoneCheck::kValid;
      return outcome;
    }
    outcome.row_region_failed = true;
  }
  if (row_region == default_region) return outcome;

  // Keep the row's possible reading while the default region is tried.
  std::string& kept_row_reading = scratch.kept_row_reading;
  kept_row_reading.clear();
  if (row_check == PhoneCheck::kPossible) kept_row_reading.swap(e164);
  PhoneCheck default_check = parse_read_phone(layout, text, default_region, e164);
  if (default_check == PhoneCheck::kValid ||
      (default_check == PhoneCheck::kPossible && row_check == PhoneCheck::kNotPossible)) {
    outcome.kind = PhoneOutcome::Kind::kAccepted;
    outcome.region_guessed = true;
    outcome.valid = default_check == PhoneCheck::kValid;
    return outcome;
  }
  if (row_check == PhoneCheck::kPossible) {
    e164.swap(kept_row_reading);
    outcome.kind = PhoneOutcome::Kind::kAccepted;
    outcome.row_region_failed = false;
  }
  return outcome;
}

}  // namespace

PhoneCheck parse_phone(std::string_view text, std::string_view region, std::string& e164) {
  return parse_read_phone(PhoneFastPath::read_layout(text), text, region, e164);
}

PhoneOutcome normalize_phone(std::string_view value, std::string_view row_country,
                             std::string_view default_region, std::string& e164) {
  PhoneOutcome outcome;
  if (value.size() > kMaxPhoneText) return outcome;

  // Find where the number starts, at the first digit or plus sign, then count the ASCII digits
  // (none, or only zeros, is not a number whatever the region).
  std::size_t start = 0;
  while (start < value.size()) {
    const char c = value[start];
    if ((c >= '0' && c <= '9') || c == '+' || (c == '\xEF' && value.substr(start, 3) == "\xEF\xBC\x8B")) break;
    ++start;
  }
  std::size_t digits = 0;
  std::size_t zeros = 0;
  unsigned char high_bits = 0;
  for (char c : value) {
    digits += static_cast<unsigned char>(c - '0') < 10 ? 1 : 0;
    zeros += c == '0' ? 1 : 0;
    high_bits |= static_cast<unsigned char>(c);
  }
  const bool ascii = high_bits < 0x80;
  if (digits == 0 && (ascii || !has_decimal_digit(value))) {
    outcome.kind = PhoneOutcome::Kind::kNoDigits;
    return outcome;
  }
  if (digits > 0 && digits == zeros) {
    outcome.kind = PhoneOutcome::Kind::kAllZeros;
    return outcome;
  }

  // A number that starts with "00" is read as if the "00" were a '+', the international prefix of
  // most of the world. U+FF0B FULLWIDTH PLUS SIGN counts as '+', as it does for libphonenumber.
  const bool double_zero = start + 1 < value.size() && value[start] == '0' && value[start + 1] == '0';
  outcome.international =
      double_zero || (start < value.size() && (value[start] == '+' || value[start] == '\xEF'));

  // The layout is read once for every reading tried below.
  const PhoneLayout layout = PhoneFastPath::read_layout(value);
  if (!outcome.international) return read_in_regions(outcome, layout, value, row_country, default_region, e164);

  // The text with its "00" written as '+', for libphonenumber.
  std::array<char, kMaxPhoneText + 1> buffer;
  auto rewritten = [&] {
    std::memcpy(buffer.data(), value.data(), start);
    buffer[start] = '+';
    std::memcpy(buffer.data() + start + 1, value.data() + start + 2, value.size() - start - 2);
    return std::string_view(buffer.data(), value.size() - 1);
  };
  PhoneLayout plus_layout = layout;
  if (double_zero) {
    if (layout.readable) {
      // The layout of the rewritten text without copying it: the first two digits are the "00",
      // since nothing but separators comes before them.
      std::copy(layout.digits.begin() + 2, layout.digits.end(), plus_layout.digits.begin());
      plus_layout.digit_count -= 2;
      plus_layout.plus = true;
    } else {
      // Two digits fewer may fit the layout's limit.
      plus_layout = PhoneFastPath::read_layout(rewritten());
    }
  }
  PhoneCheck check = PhoneCheck::kNotPossible;
  switch (PhoneFastPath::instance().parse(plus_layout, "ZZ", e164)) {
    case FastPhoneOutcome::kValid: check = PhoneCheck::kValid; break;
    case FastPhoneOutcome::kPossible: check = PhoneCheck::kPossible; break;
    case FastPhoneOutcome::kNotPossible: check = PhoneCheck::kNotPossible; break;
    case FastPhoneOutcome::kUnknown:
      check = parse_phone_with_libphonenumber(double_zero ? rewritten() : value, "ZZ", e164);
      break;
  }
  if (!double_zero || check != PhoneCheck::kNotPossible) {
    outcome.kind =
        check == PhoneCheck::kNotPossible ? PhoneOutcome::Kind::kNotPossible : PhoneOutcome::Kind::kAccepted;
    outcome.valid = check == PhoneCheck::kValid;
    return outcome;
  }

  // Not even possible after a '+': the "00" may begin a longer international prefix of the row's
  // country or of the default region ("0011" in Australia, "002" in South Korea), which those
  // readings strip. They are tried only where such a prefix matches. Only a valid reading wins,
  // because a number written with "00" is meant to be international.
  const PhoneFastPath& fast = PhoneFastPath::instance();
  auto longer_prefix = [&](std::string_view region) {
    if (region.empty() || !layout.readable) return !region.empty();
    const std::optional<std::size_t> length = fast.international_prefix_length(region, layout.digit_view());
    return !length || *length > 2;
  };
  const std::string_view trimmed_country = trim(row_country);
  const std::string_view row_region =
      trimmed_country.empty() ? std::string_view()
                              : row_phone_region(trimmed_country, internal::per_thread<PhoneScratch>());
  outcome.kind = PhoneOutcome::Kind::kNotPossible;
  if (!longer_prefix(row_region) && !longer_prefix(default_region)) return outcome;
  PhoneOutcome regional = read_in_regions(outcome, layout, value, row_country, default_region, e164);
  return regional.kind == PhoneOutcome::Kind::kAccepted && regional.valid ? regional : outcome;
}

}  // namespace activation::identifiers
