#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <phonenumbers/phonenumberutil.h>

#include "activation/identifiers.hpp"
#include "identifiers/phone.hpp"
#include "identifiers/phone_fast_path.hpp"

using activation::Field;
using activation::NormalizedIdentifier;
using activation::Normalizer;
using activation::Platform;
using activation::RowContext;
using activation::identifiers::FastPhoneOutcome;
using activation::identifiers::parse_phone;
using activation::identifiers::parse_phone_with_libphonenumber;
using activation::identifiers::PhoneCheck;
using activation::identifiers::PhoneFastPath;
using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

namespace {

Normalizer make(Platform platform) {
  auto normalizer = Normalizer::create(platform);
  REQUIRE(normalizer.is_ok());
  return std::move(normalizer).value();
}

struct PhoneCase {
  const char* input;
  const char* country;   // The row's country, may be empty.
  const char* expected;  // Meta's normalized form, or the reason code.
  bool guessed;
};

PhoneCheck to_check(FastPhoneOutcome outcome) {
  switch (outcome) {
    case FastPhoneOutcome::kValid: return PhoneCheck::kValid;
    case FastPhoneOutcome::kPossible: return PhoneCheck::kPossible;
    default: return PhoneCheck::kNotPossible;
  }
}

const char* check_name(PhoneCheck check) {
  switch (check) {
    case PhoneCheck::kValid: return "valid";
    case PhoneCheck::kPossible: return "possible";
    case PhoneCheck::kNotPossible: return "not possible";
  }
  return "?";
}

// Compares the fast path with libphonenumber on one text; returns true when the fast path answered.
bool fast_path_agrees(const std::string& text, const std::string& region, int& disagreements) {
  std::string fast_e164;
  FastPhoneOutcome fast = PhoneFastPath::instance().parse(text, region, fast_e164);
  if (fast == FastPhoneOutcome::kUnknown) return false;
  std::string slow_e164;
  PhoneCheck slow = parse_phone_with_libphonenumber(text, region, slow_e164);
  bool same = to_check(fast) == slow && (slow == PhoneCheck::kNotPossible || fast_e164 == slow_e164);
  if (!same) {
    ++disagreements;
    if (disagreements <= 20) {
      MESSAGE("fast path disagrees on '" << text << "' in " << region << ": fast "
                                         << check_name(to_check(fast)) << " " << fast_e164
                                         << ", libphonenumber " << check_name(slow) << " " << slow_e164);
    }
  }
  return true;
}

// Writes `national` with random separators, in the spirit of what people type.
std::string scatter_separators(const std::string& digits, std::mt19937_64& rng) {
  static const char* const kSeparators[] = {" ", "-", ".", "", "", ""};
  std::string out;
  bool parenthesis = digits.size() >= 10 && rng() % 4 == 0;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (parenthesis && i == 0) out += "(";
    out += digits[i];
    if (parenthesis && i == 2) {
      out += ") ";
      continue;
    }
    if (i + 1 < digits.size() && rng() % 3 == 0) out += kSeparators[rng() % 6];
  }
  return out;
}

std::string random_digits(std::size_t length, std::mt19937_64& rng) {
  std::string digits;
  for (std::size_t i = 0; i < length; ++i) digits += static_cast<char>('0' + rng() % 10);
  return digits;
}

}  // namespace

TEST_CASE("phone normalization per platform") {
  Normalizer meta = make(Platform::kMeta);
  Normalizer google = make(Platform::kGoogle);
  Normalizer tiktok = make(Platform::kTikTok);
  Normalizer snapchat = make(Platform::kSnapchat);

  SUBCASE("Meta's reference number hashes to its digits") {
    NormalizedIdentifier id = meta.normalize(Field::kPhone, "+1 (555) 987-6543");
    REQUIRE(id.ok());
    CHECK(id.normalized == "15559876543");
    CHECK(id.sha256 == "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e");
    // 555 is not an assigned area code: kept, with a warning.
    REQUIRE(id.warnings.size() == 1);
    CHECK(id.warnings[0].code == "phone_unassigned_range");
  }
  SUBCASE("Google keeps the plus of E.164") {
    NormalizedIdentifier id = google.normalize(Field::kPhone, "(800) 555-0100", RowContext{"US"});
    REQUIRE(id.ok());
    CHECK(id.normalized == "+18005550100");
    CHECK(id.sha256 == activation::sha256_hex("+18005550100"));
  }
  SUBCASE("TikTok and Snapchat hash the digits without the plus") {
    CHECK(tiktok.normalize(Field::kPhone, "(657) 777-0000", RowContext{"US"}).normalized == "16577770000");
    CHECK(snapchat.normalize(Field::kPhone, "+44 844 412 4653").normalized == "448444124653");
    CHECK(snapchat.normalize(Field::kPhone, "0044 844 412 4653").normalized == "448444124653");
  }
}

