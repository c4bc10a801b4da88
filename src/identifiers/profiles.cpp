// The field rules and the per-platform tables that choose among them. docs/normalization.md
// explains each choice and the sources behind it.
#include <string>

#include <fmt/format.h>

#include "core/per_thread.hpp"
#include "identifiers/date_of_birth.hpp"
#include "identifiers/email.hpp"
#include "identifiers/phone.hpp"
#include "identifiers/profile.hpp"
#include "identifiers/regions.hpp"
#include "identifiers/text.hpp"

namespace activation::identifiers {
namespace {

// Limits on the raw value, before trimming: generous for real data, small enough that a 1 MB
// value is turned away before any work is done on it.
constexpr std::size_t kMaxTextBytes = 1024;
constexpr std::size_t kMaxEmailBytes = 512;
constexpr std::size_t kMaxPhoneBytes = 128;
constexpr std::size_t kMaxShortBytes = 128;
// LinkedIn's limit on a first or last name, in characters.
constexpr std::size_t kLinkedInMaxNameChars = 35;

// Scratch space for rules that need a second buffer; one per thread, so no allocation per value
// once it has grown.
struct ScratchBuffer {
  std::string text;
};

std::string& scratch() {
  return internal::per_thread<ScratchBuffer>().text;
}

bool is_ascii_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_ascii_digit(char c) {
  return c >= '0' && c <= '9';
}
char ascii_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - ('a' - 'A')) : c;
}
char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

bool contains_letter(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    unsigned char b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      if (is_ascii_letter(static_cast<char>(b))) return true;
      ++i;
      continue;
    }
    if (classify(next_code_point(text, i)) == CharClass::kLetter) return true;
  }
  return false;
}

// The row's country as an uppercase alpha-2 code, or empty when it is absent or not known.
std::string_view row_country(const FieldContext& context) {
  std::string_view raw = trim(context.row.country);
  if (raw.empty() || scan_text(raw).problem != TextProblem::kNone) return {};
  bool ascii = true;
  for (char c : raw) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  return lookup_country(raw, ascii);
}

// The country that the state and zip rules follow: the row's, else the default region.
std::string_view effective_country(const FieldContext& context) {
  std::string_view country = row_country(context);
  return country.empty() ? std::string_view(context.options.default_region) : country;
}

void fail_on_fold(NormalizedIdentifier& out) {
  reject(out, kReasonInternalError, "ICU failed to normalize the text");
}

// ---- email ----

void email_with(std::string_view value, const FieldContext& context, const EmailRules& rules,
                NormalizedIdentifier& out) {
  if (const char* problem = normalize_email(value, context.ascii, rules, out.normalized)) {
    reject_format(out, kReasonInvalidEmail, "not an email address: {}", problem);
  }
}

void email_lowercase(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  email_with(value, context, EmailRules{}, out);
}

void email_google(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  EmailRules rules;
  rules.remove_inner_whitespace = true;
  rules.canonicalize_gmail = context.options.google_canonicalize_gmail;
  email_with(value, context, rules, out);
}

// ---- phone ----

