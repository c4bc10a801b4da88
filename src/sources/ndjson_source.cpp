// NDJSON: one JSON object per line. A mapped key holding a string, number or boolean gives one
// value; an array of such scalars gives one value per element, so {"emails": ["a@x", "b@x"]} maps
// two emails. Null and missing keys give nothing. Blank lines are skipped.
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "activation/audience.hpp"
#include "sources/file_reader.hpp"
#include "sources/sources.hpp"
#include "sources/text.hpp"

namespace activation::sources {
namespace {

using Json = nlohmann::json;

// How many lines open() reads to check that every mapped key appears in the file.
constexpr int kKeyCheckLines = 1000;

class NdjsonSource final : public AudienceSource {
 public:
  explicit NdjsonSource(SourceSpec spec) : spec_(std::move(spec)) {}

  Status open() {
    ACT_RETURN_IF_ERROR(reader_.open(spec_.path));
    ACT_RETURN_IF_ERROR(check_keys());
    return reader_.seek(0);
  }

  Result<bool> next(SourceRow& row) override {
    row.values.clear();
    row.error.reset();
    while (true) {
      bool too_long = false;
      if (!read_line(too_long)) {
        if (!reader_.error().is_ok()) return reader_.error();
        return false;
      }
      row.line = line_ - 1;
      if (too_long) {
        row.error = Reason{"row_too_long",
                           "the line is longer than " + std::to_string(spec_.max_row_bytes) + " bytes"};
        return true;
      }
      if (is_blank(line_text_)) continue;
      parse_row(row);
      return true;
    }
  }

  std::string position() const override { return format_file_position(reader_.offset(), line_); }

  Status seek(std::string_view position) override {
    std::uint64_t offset = 0;
    std::uint64_t line = 0;
    if (!parse_file_position(position, offset, line) || line == 0) {
      return invalid_argument("'" + std::string(position) + "' is not a position of an NDJSON source");
    }
    ACT_RETURN_IF_ERROR(reader_.seek(offset));
    line_ = line;
    return Status::ok();
  }

  SourceExtent extent() const override { return SourceExtent{reader_.offset(), reader_.file_size()}; }

 private:
  // Reads one line into line_text_ without its line break. Returns false at the end of the file.
  bool read_line(bool& too_long) {
    line_text_.clear();
    too_long = false;
    bool any = false;
    while (true) {
      std::size_t available = reader_.available();
      if (available == 0) {
        if (any) ++line_;
        return any;
      }
      any = true;
      const char* data = reader_.data();
      const void* newline = std::memchr(data, '\n', available);
      std::size_t run =
          newline ? static_cast<std::size_t>(static_cast<const char*>(newline) - data) : available;
      if (!too_long) {
        if (line_text_.size() + run > spec_.max_row_bytes) {
          too_long = true;
          line_text_.clear();
        } else {
          line_text_.append(data, run);
        }
      }
      if (newline) {
        reader_.consume(run + 1);
        ++line_;
        if (!line_text_.empty() && line_text_.back() == '\r') line_text_.pop_back();
        return true;
      }
      reader_.consume(run);
    }
  }

  void parse_row(SourceRow& row) {
    if (!is_valid_utf8(line_text_)) {
      row.error = Reason{"invalid_utf8", "the line is not valid UTF-8"};
      return;
    }
    Json object = Json::parse(line_text_, nullptr, /*allow_exceptions=*/false);
    if (object.is_discarded()) {
      row.error = Reason{"invalid_json", "the line is not valid JSON"};
      return;
    }
    if (!object.is_object()) {
      row.error = Reason{"invalid_json", "the line is JSON but not an object"};
      return;
    }

    // Values are gathered in one buffer first, then viewed, because the buffer may grow.
    values_.clear();
    ends_.clear();
    fields_.clear();
    for (const auto& mapping : spec_.mapping) {
      auto found = object.find(mapping.column);
      if (found == object.end()) continue;
      if (found->is_array()) {
        for (const auto& element : *found) {
          if (!append_scalar(mapping, element, row)) return;
        }
      } else if (!append_scalar(mapping, *found, row)) {
        return;
      }
    }
    std::size_t begin = 0;
    for (std::size_t i = 0; i < ends_.size(); ++i) {
      std::string_view value = std::string_view(values_).substr(begin, ends_[i] - begin);
      begin = ends_[i];
      if (!is_blank(value)) row.values.push_back(FieldValue{fields_[i], value});
    }
  }

  bool append_scalar(const ColumnMapping& mapping, const Json& value, SourceRow& row) {
    if (value.is_null()) return true;
    if (value.is_string()) {
      values_ += value.get_ref<const std::string&>();
    } else if (value.is_number() || value.is_boolean()) {
      values_ += value.dump();
    } else {
      row.error = Reason{"invalid_value", "key '" + mapping.column + "' holds " +
                                              (value.is_object() ? "an object" : "a nested array") +
                                              ", expected a string, a number or an array of them"};
      return false;
    }
    ends_.push_back(values_.size());
    fields_.push_back(mapping.field);
    return true;
  }

  // A mapped key absent from all of the first lines is almost certainly a typo in the mapping.
  Status check_keys() {
    std::vector<bool> seen(spec_.mapping.size(), false);
    std::size_t seen_count = 0;
    int lines = 0;
    bool any_object = false;
    bool too_long = false;
    while (lines < kKeyCheckLines && seen_count < seen.size() && read_line(too_long)) {
      ++lines;
      if (too_long || is_blank(line_text_)) continue;
      Json object = Json::parse(line_text_, nullptr, false);
      if (object.is_discarded() || !object.is_object()) continue;
      any_object = true;
      for (std::size_t i = 0; i < spec_.mapping.size(); ++i) {
        if (!seen[i] && object.contains(spec_.mapping[i].column)) {
          seen[i] = true;
          ++seen_count;
        }
      }
    }
    if (!reader_.error().is_ok()) return reader_.error();
    line_ = 1;
    if (!any_object) return Status::ok();
    for (std::size_t i = 0; i < seen.size(); ++i) {
      if (!seen[i] && lines < kKeyCheckLines) {
        return invalid_argument("audience file '" + spec_.path + "': key '" + spec_.mapping[i].column +
                                "' of the mapping appears in none of its rows");
      }
      if (!seen[i]) {
        return invalid_argument("audience file '" + spec_.path + "': key '" + spec_.mapping[i].column +
                                "' of the mapping appears in none of its first " +
                                std::to_string(kKeyCheckLines) + " lines");
      }
    }
    return Status::ok();
  }

  SourceSpec spec_;
  FileReader reader_;
  std::string line_text_;
  std::string values_;
  std::vector<std::size_t> ends_;
  std::vector<Field> fields_;
  std::uint64_t line_ = 1;
};

}  // namespace

Result<std::unique_ptr<AudienceSource>> open_ndjson_source(const SourceSpec& spec) {
  auto source = std::make_unique<NdjsonSource>(spec);
  ACT_RETURN_IF_ERROR(source->open());
  return std::unique_ptr<AudienceSource>(std::move(source));
}

}  // namespace activation::sources
