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

// The warnings of the value being normalized. A caller that reuses its NormalizedIdentifier
// leaves the previous value's warnings in it: add_warning() overwrites them in place, so that their
// strings keep their capacity, and drop_stale_warnings() removes those left over.
struct WarningCursor {
  std::size_t count = 0;  // The first `count` entries of out.warnings belong to this value.
};

// What a field rule may read besides the value itself.
struct FieldContext {
  Platform platform;
  const NormalizerOptions& options;  // default_region is uppercase and supported by libphonenumber.
  const RowContext& row;
  bool ascii;  // Every byte of the value is below 0x80.
  WarningCursor& warnings;
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
// not allocate once the pool has warmed up: recycle_error() and drop_stale_warnings() move reasons
// into the pool, and take_reason() hands one back with its strings cleared.
void recycle_error(NormalizedIdentifier& out);
Reason take_reason(std::string_view code);

// Moves the warnings of `out` past the first `keep` into the pool.
void drop_stale_warnings(NormalizedIdentifier& out, std::size_t keep);

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
std::string& add_warning(NormalizedIdentifier& out, WarningCursor& cursor, std::string_view code);

}  // namespace activation::identifiers

namespace activation {

struct Normalizer::Profile {
  Platform platform;
  NormalizerOptions options;
  const identifiers::ProfileFields* fields;
};

}  // namespace activation

#endif  // ACTIVATION_SRC_IDENTIFIERS_PROFILE_HPP_
