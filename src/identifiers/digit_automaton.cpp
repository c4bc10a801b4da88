#include "identifiers/digit_automaton.hpp"

#include <algorithm>
#include <array>
#include <functional>
#include <map>
#include <memory>

namespace activation::identifiers {

// A parsed pattern. The header declares it, for DigitAutomaton::compile_trees().
struct AstNode {
  enum class Kind { kSet, kConcat, kAlternation, kRepeat, kEndAnchor };
  Kind kind = Kind::kSet;
  std::uint16_t digits = 0;  // kSet: bit d set when the node matches digit d.
  std::vector<std::unique_ptr<AstNode>> children;
  int min = 0;
  int max = 0;  // kUnbounded for `*` and `+`.
  bool greedy = true;    // kRepeat: false for a lazy (`??`) or possessive (`?+`) repetition.
  bool capture = false;  // The node is the body of a capturing group.
};

namespace {

constexpr std::uint16_t kAllDigits = 0x3ff;
constexpr int kUnbounded = -1;
// Repetition counts in libphonenumber's metadata stay below 20; a larger bound is treated as
// syntax this compiler does not handle rather than unrolled.
constexpr int kMaxRepeat = 64;

using AstPtr = std::unique_ptr<AstNode>;

AstPtr make_node(AstNode::Kind kind) {
  auto node = std::make_unique<AstNode>();
  node->kind = kind;
  return node;
}

// A recursive-descent parser for the subset; `ok_` turns false at the first unsupported construct.
class Parser {
 public:
  explicit Parser(std::string_view pattern) : pattern_(pattern) {}

  AstPtr parse() {
    AstPtr root = parse_alternation();
    if (pos_ != pattern_.size()) ok_ = false;
    return ok_ ? std::move(root) : nullptr;
  }

 private:
  bool at_end() const { return pos_ >= pattern_.size(); }
  char peek() const { return pattern_[pos_]; }

  AstPtr parse_alternation() {
    auto alternation = make_node(AstNode::Kind::kAlternation);
    alternation->children.push_back(parse_concatenation());
    while (ok_ && !at_end() && peek() == '|') {
      ++pos_;
      alternation->children.push_back(parse_concatenation());
    }
    return alternation;
  }

  AstPtr parse_concatenation() {
    auto concatenation = make_node(AstNode::Kind::kConcat);
    while (ok_ && !at_end() && peek() != '|' && peek() != ')') {
      AstPtr atom = parse_atom();
      if (!ok_) break;
      concatenation->children.push_back(parse_quantifiers(std::move(atom)));
    }
    return concatenation;
  }

  AstPtr parse_atom() {
    char c = peek();
    ++pos_;
    if (c >= '0' && c <= '9') {
      auto node = make_node(AstNode::Kind::kSet);
      node->digits = static_cast<std::uint16_t>(1u << (c - '0'));
      return node;
    }
    switch (c) {
      case '(': return parse_group();
      case '[': return parse_class();
      case '\\': return parse_escape();
      case '$': return make_node(AstNode::Kind::kEndAnchor);
      case '^':
      case '.':
      case '*':
      case '+':
      case '?':
      case '{':
      case '}':
      case ']': ok_ = false; return nullptr;
      default:
        // Any other literal character cannot match a digit: an empty set keeps the structure.
        return make_node(AstNode::Kind::kSet);
    }
  }

  AstPtr parse_group() {
    const bool capturing = at_end() || peek() != '?';
    if (!at_end() && peek() == '?') {
      // Only the non-capturing group is supported; flags and lookaround change the semantics.
      if (pos_ + 1 < pattern_.size() && pattern_[pos_ + 1] == ':') {
        pos_ += 2;
      } else {
        ok_ = false;
        return nullptr;
      }
    }
    AstPtr inner = parse_alternation();
    if (!ok_ || at_end() || peek() != ')') {
      ok_ = false;
      return nullptr;
    }
    ++pos_;
    inner->capture = capturing;
    return inner;
  }

