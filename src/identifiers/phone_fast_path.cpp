#include "identifiers/phone_fast_path.hpp"

#include <array>
#include <charconv>
#include <optional>

#include <set>

#include <phonenumbers/phonemetadata.pb.h>
#include <phonenumbers/phonenumberutil.h>

// libphonenumber keeps its compiled-in metadata behind these two functions. Every build of the
// library exports them because its own loader calls them, but no installed header declares them.
// NOTE: libphonenumber 8.12 has no public way to read the numbering patterns, because
// PhoneNumberUtil::GetMetadataForRegion() and GetMetadataForNonGeographicalRegion() are private.
// So the functions are declared here as weak symbols. Their metadata is used only when
// metadata_agrees_with_public_api() finds it consistent with the public API. When a build lacks
// them or the check fails, the fast path stays off and libphonenumber parses every number.
namespace i18n::phonenumbers {
[[gnu::weak]] int metadata_size();
[[gnu::weak]] const void* metadata_get();
}  // namespace i18n::phonenumbers

namespace activation::identifiers {
namespace {

// libphonenumber's limits on a national significant number.
constexpr std::size_t kMinNsnLength = 2;
constexpr std::size_t kMaxNsnLength = 17;

// The number descriptions in the order GetNumberTypeHelper() tests them; general first.
enum Desc : int {
  kGeneral = 0,
  kPremiumRate,
  kTollFree,
  kSharedCost,
  kVoip,
  kPersonalNumber,
  kPager,
  kUan,
  kVoicemail,
  kFixedLine,
  kMobile,
  kDescCount,
};

enum class LengthCheck : std::uint8_t { kPossible, kPossibleLocalOnly, kTooShort, kTooLong, kInvalidLength };

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// True when `text` starts with `prefix`. The prefixes here are a few digits long, for which a loop
// costs less than a call to memcmp.
bool starts_with(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (text[i] != prefix[i]) return false;
  }
  return true;
}

bool is_literal_digits(std::string_view pattern) {
  if (pattern.empty()) return false;
  for (char c : pattern) {
    if (!is_digit(c)) return false;
  }
  return true;
}

bool has_capture_group(std::string_view pattern) {
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      ++i;
    } else if (pattern[i] == '(' && (i + 1 == pattern.size() || pattern[i + 1] != '?')) {
      return true;
    }
  }
  return false;
}

// Returns the digits before a top-level '|' at the very start of `pattern` ("1" for "1|(...)"),
// or an empty view.
std::string_view literal_first_alternative(std::string_view pattern) {
  std::size_t i = 0;
  while (i < pattern.size() && is_digit(pattern[i])) ++i;
  return i > 0 && i < pattern.size() && pattern[i] == '|' ? pattern.substr(0, i) : std::string_view();
}

// Checks the metadata read through the undeclared functions against libphonenumber's public API.
// It must list the same regions, each with the calling code and national prefix that
// PhoneNumberUtil reports, and PhoneNumberUtil must know every non-geographic entry as such. A
// mismatch means that the functions return other metadata than PhoneNumberUtil uses.
bool metadata_agrees_with_public_api(const i18n::phonenumbers::PhoneMetadataCollection& collection) {
  using i18n::phonenumbers::PhoneNumberUtil;
  const PhoneNumberUtil* util = PhoneNumberUtil::GetInstance();
  std::set<std::string> supported;
  util->GetSupportedRegions(&supported);

  std::set<std::string> seen;
  for (const auto& metadata : collection.metadata()) {
    const std::string& id = metadata.id();
    if (id == "001") {
      std::string region;
      util->GetRegionCodeForCountryCode(metadata.country_code(), &region);
      if (region != "001") return false;
      continue;
    }
    if (supported.count(id) == 0 || util->GetCountryCodeForRegion(id) != metadata.country_code()) return false;
    std::string national_prefix;
    util->GetNddPrefixForRegion(id, false, &national_prefix);
    if (national_prefix != metadata.national_prefix()) return false;
    seen.insert(id);
  }
  return seen == supported;
}

}  // namespace