void phone_with(std::string_view value, const FieldContext& context, bool keep_plus,
                NormalizedIdentifier& out) {
  const std::string& default_region = context.options.default_region;
  std::string_view row_value = trim(context.row.country);
  PhoneOutcome outcome = normalize_phone(value, row_value, default_region, out.normalized);
  const std::string_view row_region = outcome.row_region;
  switch (outcome.kind) {
    case PhoneOutcome::Kind::kNoDigits:
      reject(out, kReasonInvalidPhone, "not a phone number: it contains no digits");
      return;
    case PhoneOutcome::Kind::kAllZeros:
      reject(out, kReasonInvalidPhone, "not a phone number: every digit is 0");
      return;
    case PhoneOutcome::Kind::kNotPossible:
      if (outcome.international) {
        reject(out, kReasonInvalidPhone,
               "not a possible international number: unknown country code, or too few or too many digits "
               "after it");
      } else if (outcome.row_region_failed && row_region != default_region) {
        reject_format(
            out, kReasonInvalidPhone,
            "too few or too many digits for a number of {}, the row's country, or of {}, the default "
            "region",
            row_region, default_region);
      } else {
        reject_format(
            out, kReasonInvalidPhone,
            "too few or too many digits for a number of {}; write numbers of other countries with + and "
            "the country code",
            default_region);
      }
      return;
    case PhoneOutcome::Kind::kAccepted: break;
  }

  if (!keep_plus && !out.normalized.empty() && out.normalized.front() == '+') out.normalized.erase(0, 1);
  // Most phones of a list without a country column carry these warnings, so their messages are
  // built by appending rather than formatted.
  if (outcome.region_guessed) {
    std::string& message = add_warning(out, context.warnings, kWarningPhoneRegionGuessed);
    if (outcome.row_region_failed) {
      message.append("does not fit ").append(row_region).append(", the row's country; read as a number of ");
    } else if (!row_value.empty()) {
      message.append("the row's country has no known phone numbering; read as a number of ");
    } else {
      message.append("the row has no country; read as a number of ");
    }
    message.append(default_region).append(", the default region");
  }
  if (!outcome.valid) {
    add_warning(out, context.warnings, kWarningPhoneUnassignedRange)
        .assign(
            "the length fits, but the number is in no range that libphonenumber's numbering data lists as "
            "assigned; it is kept");
  }
}

void phone_digits(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  phone_with(value, context, false, out);
}

void phone_e164(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  phone_with(value, context, true, out);
}

// ---- names and places ----

// Lowercased letters of any script, without whitespace, punctuation, digits or symbols.
bool letters_only(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  if (context.ascii) {
    // Lowercase and keep a-z in one pass; for ASCII this is what ICU's path below gives.
    std::string& letters = out.normalized;
    letters.resize(value.size());
    char* write = letters.data();
    for (char c : value) {
      char lower = static_cast<char>(c | 0x20);
      *write = lower;
      write += static_cast<unsigned char>(lower - 'a') < 26 ? 1 : 0;
    }
    letters.resize(static_cast<std::size_t>(write - letters.data()));
    return true;
  }
  std::string& folded = scratch();
  if (!fold_case(value, context.ascii, folded)) {
    fail_on_fold(out);
    return false;
  }
  keep_letters(folded, false, out.normalized);
  return true;
}

void name_letters(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  if (!letters_only(value, context, out)) return;
  if (out.normalized.empty()) reject(out, kReasonInvalidName, "contains no letters");
}

void first_initial_letter(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  if (!letters_only(value, context, out)) return;
  if (out.normalized.empty()) {
    reject(out, kReasonInvalidName, "contains no letters");
    return;
  }
  // Keep the first letter with the combining marks that belong to it.
  std::size_t end = 0;
  next_code_point(out.normalized, end);
  while (end < out.normalized.size()) {
    std::size_t next = end;
    if (classify(next_code_point(out.normalized, next)) != CharClass::kMark) break;
    end = next;
  }
  out.normalized.resize(end);
}

void name_lowercase(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  if (!fold_case(value, context.ascii, out.normalized)) {
    fail_on_fold(out);
    return;
  }
  if (!contains_letter(out.normalized)) reject(out, kReasonInvalidName, "contains no letters");
}

void name_linkedin(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  if (!to_nfc(value, context.ascii, out.normalized)) {
    fail_on_fold(out);
    return;
  }
  if (!contains_letter(out.normalized)) {
    reject(out, kReasonInvalidName, "contains no letters");
    return;
  }
  std::size_t characters = count_code_points(out.normalized);
  if (characters > kLinkedInMaxNameChars) {
    reject_format(out, kReasonTooLong, "LinkedIn accepts names of at most {} characters; this one has {}",
                  kLinkedInMaxNameChars, characters);
  }
}

