#include "platforms/meta/meta_payload.hpp"

#include <algorithm>
#include <array>

#include "core/json_text.hpp"

namespace activation::platforms::meta {
namespace {

using internal::append_json_string;

// Meta returns at most this many invalid-entry samples per request.
constexpr std::int64_t kMaxInvalidSamples = 100;

// The columns of one field: a date of birth goes as year, month and day, each hashed on its own.
void append_field_columns(Field field, std::vector<MetaColumn>& columns) {
  if (field == Field::kDob) {
    for (DatePart part : {DatePart::kYear, DatePart::kMonth, DatePart::kDay}) {
      columns.push_back(MetaColumn{field, part, meta_key(field, part), true});
    }
    return;
  }
  std::string_view key = meta_key(field, DatePart::kWhole);
  if (key.empty()) return;
  columns.push_back(
      MetaColumn{field, DatePart::kWhole, key, field != Field::kMaid && field != Field::kExternalId});
}

bool is_lowercase_sha256(const std::string& value) {
  return value.size() == 64 && std::all_of(value.begin(), value.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

std::string_view meta_key(Field field, DatePart part) noexcept {
  switch (field) {
    case Field::kEmail: return "EMAIL";
    case Field::kPhone: return "PHONE";
    case Field::kFirstName: return "FN";
    case Field::kLastName: return "LN";
    case Field::kFirstInitial: return "FI";
    case Field::kCity: return "CT";
    case Field::kState: return "ST";
    case Field::kZip: return "ZIP";
    case Field::kCountry: return "COUNTRY";
    case Field::kDob:
      switch (part) {
        case DatePart::kYear: return "DOBY";
        case DatePart::kMonth: return "DOBM";
        case DatePart::kDay: return "DOBD";
        case DatePart::kWhole: return {};
      }
      return {};
    case Field::kGender: return "GEN";
    case Field::kMaid: return "MADID";
    case Field::kExternalId: return "EXTERN_ID";
  }
  return {};
}

std::vector<MetaColumn> schema_columns(const std::vector<std::pair<Field, int>>& field_slots) {
  std::vector<Field> fields;
  for (const auto& [field, slots] : field_slots) {
    if (slots > 0 && std::find(fields.begin(), fields.end(), field) == fields.end()) fields.push_back(field);
  }
  std::sort(fields.begin(), fields.end());
  std::vector<MetaColumn> columns;
  for (Field field : fields) append_field_columns(field, columns);
  return columns;
}

std::vector<MetaColumn> covering_columns(const std::vector<const MemberOperation*>& operations) {
  std::array<bool, kFieldCount> used{};
  for (const MemberOperation* operation : operations) {
    for (const auto& identifier : operation->identifiers) used[static_cast<int>(identifier.field)] = true;
  }
  std::vector<MetaColumn> columns;
  for (int field = 0; field < kFieldCount; ++field) {
    if (used[field]) append_field_columns(static_cast<Field>(field), columns);
  }
  return columns;
}

std::vector<std::string> column_keys(const std::vector<MetaColumn>& columns) {
  std::vector<std::string> keys;
  keys.reserve(columns.size());
  for (const auto& column : columns) keys.emplace_back(column.key);
  return keys;
}

bool expand_rows(const MemberOperation& operation, const std::vector<MetaColumn>& columns,
                 std::vector<RowCells>& rows) {
  // Values per column, in the operation's order (sorted by field, part and value).
  std::vector<std::vector<const std::string*>> values(columns.size());
  for (const auto& identifier : operation.identifiers) {
    if (meta_key(identifier.field, identifier.part).empty()) continue;
    auto column = std::find_if(columns.begin(), columns.end(), [&](const MetaColumn& candidate) {
      return candidate.field == identifier.field && candidate.part == identifier.part;
    });
    if (column == columns.end()) return false;
    values[static_cast<std::size_t>(column - columns.begin())].push_back(&identifier.value);
  }

  std::size_t count = 0;
  for (const auto& column_values : values) count = std::max(count, column_values.size());
  for (std::size_t row = 0; row < count; ++row) {
    RowCells cells(columns.size(), nullptr);
    for (std::size_t column = 0; column < columns.size(); ++column) {
      const auto& column_values = values[column];
      if (column_values.empty()) continue;
      cells[column] = row < column_values.size() ? column_values[row] : column_values.front();
    }
    rows.push_back(std::move(cells));
  }
  return true;
}

std::string render_upload_body(const std::vector<MetaColumn>& columns, const std::vector<RowCells>& rows,
                               const std::optional<SessionParams>& session) {
  std::string out;
  out.reserve(rows.size() * (columns.size() * 67 + 3) + 256);
  out += "{\"payload\":{\"schema\":[";
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, columns[i].key);
  }
  out += "],\"is_raw\":true,\"data\":[";
  for (std::size_t row = 0; row < rows.size(); ++row) {
    if (row > 0) out += ',';
    out += '[';
    const RowCells& cells = rows[row];
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) out += ',';
      if (cells[i] == nullptr) {
        out += "\"\"";
      } else {
        append_json_string(out, *cells[i]);
      }
    }
    out += ']';
  }
  out += "]}";
  if (session) {
    out += ",\"session\":{\"session_id\":" + std::to_string(session->session_id) +
           ",\"batch_seq\":" + std::to_string(session->batch_seq) +
           ",\"last_batch_flag\":" + (session->last_batch_flag ? "true" : "false") + "}";
  }
  out += '}';
  return out;
}

InvalidEntries read_invalid_entries(const nlohmann::json& body) {
  InvalidEntries entries;
  if (!body.is_object()) return entries;
  auto samples = body.find("invalid_entry_samples");
  if (samples == body.end()) return entries;
  if (samples->is_object()) {
    for (const auto& [value, reason] : samples->items()) {
      entries.samples[value] = reason.is_string() ? reason.get<std::string>() : reason.dump();
    }
  } else if (samples->is_array()) {
    for (const auto& value : *samples) {
      if (value.is_string()) entries.samples[value.get<std::string>()] = "Meta reported the value as invalid";
    }
  }
  entries.sample_count = static_cast<std::int64_t>(entries.samples.size());
  entries.maybe_truncated = entries.sample_count >= kMaxInvalidSamples;
  return entries;
}

std::optional<std::string> invalid_row_reason(const InvalidEntries& entries,
                                              const std::vector<MetaColumn>& columns, const RowCells& row) {
  if (entries.samples.empty()) return std::nullopt;
  for (const std::string* cell : row) {
    if (cell == nullptr) continue;
    auto found = entries.samples.find(*cell);
    if (found != entries.samples.end()) return found->second;
  }
  if (!entries.maybe_truncated) return std::nullopt;
  for (std::size_t i = 0; i < row.size() && i < columns.size(); ++i) {
    if (row[i] != nullptr && columns[i].hashed && !is_lowercase_sha256(*row[i])) {
      return "Invalid " + std::string(columns[i].key) +
             ": not a SHA-256 hash of 64 lowercase hexadecimal characters (Meta counted it among the invalid "
             "entries beyond its 100 samples)";
    }
  }
  return std::nullopt;
}

}  // namespace activation::platforms::meta
