#include <array>

#include <fmt/format.h>

#include "activation/identifiers.hpp"
#include "identifiers/phone.hpp"
#include "identifiers/phone_fast_path.hpp"
#include "identifiers/profile.hpp"
#include "identifiers/regions.hpp"
#include "identifiers/sha256.hpp"
#include "identifiers/text.hpp"

namespace activation {
namespace {

constexpr std::array<std::string_view, kFieldCount> kFieldNames = {
    "email", "phone",   "first_name", "last_name", "first_initial", "city",        "state",
    "zip",   "country", "dob",        "gender",    "maid",          "external_id",
};

constexpr std::array<std::string_view, kPlatformCount> kPlatformNames = {"meta", "google", "linkedin",
                                                                         "tiktok", "snapchat"};

// SHA-256 of the empty string: a platform must never receive it, even as a pre-hashed value.
constexpr std::string_view kEmptyStringDigest =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

void reset(NormalizedIdentifier& out, Field field) {
  out.field = field;
  out.normalized.clear();
  out.hashed = false;
  out.was_prehashed = false;
  identifiers::recycle_error(out);
}

// A guard that clears what is left of the previous value once this value is done, however it
// ended: the warnings it did not overwrite, and the digest when this value has none. Both stay in
// place until then so that their strings are overwritten rather than rebuilt.
class PreviousValueCleanup {
 public:
  PreviousValueCleanup(NormalizedIdentifier& out, const identifiers::WarningCursor& warnings)
      : out_(out), warnings_(warnings) {}
  PreviousValueCleanup(const PreviousValueCleanup&) = delete;
  PreviousValueCleanup& operator=(const PreviousValueCleanup&) = delete;
  ~PreviousValueCleanup() {
    identifiers::drop_stale_warnings(out_, warnings_.count);
    if (!out_.hashed) out_.sha256.clear();
  }

