// Opening the SQLite store, its connections and transactions, and the activity signal.
#include "storage/sqlite/sqlite_store.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <random>
#include <cstring>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "storage/sqlite/sqlite_schema.hpp"

namespace activation {

Result<std::shared_ptr<Store>> open_sqlite_store(const std::string& path, const SqliteStoreOptions& options) {
  ACT_ASSIGN_OR_RETURN(auto store, internal::SqliteStore::open(path, options));
  return std::shared_ptr<Store>(std::move(store));
}

namespace internal {
namespace {

constexpr char kSqliteHeader[16] = {'S', 'Q', 'L', 'i', 't', 'e', ' ', 'f', 'o', 'r', 'm', 'a', 't', ' ', '3', '\0'};

Status validate_options(const std::string& path, const SqliteStoreOptions& options) {
  if (path.empty()) return invalid_argument("store path is empty; pass the path of the SQLite store file");
  if (path == ":memory:" || path.rfind("file:", 0) == 0) {
    return invalid_argument(fmt::format(
        "store path '{}' is not a file path; the store needs a file that all of its connections share", path));
  }
  if (options.busy_timeout.count() < 0) {
    return invalid_argument(fmt::format("busy_timeout is {} ms; expected 0 or more", options.busy_timeout.count()));
  }
  if (options.reader_connections < 1 || options.reader_connections > 64) {
    return invalid_argument(
        fmt::format("reader_connections is {}; expected 1 to 64", options.reader_connections));
  }
  if (options.cross_process_poll.count() < 1) {
    return invalid_argument(
        fmt::format("cross_process_poll is {} ms; expected 1 or more", options.cross_process_poll.count()));
  }
  if (options.ledger_fold_chunk < 1) {
    return invalid_argument(fmt::format("ledger_fold_chunk is {}; expected 1 or more", options.ledger_fold_chunk));
  }
  return Status();
}

std::string errno_text(int error) { return std::strerror(error); }

std::string parent_directory(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? std::string(".") : parent;
}

// Creates the store file with mode 0600 before SQLite opens it, because SQLite would create it with
// the process's default mode, and its -wal and -shm files copy the main file's mode.
Status create_store_file(const std::string& path, bool& created) {
  created = false;
  const std::string directory = parent_directory(path);
  struct stat directory_stat {};
  if (::stat(directory.c_str(), &directory_stat) != 0) {
    return Status(StatusCode::kNotFound,
                  fmt::format("cannot create store {}: directory {} does not exist", path, directory));
  }

  const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int error = errno;
    if (error == EEXIST) return Status();  // Another process created it first: it is not ours to remove.
    if (error == EACCES || error == EPERM || error == EROFS) {
      return Status(StatusCode::kPermissionDenied, fmt::format("cannot create store {}: directory {} is not writable ({})",
                                                               path, directory, errno_text(error)));
    }
    if (error == ENOSPC || error == EDQUOT) {
      return Status(StatusCode::kResourceExhausted,
                    fmt::format("cannot create store {}: the disk is full ({})", path, errno_text(error)));
    }
    return io_error(fmt::format("cannot create store {}: {}", path, errno_text(error)));
  }
  // The umask may have removed more than group and other bits; the owner needs read and write.
  (void)::fchmod(fd, 0600);
  ::close(fd);
  created = true;
  return Status();
}

// Checks an existing file before SQLite touches it, so that a file of another kind is reported
// clearly and left unchanged.
Status check_existing_file(const std::string& path, const struct stat& file_stat) {
  if (!S_ISREG(file_stat.st_mode)) {
    return invalid_argument(fmt::format("store {} is not a regular file", path));
  }
  if (::access(path.c_str(), R_OK | W_OK) != 0) {
    return Status(StatusCode::kPermissionDenied,
                  fmt::format("store {} is not readable and writable by this process ({})", path, errno_text(errno)));
  }
  if (file_stat.st_size == 0) return Status();

  char header[sizeof(kSqliteHeader)] = {};
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error(fmt::format("cannot read store {}: {}", path, errno_text(errno)));
  const ssize_t got = ::read(fd, header, sizeof(header));
  ::close(fd);
  if (got != static_cast<ssize_t>(sizeof(header)) || std::memcmp(header, kSqliteHeader, sizeof(header)) != 0) {
    return Status(StatusCode::kDataLoss,
                  fmt::format("store {} is not an SQLite database (its first 16 bytes are not the SQLite header); "
                              "pass the path of an activation store or of a new file",
                              path));
  }

  // SQLite creates the -wal and -shm files next to the store on first use.
  const std::string directory = parent_directory(path);
  if (::access(directory.c_str(), W_OK) != 0 &&
      (::access((path + "-wal").c_str(), W_OK) != 0 || ::access((path + "-shm").c_str(), W_OK) != 0)) {
    return Status(StatusCode::kPermissionDenied,
                  fmt::format("store {}: directory {} is not writable ({}), and SQLite must create {}-wal and {}-shm "
                              "there",
                              path, directory, errno_text(errno), path, path));
  }
  return Status();
}

// Reads the identity of an opened file and rejects what this library must not write to.
Status check_store_identity(SqliteConnection& connection) {
  // One read transaction, so that a migration committed by another process in between cannot
  // show an empty application id next to the migrated tables.
  ACT_RETURN_IF_ERROR(connection.exec("BEGIN"));
  auto application_id_read = connection.query_int("PRAGMA application_id");
  auto table_count_read = connection.query_int("SELECT count(*) FROM sqlite_schema");
  auto version_read = connection.query_int("PRAGMA user_version");
  (void)connection.exec("COMMIT");
  ACT_ASSIGN_OR_RETURN(const std::int64_t application_id, std::move(application_id_read));
  ACT_ASSIGN_OR_RETURN(const std::int64_t table_count, std::move(table_count_read));
  ACT_ASSIGN_OR_RETURN(const std::int64_t version, std::move(version_read));

  if (application_id == kStoreApplicationId) {
    if (version > kStoreSchemaVersion) {
      return Status(StatusCode::kDataLoss,
                    fmt::format("store {}: schema version {} is newer than version {} that this library supports; "
                                "open it with a newer activation",
                                connection.path(), version, kStoreSchemaVersion));
    }
    return Status();
  }
  if (application_id != 0 || table_count > 0) {
    return failed_precondition(fmt::format(
        "store {} is an SQLite database of another application (application_id {:#x}, {} schema objects); "
        "pass the path of an activation store or of a new file",
        connection.path(), application_id, table_count));
  }
  return Status();
}

// Waits for another connection's lock in short random steps of 100 to 500 us. SQLite's own busy
// handler sleeps 1, 2, 5, ... up to 100 ms between tries, so a process that writes in a tight loop
// can keep another one waiting for seconds. Short steps give the waiting one a fair chance.
int wait_for_lock(void* timeout_ms, int tries) {
  thread_local std::chrono::steady_clock::time_point started;
  thread_local std::minstd_rand random(static_cast<unsigned>(std::hash<std::thread::id>()(std::this_thread::get_id())));
  const auto now = std::chrono::steady_clock::now();
  if (tries == 0) started = now;
  const auto limit = std::chrono::milliseconds(reinterpret_cast<std::intptr_t>(timeout_ms));
  if (now - started >= limit) return 0;
  std::this_thread::sleep_for(std::chrono::microseconds(100 + random() % 400));
  return 1;
}

void set_busy_timeout(SqliteConnection& connection, std::chrono::milliseconds timeout) {
  sqlite3_busy_handler(connection.handle(), &wait_for_lock,
                       reinterpret_cast<void*>(static_cast<std::intptr_t>(timeout.count())));
}

Status configure_connection(SqliteConnection& connection, const SqliteStoreOptions& options) {
  set_busy_timeout(connection, options.busy_timeout);
  ACT_RETURN_IF_ERROR(connection.exec(options.synchronous == SqliteSynchronous::kFull ? "PRAGMA synchronous = FULL"
                                                                                      : "PRAGMA synchronous = NORMAL"));
  // Sorts and temporary tables stay in memory up to the page cache's size and spill to temporary
  // files beyond it, so folding a large ledger journal (sqlite_ledger.cpp) does not grow memory.
  ACT_RETURN_IF_ERROR(connection.exec("PRAGMA temp_store = FILE"));
  // 16 MiB of page cache per connection keeps the hot indexes in memory without growing with the store.
  ACT_RETURN_IF_ERROR(connection.exec("PRAGMA cache_size = -16384"));
  // A large transaction, such as a fold's chunk, grows the WAL file to its size. When the WAL
  // starts over after a checkpoint, the file is cut back to 64 MiB, so that the disk it took
  // returns to the system.
  ACT_RETURN_IF_ERROR(connection.exec("PRAGMA journal_size_limit = 67108864"));
  // A large sort, such as a journal fold's, may merge its runs on one helper thread. The final
  // fold of a distribution runs after its reading has ended, when that core is free. The helper's
  // sort buffer is bounded by the page cache's size too.
  ACT_RETURN_IF_ERROR(connection.exec("PRAGMA threads = 1"));
  // Debian builds SQLite with secure_delete on, which writes zeros over every page that a delete
  // frees: emptying a folded journal then wrote it all once more. The store contains hashes only, and
  // a folded journal row's keys are still in the ledger, so the zeros protected nothing. FAST
  // still clears deleted content within the pages that a change writes anyway.
  ACT_RETURN_IF_ERROR(connection.exec("PRAGMA secure_delete = FAST"));
  return Status();
}

// Switches the file to WAL. Changing the journal mode needs an exclusive lock, and SQLite may
// return SQLITE_BUSY without calling the busy handler when waiting could deadlock with another
// connection's lock. Several processes that open a new store together can meet that, so the switch
// is tried again in short random steps until `busy_timeout` has passed.
Status enable_wal(SqliteConnection& connection, std::chrono::milliseconds busy_timeout) {
  const auto deadline = std::chrono::steady_clock::now() + busy_timeout;
  std::minstd_rand random(static_cast<unsigned>(std::hash<std::thread::id>()(std::this_thread::get_id())));
  int rc = SQLITE_OK;
  std::string mode;
  while (true) {
    sqlite3_stmt* stmt = nullptr;
    rc = sqlite3_prepare_v2(connection.handle(), "PRAGMA journal_mode = WAL", -1, &stmt, nullptr);
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(stmt);
      if (rc == SQLITE_ROW) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
        mode = text != nullptr ? text : "";
        rc = SQLITE_OK;
      }
    }
    sqlite3_finalize(stmt);
    const bool locked = rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
    if (!locked || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1 + random() % 20));
  }
  if (rc != SQLITE_OK) return connection.error(rc, "switching to WAL journal mode");
  if (mode != "wal") {
    return io_error(fmt::format("store {}: SQLite kept journal mode '{}' instead of 'wal'; the store needs a local "
                                "file system that supports shared memory",
                                connection.path(), mode));
  }
  return Status();
}

