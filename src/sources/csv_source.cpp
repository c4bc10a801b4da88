// RFC 4180 CSV: a header row, fields separated by a configurable delimiter, quoted fields that may
// hold the delimiter, doubled quotes and line breaks. Lines end in LF or CRLF; blank lines between
// records are skipped.
#include <array>
#include <string>
#include <vector>

#include "activation/audience.hpp"
#include "sources/file_reader.hpp"
#include "sources/sources.hpp"
#include "sources/text.hpp"

namespace activation::sources {
namespace {

enum class RecordStatus { kRecord, kEnd, kBadQuote, kUnterminated, kTooLong };

class CsvSource final : public AudienceSource {
 public:
  explicit CsvSource(SourceSpec spec) : spec_(std::move(spec)) {
    special_.fill(false);
    special_[static_cast<unsigned char>(spec_.delimiter)] = true;
    special_['\n'] = true;
    special_['\r'] = true;
    special_['"'] = true;
  }

  Status open() {
    ACT_RETURN_IF_ERROR(reader_.open(spec_.path));
    if (reader_.available() >= 3 && reader_.data()[0] == '\xEF' && reader_.data()[1] == '\xBB' &&
        reader_.data()[2] == '\xBF') {
      reader_.consume(3);
    }

    std::uint64_t first_line = 0;
    RecordStatus status = read_record(first_line);
    if (!reader_.error().is_ok()) return reader_.error();
    if (status == RecordStatus::kEnd) {
      return invalid_argument("audience file '" + spec_.path + "' is empty: expected a header row");
    }
    if (status != RecordStatus::kRecord) {
      return invalid_argument("audience file '" + spec_.path + "' line 1: the header row is malformed (" +
                              problem_ + ")");
    }
    for (std::size_t i = 0; i < field_ends_.size(); ++i) header_.emplace_back(trim_ascii(field(i)));
    ACT_RETURN_IF_ERROR(map_columns());
    data_offset_ = reader_.offset();
    data_line_ = line_;
    return Status::ok();
  }

  Result<bool> next(SourceRow& row) override {
    row.values.clear();
    row.error.reset();
    std::uint64_t first_line = 0;
    RecordStatus status = read_record(first_line);
    if (!reader_.error().is_ok()) return reader_.error();
    if (status == RecordStatus::kEnd) return false;
    row.line = first_line;

    if (status != RecordStatus::kRecord) {
      row.error = Reason{status == RecordStatus::kTooLong ? "row_too_long" : "bad_quoting", problem_};
      return true;
    }
    if (field_ends_.size() != header_.size()) {
      row.error =
          Reason{"wrong_column_count", "the row has " + std::to_string(field_ends_.size()) +
                                           " fields, the header has " + std::to_string(header_.size())};
      return true;
    }
    if (!is_valid_utf8(record_)) {
      row.error = Reason{"invalid_utf8", "the row is not valid UTF-8"};
      return true;
    }
    for (const auto& [index, field_id] : columns_) {
      std::string_view value = field(index);
      if (is_blank(value)) continue;
      row.values.push_back(FieldValue{field_id, value});
    }
    return true;
  }

  std::string position() const override { return format_file_position(reader_.offset(), line_); }

  Status seek(std::string_view position) override {
    std::uint64_t offset = 0;
    std::uint64_t line = 0;
    if (!parse_file_position(position, offset, line) || line == 0) {
      return invalid_argument("'" + std::string(position) + "' is not a position of a CSV source");
    }
    if (offset < data_offset_ || line < data_line_) {
      return invalid_argument("position '" + std::string(position) + "' lies before the first data row of '" +
                              spec_.path + "'");
    }
    ACT_RETURN_IF_ERROR(reader_.seek(offset));
    line_ = line;
    return Status::ok();
  }

  SourceExtent extent() const override { return SourceExtent{reader_.offset(), reader_.file_size()}; }

 private:
  std::string_view field(std::size_t index) const {
    std::size_t begin = index == 0 ? 0 : field_ends_[index - 1];
    return std::string_view(record_).substr(begin, field_ends_[index] - begin);
  }

  Status map_columns() {
    for (const auto& mapping : spec_.mapping) {
      std::size_t index = header_.size();
      for (std::size_t i = 0; i < header_.size(); ++i) {
        if (header_[i] == mapping.column) {
          index = i;
          break;
        }
      }
      if (index == header_.size()) {
        std::string known;
        for (const auto& name : header_) known += (known.empty() ? "" : ", ") + name;
        return invalid_argument("audience file '" + spec_.path + "': column '" + mapping.column +
                                "' of the mapping is not in the header (columns: " + known + ")");
      }
      columns_.emplace_back(index, mapping.field);
    }
    return Status::ok();
  }

  void end_field() { field_ends_.push_back(record_.size()); }

  // Consumes the rest of the current physical line, so that a malformed record ends where its
  // line ends and the next record starts on the next line.
  void skip_line() {
    while (true) {
      int c = reader_.get();
      if (c == -1) return;
      if (c == '\n') {
        ++line_;
        return;
      }
    }
  }