TEST_CASE("phone formats of several countries") {
  Normalizer meta = make(Platform::kMeta);
  // Expected: Meta's digits, or a reason code.
  const PhoneCase cases[] = {
      {"(650) 253-0000", "US", "16502530000", false},
      {"650.253.0000", "United States", "16502530000", false},
      {"1-650-253-0000", "us", "16502530000", false},
      {"+1 650 253 0000", "", "16502530000", false},
      {"001 650 253 0000", "DE", "16502530000", false},
      // A "00" that begins a longer international prefix of the row's country.
      {"0011 44 20 7946 0958", "Australia", "442079460958", false},
      {"0011 1 650 253 0000", "AU", "16502530000", false},
      {"002 1 650 253 0000", "South Korea", "16502530000", false},
      {"001 44 20 7946 0958", "Hong Kong", "442079460958", false},
      {"0021 1 650 253 0000", "Brazil", "16502530000", false},
      {"650-253-0000 x1234", "US", "16502530000", false},
      {"650-253-0000 ext. 12", "US", "16502530000", false},
      {"(416) 555-0199", "Canada", "14165550199", false},
      {"020 7946 0958", "GB", "442079460958", false},
      {"+44 (0) 20 7946 0958", "", "442079460958", false},
      {"07700 900123", "United Kingdom", "447700900123", false},
      {"030 901820", "Germany", "4930901820", false},
      {"+49 30 901820", "", "4930901820", false},
      {"01 42 68 53 00", "France", "33142685300", false},
      {"+33 1 42 68 53 00", "", "33142685300", false},
      {"06 12 34 56 78", "FR", "33612345678", false},
      {"98765 43210", "India", "919876543210", false},
      {"(02) 9374 4000", "Australia", "61293744000", false},
      {"0412 345 678", "AU", "61412345678", false},
      {"(11) 96123-4567", "Brazil", "5511961234567", false},
      {"03-1234-5678", "Japan", "81312345678", false},
      {"06 1234 5678", "Italy", "390612345678", false},
      {"612 34 56 78", "Spain", "34612345678", false},
      // A US number in a row from Norway: not a Norwegian number, read as US with a warning.
      {"(650) 253-0000", "Norway", "16502530000", true},
      {"(650) 253-0000", "", "16502530000", true},
      {"(650) 253-0000", "Narnia", "16502530000", true},
      // Rejections.
      {"253-0000", "US", "invalid_phone", false},
      // Without a country whose prefix it begins, "0011" reads as '+' and a country code 11.
      {"0011 44 20 7946 0958", "", "invalid_phone", false},
      {"12345", "US", "invalid_phone", false},
      {"000-000-0000", "US", "invalid_phone", false},
      {"0", "", "invalid_phone", false},
      {"n/a", "US", "invalid_phone", false},
      {"---", "", "invalid_phone", false},
      {"+999 1234 5678", "", "invalid_phone", false},
      {"+1 650 253 0000 0000 0000", "", "invalid_phone", false},
      {"", "US", "empty", false},
      {"   ", "US", "empty", false},
  };
  for (const PhoneCase& c : cases) {
    CAPTURE(c.input);
    CAPTURE(c.country);
    NormalizedIdentifier id = meta.normalize(Field::kPhone, c.input, RowContext{c.country});
    if (id.ok()) {
      CHECK(id.normalized == c.expected);
      bool guessed = false;
      for (const auto& warning : id.warnings) guessed = guessed || warning.code == "phone_region_guessed";
      CHECK(guessed == c.guessed);
    } else {
      CHECK(id.error->code == c.expected);
      CHECK(id.normalized.empty());
      CHECK(id.sha256.empty());
    }
  }
}