struct PhoneFastPath::Region {
  // What parsing reads, first and together: a row's country brings a region of its own, often
  // not in the cache, so the fewer cache lines it touches the better.
  int country_code = 0;
  std::string country_code_digits;
  std::string international_prefix_literal;  // Set when the prefix is plain digits, such as "011".
  std::string national_prefix;               // national_prefix_for_parsing
  std::string first_alternative;             // "1" for "1|([2-9]\d{6})$": a literal first alternative.
  bool national_prefix_is_literal = false;
  bool transform_applies = false;  // A transform rule, and a capture group that can feed it.
  // Main regions only: every region of the calling code lists no general length that this one
  // lacks, so a number of a length this region rejects is valid nowhere under the code.
  bool lengths_cover_calling_code = false;
  // test_length() of a number of each length up to kLengthTable - 1.
  static constexpr std::size_t kLengthTable = 32;
  std::array<LengthCheck, kLengthTable> length_checks{};
  // For each length, the descriptions that allow it: those without a list of lengths and those
  // whose list contains it. Mobile is left out when it shares the fixed-line pattern, because
  // GetNumberTypeHelper() then does not test it.
  std::array<std::uint32_t, kMaxNsnLength + 1> descs_by_length{};
  DigitAutomaton descs;  // Bit i of a match is Desc i.
  std::optional<DigitAutomaton> international_prefix;
  std::optional<DigitAutomaton> national_prefix_pattern;
  // With a transform: the national prefix pattern's matches in which a capturing group takes part.
  // Empty when that could not be compiled.
  std::optional<DigitAutomaton> national_prefix_capture;
  // The national prefix pattern's first match, in the regex engine's order of preference, for the
  // digits where the automata leave the choice open.
  std::optional<PrefixMatcher> national_prefix_matcher;
  std::optional<DigitAutomaton> leading_digits;

  // Read while the fast path is built.
  std::string id;
  std::array<std::uint32_t, kDescCount> length_masks{};
  std::array<bool, kDescCount> lengths_listed{};
  std::vector<int> general_lengths;
  std::uint32_t local_only_lengths = 0;
  bool same_mobile_and_fixed_line = false;
  std::string general_pattern;
  std::string leading_digits_pattern;

  bool general_matches(std::string_view number) const { return (descs.full_match(number) & 1u) != 0; }

  LengthCheck test_length(std::string_view number) const {
    return number.size() < kLengthTable ? length_checks[number.size()] : compute_test_length(number.size());
  }

  // libphonenumber's TestNumberLength() against the general description.
  LengthCheck compute_test_length(std::size_t size) const {
    if (general_lengths.empty() || general_lengths.front() == -1) return LengthCheck::kInvalidLength;
    const int length = static_cast<int>(size);
    if (length < 32 && (local_only_lengths & (1u << length))) return LengthCheck::kPossibleLocalOnly;
    if (general_lengths.front() == length) return LengthCheck::kPossible;
    if (general_lengths.front() > length) return LengthCheck::kTooShort;
    if (general_lengths.back() < length) return LengthCheck::kTooLong;
    for (std::size_t i = 1; i < general_lengths.size(); ++i) {
      if (general_lengths[i] == length) return LengthCheck::kPossible;
    }
    return LengthCheck::kInvalidLength;
  }

  // libphonenumber's GetNumberTypeHelper(...) != UNKNOWN: the number matches the general
  // description and at least one type, each counting only at the lengths it lists.
  bool has_number_type(std::string_view number) const {
    if (number.size() > kMaxNsnLength) return false;
    // At a length that no type lists, no match can count: the automaton need not run.
    const std::uint32_t at_length = descs_by_length[number.size()];
    if ((at_length & 1u) == 0 || (at_length & ~1u) == 0) return false;
    const std::uint32_t matches = descs.full_match(number) & at_length;
    return (matches & 1u) != 0 && (matches & ~1u) != 0;
  }

  enum class Strip { kUnchanged, kStripped, kUnknown };

  // True when a capturing group of the national prefix pattern may take part in a match of a
  // prefix of `number`.
  bool may_capture(std::string_view number) const {
    return !national_prefix_capture || national_prefix_capture->prefix_match_lengths(number) != 0;
  }

