// Opening the SQLite store: creation, settings, migrations, and the files it must refuse.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <fmt/format.h>

#include "queue_test_support.hpp"
#include "storage/sqlite/sqlite_schema.hpp"

namespace activation {
namespace {

using namespace std::chrono_literals;
using testing::enqueue_ok;
using testing::job_spec;
using testing::make_queue;
using testing::open_store;
using testing::sqlite_exec;
using testing::ScratchDir;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// The cases up to TEST_SUITE_END() test the SQLite file itself; the PostgreSQL run of the suite
// leaves them out (--test-suite-exclude=sqlite). The ones after it run on both stores.
TEST_SUITE_BEGIN("sqlite");

TEST_CASE("a new store is created with mode 0600 in WAL mode") {
  ScratchDir dir;
  const std::string path = dir.file("new.db");
  const mode_t old_mask = ::umask(022);
  auto store = open_store(path);
  ::umask(old_mask);

  struct stat file_stat {};
  REQUIRE(::stat(path.c_str(), &file_stat) == 0);
  CHECK((file_stat.st_mode & 0777) == 0600);
  CHECK(sqlite_exec(path, "PRAGMA journal_mode") == "wal");
  CHECK(sqlite_exec(path, "PRAGMA user_version") == std::to_string(internal::kStoreSchemaVersion));
  CHECK(sqlite_exec(path, "PRAGMA application_id") == std::to_string(0x41435456));
  CHECK(store->backend_name() == "sqlite");
  CHECK(store->location() == path);
}

TEST_CASE("reopening a store keeps its jobs") {
  ScratchDir dir;
  const std::string path = dir.file("q.db");
  JobId id = 0;
  {
    auto queue = make_queue(open_store(path));
    id = enqueue_ok(*queue, job_spec("t", R"({"n":1})"));
  }
  auto queue = make_queue(open_store(path));
  auto job = queue->get(id);
  REQUIRE(job.is_ok());
  CHECK(job->payload == R"({"n":1})");
}

TEST_CASE("a missing store is not created when create_if_missing is off") {
  ScratchDir dir;
  SqliteStoreOptions options;
  options.create_if_missing = false;
  const std::string path = dir.file("absent.db");
  auto store = open_sqlite_store(path, options);
  REQUIRE_FALSE(store.is_ok());
  CHECK(store.status().code() == StatusCode::kNotFound);
  CHECK(store.status().message() == "store " + path + " does not exist and create_if_missing is off");
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("a file that is not an SQLite database is rejected and left as it was") {
  ScratchDir dir;
  const std::string path = dir.file("audience.csv");
  const std::string bytes = "INDEX,CUSTOMERID,EMAIL\n1,abc,a@example.com\n";
  write_bytes(path, bytes);

  auto store = open_sqlite_store(path);
  REQUIRE_FALSE(store.is_ok());
  CHECK(store.status().code() == StatusCode::kDataLoss);
  CHECK(store.status().message() ==
        "store " + path +
            " is not an SQLite database (its first 16 bytes are not the SQLite header); pass the path of an "
            "activation store or of a new file");
  CHECK(read_bytes(path) == bytes);
  CHECK_FALSE(std::filesystem::exists(path + "-wal"));
}

TEST_CASE("a corrupt store gives a data-loss error naming the file") {
  ScratchDir dir;
  const std::string path = dir.file("q.db");
  {
    auto queue = make_queue(open_store(path));
    for (int i = 0; i < 300; ++i) enqueue_ok(*queue, job_spec("t", R"({"padding":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"})"));
  }
  // Overwrite everything after the first page (the header and schema stay readable) with garbage.
  std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() > 8192);
  for (std::size_t i = 4096; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 131) & 0xff);
  write_bytes(path, bytes);