TEST_CASE("phone rejection messages name the regions tried") {
  Normalizer meta = make(Platform::kMeta);
  NormalizedIdentifier id = meta.normalize(Field::kPhone, "1234", RowContext{"Norway"});
  REQUIRE_FALSE(id.ok());
  CHECK(id.error->message ==
        "too few or too many digits for a number of NO, the row's country, or of US, the default region");

  id = meta.normalize(Field::kPhone, "000 000");
  REQUIRE_FALSE(id.ok());
  CHECK(id.error->message == "not a phone number: every digit is 0");

  id = meta.normalize(Field::kPhone, "(650) 253-0000", RowContext{"Norway"});
  REQUIRE(id.ok());
  REQUIRE(id.warnings.size() == 1);
  CHECK(id.warnings[0].message ==
        "does not fit NO, the row's country; read as a number of US, the default region");
}

TEST_CASE("phone default region comes from the options") {
  activation::NormalizerOptions options;
  options.default_region = "gb";
  auto meta = Normalizer::create(Platform::kMeta, options);
  REQUIRE(meta.is_ok());
  NormalizedIdentifier id = meta->normalize(Field::kPhone, "020 7946 0958");
  REQUIRE(id.ok());
  CHECK(id.normalized == "442079460958");

  options.default_region = "XX";
  auto bad = Normalizer::create(Platform::kMeta, options);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().code() == activation::StatusCode::kInvalidArgument);
}

TEST_CASE("phone fast path is available and agrees with libphonenumber on generated numbers") {
  const PhoneFastPath& fast = PhoneFastPath::instance();
  REQUIRE(fast.available());

  const PhoneNumberUtil* util = PhoneNumberUtil::GetInstance();
  std::vector<std::string> regions = fast.regions();
  std::sort(regions.begin(), regions.end());
  REQUIRE(regions.size() > 200);
  const std::vector<std::string> big_regions = {"US", "CA", "GB", "DE", "FR", "IN", "AU", "BR", "MX", "JP",
                                                "CN", "IT", "ES", "NL", "RU", "KR", "AR", "ZA", "NG", "PR"};
  const PhoneNumberUtil::PhoneNumberType types[] = {PhoneNumberUtil::FIXED_LINE, PhoneNumberUtil::MOBILE,
                                                    PhoneNumberUtil::TOLL_FREE, PhoneNumberUtil::PREMIUM_RATE,
                                                    PhoneNumberUtil::VOIP};

  std::mt19937_64 rng(20240611);
  int answered = 0;
  int total = 0;
  int disagreements = 0;
  constexpr int kCases = 40000;
  for (int i = 0; i < kCases; ++i) {
    const std::string& region =
        rng() % 2 == 0 ? big_regions[rng() % big_regions.size()] : regions[rng() % regions.size()];

    // A national significant number: an example number with some digits changed, or random digits.
    std::string national;
    int country_code = util->GetCountryCodeForRegion(region);
    PhoneNumber example;
    if (rng() % 4 != 0 && util->GetExampleNumberForType(region, types[rng() % 5], &example)) {
      util->GetNationalSignificantNumber(example, &national);
      std::size_t keep = national.size() > 3 ? 2 + rng() % (national.size() - 2) : national.size();
      national = national.substr(0, keep) + random_digits(national.size() - keep, rng);
      if (rng() % 8 == 0) national += random_digits(1, rng);
      if (rng() % 8 == 0 && national.size() > 4) national.pop_back();
    } else {
      national = random_digits(4 + rng() % 12, rng);
    }
    std::string code = std::to_string(country_code);

    // A layout people use.
    std::string text;
    std::string parse_region = region;
    switch (rng() % 10) {
      case 0:
        text = "+" + code + national;
        parse_region = "ZZ";
        break;
      case 1:
        text = "+" + code + " " + scatter_separators(national, rng);
        parse_region = "ZZ";
        break;
      case 2: text = code + " " + scatter_separators(national, rng); break;
      case 3: text = "0" + scatter_separators(national, rng); break;
      case 4: text = "1" + national; break;
      case 5: text = "011 " + code + " " + national; break;
      default: text = scatter_separators(national, rng); break;
    }
    switch (rng() % 12) {
      case 0: text += " x" + random_digits(1 + rng() % 6, rng); break;
      case 1: text += " ext. " + random_digits(1 + rng() % 4, rng); break;
      case 2: text += "x" + random_digits(10, rng); break;
      case 3: text = "(" + text; break;
      case 4: text += "#"; break;
      default: break;
    }
    // Read some numbers in another country than their own.
    if (parse_region != "ZZ" && rng() % 5 == 0) parse_region = regions[rng() % regions.size()];

    ++total;
    if (fast_path_agrees(text, parse_region, disagreements)) ++answered;
  }
  MESSAGE("fast path answered " << answered << " of " << total << " generated numbers");
  CHECK(disagreements == 0);
  // The fast path must carry most of the load, or the figures of the bench mean nothing.
  CHECK(answered * 2 > total);
}