  AstPtr parse_escape() {
    if (at_end()) {
      ok_ = false;
      return nullptr;
    }
    char c = peek();
    ++pos_;
    auto node = make_node(AstNode::Kind::kSet);
    if (c == 'd') {
      node->digits = kAllDigits;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      // \D, \s, \p{...}, back references and the like are outside the subset.
      ok_ = false;
      return nullptr;
    }
    // An escaped punctuation character is a literal that never matches a digit.
    return node;
  }

  AstPtr parse_class() {
    auto node = make_node(AstNode::Kind::kSet);
    bool negated = false;
    if (!at_end() && peek() == '^') {
      negated = true;
      ++pos_;
    }
    std::uint16_t digits = 0;
    bool first = true;
    while (!at_end() && (peek() != ']' || first)) {
      first = false;
      char c = peek();
      ++pos_;
      int low = -1;
      if (c == '\\') {
        if (at_end()) break;
        char escaped = peek();
        ++pos_;
        if (escaped == 'd') {
          digits |= kAllDigits;
          continue;
        }
        if ((escaped >= 'a' && escaped <= 'z') || (escaped >= 'A' && escaped <= 'Z')) {
          ok_ = false;
          return nullptr;
        }
        low = static_cast<unsigned char>(escaped);
      } else if (c == '[') {
        // Nested classes and POSIX classes are outside the subset.
        ok_ = false;
        return nullptr;
      } else {
        low = static_cast<unsigned char>(c);
      }
      int high = low;
      if (pos_ + 1 < pattern_.size() && peek() == '-' && pattern_[pos_ + 1] != ']') {
        high = static_cast<unsigned char>(pattern_[pos_ + 1]);
        pos_ += 2;
        if (high == '\\' || high < low) {
          ok_ = false;
          return nullptr;
        }
      }
      for (int d = std::max(low, static_cast<int>('0')); d <= std::min(high, static_cast<int>('9')); ++d) {
        digits |= static_cast<std::uint16_t>(1u << (d - '0'));
      }
    }
    if (at_end()) {
      ok_ = false;
      return nullptr;
    }
    ++pos_;  // The closing ']'.
    node->digits = negated ? static_cast<std::uint16_t>(~digits & kAllDigits) : digits;
    return node;
  }

  bool parse_number(int& value) {
    std::size_t start = pos_;
    value = 0;
    while (!at_end() && peek() >= '0' && peek() <= '9' && value <= kMaxRepeat) {
      value = value * 10 + (peek() - '0');
      ++pos_;
    }
    return pos_ > start && value <= kMaxRepeat;
  }

  AstPtr parse_quantifiers(AstPtr atom) {
    while (ok_ && !at_end()) {
      char c = peek();
      int min = 0;
      int max = 0;
      if (c == '?') {
        min = 0;
        max = 1;
        ++pos_;
      } else if (c == '*') {
        min = 0;
        max = kUnbounded;
        ++pos_;
      } else if (c == '+') {
        min = 1;
        max = kUnbounded;
        ++pos_;
      } else if (c == '{') {
        ++pos_;
        if (!parse_number(min)) {
          ok_ = false;
          return nullptr;
        }
        max = min;
        if (!at_end() && peek() == ',') {
          ++pos_;
          if (!at_end() && peek() == '}') {
            max = kUnbounded;
          } else if (!parse_number(max) || max < min) {
            ok_ = false;
            return nullptr;
          }
        }
        if (at_end() || peek() != '}') {
          ok_ = false;
          return nullptr;
        }
        ++pos_;
      } else {
        break;
      }
      // A lazy or possessive suffix changes which match is found, not whether one exists.
      bool greedy = true;
      if (!at_end() && (peek() == '?' || peek() == '+')) {
        greedy = false;
        ++pos_;
      }

      auto repeat = make_node(AstNode::Kind::kRepeat);
      repeat->min = min;
      repeat->max = max;
      repeat->greedy = greedy;
      repeat->children.push_back(std::move(atom));
      atom = std::move(repeat);
    }
    return atom;
  }

