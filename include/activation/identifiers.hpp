// Identifier normalization and hashing, one rule profile per platform.
//
// A platform matches a member only when each identifier is normalized exactly as the platform
// normalizes it before hashing, so there is no global normalizer: each Platform has its own
// profile (docs/normalization.md lists the rules and the sources they follow).
//
// Thread safety: a Normalizer is immutable after create(); one object may be used from many
// threads at once.
#ifndef ACTIVATION_IDENTIFIERS_HPP_
#define ACTIVATION_IDENTIFIERS_HPP_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "activation/export.hpp"
#include "activation/status.hpp"

namespace activation {

// The canonical identifier fields of an audience member.
enum class Field : int {
  kEmail = 0,
  kPhone,
  kFirstName,
  kLastName,
  kFirstInitial,
  kCity,
  kState,
  kZip,
  kCountry,
  kDob,  // A full date; platforms that want year, month and day apart get them derived from it.
  kGender,
  kMaid,  // Mobile advertising id (IDFA or AAID).
  kExternalId,
};
inline constexpr int kFieldCount = 13;

// Returns the canonical name ("email", "first_name", ...).
ACT_EXPORT std::string_view field_name(Field field) noexcept;
// Parses a canonical name; nullopt for anything else.
ACT_EXPORT std::optional<Field> parse_field(std::string_view name) noexcept;

enum class Platform : int { kMeta = 0, kGoogle, kLinkedIn, kTikTok, kSnapchat };
inline constexpr int kPlatformCount = 5;

// Returns the profile name ("meta", "google", "linkedin", "tiktok", "snapchat").
ACT_EXPORT std::string_view platform_name(Platform platform) noexcept;
ACT_EXPORT std::optional<Platform> parse_platform(std::string_view name) noexcept;

// A reason for dropping an identifier, or a warning about an accepted one. `code` is stable and
// machine-readable ("invalid_phone", "phone_region_guessed"); `message` is for people.
struct Reason {
  std::string code;
  std::string message;

  bool operator==(const Reason&) const = default;
};

// The stable reason codes. docs/normalization.md lists when each one is used.
inline constexpr std::string_view kReasonEmpty = "empty";       // Blank, or nothing left.
inline constexpr std::string_view kReasonTooLong = "too_long";  // Over the field's size limit.
inline constexpr std::string_view kReasonInvalidUtf8 = "invalid_utf8";
inline constexpr std::string_view kReasonControlCharacter = "control_character";  // NUL and other controls.
// The platform has no such key.
inline constexpr std::string_view kReasonFieldNotAccepted = "field_not_accepted";
inline constexpr std::string_view kReasonInvalidEmail = "invalid_email";
inline constexpr std::string_view kReasonInvalidPhone = "invalid_phone";
inline constexpr std::string_view kReasonInvalidName = "invalid_name";  // First or last name, first initial.
inline constexpr std::string_view kReasonInvalidCity = "invalid_city";
inline constexpr std::string_view kReasonInvalidState = "invalid_state";
inline constexpr std::string_view kReasonInvalidZip = "invalid_zip";
inline constexpr std::string_view kReasonUnknownCountry = "unknown_country";
inline constexpr std::string_view kReasonInvalidDate = "invalid_date";
inline constexpr std::string_view kReasonInvalidGender = "invalid_gender";
inline constexpr std::string_view kReasonInvalidMaid = "invalid_maid";
inline constexpr std::string_view kReasonInternalError = "internal_error";  // OpenSSL failed to hash.
// Warnings, on identifiers that are kept. A phone number read as a number of the default region:
inline constexpr std::string_view kWarningPhoneRegionGuessed = "phone_region_guessed";
// A phone number of possible length, in no range that the numbering data lists as assigned:
inline constexpr std::string_view kWarningPhoneUnassignedRange = "phone_unassigned_range";

// How a profile treats one field.
enum class FieldTreatment : int {
  kHashed,       // normalized, then sent as the lowercase hex SHA-256 of the normalized text
  kPlain,        // normalized and sent as it is
  kNotAccepted,  // the platform has no such key; the value is dropped with the reason "field_not_accepted"
};

// The outcome of normalizing one value.
struct NormalizedIdentifier {
  Field field = Field::kEmail;
  std::string normalized;        // The normalized text; empty when `error` is set.
  std::string sha256;            // Lowercase hex digest, empty when the field is sent plain or on error.
  bool hashed = false;           // True when `sha256` is what the platform receives.
  bool was_prehashed = false;    // True when the input was already a SHA-256 hex digest.
  std::vector<Reason> warnings;  // Accepted, but worth telling the user (a guessed phone region).
  std::optional<Reason> error;   // Set when the identifier is dropped.