TEST_CASE("phone fast path agrees on numbers foreign to the region") {
  // North American layouts with invented area codes, read in every region and as +1 numbers. Most
  // fit no region, which exercises the rejections that skip libphonenumber: the prefix screen of
  // shared calling codes and international dialling prefixes written as patterns ("0[0-3]\d").
  const PhoneFastPath& fast = PhoneFastPath::instance();
  REQUIRE(fast.available());
  std::vector<std::string> regions = fast.regions();
  std::sort(regions.begin(), regions.end());

  std::mt19937_64 rng(20250307);
  int answered = 0;
  int total = 0;
  int disagreements = 0;
  constexpr int kCases = 30000;
  for (int i = 0; i < kCases; ++i) {
    const std::string area = random_digits(3, rng);
    const std::string exchange = random_digits(3, rng);
    const std::string line = random_digits(4, rng);
    std::string text;
    switch (rng() % 7) {
      case 0: text = "(" + area + ")" + exchange + "-" + line; break;
      case 1: text = area + "-" + exchange + "-" + line; break;
      case 2: text = area + "." + exchange + "." + line; break;
      case 3: text = area + exchange + line; break;
      case 4: text = "+1-" + area + "-" + exchange + "-" + line; break;
      case 5: text = "1-" + area + "-" + exchange + "-" + line; break;
      default: text = "0" + area + "-" + exchange + "-" + line; break;
    }
    if (rng() % 3 == 0) text += "x" + random_digits(1 + rng() % 5, rng);
    const std::string& region = rng() % 4 == 0 ? std::string("US") : regions[rng() % regions.size()];

    ++total;
    if (fast_path_agrees(text, region, disagreements)) ++answered;
  }
  MESSAGE("fast path answered " << answered << " of " << total << " foreign numbers");
  CHECK(disagreements == 0);
  CHECK(answered * 10 > total * 9);
}

TEST_CASE("phone fast path reads national prefixes with groups") {
  // Regions whose national prefix is a pattern with groups or several possible lengths: Argentina
  // ("0?(?:(11|...)15)?", a transform), Brazil ("(?:0|90)(?:(...)(\\d{10,11}))?", a transform),
  // Belarus ("0|80?") and Russia ("8"). A number whose prefix contains no group, or takes one length
  // first, is parsed without libphonenumber.
  const PhoneFastPath& fast = PhoneFastPath::instance();
  REQUIRE(fast.available());
  std::mt19937_64 rng(20261205);
  int answered = 0;
  int total = 0;
  int disagreements = 0;
  for (const char* region : {"AR", "BR", "BY", "RU", "MX", "CO"}) {
    for (int i = 0; i < 3000; ++i) {
      static const char* const kPrefixes[] = {"0", "00", "8", "80", "90", "015", "9", ""};
      std::string text = std::string(kPrefixes[rng() % 8]) + scatter_separators(random_digits(6 + rng() % 7, rng), rng);
      ++total;
      if (fast_path_agrees(text, region, disagreements)) ++answered;
    }
  }
  MESSAGE("fast path answered " << answered << " of " << total << " numbers with national prefixes");
  CHECK(disagreements == 0);
  CHECK(answered * 10 > total * 9);

  // Landlines of Buenos Aires and Sao Paulo in their national layouts: the prefix contains no group.
  std::string e164;
  CHECK(fast.parse("011 4321-1234", "AR", e164) == FastPhoneOutcome::kValid);
  CHECK(e164 == "+541143211234");
  CHECK(fast.parse("(011) 3123-4567", "BR", e164) != FastPhoneOutcome::kUnknown);
}

