#include "storage/postgresql/pg_connection.hpp"

#include <poll.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

namespace activation::internal {
namespace {

// Maps a SQLSTATE to a status code. Connection failures and server shutdowns are transient.
StatusCode code_for_sqlstate(std::string_view state) {
  if (state.size() != 5) return StatusCode::kIoError;
  const std::string_view klass = state.substr(0, 2);
  if (klass == "08" || state == "57P01" || state == "57P02" || state == "57P03")
    return StatusCode::kUnavailable;
  if (state == "40001" || state == "40P01" || state == "55P03") return StatusCode::kUnavailable;
  if (state == "23505") return StatusCode::kAlreadyExists;
  if (klass == "22" || klass == "23") return StatusCode::kInvalidArgument;
  if (klass == "28" || state == "42501") return StatusCode::kPermissionDenied;
  if (state == "3D000") return StatusCode::kNotFound;
  if (klass == "53") return StatusCode::kResourceExhausted;
  if (state == "57014") return StatusCode::kDeadlineExceeded;
  if (klass == "XX") return StatusCode::kDataLoss;
  return StatusCode::kIoError;
}

std::string trimmed(const char* text) {
  std::string message = text != nullptr ? text : "";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return message;
}

}  // namespace

PgParams& PgParams::add(std::int64_t value) {
  values_.push_back(std::to_string(value));
  nulls_.push_back(false);
  return *this;
}

PgParams& PgParams::add(bool value) {
  values_.emplace_back(value ? "t" : "f");
  nulls_.push_back(false);
  return *this;
}

PgParams& PgParams::add(double value) {
  values_.push_back(fmt::format("{}", value));
  nulls_.push_back(false);
  return *this;
}

PgParams& PgParams::add(std::string_view value) {
  values_.emplace_back(value);
  nulls_.push_back(false);
  return *this;
}

PgParams& PgParams::add_null() {
  values_.emplace_back();
  nulls_.push_back(true);
  return *this;
}

PgParams& PgParams::add_text_or_null(std::string_view value) {
  return value.empty() ? add_null() : add(value);
}

PgParams& PgParams::add_optional(const std::optional<std::int64_t>& value) {
  return value ? add(*value) : add_null();
}

std::vector<const char*> PgParams::pointers() const {
  std::vector<const char*> result(values_.size());
  for (std::size_t i = 0; i < values_.size(); ++i) result[i] = nulls_[i] ? nullptr : values_[i].c_str();
  return result;
}

std::string PgResult::text(int row, int column) const {
  if (is_null(row, column)) return {};
  return std::string(PQgetvalue(result_.get(), row, column),
                     static_cast<std::size_t>(PQgetlength(result_.get(), row, column)));
}

std::int64_t PgResult::int64(int row, int column) const {
  if (is_null(row, column)) return 0;
  const char* begin = PQgetvalue(result_.get(), row, column);
  const char* end = begin + PQgetlength(result_.get(), row, column);
  std::int64_t value = 0;
  std::from_chars(begin, end, value);
  return value;
}

std::optional<std::int64_t> PgResult::optional_int64(int row, int column) const {
  if (is_null(row, column)) return std::nullopt;
  return int64(row, column);
}

bool PgResult::boolean(int row, int column) const {
  return !is_null(row, column) && PQgetvalue(result_.get(), row, column)[0] == 't';
}

double PgResult::real(int row, int column) const {
  if (is_null(row, column)) return 0.0;
  return std::strtod(PQgetvalue(result_.get(), row, column), nullptr);
}

std::int64_t PgResult::changes() const {
  if (!result_) return 0;
  const char* text = PQcmdTuples(result_.get());
  return text != nullptr && *text != '\0' ? std::strtoll(text, nullptr, 10) : 0;
}

std::string describe_conninfo(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (options == nullptr) {
    if (error != nullptr) PQfreemem(error);
    return "PostgreSQL (unparsable connection string)";
  }
  std::string host, port, dbname, user;
  for (PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
    if (option->val == nullptr) continue;
    const std::string_view keyword = option->keyword;
    if (keyword == "host" || (keyword == "hostaddr" && host.empty())) host = option->val;
    if (keyword == "port") port = option->val;
    if (keyword == "dbname") dbname = option->val;
    if (keyword == "user") user = option->val;
  }
  PQconninfoFree(options);
  std::string text = "postgresql://" + (host.empty() ? std::string("localhost") : host);
  if (!port.empty()) text += ":" + port;
  text += "/" + dbname;
  if (!user.empty()) text += " as " + user;
  return text;
}

std::string quote_identifier(std::string_view name) {
  std::string quoted = "\"";
  for (const char c : name) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

Result<std::unique_ptr<PgConnection>> PgConnection::connect(const std::string& conninfo,
                                                            const std::string& location,
                                                            const std::string& schema) {
  // Parse first, so that a malformed string is reported as bad input and not as an unreachable
  // server. libpq's parse error names the bad option, never its value.
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &parse_error);
  if (parsed == nullptr) {
    std::string message = trimmed(parse_error);
    if (parse_error != nullptr) PQfreemem(parse_error);
    return invalid_argument(fmt::format("PostgreSQL connection string is invalid: {}", message));
  }
  PQconninfoFree(parsed);

  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return Status(StatusCode::kResourceExhausted, "libpq could not allocate a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    // libpq's messages name the host and the failure (refused, timed out, authentication), but
    // never the password.
    std::string message = trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    const bool auth =
        message.find("authentication") != std::string::npos || message.find("password") != std::string::npos;
    const bool missing_db = message.find("does not exist") != std::string::npos;
    StatusCode code = auth         ? StatusCode::kPermissionDenied
                      : missing_db ? StatusCode::kNotFound
                                   : StatusCode::kUnavailable;
    return Status(code, fmt::format("cannot connect to store {}: {}", location, message));
  }

  std::unique_ptr<PgConnection> connection(new PgConnection(conn, location));
  // Notices (such as "schema already exists, skipping") would go to stderr; the library never prints.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  if (!schema.empty()) {
    ACT_RETURN_IF_ERROR(
        connection->exec(fmt::format("SET search_path TO {}", quote_identifier(schema))).status());
  }
  return connection;
}

