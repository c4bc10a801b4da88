// Regular expressions over ASCII digits, compiled to a deterministic automaton.
//
// libphonenumber validates numbers with ICU regular expressions, which costs microseconds per
// pattern. Its metadata patterns use a small subset of the syntax (digits, classes, groups,
// alternation, bounded repetition and the end anchor `$`), so they compile to a DFA over the ten
// digits that decides a match with one table lookup per digit.
//
// Thread safety: a compiled DigitAutomaton is immutable; any number of threads may run it at once.
#ifndef ACTIVATION_SRC_IDENTIFIERS_DIGIT_AUTOMATON_HPP_
#define ACTIVATION_SRC_IDENTIFIERS_DIGIT_AUTOMATON_HPP_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace activation::identifiers {

class DigitAutomaton {
 public:
  // The maximum number of states: a state number fits in 16 bits, which halves the transition
  // table that each digit of a number reads from.
  static constexpr std::size_t kMaxStates = 65535;

  // Compiles the union of `patterns`; a match of pattern i sets bit i of a result mask, so at most
  // 32 patterns. An empty pattern never matches. Returns nullopt when a pattern uses syntax
  // outside the supported subset (`^`, `.`, escapes other than `\d`, lookaround, flags), or when
  // the automaton would exceed `max_states` (at most kMaxStates).
  static std::optional<DigitAutomaton> compile(const std::vector<std::string_view>& patterns,
                                               std::size_t max_states = kMaxStates);

  // Returns the mask of the patterns that match the whole of `digits`. REQUIRES: `digits` holds
  // only '0'..'9'.
  std::uint32_t full_match(std::string_view digits) const noexcept {
    std::uint32_t state = kStart;
    for (char c : digits) {
      state = next_[state * 10 + static_cast<unsigned>(c - '0')];
      if (state == kDead) return 0;
    }
    return accept_at_end_[state];
  }

  // Returns a bit set of the prefix lengths of `digits` (0..63) that some pattern matches in full,
  // the test libphonenumber makes when it consumes a prefix such as a national prefix. A `$` in a
  // pattern holds only at the end of `digits`. REQUIRES: only digits, at most 63 of them.
  std::uint64_t prefix_match_lengths(std::string_view digits) const noexcept;

  // Returns the mask of the patterns that match, in full, some digit string that starts with
  // `prefix`. REQUIRES: `prefix` holds only '0'..'9'.
  std::uint32_t reachable_matches(std::string_view prefix) const noexcept {
    std::uint32_t state = kStart;
    for (char c : prefix) {
      state = next_[state * 10 + static_cast<unsigned>(c - '0')];
      if (state == kDead) return 0;
    }
    return reachable_[state];
  }

  std::size_t state_count() const noexcept { return accept_.size(); }

 private:
  static constexpr std::uint16_t kDead = 0;
  static constexpr std::uint16_t kStart = 1;

  // Row-major transitions: next_[state * 10 + digit]. Each digit of a number reads another row, and
  // the phone fast path's tables take about 430 KB in all, more than many cores' L2 cache.
  std::vector<std::uint16_t> next_;
  // Patterns accepted in a state when the input continues (a `$` does not hold there).
  std::vector<std::uint32_t> accept_;
  // Patterns accepted in a state when the input ends there (a `$` holds).
  std::vector<std::uint32_t> accept_at_end_;
  // Patterns accepted at the end of some input that continues from a state (none, or more digits).
  std::vector<std::uint32_t> reachable_;
};

}  // namespace activation::identifiers

#endif  // ACTIVATION_SRC_IDENTIFIERS_DIGIT_AUTOMATON_HPP_