TEST_CASE("phone numbers after 00 read as after a plus") {
  // normalize_phone() reads "00" as '+' without rewriting the text, unless the two extra digits
  // pass the layout's limit of 20.
  using activation::identifiers::normalize_phone;
  using activation::identifiers::PhoneOutcome;
  std::mt19937_64 rng(20261206);
  for (int i = 0; i < 2000; ++i) {
    const std::string digits = random_digits(6 + rng() % 16, rng);
    // Nothing, a space or a parenthesis before the "00".
    static const char* const kLeads[] = {"", " ", "("};
    const std::string lead = kLeads[i % 3];
    const std::string text = lead + "00" + scatter_separators(digits, rng);
    std::string plus_text = lead + "+" + text.substr(lead.size() + 2);
    CAPTURE(text);
    std::string e164;
    const PhoneOutcome outcome = normalize_phone(text, "", "US", e164);
    std::string expected;
    const PhoneCheck check = parse_phone_with_libphonenumber(plus_text, "ZZ", expected);
    CHECK(outcome.international);
    CHECK((outcome.kind == PhoneOutcome::Kind::kAccepted) == (check != PhoneCheck::kNotPossible));
    if (check != PhoneCheck::kNotPossible) {
      CHECK(e164 == expected);
      CHECK(outcome.valid == (check == PhoneCheck::kValid));
    }
  }
}

TEST_CASE("phone fast path agrees with libphonenumber on the customer file") {
  std::string path = std::string(ACT_SOURCE_DIR) + "/../shared/data/customers-10000.csv";
  std::ifstream file(path);
  if (!file) {
    MESSAGE("skipped: " << path << " is absent");
    return;
  }
  std::string line;
  std::getline(file, line);  // Header.
  int answered = 0;
  int total = 0;
  int disagreements = 0;
  while (std::getline(file, line)) {
    // The phone columns hold no commas or quotes; split the simple way and take columns 7 and 8.
    std::vector<std::string> columns;
    std::string column;
    bool quoted = false;
    for (char c : line) {
      if (c == '"') {
        quoted = !quoted;
      } else if (c == ',' && !quoted) {
        columns.push_back(column);
        column.clear();
      } else {
        column += c;
      }
    }
    columns.push_back(column);
    if (columns.size() < 9) continue;
    auto country = activation::country_to_alpha2(columns[6]);
    for (int index : {7, 8}) {
      for (const std::string& region :
           {country && activation::identifiers::is_phone_region(*country) ? *country : std::string("US"),
            std::string("US")}) {
        ++total;
        if (fast_path_agrees(columns[index], region, disagreements)) ++answered;
      }
    }
  }
  MESSAGE("fast path answered " << answered << " of " << total << " customer-file numbers");
  CHECK(total > 10000);
  CHECK(disagreements == 0);
  CHECK(answered * 10 > total * 9);
}

TEST_CASE("phone row region ignores earlier rows") {
  // normalize_phone() keeps the last row country it looked up. A stale result would read a number
  // in the previous row's country.
  using activation::identifiers::normalize_phone;
  using activation::identifiers::PhoneOutcome;
  const std::vector<std::string> phones = {"(415) 555-2671", "030 1234567", "020 7946 0958", "01 42 68 53 00",
                                           "043-797-5229", "+44 20 7946 0958", "0049 30 1234567"};
  const std::vector<std::string> countries = {"US",     "Germany",       "GB",       "France", "Norway",
                                              "Atlantis", "Bouvet Island", "germany", "",       "DEU"};
  struct Result {
    PhoneOutcome outcome;
    std::string e164;
  };
  auto run = [&](bool reversed) {
    std::vector<Result> results(phones.size() * countries.size());
    for (std::size_t k = 0; k < results.size(); ++k) {
      std::size_t index = reversed ? results.size() - 1 - k : k;
      const std::string& phone = phones[index % phones.size()];
      const std::string& country = countries[index / phones.size()];
      results[index].outcome = normalize_phone(phone, country, "US", results[index].e164);
    }
    return results;
  };
  std::vector<Result> forward = run(false);
  std::vector<Result> backward = run(true);
  for (std::size_t i = 0; i < forward.size(); ++i) {
    CAPTURE(phones[i % phones.size()]);
    CAPTURE(countries[i / phones.size()]);
    CHECK(forward[i].outcome.kind == backward[i].outcome.kind);
    CHECK(forward[i].outcome.row_region == backward[i].outcome.row_region);
    CHECK(forward[i].outcome.region_guessed == backward[i].outcome.region_guessed);
    CHECK(forward[i].outcome.valid == backward[i].outcome.valid);
    CHECK(forward[i].e164 == backward[i].e164);
  }

  // And the regions themselves.
  std::string e164;
  CHECK(normalize_phone("030 1234567", "Germany", "US", e164).row_region == "DE");
  CHECK(e164 == "+49301234567");
  CHECK(normalize_phone("030 1234567", "Bouvet Island", "US", e164).row_region.empty());
  CHECK(normalize_phone("030 1234567", "germany", "US", e164).row_region == "DE");
}