  auto store = open_sqlite_store(path);
  Status status;
  if (!store.is_ok()) {
    status = store.status();
  } else {
    auto queue = make_queue(*store);
    auto listed = queue->list({});
    status = listed.status();
  }
  REQUIRE_FALSE(status.is_ok());
  CHECK(status.code() == StatusCode::kDataLoss);
  CHECK(status.message().find(path) != std::string::npos);
}

TEST_CASE("an SQLite database of another application is rejected and left as it was") {
  ScratchDir dir;
  const std::string path = dir.file("crm.db");
  sqlite_exec(path, "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT); INSERT INTO customers VALUES (1, 'x')");
  const std::string before = read_bytes(path);

  auto store = open_sqlite_store(path);
  REQUIRE_FALSE(store.is_ok());
  CHECK(store.status().code() == StatusCode::kFailedPrecondition);
  CHECK(store.status().message() ==
        "store " + path +
            " is an SQLite database of another application (application_id 0x0, 1 schema objects); pass the path "
            "of an activation store or of a new file");
  CHECK(read_bytes(path) == before);
  CHECK(sqlite_exec(path, "PRAGMA journal_mode") == "delete");
}

TEST_CASE("a store from a newer schema is rejected and left as it was") {
  ScratchDir dir;
  const std::string path = dir.file("q.db");
  { open_store(path); }
  sqlite_exec(path, "PRAGMA user_version = 99");
  const std::string before = read_bytes(path);

  auto store = open_sqlite_store(path);
  REQUIRE_FALSE(store.is_ok());
  CHECK(store.status().code() == StatusCode::kDataLoss);
  CHECK(store.status().message() ==
        fmt::format("store {}: schema version 99 is newer than version {} that this library supports; "
                    "open it with a newer activation",
                    path, internal::kStoreSchemaVersion));
  CHECK(read_bytes(path) == before);
}

TEST_CASE("bad store paths and options are rejected") {
  auto memory = open_sqlite_store(":memory:");
  CHECK(memory.status().code() == StatusCode::kInvalidArgument);
  auto empty = open_sqlite_store("");
  CHECK(empty.status().message() == "store path is empty; pass the path of the SQLite store file");
  auto missing_dir = open_sqlite_store("/nonexistent-act-dir/q.db");
  CHECK(missing_dir.status().code() == StatusCode::kNotFound);
  CHECK(missing_dir.status().message() == "cannot create store /nonexistent-act-dir/q.db: directory "
                                          "/nonexistent-act-dir does not exist");
  SqliteStoreOptions options;
  options.reader_connections = 0;
  ScratchDir dir;
  auto bad = open_sqlite_store(dir.file("q.db"), options);
  CHECK(bad.status().message() == "reader_connections is 0; expected 1 to 64");
  SqliteStoreOptions no_chunk;
  no_chunk.ledger_fold_chunk = 0;
  auto unchunked = open_sqlite_store(dir.file("q.db"), no_chunk);
  CHECK(unchunked.status().code() == StatusCode::kInvalidArgument);
  CHECK(unchunked.status().message() == "ledger_fold_chunk is 0; expected 1 or more");
}

// Mounts a tmpfs on `dir` for the tests that need a real read-only or full file system. Needs
// root (CAP_SYS_ADMIN); the tests that use it skip with a message otherwise.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& dir, const std::string& options) : dir_(dir) {
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool remount_read_only() {
    return ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, nullptr) == 0;
  }
  bool mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

