// Meta's multi-key customer-file payload: the schema columns of a run, the rows of one member
// operation, the JSON body of one upload request, and the invalid-entry samples of its response.
#ifndef ACTIVATION_PLATFORMS_META_META_PAYLOAD_HPP_
#define ACTIVATION_PLATFORMS_META_META_PAYLOAD_HPP_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "activation/backend/destination.hpp"

namespace activation::platforms::meta {

// One column of a multi-key schema.
struct MetaColumn {
  Field field = Field::kEmail;
  DatePart part = DatePart::kWhole;
  std::string_view
      key;  // EMAIL, PHONE, FN, LN, FI, CT, ST, ZIP, COUNTRY, DOBY, DOBM, DOBD, GEN, MADID, EXTERN_ID.
  bool hashed = true;  // All keys but EXTERN_ID and MADID are SHA-256 hashes.
};

// Returns Meta's schema key of an identifier, or an empty view when the multi-key schema has
// none (a date of birth that was not split into year, month and day).
std::string_view meta_key(Field field, DatePart part) noexcept;

// The columns of a run: each field of `field_slots` that Meta's schema has, once, in field order.
// A field with several values per row (two phones) still has one column, because the schema may
// name a key only once. expand_rows() gives such a member one row per value.
std::vector<MetaColumn> schema_columns(const std::vector<std::pair<Field, int>>& field_slots);

// The columns that hold every identifier of `operations`, in field order.
std::vector<MetaColumn> covering_columns(const std::vector<const MemberOperation*>& operations);

// The keys of `columns`, such as ["EMAIL","PHONE"].
std::vector<std::string> column_keys(const std::vector<MetaColumn>& columns);

// One row: per column, the value or nullptr for an empty cell.
using RowCells = std::vector<const std::string*>;

// Appends the rows of `operation` to `rows`. A member with k values of some key becomes k rows:
// row i contains the i-th value of each key that has one, and the first value of keys with fewer
// values, so every row keeps the member's other keys. The rows depend only on the operation's
// identifiers, so a remove built from the keys the ledger stores reproduces the rows of the add.
// Identifiers without a Meta key are left out. Returns false, appending nothing, when an
// identifier with a Meta key has no column in `columns`.
bool expand_rows(const MemberOperation& operation, const std::vector<MetaColumn>& columns,
                 std::vector<RowCells>& rows);

// The `session` parameter of an upload.
struct SessionParams {
  std::int64_t session_id = 0;
  std::int64_t batch_seq = 1;
  bool last_batch_flag = false;
};

// Renders the JSON body {"payload": {"schema", "data", "is_raw"}, "session"?} of one request.
std::string render_upload_body(const std::vector<MetaColumn>& columns, const std::vector<RowCells>& rows,
                               const std::optional<SessionParams>& session);

// The invalid entries that Meta reported for one request.
struct InvalidEntries {
  // Bad value -> Meta's reason. Meta sends either an object of value -> reason or a list of values.
  std::unordered_map<std::string, std::string> samples;
  std::int64_t sample_count = 0;
  // Meta returns at most 100 samples per request, so with 100 of them some invalid rows may be
  // missing from the samples.
  bool maybe_truncated = false;
};

InvalidEntries read_invalid_entries(const nlohmann::json& body);

// Returns Meta's reason when a cell of `row` is among the samples. When the samples may be
// truncated, a row that no sample names is also checked the way Meta checks it: every hashed cell
// must be empty or 64 lowercase hexadecimal characters.
std::optional<std::string> invalid_row_reason(const InvalidEntries& entries,
                                              const std::vector<MetaColumn>& columns, const RowCells& row);

}  // namespace activation::platforms::meta

#endif  // ACTIVATION_PLATFORMS_META_META_PAYLOAD_HPP_