void city_letters(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  if (!letters_only(value, context, out)) return;
  if (out.normalized.empty()) reject(out, kReasonInvalidCity, "contains no letters");
}

void state_meta(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  std::string_view country = effective_country(context);
  if (country == "US" || country == "CA") {
    std::string_view code = lookup_subdivision(value, context.ascii, country);
    if (code.empty()) {
      reject_format(out, kReasonInvalidState, "not the name or two-letter code of a {}",
                    country == "US" ? "US state" : "Canadian province");
      return;
    }
    out.normalized.assign(code);
    return;
  }
  std::string& folded = scratch();
  if (!fold_case(value, context.ascii, folded)) {
    fail_on_fold(out);
    return;
  }
  keep_letters(folded, true, out.normalized);
  if (out.normalized.empty()) reject(out, kReasonInvalidState, "contains no letters or digits");
}

// ---- postal codes ----

void zip_meta(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  std::string& compact = out.normalized;
  compact.clear();
  bool has_alphanumeric = false;
  for (char c : value) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    if (!is_ascii_letter(c) && !is_ascii_digit(c) && c != '-') {
      reject(out, kReasonInvalidZip, "a postal code has only letters, digits, spaces and hyphens");
      return;
    }
    has_alphanumeric = has_alphanumeric || c != '-';
    compact.push_back(ascii_lower(c));
  }
  if (!has_alphanumeric) {
    reject(out, kReasonInvalidZip, "contains no letters or digits");
    return;
  }

  if (effective_country(context) == "US") {
    // Meta matches US ZIP codes on their first five digits: "94035-1234" becomes "94035".
    auto all_digits = [](std::string_view text) {
      return text.find_first_not_of("0123456789") == std::string_view::npos;
    };
    std::string_view zip = compact;
    bool valid =
        (zip.size() == 5 && all_digits(zip)) || (zip.size() == 9 && all_digits(zip)) ||
        (zip.size() == 10 && all_digits(zip.substr(0, 5)) && zip[5] == '-' && all_digits(zip.substr(6)));
    if (!valid) {
      reject(out, kReasonInvalidZip, "a US ZIP code has 5 digits, optionally followed by 4 more");
      return;
    }
    compact.resize(5);
  }
}

void zip_plain(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  bool has_alphanumeric = false;
  for (char c : value) {
    if (!is_ascii_letter(c) && !is_ascii_digit(c) && c != '-' && c != ' ') {
      reject(out, kReasonInvalidZip, "a postal code has only letters, digits, spaces and hyphens");
      return;
    }
    has_alphanumeric = has_alphanumeric || (c != '-' && c != ' ');
  }
  if (!has_alphanumeric) {
    reject(out, kReasonInvalidZip, "contains no letters or digits");
    return;
  }
  out.normalized.assign(value);
}

// ---- country ----

void country_with(std::string_view value, const FieldContext& context, bool lowercase,
                  NormalizedIdentifier& out) {
  std::string_view code = lookup_country(value, context.ascii);
  if (code.empty()) {
    reject(out, kReasonUnknownCountry, "not an ISO 3166-1 country code or a known country name");
    return;
  }
  out.normalized.resize(code.size());
  for (std::size_t i = 0; i < code.size(); ++i) {
    out.normalized[i] = lowercase ? ascii_lower(code[i]) : ascii_upper(code[i]);
  }
}

void country_lowercase(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  country_with(value, context, true, out);
}

void country_uppercase(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  country_with(value, context, false, out);
}

// ---- date of birth, gender ----

void date_of_birth(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  if (const char* problem = normalize_date_of_birth(value, today_utc(), out.normalized)) {
    out.normalized.clear();
    reject(out, kReasonInvalidDate, problem);
  }
}

void gender_letter(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  std::string& lower = scratch();
  lower.clear();
  if (context.ascii) {
    for (char c : value) lower.push_back(ascii_lower(c));
  }
  if (lower == "m" || lower == "male" || lower == "man") {
    out.normalized.assign("m");
  } else if (lower == "f" || lower == "female" || lower == "woman") {
    out.normalized.assign("f");
  } else {
    reject(out, kReasonInvalidGender, "expected m, male, man, f, female or woman");
  }
}