TEST_CASE("a read-only directory gives a permission error") {
  ScratchDir dir;
  const std::string sub = dir.file("ro");
  std::filesystem::create_directory(sub);

  SUBCASE("new store") {
    bool read_only = false;
    std::optional<TmpfsMount> mount;
    if (::geteuid() == 0) {
      mount.emplace(sub, "size=1m");
      read_only = mount->mounted() && mount->remount_read_only();
    } else {
      read_only = ::chmod(sub.c_str(), 0555) == 0;
    }
    if (!read_only) {
      MESSAGE("skipped: cannot make a read-only directory here (needs a tmpfs mount when running as root)");
      return;
    }
    const std::string path = sub + "/q.db";
    auto store = open_sqlite_store(path);
    REQUIRE_FALSE(store.is_ok());
    CHECK(store.status().code() == StatusCode::kPermissionDenied);
    CHECK(store.status().message().rfind("cannot create store " + path + ": directory " + sub + " is not writable", 0) ==
          0);
  }
  SUBCASE("existing store") {
    std::optional<TmpfsMount> mount;
    if (::geteuid() == 0) {
      mount.emplace(sub, "size=1m");
      if (!mount->mounted()) {
        MESSAGE("skipped: cannot mount a tmpfs here");
        return;
      }
    }
    const std::string path = sub + "/q.db";
    { make_queue(open_store(path)); }
    const std::string before = read_bytes(path);
    const bool read_only = ::geteuid() == 0 ? mount->remount_read_only() : ::chmod(sub.c_str(), 0555) == 0;
    if (!read_only) {
      MESSAGE("skipped: cannot make the directory read-only");
      return;
    }
    auto store = open_sqlite_store(path);
    REQUIRE_FALSE(store.is_ok());
    CHECK(store.status().code() == StatusCode::kPermissionDenied);
    CHECK(store.status().message().find(path) != std::string::npos);
    CHECK(read_bytes(path) == before);
  }
}

TEST_CASE("a full disk fails the write and keeps what was stored") {
  ScratchDir dir;
  const std::string sub = dir.file("small");
  std::filesystem::create_directory(sub);
  if (::geteuid() != 0) {
    MESSAGE("skipped: a full file system needs a tmpfs mount, which needs root");
    return;
  }
  TmpfsMount mount(sub, "size=256k");
  if (!mount.mounted()) {
    MESSAGE("skipped: cannot mount a tmpfs here");
    return;
  }

  auto store = open_store(sub + "/q.db");
  auto queue = make_queue(store);
  const JobId kept = enqueue_ok(*queue, job_spec("t", R"({"kept":true})"));

  // Fill the file system with a plain file, then ask for more than fits.
  {
    std::ofstream filler(sub + "/filler", std::ios::binary);
    const std::string block(4096, 'x');
    for (int i = 0; i < 1024 && filler; ++i) filler << block;
  }
  std::vector<JobSpec> specs(2000, job_spec("t", R"({"payload":"................................................"})"));
  auto result = queue->enqueue_bulk(specs);
  REQUIRE_FALSE(result.is_ok());
  CHECK(result.status().code() == StatusCode::kResourceExhausted);
  CHECK(result.status().message().find(sub + "/q.db") != std::string::npos);
  CHECK(result.status().message().find("the disk is full") != std::string::npos);

  // Nothing of the failed bulk is visible, and the earlier job is intact.
  std::filesystem::remove(sub + "/filler");
  auto metrics = queue->metrics();
  REQUIRE(metrics.is_ok());
  CHECK(metrics->waiting == 1);
  auto job = queue->get(kept);
  REQUIRE(job.is_ok());
  CHECK(job->payload == R"({"kept":true})");
}

TEST_SUITE_END();

TEST_CASE("two store objects on one file see each other's jobs") {
  ScratchDir dir;
  const std::string path = dir.file("q.db");
  auto first = make_queue(open_store(path));
  auto second = make_queue(open_store(path));
  const JobId id = enqueue_ok(*first, job_spec("t"));
  auto claimed = testing::claim_ok(*second);
  CHECK(claimed.job.id == id);
  auto none = first->claim_one("w");
  REQUIRE(none.is_ok());
  CHECK_FALSE(none->has_value());
}

TEST_CASE("wait_for_activity wakes on an enqueue from another store object") {
  ScratchDir dir;
  const std::string path = dir.file("q.db");
  auto waiter = open_store(path);
  auto producer = make_queue(open_store(path));
  const std::uint64_t token = waiter->activity_token();
  std::thread enqueue([&] {
    std::this_thread::sleep_for(50ms);
    enqueue_ok(*producer, job_spec("t"));
  });
  waiter->wait_for_activity(token, 30s);
  enqueue.join();
  CHECK(waiter->activity_token() != token);
}

}  // namespace
}  // namespace activation