void remove_store_files(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((path + suffix).c_str());
}

}  // namespace

Result<std::shared_ptr<SqliteStore>> SqliteStore::open(const std::string& path, const SqliteStoreOptions& options) {
  ACT_RETURN_IF_ERROR(validate_options(path, options));

  struct stat file_stat {};
  bool created = false;
  if (::stat(path.c_str(), &file_stat) == 0) {
    ACT_RETURN_IF_ERROR(check_existing_file(path, file_stat));
  } else if (errno != ENOENT) {
    return io_error(fmt::format("cannot open store {}: {}", path, errno_text(errno)));
  } else if (!options.create_if_missing) {
    return not_found(fmt::format("store {} does not exist and create_if_missing is off", path));
  } else {
    ACT_RETURN_IF_ERROR(create_store_file(path, created));
  }

  auto opened = [&]() -> Result<std::shared_ptr<SqliteStore>> {
    ACT_ASSIGN_OR_RETURN(auto writer, SqliteConnection::open(path, SQLITE_OPEN_READWRITE));
    set_busy_timeout(*writer, options.busy_timeout);
    ACT_RETURN_IF_ERROR(check_store_identity(*writer));
    ACT_RETURN_IF_ERROR(enable_wal(*writer, options.busy_timeout));
    ACT_RETURN_IF_ERROR(configure_connection(*writer, options));
    ACT_RETURN_IF_ERROR(migrate_schema(*writer));
    return std::shared_ptr<SqliteStore>(new SqliteStore(path, options, std::move(writer)));
  }();
  if (!opened.is_ok() && created) remove_store_files(path);
  if (opened.is_ok()) {
    options.logger.log(LogLevel::kInfo, "store", "opened SQLite store {} (schema version {})", path,
                       kStoreSchemaVersion);
  }
  return opened;
}