  // Reads one record into record_ and field_ends_. `first_line` receives the line it starts on.
  RecordStatus read_record(std::uint64_t& first_line) {
    record_.clear();
    field_ends_.clear();
    problem_.clear();

    while (true) {
      int c = reader_.peek();
      if (c == -1) return RecordStatus::kEnd;
      if (c == '\n') {
        reader_.consume(1);
        ++line_;
        continue;
      }
      if (c == '\r') {
        reader_.consume(1);
        if (reader_.peek() == '\n') {
          reader_.consume(1);
          ++line_;
        }
        continue;
      }
      break;
    }
    first_line = line_;

    // Where to resume when a quoted field is never closed: the start of the record's second line.
    std::uint64_t resume_offset = 0;
    std::uint64_t resume_line = 0;
    const std::size_t limit = spec_.max_row_bytes;

    while (true) {
      int c = reader_.peek();
      if (c == '"') {
        reader_.consume(1);
        while (true) {
          c = reader_.get();
          if (c == -1) {
            problem_ = "a quoted field is not closed";
            if (resume_offset != 0) {
              (void)reader_.seek(resume_offset);
              line_ = resume_line;
            }
            return RecordStatus::kUnterminated;
          }
          if (c == '"') {
            if (reader_.peek() == '"') {
              reader_.consume(1);
              record_.push_back('"');
              continue;
            }
            break;
          }
          if (c == '\n') {
            ++line_;
            if (resume_offset == 0) {
              resume_offset = reader_.offset();
              resume_line = line_;
            }
          }
          record_.push_back(static_cast<char>(c));
          if (record_.size() > limit) {
            problem_ = "the row is longer than " + std::to_string(limit) + " bytes";
            if (resume_offset != 0) {
              (void)reader_.seek(resume_offset);
              line_ = resume_line;
            } else {
              skip_line();
            }
            return RecordStatus::kTooLong;
          }
        }
        // After a closing quote only a delimiter or the end of the line may follow.
        c = reader_.peek();
        if (c == spec_.delimiter) {
          reader_.consume(1);
          end_field();
          continue;
        }
        if (c == -1 || c == '\n') {
          if (c == '\n') {
            reader_.consume(1);
            ++line_;
          }
          end_field();
          return RecordStatus::kRecord;
        }
        if (c == '\r') {
          reader_.consume(1);
          if (reader_.peek() == '\n') {
            reader_.consume(1);
            ++line_;
            end_field();
            return RecordStatus::kRecord;
          }
        }
        problem_ = "a closing quote is followed by text instead of a delimiter";
        skip_line();
        return RecordStatus::kBadQuote;
      }

      // An unquoted field: copy plain bytes in runs up to the next special character.
      while (true) {
        std::size_t available = reader_.available();
        if (available == 0) {
          end_field();
          return RecordStatus::kRecord;
        }
        const char* data = reader_.data();
        std::size_t run = 0;
        while (run < available && !special_[static_cast<unsigned char>(data[run])]) ++run;
        record_.append(data, run);
        reader_.consume(run);
        if (record_.size() > limit) {
          problem_ = "the row is longer than " + std::to_string(limit) + " bytes";
          skip_line();
          return RecordStatus::kTooLong;
        }
        if (run == available) continue;

        char special = data[run];
        reader_.consume(1);
        if (special == spec_.delimiter) {
          end_field();
          break;
        }
        if (special == '\n') {
          ++line_;
          end_field();
          return RecordStatus::kRecord;
        }
        if (special == '\r') {
          if (reader_.peek() == '\n') {
            reader_.consume(1);
            ++line_;
            end_field();
            return RecordStatus::kRecord;
          }
          record_.push_back('\r');
          continue;
        }
        problem_ = "a quote appears inside an unquoted field";
        skip_line();
        return RecordStatus::kBadQuote;
      }
    }
  }

  SourceSpec spec_;
  FileReader reader_;
  std::array<bool, 256> special_{};
  std::vector<std::string> header_;
  std::vector<std::pair<std::size_t, Field>> columns_;
  std::string record_;
  std::vector<std::size_t> field_ends_;
  std::string problem_;
  std::uint64_t line_ = 1;
  std::uint64_t data_offset_ = 0;
  std::uint64_t data_line_ = 1;
};

}  // namespace

Result<std::unique_ptr<AudienceSource>> open_csv_source(const SourceSpec& spec) {
  char delimiter = spec.delimiter;
  if (delimiter == '"' || delimiter == '\n' || delimiter == '\r' || delimiter == '\0') {
    return invalid_argument("the CSV delimiter of '" + spec.path +
                            "' must not be a quote, a line break or NUL");
  }
  auto source = std::make_unique<CsvSource>(spec);
  ACT_RETURN_IF_ERROR(source->open());
  return std::unique_ptr<AudienceSource>(std::move(source));
}

}  // namespace activation::sources