  // libphonenumber's MaybeStripNationalPrefixAndCarrierCode(). On kStripped, `prefix_length` digits
  // come off the front of `number`.
  Strip strip_national_prefix(std::string_view number, std::size_t& prefix_length) const {
    if (number.empty() || national_prefix.empty()) return Strip::kUnchanged;

    std::uint64_t lengths = 0;
    if (national_prefix_is_literal) {
      if (starts_with(number, national_prefix))
        lengths = 1ull << national_prefix.size();
    } else {
      lengths = national_prefix_pattern->prefix_match_lengths(number);
    }
    // An empty match consumes nothing and captures nothing, so no transform applies either.
    if (lengths == 0 || lengths == 1) return Strip::kUnchanged;

    std::size_t length = 0;
    if (!first_alternative.empty() && starts_with(number, first_alternative)) {
      // ICU tries alternatives in order: a leading literal alternative such as the "1" of
      // "1|([2-9]\d{6})$" wins, and leaves every capture group, hence the transform, unused.
      length = first_alternative.size();
    } else if ((transform_applies && may_capture(number)) || (lengths & (lengths - 1)) != 0) {
      // A transform needs a group that captured something, and then depends on what it captured,
      // which is not modelled here. Without one, MaybeStripNationalPrefixAndCarrierCode() strips
      // the whole of the regex engine's first match, which the matcher finds when several
      // lengths could match.
      if (!national_prefix_matcher) return Strip::kUnknown;
      const std::optional<PrefixMatcher::Match> first = national_prefix_matcher->first_match(number);
      if (!first || (first->captured && transform_applies)) return Strip::kUnknown;
      if (!first->matched || first->length == 0) return Strip::kUnchanged;
      length = first->length;
    } else {
      while ((lengths & (1ull << length)) == 0) ++length;
    }
    if (general_matches(number) && !general_matches(number.substr(length))) return Strip::kUnchanged;
    prefix_length = length;
    return Strip::kStripped;
  }
};

