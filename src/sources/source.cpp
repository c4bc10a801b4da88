#include <charconv>
#include <string>

#include "activation/audience.hpp"
#include "sources/sources.hpp"

namespace activation {

std::string_view source_type_name(SourceType type) noexcept {
  switch (type) {
    case SourceType::kCsv: return "csv";
    case SourceType::kNdjson: return "ndjson";
    case SourceType::kSqlite: return "sqlite";
  }
  return "unknown";
}

std::optional<SourceType> parse_source_type(std::string_view name) noexcept {
  if (name == "csv") return SourceType::kCsv;
  if (name == "ndjson") return SourceType::kNdjson;
  if (name == "sqlite") return SourceType::kSqlite;
  return std::nullopt;
}

Result<std::unique_ptr<AudienceSource>> open_source(const SourceSpec& spec) {
  if (spec.mapping.empty()) return invalid_argument("the column mapping of '" + spec.path + "' is empty");
  if (spec.max_row_bytes < 64) {
    return invalid_argument("max_row_bytes must be at least 64, got " + std::to_string(spec.max_row_bytes));
  }
  switch (spec.type) {
    case SourceType::kCsv: return sources::open_csv_source(spec);
    case SourceType::kNdjson: return sources::open_ndjson_source(spec);
    case SourceType::kSqlite: return sources::open_sqlite_source(spec);
  }
  return invalid_argument("unknown source type");
}

namespace sources {

bool parse_file_position(std::string_view text, std::uint64_t& offset, std::uint64_t& line) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  auto first = text.substr(0, colon);
  auto second = text.substr(colon + 1);
  auto [end1, error1] = std::from_chars(first.data(), first.data() + first.size(), offset);
  auto [end2, error2] = std::from_chars(second.data(), second.data() + second.size(), line);
  return error1 == std::errc() && end1 == first.data() + first.size() && error2 == std::errc() &&
         end2 == second.data() + second.size() && !first.empty() && !second.empty();
}

std::string format_file_position(std::uint64_t offset, std::uint64_t line) {
  return std::to_string(offset) + ":" + std::to_string(line);
}

}  // namespace sources
}  // namespace activation