  std::string_view pattern_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

AstPtr clone(const AstNode& node) {
  auto copy = std::make_unique<AstNode>();
  copy->kind = node.kind;
  copy->digits = node.digits;
  copy->min = node.min;
  copy->max = node.max;
  copy->greedy = node.greedy;
  copy->capture = node.capture;
  for (const auto& child : node.children) copy->children.push_back(clone(*child));
  return copy;
}

// Returns a tree of the strings that `node` matches with some capturing group inside it taking
// part, or nullptr when no match has one. A group under a repetition of more than one round
// turns `supported` false, because which rounds would contain the group is not modelled.
AstPtr with_capture(const AstNode& node, bool& supported) {
  if (node.capture) return clone(node);
  switch (node.kind) {
    case AstNode::Kind::kSet:
    case AstNode::Kind::kEndAnchor: return nullptr;
    case AstNode::Kind::kConcat: {
      // One alternative per child that can contain a group: that child with its group, the others
      // as they are.
      auto alternatives = make_node(AstNode::Kind::kAlternation);
      for (std::size_t i = 0; i < node.children.size(); ++i) {
        AstPtr inner = with_capture(*node.children[i], supported);
        if (!inner) continue;
        auto sequence = make_node(AstNode::Kind::kConcat);
        for (std::size_t j = 0; j < node.children.size(); ++j) {
          sequence->children.push_back(j == i ? std::move(inner) : clone(*node.children[j]));
        }
        alternatives->children.push_back(std::move(sequence));
      }
      return alternatives->children.empty() ? nullptr : std::move(alternatives);
    }
    case AstNode::Kind::kAlternation: {
      auto alternatives = make_node(AstNode::Kind::kAlternation);
      for (const auto& child : node.children) {
        if (AstPtr inner = with_capture(*child, supported)) alternatives->children.push_back(std::move(inner));
      }
      return alternatives->children.empty() ? nullptr : std::move(alternatives);
    }
    case AstNode::Kind::kRepeat: {
      AstPtr inner = with_capture(*node.children[0], supported);
      if (!inner) return nullptr;
      // `?` and `{1}`: the one round that runs contains the group.
      if (node.max != 1) supported = false;
      return inner;
    }
  }
  return nullptr;
}

// A Thompson NFA. Epsilon nodes have up to two successors; an end-anchor node is an epsilon move
// that only holds at the end of the input.
struct NfaNode {
  enum class Kind { kDigits, kEpsilon, kEndAnchor, kAccept };
  Kind kind = Kind::kEpsilon;
  std::uint16_t digits = 0;
  int out = -1;
  int out2 = -1;
  std::uint32_t accept = 0;
};

class NfaBuilder {
 public:
  int add(NfaNode node) {
    nodes_.push_back(node);
    return static_cast<int>(nodes_.size()) - 1;
  }

