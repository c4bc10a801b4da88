#include "storage/sqlite/sqlite_connection.hpp"

#include <fmt/format.h>

namespace activation::internal {

Status sqlite_status(int rc, sqlite3* db, std::string_view path, std::string_view action) {
  const int primary = rc & 0xff;
  const std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const auto message = [&](std::string_view what) {
    return fmt::format("store {}: {} failed: {} ({})", path, action, what, detail);
  };

  switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status(StatusCode::kUnavailable,
                    message("another connection held the lock longer than the busy timeout; retry later"));
    case SQLITE_FULL:
      return Status(StatusCode::kResourceExhausted, message("the disk is full; free space and retry"));
    case SQLITE_CORRUPT:
      return Status(StatusCode::kDataLoss, message("the store file is corrupt; restore it from a backup"));
    case SQLITE_NOTADB:
      return Status(StatusCode::kDataLoss, message("the file is not an SQLite database, or it is corrupt"));
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return Status(StatusCode::kPermissionDenied, message("the store file or its directory is not writable"));
    case SQLITE_CANTOPEN:
      return Status(StatusCode::kIoError, message("the store file could not be opened"));
    case SQLITE_IOERR:
      return Status(StatusCode::kIoError, message("a read or write of the store file failed"));
    case SQLITE_CONSTRAINT:
      return Status(StatusCode::kAlreadyExists, message("a uniqueness rule of the store was violated"));
    case SQLITE_NOMEM:
      return Status(StatusCode::kResourceExhausted, message("out of memory"));
    default:
      return Status(StatusCode::kInternal, message(sqlite3_errstr(rc)));
  }
}

Statement::~Statement() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Statement& Statement::bind(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
  sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
  return *this;
}

Statement& Statement::bind_blob(int index, std::string_view bytes) {
  sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
  return *this;
}

Statement& Statement::bind_double(int index, double value) {
  sqlite3_bind_double(stmt_, index, value);
  return *this;
}

Statement& Statement::bind_null(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Statement& Statement::bind_optional(int index, const std::optional<std::int64_t>& value) {
  return value ? bind(index, *value) : bind_null(index);
}

Statement& Statement::bind_text_or_null(int index, std::string_view value) {
  return value.empty() ? bind_null(index) : bind(index, value);
}

Result<bool> Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return connection_->error(rc, fmt::format("running \"{:.60}\"", sqlite3_sql(stmt_)));
}

Status Statement::run() {
  auto stepped = step();
  if (!stepped.is_ok()) return stepped.status();
  return Status();
}

std::string Statement::column_text(int column) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (text == nullptr) return {};
  return std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::string_view Statement::column_text_view(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return {};
  return std::string_view(reinterpret_cast<const char*>(text),
                          static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::string_view Statement::column_blob(int column) const {
  const void* bytes = sqlite3_column_blob(stmt_, column);
  if (bytes == nullptr) return {};
  return std::string_view(static_cast<const char*>(bytes), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::optional<std::int64_t> Statement::column_optional(int column) const {
  if (column_is_null(column)) return std::nullopt;
  return column_int64(column);
}

std::int64_t Statement::changes() const { return sqlite3_changes64(connection_->handle()); }

Result<std::unique_ptr<SqliteConnection>> SqliteConnection::open(const std::string& path, int flags) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status status = sqlite_status(rc, db, path, "opening the store");
    sqlite3_close_v2(db);
    return status;
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<SqliteConnection>(new SqliteConnection(db, path));
}

SqliteConnection::~SqliteConnection() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  for (auto& [sql, stmt] : dynamic_statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Result<Statement> SqliteConnection::prepare_text(std::string_view sql, sqlite3_stmt*& slot) {
  if (slot == nullptr) {
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &slot,
                                      nullptr);
    if (rc != SQLITE_OK) {
      Status status = error(rc, fmt::format("preparing \"{:.60}\"", sql));
      sqlite3_finalize(slot);
      slot = nullptr;
      return status;
    }
  }
  return Statement(this, slot);
}

Result<Statement> SqliteConnection::prepare(const char* sql) { return prepare_text(sql, statements_[sql]); }

Result<Statement> SqliteConnection::prepare_dynamic(const std::string& sql) {
  return prepare_text(sql, dynamic_statements_[sql]);
}

Status SqliteConnection::exec(const char* sql) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return error(rc, fmt::format("running \"{:.60}\"", sql));
  return Status();
}

Result<std::int64_t> SqliteConnection::query_int(const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return error(rc, fmt::format("preparing \"{:.60}\"", sql));
  }
  rc = sqlite3_step(stmt);
  std::int64_t value = 0;
  if (rc == SQLITE_ROW) {
    value = sqlite3_column_int64(stmt, 0);
    rc = SQLITE_DONE;
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return error(rc, fmt::format("running \"{:.60}\"", sql));
  return value;
}

}  // namespace activation::internal
