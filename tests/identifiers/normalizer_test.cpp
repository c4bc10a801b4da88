#include <doctest/doctest.h>

#include <cctype>
#include <string>
#include <thread>
#include <vector>

#include "activation/identifiers.hpp"

using activation::Field;
using activation::FieldTreatment;
using activation::NormalizedIdentifier;
using activation::Normalizer;
using activation::Platform;
using activation::RowContext;

namespace {

Normalizer make(Platform platform, activation::NormalizerOptions options = {}) {
  auto normalizer = Normalizer::create(platform, std::move(options));
  REQUIRE(normalizer.is_ok());
  return std::move(normalizer).value();
}

// One row of a rule table: the input, the row's country, and what must come out: the normalized
// text, or the reason code when `rejected`.
struct Case {
  Field field;
  std::string input;
  std::string country;
  std::string expected;
  bool rejected = false;
};

Case ok(Field field, std::string input, std::string expected, std::string country = "") {
  return {field, std::move(input), std::move(country), std::move(expected), false};
}

Case rejected(Field field, std::string input, std::string code, std::string country = "") {
  return {field, std::move(input), std::move(country), std::move(code), true};
}

void check_table(const Normalizer& normalizer, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    CAPTURE(activation::field_name(c.field));
    CAPTURE(c.input);
    NormalizedIdentifier id = normalizer.normalize(c.field, c.input, RowContext{c.country});
    CHECK(id.field == c.field);
    if (c.rejected) {
      REQUIRE_FALSE(id.ok());
      CHECK(id.error->code == c.expected);
      CHECK_FALSE(id.error->message.empty());
      CHECK(id.normalized.empty());
      CHECK(id.sha256.empty());
      CHECK_FALSE(id.hashed);
      continue;
    }
    REQUIRE_MESSAGE(id.ok(), (id.error ? id.error->code + ": " + id.error->message : std::string()));
    CHECK(id.normalized == c.expected);
    if (normalizer.treatment(c.field) == FieldTreatment::kHashed) {
      CHECK(id.hashed);
      CHECK(id.sha256 == activation::sha256_hex(c.expected));
      CHECK(id.wire_value() == id.sha256);
    } else {
      CHECK_FALSE(id.hashed);
      CHECK(id.sha256.empty());
      CHECK(id.wire_value() == id.normalized);
    }
  }
}

}  // namespace

