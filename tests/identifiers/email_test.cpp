#include <doctest/doctest.h>

#include <random>
#include <regex>
#include <string>

#include "identifiers/email.hpp"

using activation::identifiers::EmailRules;
using activation::identifiers::normalize_email;

namespace {

// The address rules written as regular expressions, as an independent reference for the
// branch-free checks of the library. REQUIRES: lowercase ASCII without whitespace.
bool reference_valid(const std::string& address) {
  static const std::regex kLocal("[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*");
  static const std::regex kLabel("[a-z0-9]([a-z0-9-]*[a-z0-9])?");
  static const std::regex kDigits("[0-9]+");
  std::size_t at = address.find('@');
  if (at == std::string::npos || address.find('@', at + 1) != std::string::npos) return false;
  if (address.size() > 254) return false;
  std::string local = address.substr(0, at);
  std::string domain = address.substr(at + 1);
  if (local.empty() || local.size() > 64 || !std::regex_match(local, kLocal)) return false;
  std::size_t labels = 0;
  std::string last;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = domain.find('.', start);
    std::string label = domain.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (label.empty() || label.size() > 63 || !std::regex_match(label, kLabel)) return false;
    ++labels;
    last = label;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return labels >= 2 && !std::regex_match(last, kDigits);
}

}  // namespace

TEST_CASE("email checks agree with a regular-expression reference") {
  // Characters chosen to hit every rule: letters, digits, dots, hyphens, atom punctuation,
  // characters no address may hold, and a second '@'.
  const std::string alphabet = "abcXYZ019..--__++@@!(),;:[]\"'";
  std::mt19937_64 rng(5);
  int valid = 0;
  for (int i = 0; i < 60000; ++i) {
    std::string local;
    std::string domain;
    std::size_t local_length = rng() % 8;
    std::size_t domain_length = 1 + rng() % 10;
    for (std::size_t k = 0; k < local_length; ++k) local += alphabet[rng() % alphabet.size()];
    for (std::size_t k = 0; k < domain_length; ++k) domain += "ab9.-"[rng() % 5];
    if (rng() % 3 == 0) domain += ".com";
    std::string address = local + "@" + domain;
    if (rng() % 50 == 0)
      address = std::string(60 + rng() % 10, 'a') + "@" + std::string(60 + rng() % 10, 'b') + ".io";
    CAPTURE(address);

    std::string lowered = address;
    for (char& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string out;
    const char* problem = normalize_email(address, true, EmailRules{}, out);
    bool expected = reference_valid(lowered);
    REQUIRE((problem == nullptr) == expected);
    if (expected) {
      REQUIRE(out == lowered);
      ++valid;
    }
  }
  CHECK(valid > 1000);
}

TEST_CASE("email limits on length") {
  std::string out;
  std::string local64(64, 'a');
  CHECK(normalize_email(local64 + "@example.com", true, EmailRules{}, out) == nullptr);
  CHECK(std::string(normalize_email(local64 + "a@example.com", true, EmailRules{}, out)) ==
        "the part before the '@' is longer than 64 bytes");
  std::string label63(63, 'b');
  CHECK(normalize_email("a@" + label63 + ".com", true, EmailRules{}, out) == nullptr);
  CHECK(std::string(normalize_email("a@" + label63 + "b.com", true, EmailRules{}, out)) ==
        "a domain label longer than 63 bytes");
  std::string long_domain = label63 + "." + label63 + "." + label63 + "." + std::string(60, 'c') + ".io";
  CHECK(std::string(normalize_email("abcdef@" + long_domain, true, EmailRules{}, out)) ==
        "longer than 254 bytes");
}
