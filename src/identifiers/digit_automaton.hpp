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
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace activation::identifiers {

struct AstNode;  // A parsed pattern, defined in digit_automaton.cpp.

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

  // Compiles the strings that `pattern` matches with at least one capturing group taking part,
  // as pattern 0; with no capturing group, an automaton that matches nothing. Returns nullopt as
  // compile() does, and also when a capturing group sits under a repetition of more than one
  // round, such as `(\d)+`.
  static std::optional<DigitAutomaton> compile_with_capture(std::string_view pattern,
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
  // compile() over parsed patterns; a null tree matches nothing.
  static std::optional<DigitAutomaton> compile_trees(const std::vector<std::unique_ptr<AstNode>>& trees,
                                                     std::size_t max_states);

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

// The first match of a pattern at the start of a digit string, as a backtracking regex engine
// such as ICU's finds it for libphonenumber's Consume(). Alternatives are tried from the left, and
// a repetition takes as many rounds as it can before fewer.
//
// Thread safety: immutable after compile(); any number of threads may use one at once.
class PrefixMatcher {
 public:
  // Returns nullopt for syntax outside DigitAutomaton's subset, and for a lazy or possessive
  // repetition, whose order of preference is not modelled.
  static std::optional<PrefixMatcher> compile(std::string_view pattern);

  struct Match {
    std::size_t length = 0;  // The digits the match consumes.
    bool captured = false;   // A capturing group took part in the match.
    bool matched = false;    // False when no prefix matches at all.
  };
  // Returns the first match at the start of `digits`, or nullopt when the search took too many
  // steps to finish. REQUIRES: `digits` contains only '0'..'9'.
  std::optional<Match> first_match(std::string_view digits) const;

 private:
  PrefixMatcher() = default;
  std::shared_ptr<const AstNode> root_;
};

}  // namespace activation::identifiers

#endif  // ACTIVATION_SRC_IDENTIFIERS_DIGIT_AUTOMATON_HPP_
