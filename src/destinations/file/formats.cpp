// The upload formats of the file destination. Each renders the operations of one type of one
// batch as one file body.
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <nlohmann/json.hpp>

#include "core/json_text.hpp"
#include "destinations/file/file_destination.hpp"

namespace activation::destinations {
namespace {

using internal::append_json_string;

struct Column {
  Field field;
  DatePart part;
  int slot;  // 0 for the first value of the field in a row, 1 for the second, ...
};

// Meta's names for the keys of its customer file and multi-key schema.
std::string_view meta_key(Field field, DatePart part) {
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
        case DatePart::kWhole: return "DOB";
      }
      return "DOB";
    case Field::kGender: return "GEN";
    case Field::kMaid: return "MADID";
    case Field::kExternalId: return "EXTERN_ID";
  }
  return "";
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::vector<Column> columns_for(FileFormat format, const std::vector<std::pair<Field, int>>& field_slots) {
  std::vector<Column> columns;
  bool split_dob = format == FileFormat::kMetaCsv || format == FileFormat::kMetaJson;
  for (const auto& [field, slots] : field_slots) {
    for (int slot = 0; slot < slots; ++slot) {
      if (field == Field::kDob && split_dob) {
        for (DatePart part : {DatePart::kYear, DatePart::kMonth, DatePart::kDay})
          columns.push_back({field, part, slot});
      } else {
        columns.push_back({field, DatePart::kWhole, slot});
      }
    }
  }
  return columns;
}

// A map from each value of a member to its column, by the value's field, its date part and how
// many values of the same field and part came before it in the member.
class CellMap {
 public:
  explicit CellMap(const std::vector<Column>& columns) : width_(columns.size()) {
    for (const Column& column : columns) slots_ = std::max(slots_, column.slot + 1);
    column_of_.assign(static_cast<std::size_t>(kFieldCount) * 4 * static_cast<std::size_t>(slots_), -1);
    for (std::size_t i = 0; i < columns.size(); ++i) {
      column_of_[index(key_of(columns[i].field, columns[i].part), columns[i].slot)] = static_cast<int>(i);
    }
  }

  // Sets `cells` to the value of `operation` in each column, or nullptr.
  void fill(const MemberOperation& operation, std::vector<const std::string*>& cells) const {
    cells.assign(width_, nullptr);
    std::array<int, kFieldCount * 4> seen{};
    for (const auto& identifier : operation.identifiers) {
      const int key = key_of(identifier.field, identifier.part);
      const int slot = seen[key]++;
      if (slot >= slots_) continue;
      const int column = column_of_[index(key, slot)];
      if (column >= 0) cells[column] = &identifier.value;
    }
  }

 private:
  static int key_of(Field field, DatePart part) { return static_cast<int>(field) * 4 + static_cast<int>(part); }
  std::size_t index(int key, int slot) const {
    return static_cast<std::size_t>(key) * static_cast<std::size_t>(slots_) + static_cast<std::size_t>(slot);
  }

  std::size_t width_;
  int slots_ = 0;
  std::vector<int> column_of_;  // -1 where no column takes the value.
};

// True when a CSV cell of `value` must be quoted: it contains a comma, a quote or a line break.
bool needs_csv_quotes(std::string_view value) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(value.data());
  const std::size_t n = value.size();
  std::size_t i = 0;
#if defined(__SSE2__)
  // Sixteen bytes at a time: a hashed value is 64 hex digits.
  const __m128i comma = _mm_set1_epi8(',');
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i carriage_return = _mm_set1_epi8('\r');
  const __m128i line_feed = _mm_set1_epi8('\n');
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + i));
    const __m128i found = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, quote)),
                                       _mm_or_si128(_mm_cmpeq_epi8(v, carriage_return), _mm_cmpeq_epi8(v, line_feed)));
    if (_mm_movemask_epi8(found) != 0) return true;
  }
#endif
  bool quote_it = false;
  for (; i < n; ++i) quote_it |= bytes[i] == ',' || bytes[i] == '"' || bytes[i] == '\r' || bytes[i] == '\n';
  return quote_it;
}

void append_csv_cell(std::string& out, std::string_view value) {
  if (!needs_csv_quotes(value)) {
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

void render_csv(FileFormat format, const std::vector<Column>& columns,
                const std::vector<const MemberOperation*>& operations, std::string& out) {
  out.clear();
  out.reserve(operations.size() * (columns.size() * 66 + 2) + 256);
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i > 0) out += ',';
    const Column& column = columns[i];
    if (format == FileFormat::kMetaCsv) {
      out += lowercase(meta_key(column.field, column.part));
    } else {
      out += field_name(column.field);
      if (column.slot > 0) out += "_" + std::to_string(column.slot + 1);
    }
  }
  out += '\n';

  const CellMap map(columns);
  std::vector<const std::string*> cells;
  for (const MemberOperation* operation : operations) {
    map.fill(*operation, cells);
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) out += ',';
      if (cells[i] != nullptr) append_csv_cell(out, *cells[i]);
    }
    out += '\n';
  }
}

void render_meta_json(const std::vector<Column>& columns, const std::vector<const MemberOperation*>& operations,
                      std::string& out) {
  out.clear();
  out.reserve(operations.size() * (columns.size() * 68 + 4) + 256);
  out += "{\"payload\":{\"schema\":[";
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, meta_key(columns[i].field, columns[i].part));
  }
  out += "],\"data\":[";
  const CellMap map(columns);
  std::vector<const std::string*> cells;
  for (std::size_t row = 0; row < operations.size(); ++row) {
    if (row > 0) out += ',';
    map.fill(*operations[row], cells);
    out += '[';
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) out += ',';
      append_json_string(out, cells[i] != nullptr ? std::string_view(*cells[i]) : std::string_view());
    }
    out += ']';
  }
  out += "]}}\n";
}

