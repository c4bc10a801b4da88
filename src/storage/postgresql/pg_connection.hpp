// A thin RAII layer over one libpq connection: statements prepared once per connection by name,
// text parameters, typed reads of result columns, and libpq errors turned into Status values that
// name the store without its password.
#ifndef ACTIVATION_SRC_STORAGE_POSTGRESQL_PG_CONNECTION_HPP_
#define ACTIVATION_SRC_STORAGE_POSTGRESQL_PG_CONNECTION_HPP_

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "activation/status.hpp"

namespace activation::internal {

// Text parameters of one statement ($1, $2, ... in the order they are added).
class PgParams {
 public:
  PgParams& add(std::int64_t value);
  PgParams& add(int value) { return add(static_cast<std::int64_t>(value)); }
  PgParams& add(bool value);
  PgParams& add(double value);
  PgParams& add(std::string_view value);
  PgParams& add(const char* value) { return add(std::string_view(value)); }
  PgParams& add_null();
  // NULL for an empty string.
  PgParams& add_text_or_null(std::string_view value);
  PgParams& add_optional(const std::optional<std::int64_t>& value);

  int size() const { return static_cast<int>(values_.size()); }
  // Pointers into this object; valid until the next add().
  std::vector<const char*> pointers() const;

 private:
  std::vector<std::string> values_;
  std::vector<bool> nulls_;
};

// The rows of one statement. Columns are 0-based.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* result) : result_(result, &PQclear) {}

  int rows() const { return result_ ? PQntuples(result_.get()) : 0; }
  bool is_null(int row, int column) const { return PQgetisnull(result_.get(), row, column) != 0; }
  std::string text(int row, int column) const;
  std::int64_t int64(int row, int column) const;
  std::optional<std::int64_t> optional_int64(int row, int column) const;
  bool boolean(int row, int column) const;
  double real(int row, int column) const;
  // Rows changed by an INSERT, UPDATE or DELETE.
  std::int64_t changes() const;

 private:
  std::shared_ptr<PGresult> result_;
};

// Returns the text of a conninfo string or URL without its password: "host:port/dbname as user".
std::string describe_conninfo(const std::string& conninfo);

class PgConnection {
 public:
  // Connects with `conninfo` and sets the search path to `schema` when it is not empty.
  // `location` names the store in messages (never with a password).
  static Result<std::unique_ptr<PgConnection>> connect(const std::string& conninfo,
                                                       const std::string& location,
                                                       const std::string& schema);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs SQL text with the simple query protocol: schema changes, BEGIN, COMMIT, LISTEN.
  Result<PgResult> exec(std::string_view sql);
  // Runs the statement `name`, preparing it from `sql` on the first use on this connection. `sql`
  // must stay the same for a name.
  Result<PgResult> run(const char* name, const char* sql, const PgParams& params = PgParams());
  // Runs SQL built at run time without preparing it.
  Result<PgResult> run_unprepared(const std::string& sql, const PgParams& params = PgParams());

  // True when the server closed the connection or a network error broke it.
  bool broken() const { return PQstatus(conn_) != CONNECTION_OK; }
  // True when the last failure of this connection was a lost connection, not an SQL error.
  bool lost() const { return lost_; }
  // The SQLSTATE of the last failed statement; empty after a success or a lost connection.
  const std::string& last_sqlstate() const { return sqlstate_; }
  // Checks without blocking whether the server closed this idle connection (a restart, an idle
  // timeout), so that the pool drops it before a statement is sent on it.
  bool looks_alive();
  PGconn* handle() const noexcept { return conn_; }
  const std::string& location() const noexcept { return location_; }

 private:
  PgConnection(PGconn* conn, std::string location) : conn_(conn), location_(std::move(location)) {}
  Result<PgResult> check(PGresult* result, std::string_view action);

  PGconn* conn_;
  std::string location_;
  std::unordered_set<std::string> prepared_;
  bool lost_ = false;
  std::string sqlstate_;
};

// Quotes an SQL identifier ("schema" -> "\"schema\"").
std::string quote_identifier(std::string_view name);

}  // namespace activation::internal

#endif  // ACTIVATION_SRC_STORAGE_POSTGRESQL_PG_CONNECTION_HPP_