TEST_CASE("sha256_hex matches published vectors") {
  CHECK(activation::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(activation::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // Meta's documented example for the email key.
  CHECK(activation::sha256_hex("mary@example.com") ==
        "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79");
}

TEST_CASE("Meta reference email hash") {
  Normalizer meta = make(Platform::kMeta);
  NormalizedIdentifier id = meta.normalize(Field::kEmail, "  Mary@Example.com ");
  REQUIRE(id.ok());
  CHECK(id.normalized == "mary@example.com");
  CHECK(id.sha256 == "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79");
  CHECK(id.hashed);
  CHECK_FALSE(id.was_prehashed);
}

TEST_CASE("field and platform names round-trip") {
  for (int i = 0; i < activation::kFieldCount; ++i) {
    auto field = static_cast<Field>(i);
    CHECK(activation::parse_field(activation::field_name(field)) == field);
  }
  for (int i = 0; i < activation::kPlatformCount; ++i) {
    auto platform = static_cast<Platform>(i);
    CHECK(activation::parse_platform(activation::platform_name(platform)) == platform);
  }
  CHECK(activation::field_name(Field::kFirstName) == "first_name");
  CHECK_FALSE(activation::parse_field("First_Name").has_value());
  CHECK_FALSE(activation::parse_platform("facebook").has_value());
}

TEST_CASE("Meta rules per field") {
  Normalizer meta = make(Platform::kMeta);
  check_table(
      meta,
      {
          // Email: trim and lowercase; no Gmail rules.
          ok(Field::kEmail, "John.Doe+news@GMAIL.com", "john.doe+news@gmail.com"),
          ok(Field::kEmail, "\u00a0user@example.org\u3000", "user@example.org"),
          ok(Field::kEmail, "J\u00dcRGEN@example.de", "j\u00fcrgen@example.de"),
          rejected(Field::kEmail, "john doe@example.com", "invalid_email"),
          rejected(Field::kEmail, "john@", "invalid_email"),
          rejected(Field::kEmail, "@example.com", "invalid_email"),
          rejected(Field::kEmail, "a@b@example.com", "invalid_email"),
          rejected(Field::kEmail, "john@localhost", "invalid_email"),
          rejected(Field::kEmail, "john..doe@example.com", "invalid_email"),
          rejected(Field::kEmail, "john@exa_mple.com", "invalid_email"),
          rejected(Field::kEmail, "john@192.168.0.1", "invalid_email"),
          // Names: letters of any script, lowercased, without spaces or punctuation.
          ok(Field::kFirstName, "Mary-Jane", "maryjane"),
          ok(Field::kFirstName, "  O'Brien ", "obrien"),
          ok(Field::kLastName, "Jos\u00e9 Mar\u00eda", "jos\u00e9mar\u00eda"),
          ok(Field::kLastName, "Jose\u0301", "jos\u00e9"),  // Decomposed input comes out in NFC.
          ok(Field::kLastName, "M\u00dcLLER", "m\u00fcller"),
          ok(Field::kFirstName, "\u0410\u043d\u043d\u0430", "\u0430\u043d\u043d\u0430"),  // Анна
          ok(Field::kFirstName, "\u5f20\u4f1f", "\u5f20\u4f1f"),                          // 张伟
          ok(Field::kFirstName, "\u0645\u062d\u0645\u062f", "\u0645\u062d\u0645\u062f"),  // محمد
          ok(Field::kFirstName, "\u200f\u05d3\u05d5\u05d3\u200e",
             "\u05d3\u05d5\u05d3"),                                           // דוד, bidi marks removed
          ok(Field::kFirstName, "\u0926\u0947\u0935", "\u0926\u0947\u0935"),  // देव, vowel sign kept
          ok(Field::kFirstName, "Anna\U0001F600", "anna"),
          ok(Field::kFirstName, "Anna\u2764\ufe0f", "anna"),     // A heart and its emoji variation selector.
          ok(Field::kFirstName, "Zo\u00eb \u0301", "zo\u00eb"),  // A stray accent after a space goes.
          rejected(Field::kFirstName, "\u0301\u0308", "invalid_name"),
          ok(Field::kFirstName, "John3", "john"),
          rejected(Field::kFirstName, "\U0001F600\U0001F600", "invalid_name"),
          rejected(Field::kLastName, "--.,!", "invalid_name"),
          rejected(Field::kLastName, "123", "invalid_name"),
          // First initial.
          ok(Field::kFirstInitial, "Mary", "m"),
          ok(Field::kFirstInitial, "\u00c9lodie", "\u00e9"),
          ok(Field::kFirstInitial, "E\u0301lodie", "\u00e9"),
          rejected(Field::kFirstInitial, "...", "invalid_name"),
          // City: letters only, no spaces; accented letters kept.
          ok(Field::kCity, "Menlo Park", "menlopark"),
          ok(Field::kCity, "S\u00e3o Paulo", "s\u00e3opaulo"),
          ok(Field::kCity, "St. John's", "stjohns"),
          rejected(Field::kCity, "12345", "invalid_city"),
          // State: US and Canadian names to their codes.
          ok(Field::kState, "California", "ca", "US"),
          ok(Field::kState, "NY", "ny", "US"),
          ok(Field::kState, " new york ", "ny"),
          ok(Field::kState, "Qu\u00e9bec", "qc", "Canada"),
          ok(Field::kState, "British Columbia", "bc", "CA"),
          ok(Field::kState, "Bayern", "bayern", "Germany"),
          ok(Field::kState, "\u00cele-de-France", "\u00eeledefrance", "FR"),
          rejected(Field::kState, "Bavaria", "invalid_state", "US"),
          // Zip: lowercase, no whitespace; US keeps five digits.
          ok(Field::kZip, "94035-1234", "94035", "US"),
          ok(Field::kZip, "940351234", "94035", "US"),
          ok(Field::kZip, " 02134 ", "02134"),
          ok(Field::kZip, "WC2H 8LG", "wc2h8lg", "GB"),
          ok(Field::kZip, "10115", "10115", "DE"),
          rejected(Field::kZip, "2134", "invalid_zip", "US"),
          rejected(Field::kZip, "94035-12", "invalid_zip", "US"),
          rejected(Field::kZip, "W1/2", "invalid_zip", "GB"),
          rejected(Field::kZip, "--", "invalid_zip", "GB"),
          // Country: alpha-2, lowercase, hashed.
          ok(Field::kCountry, "United States of America", "us"),
          ok(Field::kCountry, "DEU", "de"),
          ok(Field::kCountry, "Korea", "kr"),
          ok(Field::kCountry, "C\u00f4te d'Ivoire", "ci"),
          rejected(Field::kCountry, "Narnia", "unknown_country"),
          rejected(Field::kCountry, "Netherlands Antilles", "unknown_country"),
          // Date of birth: YYYYMMDD.
          ok(Field::kDob, "1990-04-07", "19900407"),
          ok(Field::kDob, "1990/4/7", "19900407"),
          ok(Field::kDob, "19900407", "19900407"),
          ok(Field::kDob, "2000-02-29", "20000229"),
          ok(Field::kDob, "1990-04-07T13:45:00Z", "19900407"),
          rejected(Field::kDob, "04/07/1990", "invalid_date"),
          rejected(Field::kDob, "1990-02-30", "invalid_date"),
          rejected(Field::kDob, "1900-02-29", "invalid_date"),
          rejected(Field::kDob, "1890-01-01", "invalid_date"),
          rejected(Field::kDob, "2999-01-01", "invalid_date"),
          rejected(Field::kDob, "1990-13-01", "invalid_date"),
          rejected(Field::kDob, "yesterday", "invalid_date"),
          // Gender.
          ok(Field::kGender, "Female", "f"),
          ok(Field::kGender, "M", "m"),
          rejected(Field::kGender, "x", "invalid_gender"),
          // Mobile ad id: plain, lowercase; external id: plain, as given.
          ok(Field::kMaid, "6D92078A-8246-4BA4-AE5B-76104861E7DC", "6d92078a-8246-4ba4-ae5b-76104861e7dc"),
          rejected(Field::kMaid, "00000000-0000-0000-0000-000000000000", "invalid_maid"),
          rejected(Field::kMaid, "not-a-device-id", "invalid_maid"),
          ok(Field::kExternalId, " CRM-00042 ", "CRM-00042"),
      });
}

TEST_CASE("Meta date of birth splits into year, month and day") {
  Normalizer meta = make(Platform::kMeta);
  NormalizedIdentifier id = meta.normalize(Field::kDob, "1990-4-7");
  REQUIRE(id.ok());
  auto parts = activation::split_dob(id.normalized);
  REQUIRE(parts.has_value());
  CHECK(parts->year == "1990");
  CHECK(parts->month == "04");
  CHECK(parts->day == "07");
  CHECK_FALSE(activation::split_dob("1990-04-07").has_value());
  CHECK_FALSE(activation::split_dob("").has_value());
}

TEST_CASE("Google rules per field") {
  Normalizer google = make(Platform::kGoogle);
  check_table(
      google,
      {
          // Gmail and Googlemail: dots and +tag removed from the local part.
          ok(Field::kEmail, "Cloudy.SanFrancisco+shopping@gmail.com", "cloudysanfrancisco@gmail.com"),
          ok(Field::kEmail, "a.b.c+x+y@googlemail.com", "abc@googlemail.com"),
          ok(Field::kEmail, "User.Name+NYC@Example.com", "user.name+nyc@example.com"),
          ok(Field::kEmail, " john doe @example.com", "johndoe@example.com"),
          rejected(Field::kEmail, "+tag@gmail.com", "invalid_email"),
          rejected(Field::kEmail, "...@gmail.com", "invalid_email"),
          // Names: trimmed, NFC, full lowercase; inner spaces kept.
          ok(Field::kFirstName, " Anna Maria ", "anna maria"),
          ok(Field::kLastName, "Zo\u00cb", "zo\u00eb"),
          ok(Field::kLastName, "P\u00c9REZ-Garc\u00eda", "p\u00e9rez-garc\u00eda"),
          ok(Field::kLastName, "STRASSE", "strasse"),
          ok(Field::kLastName, "\u0130stanbul", "i\u0307stanbul"),
          rejected(Field::kFirstName, "...", "invalid_name"),
          // Zip and country go plain.
          ok(Field::kZip, " 94303-5300 ", "94303-5300"),
          ok(Field::kZip, "WC2H 8LG", "WC2H 8LG"),
          ok(Field::kCountry, "united kingdom", "GB"),
          ok(Field::kCountry, "us", "US"),
          ok(Field::kMaid, "6D92078A-8246-4BA4-AE5B-76104861E7DC", "6D92078A-8246-4BA4-AE5B-76104861E7DC"),
          ok(Field::kExternalId, "crm-42", "crm-42"),
          // Keys Google's Customer Match does not take.
          rejected(Field::kCity, "Paris", "field_not_accepted"),
          rejected(Field::kState, "CA", "field_not_accepted"),
          rejected(Field::kDob, "1990-01-01", "field_not_accepted"),
          rejected(Field::kGender, "f", "field_not_accepted"),
          rejected(Field::kFirstInitial, "a", "field_not_accepted"),
      });
  CHECK(google.treatment(Field::kCountry) == FieldTreatment::kPlain);
  CHECK(google.treatment(Field::kEmail) == FieldTreatment::kHashed);
}

TEST_CASE("Google gmail canonicalization can be turned off") {
  activation::NormalizerOptions options;
  options.google_canonicalize_gmail = false;
  Normalizer google = make(Platform::kGoogle, options);
  CHECK(google.normalize(Field::kEmail, "J.Doe+x@gmail.com").normalized == "j.doe+x@gmail.com");
}

TEST_CASE("LinkedIn rules per field") {
  Normalizer linkedin = make(Platform::kLinkedIn);
  check_table(linkedin, {
                            ok(Field::kEmail, "John.Doe+x@GMAIL.com", "john.doe+x@gmail.com"),
                            // Names go plain: trimmed and NFC, case kept.
                            ok(Field::kFirstName, " Jose\u0301 ", "Jos\u00e9"),
                            ok(Field::kLastName, "van der Berg", "van der Berg"),
                            ok(Field::kLastName, std::string(35, 'a'), std::string(35, 'a')),
                            rejected(Field::kLastName, std::string(36, 'a'), "too_long"),
                            rejected(Field::kFirstName, "!!", "invalid_name"),
                            ok(Field::kCountry, "Germany", "DE"),
                            ok(Field::kMaid, "38400000-8cf0-11bd-b23e-10b96e40000d",
                               "38400000-8cf0-11bd-b23e-10b96e40000d"),
                            rejected(Field::kPhone, "+1 650 253 0000", "field_not_accepted"),
                            rejected(Field::kExternalId, "42", "field_not_accepted"),
                            rejected(Field::kCity, "Berlin", "field_not_accepted"),
                        });
}

TEST_CASE("TikTok and Snapchat rules per field") {
  for (Platform platform : {Platform::kTikTok, Platform::kSnapchat}) {
    CAPTURE(activation::platform_name(platform));
    Normalizer normalizer = make(platform);
    check_table(normalizer, {
                                ok(Field::kEmail, " Person+Tag@Example.com ", "person+tag@example.com"),
                                ok(Field::kPhone, "+44 844 412 4653", "448444124653"),
                                ok(Field::kMaid, " 6D92078A-8246-4BA4-AE5B-76104861E7DC ",
                                   "6d92078a-8246-4ba4-ae5b-76104861e7dc"),
                                rejected(Field::kFirstName, "Anna", "field_not_accepted"),
                                rejected(Field::kCountry, "US", "field_not_accepted"),
                                rejected(Field::kExternalId, "42", "field_not_accepted"),
                            });
    CHECK(normalizer.treatment(Field::kMaid) == FieldTreatment::kHashed);
  }
  // Snapchat's documented email example.
  Normalizer snapchat = make(Platform::kSnapchat);
  CHECK(snapchat.normalize(Field::kEmail, "Person@Example.com").normalized == "person@example.com");
}

TEST_CASE("pre-hashed values pass through lowercased") {
  const std::string digest = activation::sha256_hex("mary@example.com");
  std::string upper = digest;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));

  Normalizer meta = make(Platform::kMeta);
  for (Field field : {Field::kEmail, Field::kPhone, Field::kFirstName, Field::kCountry, Field::kDob}) {
    CAPTURE(activation::field_name(field));
    NormalizedIdentifier id = meta.normalize(field, "  " + upper + "\n");
    REQUIRE(id.ok());
    CHECK(id.was_prehashed);
    CHECK(id.hashed);
    CHECK(id.sha256 == digest);
    CHECK(id.normalized == digest);
  }

  // Plain fields take a 64-hex value as ordinary text: Meta's external id is sent as it is.
  NormalizedIdentifier external = meta.normalize(Field::kExternalId, upper);
  REQUIRE(external.ok());
  CHECK_FALSE(external.was_prehashed);
  CHECK(external.normalized == upper);

  // 63 or 65 hex characters are not a digest.
  CHECK(meta.normalize(Field::kEmail, digest.substr(1)).error->code == "invalid_email");
  CHECK(activation::is_sha256_hex(upper));
  CHECK_FALSE(activation::is_sha256_hex(digest + "0"));
  CHECK_FALSE(activation::is_sha256_hex(digest.substr(0, 63) + "g"));
}