  // Builds the NFA of `ast` so that it continues at `next`; returns its entry node. The repetition
  // unrolling builds the body once per copy.
  int build(const AstNode& ast, int next) {
    switch (ast.kind) {
      case AstNode::Kind::kSet: return add({NfaNode::Kind::kDigits, ast.digits, next, -1, 0});
      case AstNode::Kind::kEndAnchor: return add({NfaNode::Kind::kEndAnchor, 0, next, -1, 0});
      case AstNode::Kind::kConcat: {
        int entry = next;
        for (auto it = ast.children.rbegin(); it != ast.children.rend(); ++it) entry = build(**it, entry);
        if (entry == next) entry = add({NfaNode::Kind::kEpsilon, 0, next, -1, 0});
        return entry;
      }
      case AstNode::Kind::kAlternation: {
        if (ast.children.size() == 1) return build(*ast.children[0], next);
        int entry = build(*ast.children.back(), next);
        for (auto it = ast.children.rbegin() + 1; it != ast.children.rend(); ++it) {
          int branch = build(**it, next);
          entry = add({NfaNode::Kind::kEpsilon, 0, branch, entry, 0});
        }
        return entry;
      }
      case AstNode::Kind::kRepeat: {
        const AstNode& body = *ast.children[0];
        int entry = next;
        if (ast.max == kUnbounded) {
          int loop = add({NfaNode::Kind::kEpsilon, 0, -1, next, 0});
          nodes_[loop].out = build(body, loop);
          entry = loop;
        } else {
          for (int i = ast.min; i < ast.max; ++i) {
            int copy = build(body, entry);
            entry = add({NfaNode::Kind::kEpsilon, 0, copy, next, 0});
            next = entry;
          }
        }
        for (int i = 0; i < ast.min; ++i) entry = build(body, entry);
        return entry;
      }
    }
    return next;
  }

  std::vector<NfaNode>& nodes() { return nodes_; }

