// A fast path for parsing and validating phone numbers written in common ASCII layouts.
//
// PhoneFastPath mirrors, step by step, what libphonenumber's Parse() and IsValidNumber() do for
// inputs made of ASCII digits, the usual separators, an optional leading '+' and an optional "x" or
// "ext" extension. It reads libphonenumber's own compiled-in metadata and evaluates its patterns
// with DigitAutomaton instead of ICU regular expressions, and finds the national prefix that ICU
// would consume with PrefixMatcher where several could match. Some outcomes depend on what it does
// not model: a national prefix transform applied to what a group captured, an international
// dialling prefix that could match more than one prefix of the digits, letters, non-ASCII text.
// For those it returns kUnknown, and the caller asks libphonenumber. The identifiers test suite checks on many
// generated numbers that both paths agree.
//
// Thread safety: the instance is built once and is immutable after that; any thread may use it.
#ifndef ACTIVATION_SRC_IDENTIFIERS_PHONE_FAST_PATH_HPP_
#define ACTIVATION_SRC_IDENTIFIERS_PHONE_FAST_PATH_HPP_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "identifiers/digit_automaton.hpp"

namespace activation::identifiers {

// kValid: IsValidNumber() holds. kPossible: not valid, but IsPossibleNumberWithReason() says
// IS_POSSIBLE. kNotPossible: neither, or Parse() fails. kUnknown: ask libphonenumber.
enum class FastPhoneOutcome { kValid, kPossible, kNotPossible, kUnknown };

// The digits of a phone text in a layout that the fast path models, read once so that the same
// text can be tried in several regions.
struct PhoneLayout {
  static constexpr std::size_t kMaxDigits = 20;  // More digits go to libphonenumber.

  bool readable = false;  // False when the layout is outside the model, so libphonenumber decides.
  bool plus = false;      // The digits follow a leading '+'.
  std::size_t digit_count = 0;
  std::array<char, kMaxDigits> digits{};

  std::string_view digit_view() const noexcept { return {digits.data(), digit_count}; }
};

class PhoneFastPath {
 public:
  // Returns the process-wide instance, built on first use from libphonenumber's metadata (about
  // 50 ms). When that metadata is not reachable, the instance answers kUnknown for every number.
  static const PhoneFastPath& instance();

  // Parses `text` as libphonenumber's Parse(text, region) would, then checks it. On kValid and
  // kPossible, `e164` holds "+<country code><national significant number>". `region` is an ISO
  // 3166-1 alpha-2 code that libphonenumber supports, or "ZZ" for a number that must carry its
  // own country code after a '+'.
  FastPhoneOutcome parse(std::string_view text, std::string_view region, std::string& e164) const;

  // The same in two steps: read_layout() once per text, then parse() per region.
  static PhoneLayout read_layout(std::string_view text) noexcept;
  FastPhoneOutcome parse(const PhoneLayout& layout, std::string_view region, std::string& e164) const;

  // Returns how many leading digits of `digits` the international dialling prefix of `region`
  // takes, 0 when it does not match. Returns nullopt for an unknown region, and for a prefix
  // pattern that could match more than one prefix.
  std::optional<std::size_t> international_prefix_length(std::string_view region,
                                                         std::string_view digits) const;

  // True when the metadata was loaded and every region's patterns compiled.
  bool available() const noexcept { return !regions_.empty(); }

  // The region codes whose patterns compiled, for the agreement tests.
  std::vector<std::string> regions() const;

  struct Region;  // One metadata entry: a region, or a non-geographic calling code.

 private:
  PhoneFastPath();

  const Region* region_for_code(std::string_view region) const;
  const std::vector<const Region*>* regions_for_calling_code(int country_code) const;
  bool is_valid(int country_code, std::string_view national_number) const;

  std::vector<std::unique_ptr<Region>> regions_;
  // Indexed by the two letters of a region code: 26 * 26 slots.
  std::vector<const Region*> by_region_code_;
  // Indexed by calling code (1..999): the regions in libphonenumber's lookup order, main country first.
  std::vector<std::vector<const Region*>> by_calling_code_;
  // Indexed by calling code, for codes shared by several regions (up to 32): bit i of a match says
  // that region i's leading digits match, or for a region without leading digits, that its general
  // pattern matches, which a valid number needs. One run replaces a run per region.
  std::vector<std::optional<DigitAutomaton>> region_selectors_;
  // Indexed by calling code, for codes shared by several regions: a bit set over the first
  // kScreenDigits digits of a national number (10^kScreenDigits bits). A clear bit means that no
  // region of the code has both a general description and a number type that a number with those
  // first digits can match. is_valid() then returns false without running the automata.
  static constexpr std::size_t kScreenDigits = 4;
  std::vector<std::vector<std::uint64_t>> live_prefixes_;
};

}  // namespace activation::identifiers

#endif  // ACTIVATION_SRC_IDENTIFIERS_PHONE_FAST_PATH_HPP_