PgConnection::~PgConnection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

Result<PgResult> PgConnection::check(PGresult* raw, std::string_view action) {
  PgResult result(raw);
  const ExecStatusType status = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
    lost_ = false;
    sqlstate_.clear();
    return result;
  }
  const char* sqlstate = raw != nullptr ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
  sqlstate_ = sqlstate != nullptr ? sqlstate : "";
  std::string message = raw != nullptr ? trimmed(PQresultErrorMessage(raw)) : std::string();
  if (message.empty()) message = trimmed(PQerrorMessage(conn_));
  if (message.empty()) message = "no result from the server";

  lost_ = broken() || sqlstate == nullptr;
  StatusCode code = lost_ ? StatusCode::kUnavailable : code_for_sqlstate(sqlstate != nullptr ? sqlstate : "");
  if (lost_) {
    return Status(code, fmt::format("store {}: {} failed: the connection to the server was lost ({})",
                                    location_, action, message));
  }
  return Status(code,
                fmt::format("store {}: {} failed: {} (SQLSTATE {})", location_, action, message, sqlstate));
}

bool PgConnection::looks_alive() {
  if (broken()) return false;
  pollfd fd = {PQsocket(conn_), POLLIN, 0};
  if (::poll(&fd, 1, 0) <= 0) return true;  // Nothing to read: the server has not closed it.
  // Readable while idle: an error message before a close, end of file, or a notice. A shutting-down
  // server sends its error message and then closes, and one read may return the message without the
  // end of file, so a connection that received anything while idle is not trusted. Dropping it costs
  // one reconnect; sending a single-statement write on it would leave the outcome unknown.
  return false;
}

Result<PgResult> PgConnection::exec(std::string_view sql) {
  const std::string text(sql);
  return check(PQexec(conn_, text.c_str()), "statement");
}

Result<PgResult> PgConnection::run(const char* name, const char* sql, const PgParams& params) {
  if (prepared_.find(name) == prepared_.end()) {
    ACT_RETURN_IF_ERROR(check(PQprepare(conn_, name, sql, 0, nullptr), name).status());
    prepared_.insert(name);
  }
  const auto values = params.pointers();
  return check(PQexecPrepared(conn_, name, params.size(), values.data(), nullptr, nullptr, 0), name);
}

Result<PgResult> PgConnection::run_unprepared(const std::string& sql, const PgParams& params) {
  const auto values = params.pointers();
  return check(PQexecParams(conn_, sql.c_str(), params.size(), nullptr, values.data(), nullptr, nullptr, 0),
               "statement");
}

}  // namespace activation::internal
