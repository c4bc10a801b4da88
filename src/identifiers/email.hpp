// Email address normalization and validation.
//
// Thread safety: stateless functions, safe from any thread.
#ifndef ACTIVATION_SRC_IDENTIFIERS_EMAIL_HPP_
#define ACTIVATION_SRC_IDENTIFIERS_EMAIL_HPP_

#include <string>
#include <string_view>

namespace activation::identifiers {

struct EmailRules {
  // Google removes whitespace inside the address; the other platforms treat it as invalid.
  bool remove_inner_whitespace = false;
  // Google: for gmail.com and googlemail.com, remove the dots and the "+tag" of the local part.
  bool canonicalize_gmail = false;
};

// Lowercases `value` (full Unicode lowercasing and NFC when it is not ASCII), applies `rules` and
// checks the result's shape: one '@', a local part of 1..64 bytes in dot-atom form, a domain of
// two or more labels of letters, digits and inner hyphens, 254 bytes in all. Writes the address to
// `out` and returns nullptr, or returns why the address is invalid. REQUIRES: valid UTF-8 without
// control characters or surrounding whitespace.
const char* normalize_email(std::string_view value, bool ascii, const EmailRules& rules, std::string& out);

}  // namespace activation::identifiers

#endif  // ACTIVATION_SRC_IDENTIFIERS_EMAIL_HPP_