PhoneFastPath::PhoneFastPath() {
  using i18n::phonenumbers::PhoneMetadata;
  using i18n::phonenumbers::PhoneMetadataCollection;
  using i18n::phonenumbers::PhoneNumberDesc;

  if (&i18n::phonenumbers::metadata_get == nullptr || &i18n::phonenumbers::metadata_size == nullptr) return;
  PhoneMetadataCollection collection;
  if (!collection.ParseFromArray(i18n::phonenumbers::metadata_get(), i18n::phonenumbers::metadata_size()))
    return;
  if (!metadata_agrees_with_public_api(collection)) return;

  std::vector<std::unique_ptr<Region>> regions;
  for (const PhoneMetadata& metadata : collection.metadata()) {
    auto region = std::make_unique<Region>();
    region->id = metadata.id();
    region->country_code = metadata.country_code();
    region->country_code_digits = std::to_string(metadata.country_code());
    if (region->country_code <= 0 || region->country_code >= 1000) return;

    const std::array<const PhoneNumberDesc*, kDescCount> descs = {
        &metadata.general_desc(), &metadata.premium_rate(),    &metadata.toll_free(), &metadata.shared_cost(),
        &metadata.voip(),         &metadata.personal_number(), &metadata.pager(),     &metadata.uan(),
        &metadata.voicemail(),    &metadata.fixed_line(),      &metadata.mobile()};
    std::vector<std::string_view> patterns;
    for (int i = 0; i < kDescCount; ++i) {
      patterns.push_back(descs[i]->national_number_pattern());
      region->lengths_listed[i] = descs[i]->possible_length_size() > 0;
      for (int length : descs[i]->possible_length()) {
        if (length >= 0 && length < 32) region->length_masks[i] |= 1u << length;
      }
    }
    auto compiled = DigitAutomaton::compile(patterns);
    if (!compiled) return;
    region->descs = std::move(*compiled);
    region->general_lengths.assign(metadata.general_desc().possible_length().begin(),
                                   metadata.general_desc().possible_length().end());
    for (int length : metadata.general_desc().possible_length_local_only()) {
      if (length >= 0 && length < 32) region->local_only_lengths |= 1u << length;
    }
    for (std::size_t length = 0; length < Region::kLengthTable; ++length) {
      region->length_checks[length] = region->compute_test_length(length);
    }
    region->same_mobile_and_fixed_line = metadata.same_mobile_and_fixed_line_pattern();
    for (std::size_t length = 0; length <= kMaxNsnLength; ++length) {
      for (int desc = 0; desc < kDescCount; ++desc) {
        if (desc == kMobile && region->same_mobile_and_fixed_line) continue;
        if (!region->lengths_listed[desc] || (region->length_masks[desc] & (1u << length)) != 0) {
          region->descs_by_length[length] |= 1u << desc;
        }
      }
    }

    region->general_pattern = metadata.general_desc().national_number_pattern();
    if (metadata.has_leading_digits() && !metadata.leading_digits().empty()) {
      region->leading_digits_pattern = metadata.leading_digits();
      region->leading_digits = DigitAutomaton::compile({metadata.leading_digits()});
      if (!region->leading_digits) return;
    }
    if (is_literal_digits(metadata.international_prefix())) {
      region->international_prefix_literal = metadata.international_prefix();
    } else if (!metadata.international_prefix().empty()) {
      region->international_prefix = DigitAutomaton::compile({metadata.international_prefix()});
      if (!region->international_prefix) return;
    }
    region->national_prefix = metadata.national_prefix_for_parsing();
    region->transform_applies =
        !metadata.national_prefix_transform_rule().empty() && has_capture_group(region->national_prefix);
    region->first_alternative = literal_first_alternative(region->national_prefix);
    region->national_prefix_is_literal = is_literal_digits(region->national_prefix);
    if (!region->national_prefix.empty() && !region->national_prefix_is_literal) {
      region->national_prefix_pattern = DigitAutomaton::compile({region->national_prefix});
      if (!region->national_prefix_pattern) return;
    }
    if (region->transform_applies) {
      region->national_prefix_capture = DigitAutomaton::compile_with_capture(region->national_prefix);
    }
    if (region->national_prefix_pattern) {
      region->national_prefix_matcher = PrefixMatcher::compile(region->national_prefix);
    }
    regions.push_back(std::move(region));
  }

  // The same lookup order as libphonenumber: the main country of a shared calling code first, then
  // the others in metadata order.
  std::vector<std::vector<Region*>> by_calling_code(1000);
  std::vector<const Region*> by_region_code(26 * 26, nullptr);
  for (std::size_t i = 0; i < regions.size(); ++i) {
    Region* region = regions[i].get();
    auto& list = by_calling_code[region->country_code];
    if (collection.metadata(static_cast<int>(i)).main_country_for_code()) {
      list.insert(list.begin(), region);
    } else {
      list.push_back(region);
    }
    const std::string& id = region->id;
    if (id.size() == 2 && id[0] >= 'A' && id[0] <= 'Z' && id[1] >= 'A' && id[1] <= 'Z') {
      by_region_code[(id[0] - 'A') * 26 + (id[1] - 'A')] = region;
    }
  }

  for (auto& list : by_calling_code) {
    if (list.empty()) continue;
    Region* main = list.front();
    const std::uint32_t main_lengths = main->length_masks[kGeneral];
    bool covers = main->lengths_listed[kGeneral];
    for (const Region* region : list) {
      covers =
          covers && region->lengths_listed[kGeneral] && (region->length_masks[kGeneral] & ~main_lengths) == 0;
    }
    main->lengths_cover_calling_code = covers;
  }

  std::vector<std::optional<DigitAutomaton>> region_selectors(by_calling_code.size());
  for (std::size_t code = 0; code < by_calling_code.size(); ++code) {
    const auto& list = by_calling_code[code];
    if (list.size() < 2 || list.size() > 32) continue;
    std::vector<std::string> selectors;
    for (const Region* region : list) {
      selectors.push_back(region->leading_digits ? "(?:" + region->leading_digits_pattern + ")\\d*"
                                                 : region->general_pattern);
    }
    std::vector<std::string_view> views(selectors.begin(), selectors.end());
    region_selectors[code] = DigitAutomaton::compile(views);
    if (!region_selectors[code]) return;
  }

  // The prefix screen of each shared calling code. One bit per prefix of kScreenDigits digits,
  // set when, for some region, both the general description and a number type can still match a
  // number that starts with it. That holds for every valid number, as has_number_type() shows.
  std::size_t prefix_count = 1;
  for (std::size_t i = 0; i < kScreenDigits; ++i) prefix_count *= 10;
  std::vector<std::vector<std::uint64_t>> live_prefixes(by_calling_code.size());
  for (std::size_t code = 0; code < by_calling_code.size(); ++code) {
    const auto& list = by_calling_code[code];
    if (list.size() < 2) continue;
    std::vector<std::uint64_t> bits((prefix_count + 63) / 64, 0);
    std::array<char, kScreenDigits> prefix{};
    for (std::size_t index = 0; index < prefix_count; ++index) {
      std::size_t rest = index;
      for (std::size_t i = kScreenDigits; i-- > 0; rest /= 10) prefix[i] = static_cast<char>('0' + rest % 10);
      const std::string_view digits(prefix.data(), prefix.size());
      for (const Region* region : list) {
        const std::uint32_t reachable = region->descs.reachable_matches(digits);
        if ((reachable & 1u) != 0 && (reachable & ~1u) != 0) {
          bits[index / 64] |= std::uint64_t{1} << (index % 64);
          break;
        }
      }
    }
    live_prefixes[code] = std::move(bits);
  }

  regions_ = std::move(regions);
  by_region_code_ = std::move(by_region_code);
  by_calling_code_.resize(by_calling_code.size());
  for (std::size_t code = 0; code < by_calling_code.size(); ++code) {
    by_calling_code_[code].assign(by_calling_code[code].begin(), by_calling_code[code].end());
  }
  region_selectors_ = std::move(region_selectors);
  live_prefixes_ = std::move(live_prefixes);
}