 private:
  std::vector<NfaNode> nodes_;
};

// Adds to `out` the digit, anchor and accept nodes reachable from `node` by epsilon moves.
// `follow_anchor` also crosses end anchors, for the closure at the end of the input.
void close_over(const std::vector<NfaNode>& nodes, int node, bool follow_anchor, std::vector<char>& seen,
                std::vector<int>& out) {
  std::vector<int> stack{node};
  while (!stack.empty()) {
    int current = stack.back();
    stack.pop_back();
    if (current < 0 || seen[current]) continue;
    seen[current] = 1;
    const NfaNode& n = nodes[current];
    switch (n.kind) {
      case NfaNode::Kind::kEpsilon:
        stack.push_back(n.out2);
        stack.push_back(n.out);
        break;
      case NfaNode::Kind::kEndAnchor:
        if (follow_anchor) {
          stack.push_back(n.out);
        } else {
          out.push_back(current);
        }
        break;
      case NfaNode::Kind::kDigits:
      case NfaNode::Kind::kAccept: out.push_back(current); break;
    }
  }
}

// The automaton while it is built, in the layout of DigitAutomaton's members.
struct Tables {
  std::vector<std::uint16_t> next;
  std::vector<std::uint32_t> accept;
  std::vector<std::uint32_t> accept_at_end;
};

constexpr std::uint16_t kDeadState = 0;
constexpr std::uint16_t kStartState = 1;

// Merges the states that no input distinguishes, and numbers the rest in breadth-first order from
// the start state, so that the tables are as small as the patterns allow.
Tables minimize(const Tables& tables) {
  // Moore's partition refinement: states start in classes by what they accept, and a class splits
  // while its states move on some digit to different classes.
  const std::size_t count = tables.accept.size();
  std::vector<std::uint32_t> class_of(count);
  std::size_t classes = 0;
  {
    std::map<std::pair<std::uint32_t, std::uint32_t>, std::uint32_t> by_accepts;
    for (std::size_t state = 0; state < count; ++state) {
      auto key = std::make_pair(tables.accept[state], tables.accept_at_end[state]);
      class_of[state] = by_accepts.emplace(key, static_cast<std::uint32_t>(by_accepts.size())).first->second;
    }
    classes = by_accepts.size();
  }
  while (true) {
    std::map<std::array<std::uint32_t, 11>, std::uint32_t> by_signature;
    std::vector<std::uint32_t> refined(count);
    for (std::size_t state = 0; state < count; ++state) {
      std::array<std::uint32_t, 11> signature;
      signature[0] = class_of[state];
      for (std::size_t digit = 0; digit < 10; ++digit) signature[digit + 1] = class_of[tables.next[state * 10 + digit]];
      refined[state] =
          by_signature.emplace(signature, static_cast<std::uint32_t>(by_signature.size())).first->second;
    }
    class_of.swap(refined);
    // Refinement only splits classes, so an unchanged count means that nothing split.
    if (by_signature.size() == classes) break;
    classes = by_signature.size();
  }

  // One old state stands for each class. The dead state's class keeps number 0. The start state's
  // class takes number 1, unless nothing can match at all and it is the dead class too: state 1 is
  // then a second dead state.
  std::vector<std::uint32_t> representative(classes);
  for (std::size_t state = count; state-- > 0;) representative[class_of[state]] = static_cast<std::uint32_t>(state);
  constexpr std::uint32_t kUnnumbered = 0xffffffffu;
  std::vector<std::uint32_t> number(classes, kUnnumbered);
  std::vector<std::uint32_t> order;  // Classes by new number.
  number[class_of[kDeadState]] = kDeadState;
  order.push_back(class_of[kDeadState]);
  if (class_of[kStartState] == class_of[kDeadState]) {
    order.push_back(class_of[kDeadState]);
  } else {
    number[class_of[kStartState]] = kStartState;
    order.push_back(class_of[kStartState]);
    for (std::size_t next = kStartState; next < order.size(); ++next) {
      const std::uint32_t old = representative[order[next]];
      for (std::size_t digit = 0; digit < 10; ++digit) {
        const std::uint32_t target = class_of[tables.next[old * 10 + digit]];
        if (number[target] == kUnnumbered) {
          number[target] = static_cast<std::uint32_t>(order.size());
          order.push_back(target);
        }
      }
    }
  }

  Tables minimal;
  minimal.next.resize(order.size() * 10);
  minimal.accept.resize(order.size());
  minimal.accept_at_end.resize(order.size());
  for (std::size_t state = 0; state < order.size(); ++state) {
    const std::uint32_t old = representative[order[state]];
    minimal.accept[state] = tables.accept[old];
    minimal.accept_at_end[state] = tables.accept_at_end[old];
    for (std::size_t digit = 0; digit < 10; ++digit) {
      minimal.next[state * 10 + digit] = static_cast<std::uint16_t>(number[class_of[tables.next[old * 10 + digit]]]);
    }
  }
  return minimal;
}

}  // namespace

std::optional<DigitAutomaton> DigitAutomaton::compile(const std::vector<std::string_view>& patterns,
                                                      std::size_t max_states) {
  if (patterns.size() > 32) return std::nullopt;
  std::vector<AstPtr> trees;
  for (std::string_view pattern : patterns) {
    if (pattern.empty()) {
      trees.push_back(nullptr);
      continue;
    }
    trees.push_back(Parser(pattern).parse());
    if (!trees.back()) return std::nullopt;
  }
  return compile_trees(trees, max_states);
}

std::optional<DigitAutomaton> DigitAutomaton::compile_with_capture(std::string_view pattern,
                                                                   std::size_t max_states) {
  AstPtr tree = Parser(pattern).parse();
  if (!tree) return std::nullopt;
  bool supported = true;
  std::vector<AstPtr> trees;
  trees.push_back(with_capture(*tree, supported));
  if (!supported) return std::nullopt;
  return compile_trees(trees, max_states);
}

std::optional<DigitAutomaton> DigitAutomaton::compile_trees(const std::vector<AstPtr>& trees,
                                                            std::size_t max_states) {
  max_states = std::min(max_states, kMaxStates);

  // One NFA entry per tree, each ending in its own accept node. A missing tree matches nothing.
  NfaBuilder builder;
  std::vector<int> entries;
  for (std::size_t i = 0; i < trees.size(); ++i) {
    if (!trees[i]) continue;
    int accept = builder.add({NfaNode::Kind::kAccept, 0, -1, -1, 1u << i});
    entries.push_back(builder.build(*trees[i], accept));
  }
  const std::vector<NfaNode>& nodes = builder.nodes();

  auto closure = [&](const std::vector<int>& from) {
    std::vector<char> seen(nodes.size(), 0);
    std::vector<int> out;
    for (int node : from) close_over(nodes, node, false, seen, out);
    std::sort(out.begin(), out.end());
    return out;
  };
  auto accepts = [&](const std::vector<int>& set, bool at_end) {
    std::uint32_t mask = 0;
    std::vector<char> seen(nodes.size(), 0);
    std::vector<int> reached;
    for (int node : set) {
      if (at_end) {
        close_over(nodes, node, true, seen, reached);
      } else {
        reached.push_back(node);
      }
    }
    for (int node : reached) {
      if (nodes[node].kind == NfaNode::Kind::kAccept) mask |= nodes[node].accept;
    }
    return mask;
  };

  // Subset construction. State 0 is the dead state, state 1 the start.
  Tables tables;
  std::map<std::vector<int>, std::uint16_t> state_ids;
  std::vector<std::vector<int>> states;
  auto intern = [&](std::vector<int> set) -> std::uint16_t {
    // Beyond max_states the 16-bit id wraps, but compile() returns nullopt at the top of the next
    // round, before any wrapped id is used.
    auto [it, inserted] = state_ids.emplace(set, static_cast<std::uint16_t>(states.size()));
    if (inserted) {
      tables.accept.push_back(accepts(set, false));
      tables.accept_at_end.push_back(accepts(set, true));
      states.push_back(std::move(set));
    }
    return it->second;
  };
  // The dead state stays out of the map so that the start state is state 1 even when no
  // pattern can match anything.
  states.emplace_back();
  tables.accept.push_back(0);
  tables.accept_at_end.push_back(0);
  intern(closure(entries));

  for (std::size_t state = 0; state < states.size(); ++state) {
    if (states.size() > max_states) return std::nullopt;
    // `states` may grow inside the loop; copy the set before interning new ones.
    const std::vector<int> current = states[state];
    for (int digit = 0; digit < 10; ++digit) {
      std::vector<int> moved;
      for (int node : current) {
        const NfaNode& n = nodes[node];
        if (n.kind == NfaNode::Kind::kDigits && (n.digits & (1u << digit))) moved.push_back(n.out);
      }
      std::vector<int> target_set = moved.empty() ? std::vector<int>() : closure(moved);
      std::uint16_t target = target_set.empty() ? kDead : intern(std::move(target_set));
      tables.next.push_back(target);
    }
  }

  tables = minimize(tables);

  // What each state can still reach: its own matches at the end of the input, and those of its
  // successors, repeated until nothing changes (the automaton may have cycles).
  std::vector<std::uint32_t> reachable = tables.accept_at_end;
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t state = reachable.size(); state-- > 1;) {
      std::uint32_t mask = reachable[state];
      for (int digit = 0; digit < 10; ++digit) mask |= reachable[tables.next[state * 10 + digit]];
      if (mask != reachable[state]) {
        reachable[state] = mask;
        changed = true;
      }
    }
  }