// WAL size, in pages, from which the checkpoint thread is asked to copy the WAL into the database.
constexpr int kBackgroundCheckpointPages = 1000;
// WAL size from which the writer checkpoints itself, should the checkpoint thread fall behind.
constexpr int kInlineCheckpointPages = 50000;

SqliteStore::SqliteStore(std::string path, SqliteStoreOptions options, std::unique_ptr<SqliteConnection> writer)
    : path_(std::move(path)), options_(std::move(options)), writer_(std::move(writer)) {
  start_checkpointer();
}

void SqliteStore::start_checkpointer() {
  // Replaces SQLite's automatic checkpoint, which would run in the committing thread.
  sqlite3_wal_hook(writer_->handle(), &SqliteStore::on_wal_commit, this);
  checkpoint_thread_ = std::thread([this] { checkpoint_loop(); });
}

int SqliteStore::on_wal_commit(void* self, sqlite3* db, const char* database, int wal_pages) {
  auto* store = static_cast<SqliteStore*>(self);
  if (wal_pages >= kInlineCheckpointPages) {
    // SQLite calls this hook after the commit released its write lock, so checkpointing here is
    // allowed. A passive checkpoint gives up while the background one holds the checkpoint lock,
    // and the WAL then grows past the limit with every large commit. RESTART waits for that lock
    // and for readers, up to the busy timeout, so that the next write starts the WAL over.
    sqlite3_wal_checkpoint_v2(db, database, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
  } else if (wal_pages >= kBackgroundCheckpointPages) {
    {
      std::lock_guard lock(store->checkpoint_mutex_);
      store->checkpoint_requested_ = true;
    }
    store->checkpoint_wanted_.notify_one();
  }
  return SQLITE_OK;
}

void SqliteStore::checkpoint_loop() {
  std::unique_ptr<SqliteConnection> connection;
  while (true) {
    {
      std::unique_lock lock(checkpoint_mutex_);
      checkpoint_wanted_.wait(lock, [&] { return checkpoint_requested_ || checkpoint_stop_; });
      if (checkpoint_stop_) return;
      checkpoint_requested_ = false;
    }
    if (connection == nullptr) {
      auto opened = open_extra_connection(/*read_only=*/false);
      if (!opened.is_ok()) {
        options_.logger.log(LogLevel::kWarn, "store", "checkpoint connection failed: {}", opened.status().to_string());
        continue;
      }
      connection = std::move(opened).value();
    }
    const int rc = sqlite3_wal_checkpoint_v2(connection->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY) {
      options_.logger.log(LogLevel::kWarn, "store", "{}", connection->error(rc, "WAL checkpoint").to_string());
    }
  }
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard lock(checkpoint_mutex_);
    checkpoint_stop_ = true;
  }
  checkpoint_wanted_.notify_one();
  if (checkpoint_thread_.joinable()) checkpoint_thread_.join();

  if (inotify_fd_ >= 0) ::close(inotify_fd_);
}