const PhoneFastPath& PhoneFastPath::instance() {
  static const PhoneFastPath* const kInstance = new PhoneFastPath();
  return *kInstance;
}

std::vector<std::string> PhoneFastPath::regions() const {
  std::vector<std::string> codes;
  for (const Region* region : by_region_code_) {
    if (region != nullptr) codes.push_back(region->id);
  }
  return codes;
}

std::optional<std::size_t> PhoneFastPath::international_prefix_length(std::string_view region_code,
                                                                      std::string_view digits) const {
  const Region* region = region_for_code(region_code);
  if (region == nullptr) return std::nullopt;
  if (const std::string& idd = region->international_prefix_literal; !idd.empty()) {
    return starts_with(digits, idd) ? idd.size() : 0;
  }
  if (!region->international_prefix) return 0;
  const std::uint64_t lengths = region->international_prefix->prefix_match_lengths(digits);
  if (lengths == 0) return 0;
  if ((lengths & 1u) != 0 || (lengths & (lengths - 1)) != 0) return std::nullopt;
  return static_cast<std::size_t>(__builtin_ctzll(lengths));
}

const PhoneFastPath::Region* PhoneFastPath::region_for_code(std::string_view region) const {
  if (by_region_code_.empty() || region.size() != 2) return nullptr;
  if (region[0] < 'A' || region[0] > 'Z' || region[1] < 'A' || region[1] > 'Z') return nullptr;
  return by_region_code_[(region[0] - 'A') * 26 + (region[1] - 'A')];
}

const std::vector<const PhoneFastPath::Region*>* PhoneFastPath::regions_for_calling_code(
    int country_code) const {
  if (country_code <= 0 || country_code >= static_cast<int>(by_calling_code_.size())) return nullptr;
  const auto& list = by_calling_code_[country_code];
  return list.empty() ? nullptr : &list;
}

// libphonenumber's IsValidNumber(): find the region of the number within its calling code, then
// check that the number has a type there.
bool PhoneFastPath::is_valid(int country_code, std::string_view national_number) const {
  const auto* candidates = regions_for_calling_code(country_code);
  if (candidates == nullptr) return false;
  if (candidates->size() == 1) return candidates->front()->has_number_type(national_number);
  // Numbers in no assigned range mostly fail within their first few digits in every region, so one
  // bit of the screen replaces an automaton run per region.
  if (national_number.size() >= kScreenDigits) {
    std::size_t index = 0;
    for (std::size_t i = 0; i < kScreenDigits; ++i) {
      index = index * 10 + static_cast<std::size_t>(national_number[i] - '0');
    }
    if (((live_prefixes_[country_code][index / 64] >> (index % 64)) & 1u) == 0) return false;
  }
  // Most numbers of a shared calling code belong to its main country, which comes first.
  const Region* main = candidates->front();
  if (!main->leading_digits && main->has_number_type(national_number)) return true;
  const auto& selector = region_selectors_[country_code];
  if (selector) {
    // Only the regions that the selector picks, in lookup order. A main region without leading
    // digits was tested just above, so it is skipped.
    std::uint32_t selected = selector->full_match(national_number);
    if (!main->leading_digits) selected &= ~1u;
    for (; selected != 0; selected &= selected - 1) {
      const Region* region = (*candidates)[static_cast<std::size_t>(__builtin_ctz(selected))];
      if (region->leading_digits) return region->has_number_type(national_number);
      if (region->has_number_type(national_number)) return true;
    }
    return false;
  }
  for (const Region* region : *candidates) {
    if (region->leading_digits) {
      if (region->leading_digits->prefix_match_lengths(national_number) == 0) continue;
      return region->has_number_type(national_number);
    }
    if (region->has_number_type(national_number)) return true;
  }
  return false;
}

