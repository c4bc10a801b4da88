// Audience sources: CSV, NDJSON and an SQL query on SQLite, each read as a stream of rows.
//
// A source reads one row at a time into a caller-owned SourceRow, so memory depends on the longest
// row, never on the audience size. Every source reports a position after each row and can seek
// back to it, which is how a distribution resumes from its checkpoint.
#ifndef ACTIVATION_AUDIENCE_HPP_
#define ACTIVATION_AUDIENCE_HPP_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "activation/export.hpp"
#include "activation/identifiers.hpp"
#include "activation/status.hpp"

namespace activation {

enum class SourceType : int { kCsv = 0, kNdjson, kSqlite };

// Returns "csv", "ndjson" or "sqlite".
ACT_EXPORT std::string_view source_type_name(SourceType type) noexcept;
ACT_EXPORT std::optional<SourceType> parse_source_type(std::string_view name) noexcept;

// One source column (a CSV header name, an NDJSON key, an SQL result column) read as one field.
// Several columns may map to the same field, such as PHONE1 and PHONE2 to `phone`; their values
// keep the order of the mapping.
struct ColumnMapping {
  std::string column;
  Field field = Field::kEmail;

  bool operator==(const ColumnMapping&) const = default;
};

// Where an audience comes from and how its columns become identifier fields.
struct SourceSpec {
  SourceType type = SourceType::kCsv;
  std::string path;      // The CSV or NDJSON file, or the SQLite database.
  char delimiter = ',';  // CSV only.
  std::string query;     // SQLite only: a SELECT whose ORDER BY makes the row order stable.
  std::vector<ColumnMapping> mapping;
  // The longest CSV record or NDJSON line read as one row, in bytes. A longer one, or a quoted
  // field that is never closed, becomes an invalid row and reading goes on at the next line.
  std::size_t max_row_bytes = 1 << 20;
  // SQLite only: run `SELECT count(*)` over the query when the source opens, so that progress can
  // show a percentage. Costs one extra pass over the query.
  bool count_rows = true;
};

// One value of a mapped column. `value` points into the source's buffer and stays valid until the
// next call to AudienceSource::next().
struct FieldValue {
  Field field = Field::kEmail;
  std::string_view value;
};

// One row of an audience. A malformed row (bad quoting, wrong column count, invalid UTF-8, a line
// that is not a JSON object) has `error` set and no values.
struct SourceRow {
  std::uint64_t line = 0;  // 1-based line of the row's first line in the file; the row number for SQL.
  std::vector<FieldValue> values;  // Non-empty mapped values only, in mapping order.
  std::optional<Reason> error;

  bool valid() const noexcept { return !error.has_value(); }
};

// How far a source has read, in its own unit (bytes of a file, rows of a query).
struct SourceExtent {
  std::uint64_t done = 0;
  std::optional<std::uint64_t> total;  // Unknown for a query whose row count was not computed.
};

// A stream of rows.
//
// Thread safety: a source is used by one thread at a time.
class ACT_EXPORT AudienceSource {
 public:
  virtual ~AudienceSource() = default;

  // Reads the next row into `row`, reusing its storage. Returns true when a row was read, false at
  // the end of the stream, or an error when the underlying file or database cannot be read. A
  // malformed row is a row with `error` set, not an error of the call.
  virtual Result<bool> next(SourceRow& row) = 0;

  // Returns an opaque position just after the last row returned; seek() restarts from it.
  virtual std::string position() const = 0;
  // Restarts the stream at a position returned by position() of a source opened from the same spec.
  // Returns kInvalidArgument for a position this source cannot have produced.
  virtual Status seek(std::string_view position) = 0;

  virtual SourceExtent extent() const = 0;
};

// Opens the source of `spec`: the header of a CSV file is read and every mapped column must exist
// in it; the SQL query must prepare and name every mapped column. Returns kNotFound for a missing
// file, kPermissionDenied for an unreadable one, and kInvalidArgument naming the column, file or
// option that is wrong.
ACT_EXPORT Result<std::unique_ptr<AudienceSource>> open_source(const SourceSpec& spec);

}  // namespace activation

#endif  // ACTIVATION_AUDIENCE_HPP_