TEST_CASE("SHA-256 of the empty string is never produced") {
  Normalizer meta = make(Platform::kMeta);
  const std::string empty_digest = activation::sha256_hex("");
  NormalizedIdentifier id = meta.normalize(Field::kEmail, empty_digest);
  REQUIRE_FALSE(id.ok());
  CHECK(id.error->code == "empty");
  CHECK(id.error->message == "the value is the SHA-256 of an empty string");

  // Values that normalize to nothing are rejected before hashing.
  for (const char* value : {"", " ", "\t\n", "\u200b", "..."}) {
    CAPTURE(value);
    NormalizedIdentifier name = meta.normalize(Field::kFirstName, value);
    REQUIRE_FALSE(name.ok());
    CHECK(name.sha256.empty());
  }
}

TEST_CASE("every rejection code with its message") {
  Normalizer meta = make(Platform::kMeta);
  Normalizer tiktok = make(Platform::kTikTok);
  struct Expected {
    NormalizedIdentifier id;
    const char* code;
    const char* message;
  };
  const Expected expected[] = {
      {meta.normalize(Field::kEmail, "   "), "empty", "the value is empty or only whitespace"},
      {meta.normalize(Field::kEmail, std::string(600, 'a')), "too_long",
       "600 bytes; email accepts at most 512"},
      {meta.normalize(Field::kFirstName, "Jo\xc3"), "invalid_utf8", "invalid UTF-8 at byte 2"},
      {meta.normalize(Field::kFirstName, std::string("Jo\0hn", 5)), "control_character",
       "control character (such as NUL) at byte 2"},
      {tiktok.normalize(Field::kCity, "Paris"), "field_not_accepted", "tiktok does not accept city"},
      {meta.normalize(Field::kEmail, "mary.example.com"), "invalid_email", "not an email address: no '@'"},
      {meta.normalize(Field::kPhone, "call me"), "invalid_phone",
       "not a phone number: it contains no digits"},
      {meta.normalize(Field::kPhone, "\U0001F4DE \u00e9"), "invalid_phone",
       "not a phone number: it contains no digits"},
      {meta.normalize(Field::kFirstName, "!!!"), "invalid_name", "contains no letters"},
      {meta.normalize(Field::kCity, "42"), "invalid_city", "contains no letters"},
      {meta.normalize(Field::kState, "Bavaria", RowContext{"US"}), "invalid_state",
       "not the name or two-letter code of a US state"},
      {meta.normalize(Field::kZip, "1234", RowContext{"US"}), "invalid_zip",
       "a US ZIP code has 5 digits, optionally followed by 4 more"},
      {meta.normalize(Field::kCountry, "Atlantis"), "unknown_country",
       "not an ISO 3166-1 country code or a known country name"},
      {meta.normalize(Field::kDob, "07/04/1990"), "invalid_date",
       "expected the year first, as in YYYY-MM-DD: day-first and month-first dates read both ways"},
      {meta.normalize(Field::kGender, "unknown"), "invalid_gender",
       "expected m, male, man, f, female or woman"},
      {meta.normalize(Field::kMaid, "abc"), "invalid_maid",
       "expected an IDFA or AAID: 32 hex digits written 8-4-4-4-12"},
  };
  for (const Expected& e : expected) {
    CAPTURE(e.code);
    REQUIRE_FALSE(e.id.ok());
    CHECK(e.id.error->code == e.code);
    CHECK(e.id.error->message == e.message);
  }
}

