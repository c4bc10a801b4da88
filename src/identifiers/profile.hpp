// The rule profiles behind Normalizer: for each platform and field, the treatment, the rule that
// normalizes the value, and the size limit of the raw value.
//
// Thread safety: profiles are immutable once built; any thread may read them.
#ifndef ACTIVATION_SRC_IDENTIFIERS_PROFILE_HPP_
#define ACTIVATION_SRC_IDENTIFIERS_PROFILE_HPP_

#include <array>
#include <cstddef>
#include <iterator>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "activation/identifiers.hpp"

namespace activation::identifiers {

// What a field rule may read besides the value itself.
struct FieldContext {
  Platform platform;
  const NormalizerOptions& options;  // default_region is uppercase and supported by libphonenumber.
  const RowContext& row;
  bool ascii;  // Every byte of the value is below 0x80.
};

// Normalizes a trimmed, non-empty, valid UTF-8 value into `out.normalized`, or sets `out.error`
// (and may add warnings). Hashing is not the rule's business.
using FieldRule = void (*)(std::string_view value, const FieldContext& context, NormalizedIdentifier& out);

struct FieldSpec {
  FieldTreatment treatment = FieldTreatment::kNotAccepted;
  FieldRule rule = nullptr;
  std::size_t max_bytes = 0;  // Limit on the raw value, checked before anything else.
};

using ProfileFields = std::array<FieldSpec, kFieldCount>;

// Returns the field table of `platform`.
const ProfileFields& profile_fields(Platform platform);

// Reasons are recycled through a per-thread pool so that a value with a warning or an error does
// not allocate once the pool has warmed up: recycle_reasons() moves the reasons of `out` into the
// pool, and take_reason() hands one back with its strings cleared.
void recycle_reasons(NormalizedIdentifier& out);
Reason take_reason(std::string_view code);

// Sets `out.error` to `code` with `message`.
void reject(NormalizedIdentifier& out, std::string_view code, std::string_view message);

// Sets `out.error` to `code` with a formatted message.
template <typename... Args>
void reject_format(NormalizedIdentifier& out, std::string_view code, fmt::format_string<Args...> format,
                   Args&&... args) {
  Reason reason = take_reason(code);
  fmt::format_to(std::back_inserter(reason.message), format, std::forward<Args>(args)...);
  out.error = std::move(reason);
}

// Adds a warning `code` to `out` and returns its message, empty, for the caller to fill.
std::string& add_warning(NormalizedIdentifier& out, std::string_view code);

}  // namespace activation::identifiers

namespace activation {

struct Normalizer::Profile {
  Platform platform;
  NormalizerOptions options;
  const identifiers::ProfileFields* fields;
};

}  // namespace activation

#endif  // ACTIVATION_SRC_IDENTIFIERS_PROFILE_HPP_
