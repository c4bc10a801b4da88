#include "engine/sample.hpp"

#include <array>
#include <cstdio>
#include <string_view>

namespace activation::engine {
namespace {

constexpr std::array<std::string_view, 40> kFirstNames = {
    "James",  "Mary",      "Robert",  "Patricia", "John",     "Jennifer",  "Michael", "Linda",
    "David",  "Elizabeth", "José",    "María",    "François", "Zoë",       "Björn",   "Søren",
    "Ólafur", "Ana Lúcia", "Jürgen",  "Chloé",    "Łukasz",   "Çağla",     "Dmitri",  "Дмитрий",
    "Анна",   "Σοφία",     "Γιώργος", "محمد",     "فاطمة",    "李",        "王芳",    "さくら",
    "太郎",   "민준",      "Priya",   "Aarav",    "O'Brien",  "Mary-Jane", "Nguyễn",  "Thảo"};
constexpr std::array<std::string_view, 30> kLastNames = {
    "Smith",        "Johnson",    "Williams", "Brown",       "Jones",    "García", "Müller", "Dubois",
    "Rossi",        "Nowak",      "Øster",    "Ólafsdóttir", "Łukasik",  "Şahin",  "Иванов", "Петрова",
    "Παπαδόπουλος", "الحسن",      "张",       "王",          "佐藤",     "김",     "Patel",  "O'Neil",
    "van der Berg", "De la Cruz", "Nguyễn",   "Smith-Jones", "Kowalski", "Lee"};
constexpr std::array<std::string_view, 20> kDomains = {
    "example.com", "gmail.com",   "yahoo.com",      "hotmail.com", "outlook.com", "web.de",     "mail.ru",
    "qq.com",      "example.org", "example.net",    "icloud.com",  "proton.me",   "gmx.de",     "orange.fr",
    "libero.it",   "naver.com",   "googlemail.com", "yandex.ru",   "aol.com",     "comcast.net"};
constexpr std::array<std::string_view, 16> kCities = {
    "New York",  "Los Angeles", "San Francisco", "London", "Berlin", "München", "Paris",  "Montréal",
    "São Paulo", "Zürich",      "Kraków",        "Москва", "東京",   "Seoul",   "Mumbai", "Lake Jeffborough"};

struct Country {
  std::string_view text;  // As a user typed it.
  std::string_view region;
};
constexpr std::array<Country, 16> kCountries = {{{"United States", "US"},
                                                 {"USA", "US"},
                                                 {"us", "US"},
                                                 {"United States of America", "US"},
                                                 {"United Kingdom", "GB"},
                                                 {"UK", "GB"},
                                                 {"Germany", "DE"},
                                                 {"DEU", "DE"},
                                                 {"France", "FR"},
                                                 {"Canada", "CA"},
                                                 {"Brazil", "BR"},
                                                 {"Korea", "KR"},
                                                 {"Japan", "JP"},
                                                 {"India", "IN"},
                                                 {"Atlantis", ""},
                                                 {"", ""}}};
constexpr std::array<std::string_view, 8> kStates = {"CA", "California", "NY", "new york",
                                                     "TX", "Ontario",    "",   "WA"};

void append_digits(std::string& out, std::uint64_t value, int count) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "%0*llu", count, static_cast<unsigned long long>(value));
  out += buffer;
}

void append_csv(std::string& out, std::string_view value) {
  if (value.find_first_of(",\"\n") == std::string_view::npos) {
    out += value;
    return;
  }
  out += '"';
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

}  // namespace

std::vector<ColumnMapping> sample_mapping() {
  return {{"CUSTOMERID", Field::kExternalId},
          {"FIRSTNAME", Field::kFirstName},
          {"LASTNAME", Field::kLastName},
          {"EMAIL", Field::kEmail},
          {"PHONE1", Field::kPhone},
          {"PHONE2", Field::kPhone},
          {"CITY", Field::kCity},
          {"STATE", Field::kState},
          {"ZIP", Field::kZip},
          {"COUNTRY", Field::kCountry},
          {"DOB", Field::kDob},
          {"GENDER", Field::kGender}};
}