TEST_CASE("phone digits of other scripts") {
  // libphonenumber reads any decimal digit, so only a value without one has "no digits".
  Normalizer meta = make(Platform::kMeta);
  NormalizedIdentifier ascii = meta.normalize(Field::kPhone, "+44 20 7946 0958");
  REQUIRE(ascii.ok());
  for (const char* value : {"\uFF0B\uFF14\uFF14 \uFF12\uFF10 \uFF17\uFF19\uFF14\uFF16 \uFF10\uFF19\uFF15\uFF18",
                            "+\u0664\u0664 \u0662\u0660 \u0667\u0669\u0664\u0666 \u0660\u0669\u0665\u0668"}) {
    CAPTURE(value);
    NormalizedIdentifier phone = meta.normalize(Field::kPhone, value);
    REQUIRE(phone.ok());
    CHECK(phone.sha256 == ascii.sha256);
  }
}

TEST_CASE("bad input gets a reason and no crash") {
  Normalizer meta = make(Platform::kMeta);
  Normalizer google = make(Platform::kGoogle);
  const std::string megabyte(1 << 20, 'a');
  const std::string nul_only(16, '\0');
  const std::vector<std::string> inputs = {
      megabyte,
      nul_only,
      "\xff\xfe\xfd",
      "\xed\xa0\x80",                    // A UTF-16 surrogate encoded in UTF-8.
      "\xc0\xaf",                        // An overlong '/'.
      "\xf4\x90\x80\x80",                // Above U+10FFFF.
      "\U0001F600\U0001F601",            // Emoji only.
      "\u202e\u05e9\u05dc\u05d5\u05dd",  // Right-to-left text behind an override.
      "!!!???...",
      "\u200b\u200b",
  };
  for (int f = 0; f < activation::kFieldCount; ++f) {
    for (const std::string& input : inputs) {
      for (const Normalizer* normalizer : {&meta, &google}) {
        NormalizedIdentifier id = normalizer->normalize(static_cast<Field>(f), input);
        if (!id.ok()) {
          CHECK_FALSE(id.error->code.empty());
          CHECK(id.sha256.empty());
        } else {
          CHECK_FALSE(id.normalized.empty());
        }
      }
    }
  }
  CHECK(meta.normalize(Field::kFirstName, megabyte).error->code == "too_long");
  CHECK(meta.normalize(Field::kFirstName, "\xed\xa0\x80").error->code == "invalid_utf8");
  CHECK(meta.normalize(Field::kLastName, "\U0001F600\U0001F601").error->code == "invalid_name");
  CHECK(meta.normalize(Field::kFirstName, "\u202e\u05e9\u05dc\u05d5\u05dd").normalized ==
        "\u05e9\u05dc\u05d5\u05dd");
}

