// Opening the PostgreSQL store, its connection pool and transactions, and the LISTEN thread.
#include "storage/postgresql/pg_store.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "storage/postgresql/pg_schema.hpp"

namespace activation {

Result<std::shared_ptr<Store>> open_postgresql_store(const std::string& conninfo,
                                                     const PostgresStoreOptions& options) {
  ACT_ASSIGN_OR_RETURN(auto store, internal::PostgresStore::open(conninfo, options));
  return std::shared_ptr<Store>(std::move(store));
}

bool is_postgresql_url(std::string_view location) noexcept {
  return location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0;
}

Result<std::shared_ptr<Store>> open_store(const std::string& location, const Logger& logger) {
  if (is_postgresql_url(location)) {
    PostgresStoreOptions options;
    options.logger = logger;
    return open_postgresql_store(location, options);
  }
  SqliteStoreOptions options;
  options.logger = logger;
  return open_sqlite_store(location, options);
}

namespace internal {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kFirstBackoff{50};
constexpr milliseconds kMaxBackoff{2000};

Status validate_options(const std::string& conninfo, const PostgresStoreOptions& options) {
  if (conninfo.empty()) {
    return invalid_argument(
        "PostgreSQL connection string is empty; pass a conninfo string or a postgresql:// URL");
  }
  if (options.pool_size < 1 || options.pool_size > 64) {
    return invalid_argument(fmt::format("pool_size is {}; expected 1 to 64", options.pool_size));
  }
  if (options.reconnect_timeout.count() < 0) {
    return invalid_argument(
        fmt::format("reconnect_timeout is {} ms; expected 0 or more", options.reconnect_timeout.count()));
  }
  if (options.poll_interval.count() < 1) {
    return invalid_argument(
        fmt::format("poll_interval is {} ms; expected 1 or more", options.poll_interval.count()));
  }
  if (options.schema.size() > 63) {
    return invalid_argument(fmt::format("schema '{}' is longer than PostgreSQL's 63 bytes", options.schema));
  }
  return Status();
}

// Writes of the store that are expected outcomes, not failures to log.
bool is_expected_failure(StatusCode code) {
  return code == StatusCode::kConflict || code == StatusCode::kFailedPrecondition ||
         code == StatusCode::kNotFound || code == StatusCode::kAlreadyExists ||
         code == StatusCode::kInvalidArgument;
}

}  // namespace

Result<std::shared_ptr<PostgresStore>> PostgresStore::open(const std::string& conninfo,
                                                           const PostgresStoreOptions& options) {
  ACT_RETURN_IF_ERROR(validate_options(conninfo, options));
  const std::string location = describe_conninfo(conninfo);

  // The first connection migrates the schema, then joins the pool.
  ACT_ASSIGN_OR_RETURN(auto first, PgConnection::connect(conninfo, location, options.schema));
  ACT_RETURN_IF_ERROR(migrate_postgres_schema(*first, options.schema));

  std::shared_ptr<PostgresStore> store(new PostgresStore(conninfo, location, options));
  {
    std::lock_guard lock(store->pool_mutex_);
    store->idle_.push_back(std::move(first));
    store->open_connections_ = 1;
  }
  store->listener_ = std::thread([raw = store.get()] { raw->listen_loop(); });
  options.logger.log(LogLevel::kInfo, "store", "opened PostgreSQL store {}{} (schema version {})", location,
                     options.schema.empty() ? std::string() : " schema " + options.schema,
                     kPostgresSchemaVersion);
  return store;
}

PostgresStore::PostgresStore(std::string conninfo, std::string location, PostgresStoreOptions options)
    : conninfo_(std::move(conninfo)),
      location_(std::move(location)),
      options_(std::move(options)),
      // One channel per schema, so that stores in other schemas of the database do not wake these
      // waiters.
      channel_(options_.schema.empty() ? std::string("activation_jobs")
                                       : "activation_jobs_" + options_.schema) {
  stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

PostgresStore::~PostgresStore() {
  stopping_ = true;
  const std::uint64_t one = 1;
  if (stop_fd_ >= 0) (void)!::write(stop_fd_, &one, sizeof(one));
  if (listener_.joinable()) listener_.join();
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

Result<std::unique_ptr<PgConnection>> PostgresStore::take_connection() {
  {
    std::unique_lock lock(pool_mutex_);
    pool_available_.wait(lock, [&] { return !idle_.empty() || open_connections_ < options_.pool_size; });
    while (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      if (connection->looks_alive()) return connection;
      --open_connections_;  // Closed by the server while idle: replaced below.
    }
    ++open_connections_;
  }
  auto opened = PgConnection::connect(conninfo_, location_, options_.schema);
  if (!opened.is_ok()) {
    std::lock_guard lock(pool_mutex_);
    --open_connections_;
    pool_available_.notify_one();
  }
  return opened;
}

void PostgresStore::return_connection(std::unique_ptr<PgConnection> connection) {
  std::lock_guard lock(pool_mutex_);
  if (connection == nullptr || connection->broken()) {
    --open_connections_;  // Dropped: the next take opens a new one.
  } else {
    idle_.push_back(std::move(connection));
  }
  pool_available_.notify_one();
}

Status PostgresStore::run(std::string_view action, RunMode mode,
                          const std::function<Status(PgConnection&)>& body) {
  const auto deadline = std::chrono::steady_clock::now() + options_.reconnect_timeout;
  milliseconds backoff = kFirstBackoff;
  int retries = 0;

  while (true) {
    Status status;
    bool retryable = false;
    auto taken = take_connection();
    if (!taken.is_ok()) {
      status = taken.status();
      retryable = status.code() == StatusCode::kUnavailable;
    } else {
      std::unique_ptr<PgConnection> connection = std::move(taken).value();
      const bool transaction = mode == RunMode::kWrite;
      bool committing = false;
      if (transaction) status = connection->exec("BEGIN").status();
      if (status.is_ok()) status = body(*connection);
      if (status.is_ok() && transaction) {
        committing = true;
        status = connection->exec("COMMIT").status();
      }
      if (!status.is_ok() && transaction && !connection->broken()) (void)connection->exec("ROLLBACK");

      const bool lost = !status.is_ok() && connection->lost();
      const bool outcome_unknown = lost && (committing || mode == RunMode::kSingleWrite);
      const bool lost_race = transaction && connection->last_sqlstate().rfind("40", 0) == 0;
      retryable = (lost && !outcome_unknown) || (!status.is_ok() && lost_race);
      if (outcome_unknown) {
        status =
            unavailable(fmt::format("store {}: the connection was lost while the server applied {}; the "
                                    "change may or may not be stored",
                                    location_, action));
      }
      return_connection(std::move(connection));
    }
    if (status.is_ok()) {
      if (retries > 0) {
        options_.logger.log(LogLevel::kInfo, "store", "{} succeeded after {} retries on {}", action, retries,
                            location_);
      }
      return status;
    }

    if (retryable && std::chrono::steady_clock::now() + backoff < deadline && !stopping_) {
      if (retries == 0) {
        options_.logger.log(LogLevel::kWarn, "store", "{} failed and is retried for up to {} ms: {}", action,
                            options_.reconnect_timeout.count(), status.message());
      }
      ++retries;
      std::this_thread::sleep_for(backoff);
      backoff = std::min(kMaxBackoff, backoff * 2);
      continue;
    }
    if (!is_expected_failure(status.code())) {
      options_.logger.log(LogLevel::kError, "store", "{} failed: {}", action, status.to_string());
    }
    return status;
  }
}

Result<Timestamp> PostgresStore::now() {
  std::int64_t ms = 0;
  ACT_RETURN_IF_ERROR(read([&](PgConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(auto result, connection.run("act_now", "SELECT " ACT_PG_NOW_MS));
    ms = result.int64(0, 0);
    return Status();
  }));
  return Timestamp(milliseconds(ms));
}

Status PostgresStore::notify_waiters(PgConnection& connection) {
  return connection.run("act_notify", "SELECT pg_notify($1, '')", PgParams().add(channel_)).status();
}

void PostgresStore::bump_generation() {
  {
    std::lock_guard lock(activity_mutex_);
    ++generation_;
  }
  activity_changed_.notify_all();
}

void PostgresStore::notify_activity() {
  bump_generation();
}

std::uint64_t PostgresStore::activity_token() {
  std::lock_guard lock(activity_mutex_);
  return generation_;
}

void PostgresStore::wait_for_activity(std::uint64_t token, std::chrono::milliseconds max_wait) {
  // Without the LISTEN connection, another process's enqueue is only found by looking again.
  const milliseconds wait = listening_ ? max_wait : std::min(max_wait, options_.poll_interval);
  std::unique_lock lock(activity_mutex_);
  activity_changed_.wait_for(lock, wait, [&] { return generation_ != token || stopping_; });
}

void PostgresStore::listen_loop() {
  milliseconds backoff = kFirstBackoff;
  std::unique_ptr<PgConnection> connection;
  bool warned = false;

  while (!stopping_) {
    if (connection == nullptr) {
      auto opened = PgConnection::connect(conninfo_, location_, options_.schema);
      Status status = opened.status();
      if (status.is_ok()) {
        connection = std::move(opened).value();
        status = connection->exec("LISTEN " + quote_identifier(channel_)).status();
        if (!status.is_ok()) connection.reset();
      }
      if (connection == nullptr) {
        if (!warned) {
          options_.logger.log(
              LogLevel::kWarn, "store",
              "LISTEN connection to {} failed; idle workers poll every {} ms until it is back: {}", location_,
              options_.poll_interval.count(), status.message());
          warned = true;
        }
        pollfd stop = {stop_fd_, POLLIN, 0};
        (void)::poll(&stop, 1, static_cast<int>(backoff.count()));
        backoff = std::min(kMaxBackoff, backoff * 2);
        continue;
      }
      if (warned) options_.logger.log(LogLevel::kInfo, "store", "LISTEN connection to {} is back", location_);
      warned = false;
      backoff = kFirstBackoff;
      listening_ = true;
      // Notifications sent while no connection listened are lost: let waiters look for work.
      bump_generation();
    }

    pollfd fds[2] = {{PQsocket(connection->handle()), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    const int ready = ::poll(fds, 2, 1000);
    if (ready <= 0 || fds[0].revents == 0) continue;

    bool notified = false;
    if (PQconsumeInput(connection->handle()) == 0 || connection->broken()) {
      listening_ = false;
      options_.logger.log(LogLevel::kWarn, "store", "LISTEN connection to {} lost: {}", location_,
                          PQerrorMessage(connection->handle()));
      connection.reset();
      warned = true;
      bump_generation();
      continue;
    }
    while (PGnotify* notification = PQnotifies(connection->handle())) {
      notified = true;
      PQfreemem(notification);
    }
    if (notified) bump_generation();
  }
  listening_ = false;
}

}  // namespace internal
}  // namespace activation