void SqliteStore::start_wal_watch() {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    options_.logger.log(LogLevel::kDebug, "store", "inotify unavailable for {}; polling for other processes' writes",
                        path_);
    return;
  }
  // Every commit of any process appends to the WAL file. SQLite removes that file only when the
  // last connection closes, and this store keeps its writer open.
  if (::inotify_add_watch(fd, (path_ + "-wal").c_str(), IN_MODIFY) < 0) {
    options_.logger.log(LogLevel::kDebug, "store", "cannot watch {}-wal; polling for other processes' writes", path_);
    ::close(fd);
    return;
  }
  inotify_fd_ = fd;
}

Result<Timestamp> SqliteStore::now() {
  // Every process that opens the file runs on the file's host, so the system clock is the store's
  // clock. A store shared over a network file system is not supported.
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

Result<std::unique_ptr<SqliteConnection>> SqliteStore::open_extra_connection(bool read_only) {
  ACT_ASSIGN_OR_RETURN(auto connection, SqliteConnection::open(path_, SQLITE_OPEN_READWRITE));
  ACT_RETURN_IF_ERROR(configure_connection(*connection, options_));
  if (read_only) ACT_RETURN_IF_ERROR(connection->exec("PRAGMA query_only = 1"));
  return connection;
}

Status SqliteStore::write(std::string_view action, const std::function<Status(SqliteConnection&)>& body) {
  std::lock_guard lock(write_mutex_);
  return run_transaction(*writer_, "BEGIN IMMEDIATE", action, body);
}

Status SqliteStore::run_transaction(SqliteConnection& connection, const char* begin_sql, std::string_view action,
                                   const std::function<Status(SqliteConnection&)>& body) {
  ACT_ASSIGN_OR_RETURN(auto begin, connection.prepare(begin_sql));
  Status status = begin.run();
  if (!status.is_ok()) return status;

  status = body(connection);
  if (status.is_ok()) {
    ACT_ASSIGN_OR_RETURN(auto commit, connection.prepare("COMMIT"));
    status = commit.run();
    if (status.is_ok()) return status;
  }

  if (sqlite3_get_autocommit(connection.handle()) == 0) {
    auto rollback = connection.prepare("ROLLBACK");
    if (rollback.is_ok()) (void)rollback->run();
  }
  if (status.code() != StatusCode::kConflict && status.code() != StatusCode::kFailedPrecondition &&
      status.code() != StatusCode::kNotFound && status.code() != StatusCode::kAlreadyExists &&
      status.code() != StatusCode::kInvalidArgument) {
    options_.logger.log(LogLevel::kError, "store", "{} failed and was rolled back: {}", action, status.to_string());
  }
  return status;
}

Status SqliteStore::read(const std::function<Status(SqliteConnection&)>& body) {
  std::unique_ptr<SqliteConnection> connection;
  {
    std::unique_lock lock(readers_mutex_);
    readers_available_.wait(lock, [&] { return !idle_readers_.empty() || readers_open_ < options_.reader_connections; });
    if (!idle_readers_.empty()) {
      connection = std::move(idle_readers_.back());
      idle_readers_.pop_back();
    } else {
      ++readers_open_;
    }
  }
  if (connection == nullptr) {
    auto opened = open_extra_connection(/*read_only=*/true);
    if (!opened.is_ok()) {
      std::lock_guard lock(readers_mutex_);
      --readers_open_;
      readers_available_.notify_one();
      return opened.status();
    }
    connection = std::move(opened).value();
  }

  Status status;
  {
    auto begin = connection->prepare("BEGIN");
    status = begin.is_ok() ? begin->run() : begin.status();
  }
  if (status.is_ok()) {
    status = body(*connection);
    if (sqlite3_get_autocommit(connection->handle()) == 0) {
      auto end = connection->prepare("COMMIT");
      Status ended = end.is_ok() ? end->run() : end.status();
      if (status.is_ok()) status = ended;
    }
  }

  {
    std::lock_guard lock(readers_mutex_);
    idle_readers_.push_back(std::move(connection));
  }
  readers_available_.notify_one();
  return status;
}

void SqliteStore::notify_activity() {
  std::lock_guard lock(activity_mutex_);
  ++activity_generation_;
  const std::uint64_t one = 1;
  for (const int fd : waiter_fds_) (void)!::write(fd, &one, sizeof(one));
}

std::uint64_t SqliteStore::activity_token() {
  std::lock_guard lock(activity_mutex_);
  return activity_generation_;
}

void SqliteStore::wait_for_activity(std::uint64_t token, std::chrono::milliseconds max_wait) {
  std::call_once(wal_watch_started_, [this] { start_wal_watch(); });

  // Each waiting thread polls its own eventfd, written by notify_activity(), and the shared inotify
  // descriptor: a write by this process or any other wakes the waiter directly, with no thread in
  // between to schedule.
  thread_local struct ThreadEventFd {
    int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ~ThreadEventFd() {
      if (fd >= 0) ::close(fd);
    }
  } wake;
  {
    std::lock_guard lock(activity_mutex_);
    if (activity_generation_ != token) return;
    if (wake.fd >= 0) waiter_fds_.push_back(wake.fd);
  }

  const auto deadline = std::chrono::steady_clock::now() + max_wait;
  bool changed = false;
  while (!changed) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    // Without inotify, writes by other processes are found by polling PRAGMA data_version.
    auto slice = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    if (inotify_fd_ < 0) slice = std::min(slice, options_.cross_process_poll);

    pollfd fds[2] = {{wake.fd, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    const int ready = ::poll(fds, 2, static_cast<int>(slice.count()));
    if (ready < 0 && errno != EINTR) {
      std::this_thread::sleep_for(std::min(slice, options_.cross_process_poll));
    }
    if (ready > 0 && fds[1].revents != 0) {
      char buffer[4096];
      while (::read(inotify_fd_, buffer, sizeof(buffer)) > 0) {
      }
      changed = true;
    } else if (ready == 0 && inotify_fd_ < 0) {
      changed = poll_data_version();
    }
    std::lock_guard lock(activity_mutex_);
    changed = changed || activity_generation_ != token;
  }

  std::lock_guard lock(activity_mutex_);
  std::erase(waiter_fds_, wake.fd);
  std::uint64_t drained = 0;
  while (wake.fd >= 0 && ::read(wake.fd, &drained, sizeof(drained)) > 0) {
  }
  if (changed && activity_generation_ == token) {
    // A write seen through the file: let the other waiters of this process know as well.
    ++activity_generation_;
    const std::uint64_t one = 1;
    for (const int fd : waiter_fds_) (void)!::write(fd, &one, sizeof(one));
  }
}

bool SqliteStore::poll_data_version() {
  std::lock_guard watch(watcher_mutex_);
  if (watcher_ == nullptr) {
    auto opened = open_extra_connection(/*read_only=*/true);
    if (!opened.is_ok()) return false;
    watcher_ = std::move(opened).value();
  }
  auto statement = watcher_->prepare("PRAGMA data_version");
  if (!statement.is_ok()) return false;
  auto row = statement->step();
  if (!row.is_ok() || !*row) return false;
  const std::int64_t version = statement->column_int64(0);
  const bool changed = watcher_data_version_ >= 0 && version != watcher_data_version_;
  watcher_data_version_ = version;
  return changed;
}

}  // namespace internal
}  // namespace activation
