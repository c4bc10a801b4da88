// A thin RAII layer over one sqlite3 connection: cached prepared statements, typed binds and
// columns, and SQLite result codes turned into Status values that name the store file.
#ifndef ACTIVATION_SRC_STORAGE_SQLITE_SQLITE_CONNECTION_HPP_
#define ACTIVATION_SRC_STORAGE_SQLITE_SQLITE_CONNECTION_HPP_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "activation/status.hpp"

namespace activation::internal {

// Maps an SQLite result code to a Status whose message names `path` and the failed `action`.
Status sqlite_status(int rc, sqlite3* db, std::string_view path, std::string_view action);

class SqliteConnection;

// A prepared statement borrowed from a connection's cache. Resetting on destruction returns it to
// the cache ready for the next use.
class Statement {
 public:
  Statement(SqliteConnection* connection, sqlite3_stmt* stmt) : connection_(connection), stmt_(stmt) {}
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement(Statement&& other) noexcept : connection_(other.connection_), stmt_(other.stmt_) { other.stmt_ = nullptr; }

  // Parameters are 1-based, as in SQLite.
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, std::string_view value);  // The text must outlive the step.
  Statement& bind_blob(int index, std::string_view bytes);  // The bytes must outlive the step.
  Statement& bind_null(int index);
  Statement& bind_double(int index, double value);
  Statement& bind_optional(int index, const std::optional<std::int64_t>& value);
  // Binds NULL for an empty string.
  Statement& bind_text_or_null(int index, std::string_view value);

  // Returns true when a row is available, false when the statement is done.
  Result<bool> step();
  // Runs a statement that returns no rows.
  Status run();

  std::int64_t column_int64(int column) const { return sqlite3_column_int64(stmt_, column); }
  double column_double(int column) const { return sqlite3_column_double(stmt_, column); }
  bool column_is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::string column_text(int column) const;
  std::string_view column_text_view(int column) const;  // Valid until the next step or reset.
  bool column_is_blob(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_BLOB; }
  std::string_view column_blob(int column) const;  // Valid until the next step or reset.
  std::optional<std::int64_t> column_optional(int column) const;

  // Makes the statement ready to bind and run again within the same borrow.
  void reset();

  // Rows changed by the last run() or step() of this connection.
  std::int64_t changes() const;

 private:
  SqliteConnection* connection_;
  sqlite3_stmt* stmt_;
};

class SqliteConnection {
 public:
  // Opens `path` with `flags` (SQLITE_OPEN_*). On failure the connection is closed again.
  static Result<std::unique_ptr<SqliteConnection>> open(const std::string& path, int flags);
  ~SqliteConnection();
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  // Returns the cached statement for `sql`, preparing it on first use. `sql` must be a string that
  // lives as long as the connection (a literal, or a string kept by the caller).
  Result<Statement> prepare(const char* sql);
  // The same for SQL built at run time; the cache keeps a copy of the text.
  Result<Statement> prepare_dynamic(const std::string& sql);

  // Runs SQL without caching, for schema changes and pragmas.
  Status exec(const char* sql);
  // Runs a pragma or query that returns one integer.
  Result<std::int64_t> query_int(const char* sql);

  Status error(int rc, std::string_view action) const { return sqlite_status(rc, db_, path_, action); }

  sqlite3* handle() const noexcept { return db_; }
  const std::string& path() const noexcept { return path_; }

 private:
  SqliteConnection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Result<Statement> prepare_text(std::string_view sql, sqlite3_stmt*& slot);

  sqlite3* db_;
  std::string path_;
  std::unordered_map<const char*, sqlite3_stmt*> statements_;
  std::unordered_map<std::string, sqlite3_stmt*> dynamic_statements_;
};

}  // namespace activation::internal

#endif  // ACTIVATION_SRC_STORAGE_SQLITE_SQLITE_CONNECTION_HPP_