 private:
  NormalizedIdentifier& out_;
  const identifiers::WarningCursor& warnings_;
};

}  // namespace

std::string_view field_name(Field field) noexcept {
  int index = static_cast<int>(field);
  return index >= 0 && index < kFieldCount ? kFieldNames[index] : std::string_view("unknown");
}

std::optional<Field> parse_field(std::string_view name) noexcept {
  for (int i = 0; i < kFieldCount; ++i) {
    if (kFieldNames[i] == name) return static_cast<Field>(i);
  }
  return std::nullopt;
}

std::string_view platform_name(Platform platform) noexcept {
  int index = static_cast<int>(platform);
  return index >= 0 && index < kPlatformCount ? kPlatformNames[index] : std::string_view("unknown");
}

std::optional<Platform> parse_platform(std::string_view name) noexcept {
  for (int i = 0; i < kPlatformCount; ++i) {
    if (kPlatformNames[i] == name) return static_cast<Platform>(i);
  }
  return std::nullopt;
}

Normalizer::Normalizer(std::shared_ptr<const Profile> profile) : profile_(std::move(profile)) {}

Result<Normalizer> Normalizer::create(Platform platform, NormalizerOptions options) {
  int index = static_cast<int>(platform);
  if (index < 0 || index >= kPlatformCount) {
    return invalid_argument(fmt::format("unknown platform number {}", index));
  }

  std::string region = options.default_region;
  for (char& c : region) c = static_cast<char>((c >= 'a' && c <= 'z') ? c - ('a' - 'A') : c);
  if (!identifiers::is_alpha2_code(region) || !identifiers::is_phone_region(region)) {
    return invalid_argument(fmt::format(
        "default_region '{}' is not an ISO 3166-1 alpha-2 code with known phone numbering; expected a "
        "code such as US, GB or DE",
        options.default_region));
  }
  options.default_region = std::move(region);

  // Build the phone tables now rather than inside the first normalize() call.
  identifiers::PhoneFastPath::instance();

  auto profile = std::make_shared<Profile>(
      Profile{platform, std::move(options), &identifiers::profile_fields(platform)});
  return Normalizer(std::move(profile));
}

Platform Normalizer::platform() const noexcept {
  return profile_->platform;
}

FieldTreatment Normalizer::treatment(Field field) const noexcept {
  int index = static_cast<int>(field);
  if (index < 0 || index >= kFieldCount) return FieldTreatment::kNotAccepted;
  return (*profile_->fields)[index].treatment;
}

NormalizedIdentifier Normalizer::normalize(Field field, std::string_view value, const RowContext& row) const {
  NormalizedIdentifier out;
  normalize_into(field, value, row, out);
  return out;
}

void Normalizer::normalize_into(Field field, std::string_view value, const RowContext& row,
                                NormalizedIdentifier& out) const {
  using identifiers::reject;
  using identifiers::reject_format;
  reset(out, field);
  identifiers::WarningCursor warnings;
  PreviousValueCleanup cleanup(out, warnings);

  // Whether the platform takes the field at all.
  int index = static_cast<int>(field);
  if (index < 0 || index >= kFieldCount) {
    reject_format(out, kReasonFieldNotAccepted, "unknown field number {}", index);
    return;
  }
  const identifiers::FieldSpec& spec = (*profile_->fields)[index];
  if (spec.treatment == FieldTreatment::kNotAccepted) {
    reject_format(out, kReasonFieldNotAccepted, "{} does not accept {}", platform_name(profile_->platform),
                  field_name(field));
    return;
  }

  // Checks that apply to every field, cheapest first.
  if (value.size() > spec.max_bytes) {
    reject_format(out, kReasonTooLong, "{} bytes; {} accepts at most {}", value.size(), field_name(field),
                  spec.max_bytes);
    return;
  }
  identifiers::TextScan scan = identifiers::scan_text(value);
  if (scan.problem == identifiers::TextProblem::kInvalidUtf8) {
    reject_format(out, kReasonInvalidUtf8, "invalid UTF-8 at byte {}", scan.offset);
    return;
  }
  if (scan.problem == identifiers::TextProblem::kControlCharacter) {
    reject_format(out, kReasonControlCharacter, "control character (such as NUL) at byte {}", scan.offset);
    return;
  }
  std::string_view trimmed = identifiers::trim(value);
  if (trimmed.empty()) {
    reject(out, kReasonEmpty, "the value is empty or only whitespace");
    return;
  }

  // A digest passes through lowercased, never hashed again.
  if (spec.treatment == FieldTreatment::kHashed && is_sha256_hex(trimmed)) {
    out.normalized.resize(trimmed.size());
    for (std::size_t i = 0; i < trimmed.size(); ++i) out.normalized[i] = ascii_lower(trimmed[i]);
    if (out.normalized == kEmptyStringDigest) {
      out.normalized.clear();
      reject(out, kReasonEmpty, "the value is the SHA-256 of an empty string");
      return;
    }
    out.sha256 = out.normalized;
    out.hashed = true;
    out.was_prehashed = true;
    return;
  }

  identifiers::FieldContext context{profile_->platform, profile_->options, row, scan.ascii, warnings};
  spec.rule(trimmed, context, out);
  if (out.error) {
    // Warnings about a value that is dropped anyway would only distract: keep the error alone.
    out.normalized.clear();
    warnings.count = 0;
    return;
  }
  if (out.normalized.empty()) {
    reject(out, kReasonEmpty, "nothing is left after normalization");
    return;
  }

  if (spec.treatment == FieldTreatment::kHashed) {
    if (!identifiers::sha256_hex_into(out.normalized, out.sha256)) {
      out.normalized.clear();
      reject(out, kReasonInternalError, "OpenSSL could not compute SHA-256");
      return;
    }
    out.hashed = true;
  }
}

std::optional<std::string> country_to_alpha2(std::string_view value) {
  identifiers::TextScan scan = identifiers::scan_text(value);
  if (scan.problem != identifiers::TextProblem::kNone) return std::nullopt;
  std::string_view trimmed = identifiers::trim(value);
  if (trimmed.empty()) return std::nullopt;
  std::string_view code = identifiers::lookup_country(trimmed, scan.ascii);
  if (code.empty()) return std::nullopt;
  return std::string(code);
}

std::string sha256_hex(std::string_view data) {
  std::string hex;
  identifiers::sha256_hex_into(data, hex);
  return hex;
}

bool is_sha256_hex(std::string_view value) noexcept {
  if (value.size() != 64) return false;
  for (char c : value) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

std::optional<DateOfBirthParts> split_dob(std::string_view normalized_dob) noexcept {
  if (normalized_dob.size() != 8) return std::nullopt;
  for (char c : normalized_dob) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return DateOfBirthParts{normalized_dob.substr(0, 4), normalized_dob.substr(4, 2),
                          normalized_dob.substr(6, 2)};
}

}  // namespace activation