// One Data Manager AudienceMember. A member with email, phone or a complete address is sent as
// userData. A member with only MAIDs is sent as mobileData, and one with only an external id as
// userIdData.
void append_google_member(std::string& out, const MemberOperation& operation) {
  std::vector<const WireIdentifier*> emails, phones, maids;
  const WireIdentifier* given = nullptr;
  const WireIdentifier* family = nullptr;
  const WireIdentifier* region = nullptr;
  const WireIdentifier* postal = nullptr;
  const WireIdentifier* user_id = nullptr;
  for (const auto& identifier : operation.identifiers) {
    switch (identifier.field) {
      case Field::kEmail: emails.push_back(&identifier); break;
      case Field::kPhone: phones.push_back(&identifier); break;
      case Field::kMaid: maids.push_back(&identifier); break;
      case Field::kFirstName:
        if (!given) given = &identifier;
        break;
      case Field::kLastName:
        if (!family) family = &identifier;
        break;
      case Field::kCountry:
        if (!region) region = &identifier;
        break;
      case Field::kZip:
        if (!postal) postal = &identifier;
        break;
      case Field::kExternalId:
        if (!user_id) user_id = &identifier;
        break;
      default: break;
    }
  }
  bool address = given && family && region && postal;

  out += '{';
  if (!emails.empty() || !phones.empty() || address) {
    out += "\"userData\":{\"userIdentifiers\":[";
    bool first = true;
    auto separator = [&] {
      if (!first) out += ',';
      first = false;
    };
    for (const auto* email : emails) {
      separator();
      out += "{\"emailAddress\":";
      append_json_string(out, email->value);
      out += '}';
    }
    for (const auto* phone : phones) {
      separator();
      out += "{\"phoneNumber\":";
      append_json_string(out, phone->value);
      out += '}';
    }
    if (address) {
      separator();
      out += "{\"addressInfo\":{\"givenName\":";
      append_json_string(out, given->value);
      out += ",\"familyName\":";
      append_json_string(out, family->value);
      out += ",\"regionCode\":";
      append_json_string(out, region->value);
      out += ",\"postalCode\":";
      append_json_string(out, postal->value);
      out += "}}";
    }
    out += "]}";
  } else if (!maids.empty()) {
    out += "\"mobileData\":{\"mobileIds\":[";
    for (std::size_t i = 0; i < maids.size(); ++i) {
      if (i > 0) out += ',';
      append_json_string(out, maids[i]->value);
    }
    out += "]}";
  } else if (user_id) {
    out += "\"userIdData\":{\"userId\":";
    append_json_string(out, user_id->value);
    out += '}';
  }
  out += '}';
}

std::string render_google_json(const std::vector<const MemberOperation*>& operations, OperationType type,
                               std::string_view settings_json) {
  auto settings = nlohmann::json::parse(settings_json, nullptr, false);
  std::string out;
  out.reserve(operations.size() * 240 + 512);
  out += '{';
  if (settings.is_object() && settings.contains("operating_account_id") &&
      settings.contains("product_destination_id")) {
    nlohmann::json destinations = nlohmann::json::array();
    destinations.push_back({{"operatingAccount",
                             {{"accountType", settings.value("account_type", std::string("GOOGLE_ADS"))},
                              {"accountId", settings["operating_account_id"]}}},
                            {"productDestinationId", settings["product_destination_id"]}});
    out += "\"destinations\":" + destinations.dump() + ",";
  }
  out += "\"audienceMembers\":[";
  for (std::size_t i = 0; i < operations.size(); ++i) {
    if (i > 0) out += ',';
    append_google_member(out, *operations[i]);
  }
  out += "],\"encoding\":\"HEX\"";
  if (type == OperationType::kAdd)
    out += ",\"termsOfService\":{\"customerMatchTermsOfServiceStatus\":\"ACCEPTED\"}";
  out += "}\n";
  return out;
}

}  // namespace

std::string_view file_format_name(FileFormat format) noexcept {
  switch (format) {
    case FileFormat::kMetaCsv: return "meta_csv";
    case FileFormat::kMetaJson: return "meta_json";
    case FileFormat::kGoogleJson: return "google_json";
    case FileFormat::kHashedCsv: return "hashed_csv";
  }
  return "unknown";
}

std::optional<FileFormat> parse_file_format(std::string_view name) noexcept {
  if (name == "meta_csv") return FileFormat::kMetaCsv;
  if (name == "meta_json") return FileFormat::kMetaJson;
  if (name == "google_json") return FileFormat::kGoogleJson;
  if (name == "hashed_csv") return FileFormat::kHashedCsv;
  return std::nullopt;
}

void render_file(FileFormat format, const std::vector<std::pair<Field, int>>& field_slots,
                 const std::vector<const MemberOperation*>& operations, OperationType type,
                 std::string_view settings_json, std::string& out) {
  switch (format) {
    case FileFormat::kMetaCsv:
    case FileFormat::kHashedCsv: render_csv(format, columns_for(format, field_slots), operations, out); return;
    case FileFormat::kMetaJson: render_meta_json(columns_for(format, field_slots), operations, out); return;
    case FileFormat::kGoogleJson: out = render_google_json(operations, type, settings_json); return;
  }
  out.clear();
}

}  // namespace activation::destinations