// ---- mobile advertising id, external id ----

bool is_hex(char c) {
  return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// An IDFA or AAID: a UUID written 8-4-4-4-12 with hyphens, or its 32 hex digits without them.
const char* check_maid(std::string_view value) {
  bool all_zero = true;
  if (value.size() == 36) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      bool hyphen_position = i == 8 || i == 13 || i == 18 || i == 23;
      if (hyphen_position ? value[i] != '-' : !is_hex(value[i])) {
        return "expected an IDFA or AAID: 32 hex digits written 8-4-4-4-12";
      }
      all_zero = all_zero && (hyphen_position || value[i] == '0');
    }
  } else if (value.size() == 32) {
    for (char c : value) {
      if (!is_hex(c)) return "expected an IDFA or AAID: 32 hex digits written 8-4-4-4-12";
      all_zero = all_zero && c == '0';
    }
  } else {
    return "expected an IDFA or AAID: 32 hex digits written 8-4-4-4-12";
  }
  if (all_zero) return "the all-zero id that a device reports when ad tracking is limited";
  return nullptr;
}

void maid_with(std::string_view value, bool lowercase, NormalizedIdentifier& out) {
  if (const char* problem = check_maid(value)) {
    reject(out, kReasonInvalidMaid, problem);
    return;
  }
  out.normalized.resize(value.size());
  for (std::size_t i = 0; i < value.size(); ++i)
    out.normalized[i] = lowercase ? ascii_lower(value[i]) : value[i];
}

void maid_lowercase(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  maid_with(value, true, out);
}

void maid_plain(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  maid_with(value, false, out);
}

void external_id_plain(std::string_view value, const FieldContext& context, NormalizedIdentifier& out) {
  out.normalized.assign(value);
}

// ---- the tables ----

constexpr FieldSpec hashed(FieldRule rule, std::size_t max_bytes) {
  return {FieldTreatment::kHashed, rule, max_bytes};
}
constexpr FieldSpec plain(FieldRule rule, std::size_t max_bytes) {
  return {FieldTreatment::kPlain, rule, max_bytes};
}
constexpr FieldSpec kNone = {FieldTreatment::kNotAccepted, nullptr, 0};

// Field order: email, phone, first_name, last_name, first_initial, city, state, zip, country, dob,
// gender, maid, external_id.
constexpr ProfileFields kMeta = {
    hashed(email_lowercase, kMaxEmailBytes),     hashed(phone_digits, kMaxPhoneBytes),
    hashed(name_letters, kMaxTextBytes),         hashed(name_letters, kMaxTextBytes),
    hashed(first_initial_letter, kMaxTextBytes), hashed(city_letters, kMaxTextBytes),
    hashed(state_meta, kMaxTextBytes),           hashed(zip_meta, kMaxShortBytes),
    hashed(country_lowercase, kMaxTextBytes),    hashed(date_of_birth, kMaxShortBytes),
    hashed(gender_letter, kMaxShortBytes),       plain(maid_lowercase, kMaxShortBytes),
    plain(external_id_plain, kMaxTextBytes),
};

constexpr ProfileFields kGoogle = {
    hashed(email_google, kMaxEmailBytes),
    hashed(phone_e164, kMaxPhoneBytes),
    hashed(name_lowercase, kMaxTextBytes),
    hashed(name_lowercase, kMaxTextBytes),
    kNone,
    kNone,
    kNone,
    plain(zip_plain, kMaxShortBytes),
    plain(country_uppercase, kMaxTextBytes),
    kNone,
    kNone,
    plain(maid_plain, kMaxShortBytes),
    plain(external_id_plain, kMaxTextBytes),
};