  DigitAutomaton automaton;
  automaton.next_ = std::move(tables.next);
  automaton.accept_ = std::move(tables.accept);
  automaton.accept_at_end_ = std::move(tables.accept_at_end);
  automaton.reachable_ = std::move(reachable);
  return automaton;
}

namespace {

// True when every repetition in `node` is greedy.
bool all_greedy(const AstNode& node) {
  if (node.kind == AstNode::Kind::kRepeat && !node.greedy) return false;
  return std::all_of(node.children.begin(), node.children.end(),
                     [](const auto& child) { return all_greedy(*child); });
}

// A backtracking matcher over a parsed pattern, in the order of preference of a backtracking
// engine: alternatives from the left, a greedy repetition with as many rounds as it can take
// first. `next` continues the match after a node; the first continuation that returns true ends
// the search. `captures` counts the capturing groups on the current path.
class Backtracker {
 public:
  Backtracker(std::string_view digits, std::size_t budget) : digits_(digits), budget_(budget) {}

  bool match(const AstNode& node, std::size_t at, const std::function<bool(std::size_t)>& next) {
    if (budget_ == 0) {
      exhausted_ = true;
      return false;
    }
    --budget_;
    if (node.capture) {
      ++captures_;
      const bool found = match_body(node, at, next);
      if (!found) --captures_;
      return found;
    }
    return match_body(node, at, next);
  }