  bool ok() const noexcept { return !error.has_value(); }
  // The text the platform receives: the digest for hashed fields, else the normalized text.
  const std::string& wire_value() const noexcept { return hashed ? sha256 : normalized; }
};

// Options shared by all profiles.
struct NormalizerOptions {
  // ISO 3166-1 alpha-2 region (any case) assumed when the row has no usable country: phone numbers
  // without a country code are read as its numbers, and Meta's state and zip rules follow it.
  std::string default_region = "US";
  // Google only: remove dots and a "+tag" from the local part of gmail.com and googlemail.com addresses.
  bool google_canonicalize_gmail = true;
};

// Context from the rest of the member's row.
struct RowContext {
  std::string_view country;  // The row's raw country value, any accepted spelling; may be empty.
};

// The rule profile of one platform.
class ACT_EXPORT Normalizer {
 public:
  // Returns the profile of `platform`, or kInvalidArgument when an option is invalid (an unknown
  // default region, say).
  static Result<Normalizer> create(Platform platform, NormalizerOptions options = {});

  Platform platform() const noexcept;
  FieldTreatment treatment(Field field) const noexcept;

  // Normalizes and, where the profile says so, hashes one value. Never fails as a call: a value
  // that cannot be used comes back with `error` set. Inputs of any size and content are safe,
  // including invalid UTF-8 and NUL bytes.
  NormalizedIdentifier normalize(Field field, std::string_view value, const RowContext& row = {}) const;
  // The same, reusing the strings of `out` to avoid allocations in a loop.
  void normalize_into(Field field, std::string_view value, const RowContext& row,
                      NormalizedIdentifier& out) const;

 private:
  struct Profile;
  explicit Normalizer(std::shared_ptr<const Profile> profile);
  std::shared_ptr<const Profile> profile_;
};

// Maps a country code (alpha-2 or alpha-3, any case) or English name, including common variants
// ("Korea", "Cote d'Ivoire", "United States of America"), to its uppercase ISO 3166-1 alpha-2 code.
// Returns nullopt for anything it does not know; it never guesses.
ACT_EXPORT std::optional<std::string> country_to_alpha2(std::string_view value);

// The parts of a normalized date of birth, as Meta's DOBY, DOBM and DOBD keys want them.
struct DateOfBirthParts {
  std::string_view year;   // "1990"
  std::string_view month;  // "04", zero-padded
  std::string_view day;    // "07", zero-padded
};

// Splits a date of birth normalized as YYYYMMDD (the `normalized` text of a kDob identifier) into
// views of its parts; nullopt when `normalized_dob` is not eight digits. Hash each part with
// sha256_hex() when the platform takes them hashed.
ACT_EXPORT std::optional<DateOfBirthParts> split_dob(std::string_view normalized_dob) noexcept;

// Returns the lowercase hex SHA-256 of `data`, or an empty string when OpenSSL cannot hash (no
// SHA-256 implementation available), which does not happen with a standard OpenSSL.
ACT_EXPORT std::string sha256_hex(std::string_view data);

// True when `value` is exactly 64 hexadecimal characters, in any case.
ACT_EXPORT bool is_sha256_hex(std::string_view value) noexcept;

}  // namespace activation

#endif  // ACTIVATION_IDENTIFIERS_HPP_