void SampleGenerator::append_row(std::uint64_t index, std::string& out) {
  // One row in a hundred is junk that no platform can match: no id, a bad email, bad phones.
  if (chance(1)) {
    out += ",,,no-at-sign.example.com,123,000-000-0000,,,,Atlantis,not a date,?\n";
    return;
  }
  std::string_view first = kFirstNames[pick(kFirstNames.size())];
  std::string_view last = kLastNames[pick(kLastNames.size())];
  const Country& country = kCountries[pick(kCountries.size())];

  // CUSTOMERID: a stable id per row index, so a regenerated audience keeps its members.
  out += "C";
  append_digits(out, index, 9);
  out += ',';
  append_csv(out, first);
  out += ',';
  append_csv(out, last);
  out += ',';

  // EMAIL: mostly valid and unique per row, in mixed case with stray spaces; some bad.
  int kind = static_cast<int>(pick(100));
  if (kind < 3) {
    out += "not-an-email";
  } else if (kind < 6) {
    // Empty.
  } else {
    if (kind < 15) out += ' ';
    std::string local = "user" + std::to_string(index);
    if (kind % 7 == 0) local = "First.Last+" + std::to_string(index);
    if (kind % 5 == 0) {
      for (char& c : local) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
    }
    out += local;
    out += '@';
    out += kDomains[pick(kDomains.size())];
    if (kind < 10) out += "  ";
  }
  out += ',';

  // PHONE1 and PHONE2 in the formats people type, national and international, some with extensions.
  for (int phone = 0; phone < 2; ++phone) {
    int style = static_cast<int>(pick(100));
    std::uint64_t subscriber = 1000000 + pick(8999999);
    std::uint64_t area = 201 + pick(700);
    if (phone == 1 && style < 40) {
      // Often empty.
    } else if (style < 20) {
      out += "(";
      append_digits(out, area, 3);
      out += ") ";
      append_digits(out, subscriber / 10000, 3);
      out += '-';
      append_digits(out, subscriber % 10000, 4);
    } else if (style < 35) {
      append_digits(out, area, 3);
      out += '.';
      append_digits(out, subscriber / 10000, 3);
      out += '.';
      append_digits(out, subscriber % 10000, 4);
      if (style < 25) out += "x" + std::to_string(100 + pick(900));
    } else if (style < 50) {
      out += "+1 ";
      append_digits(out, area, 3);
      out += ' ';
      append_digits(out, subscriber, 7);
    } else if (style < 62) {
      out += "+44 20 7";
      append_digits(out, pick(1000), 3);
      out += ' ';
      append_digits(out, pick(10000), 4);
    } else if (style < 72) {
      out += "0049 30 ";
      append_digits(out, 1000000 + pick(8999999), 7);
    } else if (style < 80) {
      out += "+33 6 ";
      append_digits(out, pick(100), 2);
      out += ' ';
      append_digits(out, pick(100), 2);
      out += ' ';
      append_digits(out, pick(100), 2);
      out += ' ';
      append_digits(out, pick(100), 2);
    } else if (style < 90) {
      append_digits(out, area, 3);
      append_digits(out, subscriber, 7);
    } else if (style < 95) {
      out += "555-01";  // Too short.
    } else {
      out += "000-000-0000";
    }
    out += ',';
  }

  append_csv(out, kCities[pick(kCities.size())]);
  out += ',';
  append_csv(out, kStates[pick(kStates.size())]);
  out += ',';
  if (country.region == "US") {
    append_digits(out, 10000 + pick(89999), 5);
    if (chance(20)) out += "-1234";
  } else if (country.region == "GB") {
    out += "SW1A 1AA";
  } else if (!country.region.empty()) {
    append_digits(out, 10000 + pick(89999), 5);
  }
  out += ',';
  append_csv(out, country.text);
  out += ',';

  // DOB in ISO form, a few in other forms or impossible.
  int dob = static_cast<int>(pick(100));
  if (dob < 80) {
    append_digits(out, 1940 + pick(65), 4);
    out += '-';
    append_digits(out, 1 + pick(12), 2);
    out += '-';
    append_digits(out, 1 + pick(28), 2);
  } else if (dob < 85) {
    out += "1985-02-30";
  }
  out += ',';
  constexpr std::array<std::string_view, 6> kGenders = {"F", "M", "female", "male", "", "x"};
  out += kGenders[pick(kGenders.size())];
  out += '\n';
}

bool write_sample_csv(std::ostream& out, std::uint64_t rows, std::uint64_t seed) {
  SampleGenerator generator(seed);
  std::string buffer = std::string(kSampleHeader) + "\n";
  for (std::uint64_t i = 0; i < rows; ++i) {
    generator.append_row(i, buffer);
    if (buffer.size() >= (1 << 20)) {
      out.write(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      buffer.clear();
    }
  }
  out.write(buffer.data(), static_cast<std::streamsize>(buffer.size()));
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace activation::engine