constexpr ProfileFields kLinkedIn = {
    hashed(email_lowercase, kMaxEmailBytes),
    kNone,
    plain(name_linkedin, kMaxTextBytes),
    plain(name_linkedin, kMaxTextBytes),
    kNone,
    kNone,
    kNone,
    kNone,
    plain(country_uppercase, kMaxTextBytes),
    kNone,
    kNone,
    plain(maid_plain, kMaxShortBytes),
    kNone,
};

constexpr ProfileFields kTikTok = {
    hashed(email_lowercase, kMaxEmailBytes),
    hashed(phone_digits, kMaxPhoneBytes),
    kNone,
    kNone,
    kNone,
    kNone,
    kNone,
    kNone,
    kNone,
    kNone,
    kNone,
    hashed(maid_lowercase, kMaxShortBytes),
    kNone,
};

constexpr ProfileFields kSnapchat = {
    hashed(email_lowercase, kMaxEmailBytes),
    hashed(phone_digits, kMaxPhoneBytes),
    kNone,
    kNone,
    kNone,
    kNone,
    kNone,
    kNone,
    kNone,
    kNone,
    kNone,
    hashed(maid_lowercase, kMaxShortBytes),
    kNone,
};

}  // namespace

const ProfileFields& profile_fields(Platform platform) {
  switch (platform) {
    case Platform::kMeta: return kMeta;
    case Platform::kGoogle: return kGoogle;
    case Platform::kLinkedIn: return kLinkedIn;
    case Platform::kTikTok: return kTikTok;
    case Platform::kSnapchat: return kSnapchat;
  }
  return kMeta;
}

namespace {

// A bound keeps a thread that once saw a value with many reasons from keeping them forever.
constexpr std::size_t kMaxPooled = 16;

// Returns this thread's pool. Its capacity is reserved up front, so that a push never allocates:
// drop_stale_warnings() runs in a destructor, where an allocation failure could not be reported.
struct ReasonPool {
  ReasonPool() { reasons.reserve(kMaxPooled); }
  std::vector<Reason> reasons;
};

std::vector<Reason>& reason_pool() {
  return internal::per_thread<ReasonPool>().reasons;
}

}  // namespace

void recycle_error(NormalizedIdentifier& out) {
  if (!out.error) return;
  std::vector<Reason>& pool = reason_pool();
  if (pool.size() < kMaxPooled) pool.push_back(std::move(*out.error));
  out.error.reset();
}

void drop_stale_warnings(NormalizedIdentifier& out, std::size_t keep) {
  // A value with at least as many warnings as the one before it leaves nothing to drop.
  if (out.warnings.size() <= keep) return;
  std::vector<Reason>& pool = reason_pool();
  for (std::size_t i = keep; i < out.warnings.size(); ++i) {
    if (pool.size() < kMaxPooled) pool.push_back(std::move(out.warnings[i]));
  }
  out.warnings.resize(keep);
}

Reason take_reason(std::string_view code) {
  std::vector<Reason>& pool = reason_pool();
  Reason reason;
  if (!pool.empty()) {
    reason = std::move(pool.back());
    pool.pop_back();
  }
  reason.code.assign(code);
  reason.message.clear();
  return reason;
}

std::string& add_warning(NormalizedIdentifier& out, WarningCursor& cursor, std::string_view code) {
  if (cursor.count == out.warnings.size()) {
    // Moved straight from the pool into place, without the temporary that take_reason() returns.
    std::vector<Reason>& pool = reason_pool();
    if (pool.empty()) {
      out.warnings.emplace_back();
    } else {
      out.warnings.push_back(std::move(pool.back()));
      pool.pop_back();
    }
  }
  Reason& warning = out.warnings[cursor.count++];
  if (warning.code != code) warning.code.assign(code);
  warning.message.clear();
  return warning.message;
}

void reject(NormalizedIdentifier& out, std::string_view code, std::string_view message) {
  Reason reason = take_reason(code);
  reason.message.assign(message);
  out.error = std::move(reason);
}

}  // namespace activation::identifiers
