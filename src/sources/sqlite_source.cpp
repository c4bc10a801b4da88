// An SQL query on a SQLite database, opened read-only. The position is the number of rows read.
// Seeking runs the query again and skips that many rows, so the query needs an ORDER BY that
// makes its order stable.
#include <charconv>
#include <string>
#include <vector>

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "activation/audience.hpp"
#include "sources/sources.hpp"
#include "sources/text.hpp"

namespace activation::sources {
namespace {

class SqliteSource final : public AudienceSource {
 public:
  explicit SqliteSource(SourceSpec spec) : spec_(std::move(spec)) {}
  ~SqliteSource() override {
    sqlite3_finalize(statement_);
    sqlite3_close_v2(db_);
  }

  Status open() {
    struct stat info {};
    if (::stat(spec_.path.c_str(), &info) != 0) {
      return not_found("audience database '" + spec_.path + "' does not exist");
    }
    if (::access(spec_.path.c_str(), R_OK) != 0) {
      return Status(StatusCode::kPermissionDenied, "audience database '" + spec_.path + "' is not readable");
    }
    if (spec_.query.empty()) return invalid_argument("the SQLite source '" + spec_.path + "' has no query");

    int rc = sqlite3_open_v2(spec_.path.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) return fail("cannot open audience database");
    sqlite3_busy_timeout(db_, 5000);

    rc = sqlite3_prepare_v2(db_, spec_.query.c_str(), static_cast<int>(spec_.query.size()), &statement_,
                            nullptr);
    if (rc != SQLITE_OK)
      return invalid_argument("the query of audience database '" + spec_.path +
                              "' is invalid: " + sqlite3_errmsg(db_));
    if (statement_ == nullptr || !sqlite3_stmt_readonly(statement_) ||
        sqlite3_column_count(statement_) == 0) {
      return invalid_argument("the query of audience database '" + spec_.path +
                              "' must be one SELECT statement");
    }

    int columns = sqlite3_column_count(statement_);
    for (const auto& mapping : spec_.mapping) {
      int index = -1;
      std::string known;
      for (int i = 0; i < columns; ++i) {
        const char* name = sqlite3_column_name(statement_, i);
        if (name != nullptr && mapping.column == name) {
          index = i;
          break;
        }
        known += (known.empty() ? "" : ", ") + std::string(name ? name : "");
      }
      if (index < 0) {
        return invalid_argument("audience database '" + spec_.path + "': column '" + mapping.column +
                                "' of the mapping is not in the query's result (columns: " + known + ")");
      }
      columns_.emplace_back(index, mapping.field);
    }

    if (spec_.count_rows) {
      std::string count_sql = "SELECT count(*) FROM (" + spec_.query + ")";
      sqlite3_stmt* count = nullptr;
      if (sqlite3_prepare_v2(db_, count_sql.c_str(), -1, &count, nullptr) == SQLITE_OK &&
          sqlite3_step(count) == SQLITE_ROW) {
        total_ = static_cast<std::uint64_t>(sqlite3_column_int64(count, 0));
      }
      sqlite3_finalize(count);
    }
    return Status::ok();
  }

  Result<bool> next(SourceRow& row) override {
    row.values.clear();
    row.error.reset();
    int rc = sqlite3_step(statement_);
    if (rc == SQLITE_DONE) return false;
    if (rc != SQLITE_ROW) return fail("reading the query of audience database failed");
    ++rows_;
    row.line = rows_;

    values_.clear();
    ends_.clear();
    for (const auto& [index, field] : columns_) {
      if (sqlite3_column_type(statement_, index) == SQLITE_NULL) {
        ends_.push_back(values_.size());
        continue;
      }
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement_, index));
      int size = sqlite3_column_bytes(statement_, index);
      if (text != nullptr) values_.append(text, static_cast<std::size_t>(size));
      ends_.push_back(values_.size());
    }
    if (!is_valid_utf8(values_)) {
      row.error = Reason{"invalid_utf8", "a mapped column of the row is not valid UTF-8"};
      return true;
    }
    std::size_t begin = 0;
    for (std::size_t i = 0; i < ends_.size(); ++i) {
      std::string_view value = std::string_view(values_).substr(begin, ends_[i] - begin);
      begin = ends_[i];
      if (!is_blank(value)) row.values.push_back(FieldValue{columns_[i].second, value});
    }
    return true;
  }

  std::string position() const override { return std::to_string(rows_); }

  Status seek(std::string_view position) override {
    std::uint64_t target = 0;
    auto [end, error] = std::from_chars(position.data(), position.data() + position.size(), target);
    if (error != std::errc() || end != position.data() + position.size() || position.empty()) {
      return invalid_argument("'" + std::string(position) + "' is not a position of a SQLite source");
    }
    sqlite3_reset(statement_);
    rows_ = 0;
    while (rows_ < target) {
      int rc = sqlite3_step(statement_);
      if (rc == SQLITE_DONE) {
        return invalid_argument("position " + std::string(position) + " is past the end of the query of '" +
                                spec_.path + "' (" + std::to_string(rows_) + " rows)");
      }
      if (rc != SQLITE_ROW) return fail("reading the query of audience database failed");
      ++rows_;
    }
    return Status::ok();
  }

  SourceExtent extent() const override { return SourceExtent{rows_, total_}; }

 private:
  Status fail(const std::string& what) const {
    return io_error(what + " '" + spec_.path + "': " + (db_ ? sqlite3_errmsg(db_) : "out of memory"));
  }

  SourceSpec spec_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* statement_ = nullptr;
  std::vector<std::pair<int, Field>> columns_;
  std::string values_;
  std::vector<std::size_t> ends_;
  std::uint64_t rows_ = 0;
  std::optional<std::uint64_t> total_;
};

}  // namespace

Result<std::unique_ptr<AudienceSource>> open_sqlite_source(const SourceSpec& spec) {
  auto source = std::make_unique<SqliteSource>(spec);
  ACT_RETURN_IF_ERROR(source->open());
  return std::unique_ptr<AudienceSource>(std::move(source));
}

}  // namespace activation::sources