FastPhoneOutcome PhoneFastPath::parse(std::string_view text, std::string_view region_code,
                                      std::string& e164) const {
  if (!available()) return FastPhoneOutcome::kUnknown;
  return parse(read_layout(text), region_code, e164);
}

PhoneLayout PhoneFastPath::read_layout(std::string_view text) noexcept {
  PhoneLayout layout;

  // Read the layout: separators, an optional '+', digits and separators, an optional extension.
  // libphonenumber drops leading characters up to the first digit or '+'; only separators are
  // accepted there, anything else goes to the slow path.
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n && !is_digit(text[i]) && text[i] != '+') {
    char c = text[i];
    if (c != ' ' && c != '(' && c != '-' && c != '.') return layout;
    ++i;
  }
  if (i < n && text[i] == '+') {
    layout.plus = true;
    ++i;
  }
  std::size_t digit_count = 0;
  bool has_slash = false;
  for (; i < n; ++i) {
    char c = text[i];
    if (is_digit(c)) {
      if (digit_count == PhoneLayout::kMaxDigits) return layout;
      layout.digits[digit_count++] = c;
    } else if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') {
      continue;
    } else if (c == '/') {
      has_slash = true;
    } else {
      break;
    }
  }

  // An extension: "x" with up to 9 digits, or "ext"/"ext." with up to 20, as libphonenumber's
  // ambiguous and explicit extension labels allow, then the end of the text.
  if (i < n) {
    // After a '/', libphonenumber reads "/ x..." as the start of a second number.
    if (has_slash) return layout;
    std::size_t max_extension_digits = 0;
    if (text[i] == 'x' || text[i] == 'X') {
      ++i;
      max_extension_digits = 9;
    } else if (i + 3 <= n && (text[i] == 'e' || text[i] == 'E') &&
               (text[i + 1] == 'x' || text[i + 1] == 'X') && (text[i + 2] == 't' || text[i + 2] == 'T')) {
      i += 3;
      max_extension_digits = 20;
    } else {
      return layout;
    }
    if (i < n && (text[i] == '.' || text[i] == ':')) ++i;
    while (i < n && (text[i] == ' ' || text[i] == '-')) ++i;
    std::size_t extension_digits = 0;
    while (i < n && is_digit(text[i])) {
      ++extension_digits;
      ++i;
    }
    if (i != n || extension_digits == 0 || extension_digits > max_extension_digits) return layout;
  }
  if (digit_count < 3) return layout;
  layout.digit_count = digit_count;
  layout.readable = true;
  return layout;
}