  int captures() const { return captures_; }
  bool exhausted() const { return exhausted_; }

 private:
  bool match_body(const AstNode& node, std::size_t at, const std::function<bool(std::size_t)>& next) {
    switch (node.kind) {
      case AstNode::Kind::kSet:
        return at < digits_.size() && (node.digits & (1u << (digits_[at] - '0'))) != 0 && next(at + 1);
      case AstNode::Kind::kEndAnchor: return at == digits_.size() && next(at);
      case AstNode::Kind::kConcat: return match_sequence(node, 0, at, next);
      case AstNode::Kind::kAlternation:
        for (const auto& child : node.children) {
          if (match(*child, at, next)) return true;
          if (exhausted_) return false;
        }
        return false;
      case AstNode::Kind::kRepeat: return match_rounds(node, 0, at, next);
    }
    return false;
  }

  bool match_sequence(const AstNode& node, std::size_t index, std::size_t at,
                      const std::function<bool(std::size_t)>& next) {
    if (index == node.children.size()) return next(at);
    return match(*node.children[index], at,
                 [&](std::size_t after) { return match_sequence(node, index + 1, after, next); });
  }

  bool match_rounds(const AstNode& node, int rounds, std::size_t at, const std::function<bool(std::size_t)>& next) {
    if (node.max == kUnbounded || rounds < node.max) {
      // One more round first; a round that consumes nothing would repeat forever, so it ends here.
      const bool found = match(*node.children[0], at, [&](std::size_t after) {
        return after != at && match_rounds(node, rounds + 1, after, next);
      });
      if (found || exhausted_) return found;
    }
    return rounds >= node.min && next(at);
  }

  std::string_view digits_;
  std::size_t budget_;
  bool exhausted_ = false;
  int captures_ = 0;
};

}  // namespace

std::optional<PrefixMatcher> PrefixMatcher::compile(std::string_view pattern) {
  AstPtr tree = Parser(pattern).parse();
  if (!tree || !all_greedy(*tree)) return std::nullopt;
  PrefixMatcher matcher;
  matcher.root_ = std::shared_ptr<const AstNode>(std::move(tree));
  return matcher;
}

std::optional<PrefixMatcher::Match> PrefixMatcher::first_match(std::string_view digits) const {
  // Node visits allowed per call: the patterns of libphonenumber's metadata need a few thousand
  // at most on a phone number's digits.
  constexpr std::size_t kBudget = 100000;
  Backtracker backtracker(digits, kBudget);
  Match found;
  backtracker.match(*root_, 0, [&](std::size_t length) {
    found = Match{length, backtracker.captures() > 0, true};
    return true;
  });
  if (backtracker.exhausted()) return std::nullopt;
  return found;
}

std::uint64_t DigitAutomaton::prefix_match_lengths(std::string_view digits) const noexcept {
  std::uint64_t lengths = 0;
  std::uint32_t state = kStart;
  const std::size_t n = std::min<std::size_t>(digits.size(), 63);
  for (std::size_t i = 0;; ++i) {
    std::uint32_t mask = i == digits.size() ? accept_at_end_[state] : accept_[state];
    if (mask != 0) lengths |= std::uint64_t{1} << i;
    if (i == n) break;
    state = next_[state * 10 + static_cast<unsigned>(digits[i] - '0')];
    if (state == kDead) break;
  }
  return lengths;
}

}  // namespace activation::identifiers