TEST_CASE("normalize_into reuses the output") {
  Normalizer meta = make(Platform::kMeta);
  NormalizedIdentifier out;
  meta.normalize_into(Field::kPhone, "(650) 253-0000", RowContext{}, out);
  REQUIRE(out.ok());
  CHECK(out.warnings.size() == 1);

  // A later value starts from a clean slate: no warning, error or digest left over.
  meta.normalize_into(Field::kEmail, "bad", RowContext{}, out);
  REQUIRE_FALSE(out.ok());
  CHECK(out.warnings.empty());
  CHECK(out.sha256.empty());
  meta.normalize_into(Field::kEmail, "a@b.co", RowContext{}, out);
  REQUIRE(out.ok());
  CHECK(out.field == Field::kEmail);
  CHECK(out.normalized == "a@b.co");
  CHECK_FALSE(out.was_prehashed);

  // A plain field after a hashed one has no digest.
  meta.normalize_into(Field::kExternalId, "C-1", RowContext{}, out);
  REQUIRE(out.ok());
  CHECK_FALSE(out.hashed);
  CHECK(out.sha256.empty());
}

TEST_CASE("normalize_into replaces earlier warnings") {
  Normalizer meta = make(Platform::kMeta);
  // Values with two, one and no warnings, in an order that grows and shrinks the list.
  const std::vector<std::pair<std::string, std::string>> phones = {
      {"043-797-5229", "Norway"}, {"(650) 253-0000", ""}, {"+44 20 7946 0958", ""},
      {"043-797-5229", "Norway"}, {"915.112.1727", "Andorra"}, {"(650) 253-0000", ""},
  };
  NormalizedIdentifier out;
  for (const auto& [phone, country] : phones) {
    CAPTURE(phone);
    CAPTURE(country);
    NormalizedIdentifier fresh = meta.normalize(Field::kPhone, phone, RowContext{country});
    meta.normalize_into(Field::kPhone, phone, RowContext{country}, out);
    CHECK(out.warnings == fresh.warnings);
    CHECK(out.sha256 == fresh.sha256);
  }
  meta.normalize_into(Field::kPhone, "043-797-5229", RowContext{"Norway"}, out);
  CHECK(out.warnings.size() == 2);

  // An error drops the warnings of the value that failed, and those of the value before it.
  meta.normalize_into(Field::kPhone, "0000", RowContext{"Norway"}, out);
  REQUIRE_FALSE(out.ok());
  CHECK(out.warnings.empty());
  CHECK(out.sha256.empty());
}

