// Writing JSON text by hand, for the large request bodies and files that are built without a DOM.
#ifndef ACTIVATION_CORE_JSON_TEXT_HPP_
#define ACTIVATION_CORE_JSON_TEXT_HPP_

#include <string>
#include <string_view>

namespace activation::internal {

// Appends `value` to `out` as a JSON string literal: quoted, with '"', '\' and control characters
// escaped. Runs of characters that need no escape, such as whole hex digests, are copied at once.
void append_json_string(std::string& out, std::string_view value);

}  // namespace activation::internal

#endif  // ACTIVATION_CORE_JSON_TEXT_HPP_
