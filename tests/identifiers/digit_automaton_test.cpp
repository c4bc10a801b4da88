#include <doctest/doctest.h>

#include <random>
#include <regex>
#include <string>

#include "identifiers/digit_automaton.hpp"

using activation::identifiers::DigitAutomaton;

namespace {

// A random pattern of the subset that libphonenumber's metadata uses: digits, classes, groups,
// alternation and bounded repetition.
std::string random_pattern(std::mt19937_64& rng, int depth) {
  std::string pattern;
  int pieces = 1 + static_cast<int>(rng() % 3);
  for (int i = 0; i < pieces; ++i) {
    switch (rng() % (depth >= 2 ? 3 : 5)) {
      case 0: pattern += static_cast<char>('0' + rng() % 10); break;
      case 1: pattern += "\\d"; break;
      case 2: {
        char low = static_cast<char>('0' + rng() % 10);
        char high = static_cast<char>(low + rng() % ('9' - low + 1));
        pattern += std::string("[") + low + "-" + high + (rng() % 2 ? "5" : "") + "]";
        break;
      }
      case 3:
        pattern += "(?:" + random_pattern(rng, depth + 1) + "|" + random_pattern(rng, depth + 1) + ")";
        break;
      default: pattern += "(" + random_pattern(rng, depth + 1) + ")"; break;
    }
    switch (rng() % 6) {
      case 0: pattern += "?"; break;
      case 1: pattern += "{" + std::to_string(rng() % 3) + "}"; break;
      case 2: {
        int low = static_cast<int>(rng() % 3);
        pattern += "{" + std::to_string(low) + "," + std::to_string(low + rng() % 3) + "}";
        break;
      }
      default: break;
    }
  }
  return pattern;
}

}  // namespace

TEST_CASE("digit automaton matches like std::regex on generated patterns") {
  std::mt19937_64 rng(3);
  for (int p = 0; p < 300; ++p) {
    std::string first = random_pattern(rng, 0);
    std::string second = random_pattern(rng, 0);
    CAPTURE(first);
    CAPTURE(second);
    auto automaton = DigitAutomaton::compile({first, second});
    REQUIRE(automaton.has_value());
    std::regex first_regex(first);
    std::regex second_regex(second);
    for (int s = 0; s < 100; ++s) {
      std::string digits;
      std::size_t length = rng() % 12;
      for (std::size_t i = 0; i < length; ++i) digits += static_cast<char>('0' + rng() % 10);
      CAPTURE(digits);
      std::uint32_t expected = (std::regex_match(digits, first_regex) ? 1u : 0u) |
                               (std::regex_match(digits, second_regex) ? 2u : 0u);
      REQUIRE(automaton->full_match(digits) == expected);

      std::uint64_t prefixes = 0;
      for (std::size_t k = 0; k <= digits.size(); ++k) {
        if (std::regex_match(digits.substr(0, k), first_regex) ||
            std::regex_match(digits.substr(0, k), second_regex)) {
          prefixes |= std::uint64_t{1} << k;
        }
      }
      REQUIRE(automaton->prefix_match_lengths(digits) == prefixes);
    }
  }
}

TEST_CASE("digit automaton end anchor holds only at the end") {
  auto automaton = DigitAutomaton::compile({"1|([2-9]\\d{2})$"});
  REQUIRE(automaton.has_value());
  CHECK(automaton->prefix_match_lengths("1234") == 0b10);
  CHECK(automaton->prefix_match_lengths("234") == 0b1000);
  CHECK(automaton->prefix_match_lengths("2345") == 0);
  CHECK(automaton->full_match("234") == 1);
}

TEST_CASE("digit automaton refuses syntax outside its subset") {
  for (const char* pattern : {"^1", "1.2", "\\s", "(?=1)2", "(?i)1", "[[:digit:]]", "1{", "(1", "1)", "\\"}) {
    CAPTURE(pattern);
    CHECK_FALSE(DigitAutomaton::compile({pattern}).has_value());
  }
  CHECK(DigitAutomaton::compile({""}).has_value());
  CHECK(DigitAutomaton::compile({""})->full_match("") == 0);
}

TEST_CASE("digit automaton merges equivalent states") {
  // After "1" or "2" the same two digits remain, so the minimal automaton has the dead state, the
  // start, one state for each of the three positions after it, and no more.
  auto automaton = DigitAutomaton::compile({"(?:1\\d|2\\d)\\d"});
  REQUIRE(automaton.has_value());
  CHECK(automaton->state_count() == 5);
  CHECK(automaton->full_match("123") == 1);
  CHECK(automaton->full_match("293") == 1);
  CHECK(automaton->full_match("323") == 0);
  CHECK(automaton->full_match("12") == 0);

  // A pattern that can match nothing still has its start state, apart from the dead state.
  auto never = DigitAutomaton::compile({"", ""});
  REQUIRE(never.has_value());
  CHECK(never->state_count() == 2);
  CHECK(never->reachable_matches("") == 0);

  // The limit counts the states of the automaton before it is merged.
  CHECK_FALSE(DigitAutomaton::compile({"\\d{3}"}, 3).has_value());
}

TEST_CASE("digit automaton reachable matches of prefixes") {
  auto automaton = DigitAutomaton::compile({"12", "13\\d", "2\\d{2}"});
  REQUIRE(automaton.has_value());
  CHECK(automaton->reachable_matches("") == 0b111);
  CHECK(automaton->reachable_matches("1") == 0b011);
  CHECK(automaton->reachable_matches("13") == 0b010);
  CHECK(automaton->reachable_matches("12") == 0b001);
  CHECK(automaton->reachable_matches("3") == 0);
  CHECK(automaton->reachable_matches("2999") == 0);
}

TEST_CASE("digit automaton matches that hold a group") {
  // Argentina's shape: an optional national prefix, then an optional area code captured before "15".
  auto argentina = DigitAutomaton::compile_with_capture("0?(?:(11|2[2-4]\\d)15)?");
  REQUIRE(argentina.has_value());
  CHECK(argentina->prefix_match_lengths("01115234567") == std::uint64_t{1} << 5);
  CHECK(argentina->prefix_match_lengths("22315234567") == std::uint64_t{1} << 5);
  CHECK(argentina->prefix_match_lengths("0313680600") == 0);
  CHECK(argentina->prefix_match_lengths("0111234567") == 0);

  // Brazil's shape: two groups, the second a run of digits.
  auto brazil = DigitAutomaton::compile_with_capture("(?:0|90)(?:(1[245]|2[1-35])(\\d{10,11}))?");
  REQUIRE(brazil.has_value());
  CHECK(brazil->prefix_match_lengths("0121234567890") == std::uint64_t{1} << 13);
  CHECK(brazil->prefix_match_lengths("0570463869") == 0);

  // A group in one alternative only; the other alternative never contains it.
  auto alternatives = DigitAutomaton::compile_with_capture("1|(2)3");
  REQUIRE(alternatives.has_value());
  CHECK(alternatives->full_match("1") == 0);
  CHECK(alternatives->full_match("23") == 1);

  // Without a capturing group nothing matches; a group under a repetition is not modelled.
  auto plain = DigitAutomaton::compile_with_capture("0(?:1|2)?");
  REQUIRE(plain.has_value());
  CHECK(plain->prefix_match_lengths("012") == 0);
  CHECK_FALSE(DigitAutomaton::compile_with_capture("(\\d)+").has_value());
  CHECK_FALSE(DigitAutomaton::compile_with_capture("(?:(1)2){2}").has_value());
  CHECK(DigitAutomaton::compile_with_capture("(?:(1)2)?").has_value());
}