TEST_CASE("one normalizer serves many threads") {
  Normalizer meta = make(Platform::kMeta);
  const std::vector<std::pair<Field, std::string>> values = {
      {Field::kEmail, "Mary@Example.com"}, {Field::kPhone, "(650) 253-0000"},
      {Field::kFirstName, "J\u00fcrgen"},  {Field::kLastName, "\u0418\u0432\u0430\u043d\u043e\u0432"},
      {Field::kCity, "S\u00e3o Paulo"},    {Field::kCountry, "United Kingdom"},
      {Field::kPhone, "+44 20 7946 0958"}, {Field::kEmail, "not an address"},
      {Field::kDob, "1990-02-30"},         {Field::kState, "Qu\u00e9bec"},
  };
  std::vector<NormalizedIdentifier> expected;
  for (const auto& [field, value] : values)
    expected.push_back(meta.normalize(field, value, RowContext{"CA"}));

  // Each thread repeats the values with its own output object; every result must match the
  // single-threaded one.
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      NormalizedIdentifier out;
      for (int round = 0; round < 2000; ++round) {
        std::size_t i = static_cast<std::size_t>(round + t) % values.size();
        meta.normalize_into(values[i].first, values[i].second, RowContext{"CA"}, out);
        bool same = out.ok() == expected[i].ok() && out.normalized == expected[i].normalized &&
                    out.sha256 == expected[i].sha256 && out.warnings == expected[i].warnings &&
                    out.error == expected[i].error;
        if (!same) ++mismatches[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) CHECK(mismatches[t] == 0);
}