FastPhoneOutcome PhoneFastPath::parse(const PhoneLayout& layout, std::string_view region_code,
                                      std::string& e164) const {
  if (!available() || !layout.readable) return FastPhoneOutcome::kUnknown;
  const bool plus = layout.plus;
  const std::string_view digits = layout.digit_view();

  // Find the calling code and the metadata that parsing continues with, as ParseHelper() and
  // MaybeExtractCountryCode() do.
  std::string_view national;
  const Region* metadata = nullptr;
  int country_code = 0;
  const Region* region = plus ? nullptr : region_for_code(region_code);
  if (!plus && region == nullptr) return FastPhoneOutcome::kUnknown;

  // A national number that starts with the region's international prefix ("011" in the US) is
  // dialled abroad, unless a 0 follows the prefix. Such a number then reads like a '+' number.
  std::string_view international;
  bool after_prefix = false;
  if (plus) {
    international = digits;
  } else {
    std::size_t idd_length = 0;
    if (const std::string& idd = region->international_prefix_literal;
        !idd.empty() && starts_with(digits, idd)) {
      idd_length = idd.size();
    } else if (region->international_prefix) {
      // When a prefix pattern such as "0(?:0|[24-7]0|3[03])" can match only one non-empty prefix of
      // the digits, the regex engine consumes exactly that one, whatever its order of preference.
      // With several candidate lengths, or an empty match, libphonenumber decides.
      const std::uint64_t lengths = region->international_prefix->prefix_match_lengths(digits);
      if (lengths != 0) {
        if ((lengths & 1u) != 0 || (lengths & (lengths - 1)) != 0) return FastPhoneOutcome::kUnknown;
        idd_length = static_cast<std::size_t>(__builtin_ctzll(lengths));
      }
    }
    if (idd_length > 0 && (digits.size() == idd_length || digits[idd_length] != '0')) {
      international = digits.substr(idd_length);
      after_prefix = true;
    }
  }

  if (plus || after_prefix) {
    // libphonenumber retries a failed '+' number as a national one when it has a region, which
    // only "ZZ" rules out.
    const bool retries = plus && !(region_code.size() == 2 && starts_with(region_code, "ZZ"));
    if (international.size() <= kMinNsnLength)
      return retries ? FastPhoneOutcome::kUnknown : FastPhoneOutcome::kNotPossible;
    for (std::size_t length = 1; length <= 3 && international[0] != '0'; ++length) {
      int code = 0;
      std::from_chars(international.data(), international.data() + length, code);
      if (const auto* list = regions_for_calling_code(code)) {
        country_code = code;
        metadata = list->front();
        national = international.substr(length);
        break;
      }
    }
    if (metadata == nullptr) return retries ? FastPhoneOutcome::kUnknown : FastPhoneOutcome::kNotPossible;
  } else {
    metadata = region;
    country_code = region->country_code;
    national = digits;

    // A national number may start with the region's own calling code ("1 415 ..." in the US).
    const std::string& code_digits = region->country_code_digits;
    if (starts_with(digits, code_digits)) {
      std::string_view potential = digits.substr(code_digits.size());
      std::size_t prefix_length = 0;
      switch (region->strip_national_prefix(potential, prefix_length)) {
        case Region::Strip::kUnknown: return FastPhoneOutcome::kUnknown;
        case Region::Strip::kStripped: potential.remove_prefix(prefix_length); break;
        case Region::Strip::kUnchanged: break;
      }
      if ((!region->general_matches(digits) && region->general_matches(potential)) ||
          region->test_length(digits) == LengthCheck::kTooLong) {
        national = potential;
        metadata = regions_for_calling_code(country_code)->front();
      }
    }
  }
  if (national.size() < kMinNsnLength) return FastPhoneOutcome::kNotPossible;

  // Strip the national prefix when what remains still has a possible length.
  std::size_t prefix_length = 0;
  switch (metadata->strip_national_prefix(national, prefix_length)) {
    case Region::Strip::kUnknown: return FastPhoneOutcome::kUnknown;
    case Region::Strip::kStripped: {
      std::string_view potential = national.substr(prefix_length);
      LengthCheck check = metadata->test_length(potential);
      if (check != LengthCheck::kTooShort && check != LengthCheck::kPossibleLocalOnly &&
          check != LengthCheck::kInvalidLength) {
        national = potential;
      }
      break;
    }
    case Region::Strip::kUnchanged: break;
  }
  if (national.size() < kMinNsnLength || national.size() > kMaxNsnLength)
    return FastPhoneOutcome::kNotPossible;

  // IsPossibleNumberWithReason() judges the length by the main region of the calling code. When
  // that region's lengths cover every region of the code, a length it rejects cannot be valid
  // either, and the patterns need not run.
  const Region* main = regions_for_calling_code(country_code)->front();
  const bool possible = main->test_length(national) == LengthCheck::kPossible;
  if (!possible && main->lengths_cover_calling_code) return FastPhoneOutcome::kNotPossible;
  FastPhoneOutcome outcome = FastPhoneOutcome::kValid;
  if (!is_valid(country_code, national)) {
    if (!possible) return FastPhoneOutcome::kNotPossible;
    outcome = FastPhoneOutcome::kPossible;
  }
  e164.assign(1, '+');
  e164.append(metadata->country_code_digits);
  e164.append(national);
  return outcome;
}

}  // namespace activation::identifiers
