// Small text helpers shared by the sources.
#ifndef ACTIVATION_SOURCES_TEXT_HPP_
#define ACTIVATION_SOURCES_TEXT_HPP_

#include <cstddef>
#include <string_view>

namespace activation::sources {

// True when `text` is well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view text) noexcept;

// True when `text` holds only ASCII spaces, tabs, CR and LF (or nothing).
bool is_blank(std::string_view text) noexcept;

// Removes leading and trailing ASCII whitespace.
std::string_view trim_ascii(std::string_view text) noexcept;

}  // namespace activation::sources

#endif  // ACTIVATION_SOURCES_TEXT_HPP_
