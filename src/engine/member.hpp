// From a source row to what a destination receives: normalized and hashed identifiers, the member
// key, and the keys as stored in the ledger.
#ifndef ACTIVATION_ENGINE_MEMBER_HPP_
#define ACTIVATION_ENGINE_MEMBER_HPP_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "activation/audience.hpp"
#include "activation/backend/destination.hpp"
#include "activation/identifiers.hpp"
#include "activation/progress.hpp"

namespace activation::engine {

// The identifiers of one valid row for one destination.
struct RowIdentifiers {
  std::vector<WireIdentifier> identifiers;  // Sorted by field, part and value; no duplicates.
  std::string member_key;
  std::string keys_json;             // encode_keys(identifiers).
  std::uint32_t fields_present = 0;  // Bit per Field with a non-empty value in the row.
  std::uint32_t fields_usable = 0;   // Bit per Field with at least one usable identifier.
};

// Normalizes rows with one destination's profile.
//
// Thread safety: one processor per thread.
class RowProcessor {
 public:
  explicit RowProcessor(Normalizer normalizer);

  // Fills `out` from `row` and counts valid and dropped values in `counters`. Returns nullopt when
  // the row has an identifier that can match a person, else the reason the row is invalid.
  std::optional<Reason> process(const SourceRow& row, RowIdentifiers& out, DestinationCounters& counters);

  // The fields this profile sends; others are skipped without a reason.
  bool accepts(Field field) const noexcept;
  Platform platform() const noexcept { return normalizer_.platform(); }

 private:
  // A row must hold an identifier that can match a person by itself: country, city, state, zip,
  // gender or a date of birth alone cannot.
  bool has_match_key(std::uint32_t usable_fields) const noexcept;
  std::string match_key_rule() const;

  // Shortens `identifiers` to `count`, keeping the values' strings of the rest in spare_values_.
  void keep_spare_values(std::vector<WireIdentifier>& identifiers, std::size_t count);

  // Value strings that a row with fewer identifiers than its vector did not need. The engine
  // swaps a row's identifiers with older ones, so a vector's length changes from row to row. A
  // longer row takes its strings from here, with their buffers, instead of allocating new ones.
  static constexpr std::size_t kMaxSpareValues = 64;
  std::vector<std::string> spare_values_;

  Normalizer normalizer_;
  bool split_dob_;
  NormalizedIdentifier scratch_;
  std::string drops_;  // "email: invalid email; phone: ..." for the invalid-row message.
  std::string key_input_;  // The text hashed into the member key.
};

// The ledger form of a member's keys: a JSON array of [name, value] pairs in identifier order,
// where name is the field name, with "_year", "_month" or "_day" for the parts of a date of birth.
std::string encode_keys(const std::vector<WireIdentifier>& identifiers);
// The same, written over `out`.
void encode_keys_into(const std::vector<WireIdentifier>& identifiers, std::string& out);
// Parses encode_keys() output. Fails with kDataLoss for text that is not in that form.
Result<std::vector<WireIdentifier>> decode_keys(std::string_view json_text);

// Writes the member's ledger key over `key`: from the external id when the row has one, else from
// its first email, phone or MAID identifier, else from all its identifiers (docs/engine.md).
// `input` is scratch space for the hashed text.
void member_key_into(std::string_view external_id, const std::vector<WireIdentifier>& identifiers,
                     std::string_view keys_json, std::string& input, std::string& key);

}  // namespace activation::engine

#endif  // ACTIVATION_ENGINE_MEMBER_HPP_
