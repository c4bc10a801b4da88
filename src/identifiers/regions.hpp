// Lookup tables for countries (ISO 3166-1) and for the states and provinces of the United States
// and Canada.
//
// Thread safety: the tables are built on first use and immutable after that; any thread may look
// them up.
#ifndef ACTIVATION_SRC_IDENTIFIERS_REGIONS_HPP_
#define ACTIVATION_SRC_IDENTIFIERS_REGIONS_HPP_

#include <string>
#include <string_view>

namespace activation::identifiers {

// Returns the uppercase ISO 3166-1 alpha-2 code of `value` (an alpha-2 or alpha-3 code in any
// case, or an English name or common variant), or an empty view when the value is not known.
// Accents, case, punctuation, a leading "The", "St." for "Saint" and a parenthesized remark
// ("Falkland Islands (Malvinas)") do not matter. REQUIRES: valid UTF-8 without surrounding
// whitespace; `ascii` says whether every byte is below 0x80.
std::string_view lookup_country(std::string_view value, bool ascii);

// Returns the lowercase two-letter postal code of a US state, district or territory, or of a
// Canadian province or territory, given its code or English name in any case ("New York", "NY",
// "Québec"), or an empty view. `country` limits the search to "US" or "CA"; an empty `country`
// searches both. REQUIRES: valid UTF-8 without surrounding whitespace.
std::string_view lookup_subdivision(std::string_view value, bool ascii, std::string_view country);

// True when `code` is an assigned ISO 3166-1 alpha-2 code (uppercase).
bool is_alpha2_code(std::string_view code);

}  // namespace activation::identifiers

#endif  // ACTIVATION_SRC_IDENTIFIERS_REGIONS_HPP_
