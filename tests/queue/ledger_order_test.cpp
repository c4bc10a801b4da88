// The ledger's write order: whatever a store defers (the SQLite store journals ledger writes and
// folds them before reads), a read must show the result of applying every batch in order.
#include <doctest/doctest.h>

#include <sqlite3.h>

#include <map>
#include <random>

#include <fmt/format.h>

#include "queue_test_support.hpp"

namespace activation {
namespace {

using testing::open_store;
using testing::sqlite_exec;
using testing::ScratchDir;

LedgerBatch batch_of(JobId seen_by_job) {
  LedgerBatch batch;
  batch.audience = "vip";
  batch.destination = "meta";
  batch.seen_by_job = seen_by_job;
  return batch;
}

SqliteStoreOptions chunks_of(std::int64_t rows) {
  SqliteStoreOptions options;
  options.ledger_fold_chunk = rows;
  return options;
}

LedgerUpdate add(const std::string& key, const std::string& keys_json) {
  return {key, keys_json, LedgerOperation::kAdd, LedgerOutcome::kAccepted, ""};
}

LedgerEntry entry_of(Ledger& ledger, const std::string& key) {
  auto found = ledger.lookup("vip", "meta", std::vector<std::string>{key});
  REQUIRE_MESSAGE(found.is_ok(), found.status().to_string());
  REQUIRE(found->front().has_value());
  return *found->front();
}

// Applies the same sequence of batches, reading the ledger after every batch when `read_between`
// is set, and returns the ledger's entries at the end.
std::vector<LedgerEntry> replay(const std::string& path, bool read_between, SqliteStoreOptions options = {}) {
  auto store = open_store(path, options);
  auto ledger = Ledger::create(store).value();
  std::vector<LedgerBatch> batches;

  LedgerBatch first = batch_of(5);
  first.updates = {add("k1", "[1]"), add("k2", "[2]"), add("k3", "[3]")};
  batches.push_back(first);

  LedgerBatch newer_job = batch_of(7);  // Job 7 reads k1 in its source.
  newer_job.seen_member_keys = {"k1"};
  batches.push_back(newer_job);

  LedgerBatch older_job = batch_of(6);  // Job 6, retried after job 7, reads k1 and k2 later.
  older_job.seen_member_keys = {"k1", "k2"};
  batches.push_back(older_job);

  LedgerBatch marked = batch_of(8);  // Job 8 reads k2, then a batch without a job removes it.
  marked.seen_member_keys = {"k2"};
  batches.push_back(marked);
  LedgerBatch removed = batch_of(0);
  removed.updates = {{"k2", "[2]", LedgerOperation::kRemove, LedgerOutcome::kAccepted, ""}};
  batches.push_back(removed);

  LedgerBatch changed = batch_of(0);  // k3 changes twice within one batch: the last one holds.
  changed.updates = {add("k3", R"(["3a"])"), add("k3", R"(["3b"])")};
  batches.push_back(changed);

  for (const LedgerBatch& batch : batches) {
    REQUIRE(ledger->apply(batch).is_ok());
    if (read_between) REQUIRE(ledger->count("vip", "meta").is_ok());
  }
  REQUIRE(ledger->flush("vip", "meta").is_ok());
  return {entry_of(*ledger, "k1"), entry_of(*ledger, "k2"), entry_of(*ledger, "k3")};
}

TEST_CASE("ledger reads show every batch applied in order") {
  // On SQLite, a fold of one chunk runs in one transaction, and smaller chunks through the sorted
  // copy. Other stores ignore the option.
  for (std::int64_t chunk : {500'000, 1}) {
    for (bool read_between : {false, true}) {
      CAPTURE(chunk);
      CAPTURE(read_between);
      ScratchDir dir;
      auto entries = replay(dir.file(read_between ? "read.db" : "once.db"), read_between, chunks_of(chunk));
      // The newest mark wins, even when it comes from a smaller job id.
      CHECK(entries[0].last_seen_job == 6);
      CHECK(entries[0].operation == LedgerOperation::kAdd);
      // An update without a job keeps the mark made before it.
      CHECK(entries[1].last_seen_job == 8);
      CHECK(entries[1].operation == LedgerOperation::kRemove);
      CHECK(entries[2].hashed_keys == R"(["3b"])");
      CHECK(entries[2].last_seen_job == 5);
    }
  }
}

TEST_CASE("ledger apply accepts JSON hashed keys and refuses near misses") {
  ScratchDir dir;
  auto store = open_store(dir.file("keys.db"));
  auto ledger = Ledger::create(store).value();
  for (const char* good : {R"([])", R"([["email","ab"]])", R"([["email","ab"],["phone","cd"]])",
                           R"({"email":["ab"]})", R"([["email","a\"b"]])", R"([ ["email", "ab"] ])"}) {
    CAPTURE(good);
    LedgerBatch batch = batch_of(0);
    batch.updates = {add("k", good)};
    CHECK(ledger->apply(batch).is_ok());
  }
  for (const char* bad : {R"([["email","ab"])", R"([["email","ab"],])", R"([["email","ab"]]x)", R"([["email","ab"]]])",
                          R"([["email","ab]])", R"([["email","ab"]],)", "", R"([["email",ab]])"}) {
    CAPTURE(bad);
    LedgerBatch batch = batch_of(0);
    batch.updates = {add("k", bad)};
    Status status = ledger->apply(batch);
    CHECK(status.code() == StatusCode::kInvalidArgument);
    CHECK(status.message().find("hashed_keys is not valid JSON") != std::string::npos);
  }

  // Texts longer than sixteen bytes, which the quick check reads sixteen bytes at a time.
  const std::string digest(64, 'f');
  for (const std::string& good : {R"([["email",")" + digest + R"("],["phone",")" + digest + R"("]])",
                                 std::string("[[\"city\",\"s\xC3\xA3o paulo, with a long tail\"]]"),
                                 std::string(R"([["email","a long value with an escaped \" quote"]])")}) {
    CAPTURE(good);
    LedgerBatch batch = batch_of(0);
    batch.updates = {add("k", good)};
    CHECK(ledger->apply(batch).is_ok());
  }
  for (const std::string& bad : {std::string("[[\"email\",\"a long value with a raw\ttab inside\"]]"),
                                R"([["email",")" + digest + R"("],["phone",")" + digest + R"("])"}) {
    CAPTURE(bad);
    LedgerBatch batch = batch_of(0);
    batch.updates = {add("k", bad)};
    CHECK(ledger->apply(batch).code() == StatusCode::kInvalidArgument);
  }
}

TEST_SUITE("sqlite") {
TEST_CASE("the SQLite ledger journal is empty after a flush and counts match") {
  ScratchDir dir;
  const std::string path = dir.file("journal.db");
  {
    auto store = open_store(path);
    auto ledger = Ledger::create(store).value();
    for (int round = 0; round < 3; ++round) {
      LedgerBatch batch = batch_of(round + 1);
      for (int i = 0; i < 1000; ++i) batch.updates.push_back(add("m" + std::to_string(i * 7 % 1000), R"(["x"])"));
      REQUIRE(ledger->apply(batch).is_ok());
    }
    REQUIRE(ledger->flush("vip", "meta").is_ok());
    auto count = ledger->count("vip", "meta");
    REQUIRE(count.is_ok());
    CHECK(*count == 1000);
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM ledger_journal", -1, &statement, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(statement) == SQLITE_ROW);
  CHECK(sqlite3_column_int64(statement, 0) == 0);
  sqlite3_finalize(statement);
  sqlite3_close_v2(db);
}

TEST_CASE("SQLite journal keeps batch order across statements") {
  // The journal takes a batch 32 rows per statement and the rest one by one. A member that comes
  // back later in the batch, in the same statement or another, must keep its last update.
  ScratchDir dir;
  auto store = open_store(dir.file("order.db"));
  auto ledger = Ledger::create(store).value();
  const std::string digest(64, 'a');
  LedgerBatch batch = batch_of(0);
  for (int i = 0; i < 70; ++i) {
    std::string key = "m" + std::to_string(i);
    if (i == 3 || i == 40 || i == 69) key = "again";
    if (i == 10 || i == 35) key = "twice";
    if (i == 33 || i == 50) key = "near";
    // Packed and unpacked forms alternate.
    std::string keys = i % 2 == 0 ? R"([["email",")" + digest + R"("],["phone","p)" + std::to_string(i) + R"("]])"
                                   : R"(["v)" + std::to_string(i) + R"("])";
    batch.updates.push_back(add(key, keys));
  }
  REQUIRE(ledger->apply(batch).is_ok());
  // Marks go in the same way: 33 of them are one statement and one row.
  LedgerBatch marks = batch_of(9);
  for (int i = 0; i < 33; ++i) marks.seen_member_keys.push_back("m" + std::to_string(i + 20));
  REQUIRE(ledger->apply(marks).is_ok());
  REQUIRE(ledger->flush("vip", "meta").is_ok());

  CHECK(*ledger->count("vip", "meta") == 70 - 4);
  CHECK(entry_of(*ledger, "again").hashed_keys == R"(["v69"])");
  CHECK(entry_of(*ledger, "twice").hashed_keys == R"(["v35"])");
  CHECK(entry_of(*ledger, "near").hashed_keys == R"([["email",")" + digest + R"("],["phone","p50"]])");
  CHECK(entry_of(*ledger, "m68").hashed_keys == R"([["email",")" + digest + R"("],["phone","p68"]])");
  CHECK(entry_of(*ledger, "m52").last_seen_job == 9);
  CHECK(entry_of(*ledger, "m19").last_seen_job == 0);
}

TEST_CASE("SQLite fold keeps other scopes' rows") {
  ScratchDir dir;
  const std::string path = dir.file("scopes.db");
  auto store = open_store(path, chunks_of(1));
  auto ledger = Ledger::create(store).value();
  LedgerBatch meta = batch_of(0);
  meta.updates = {add("m1", R"(["a"])"), add("m2", R"(["b"])")};
  LedgerBatch google = batch_of(0);
  google.destination = "google";
  google.updates = {add("g1", R"(["c"])")};
  REQUIRE(ledger->apply(meta).is_ok());
  REQUIRE(ledger->apply(google).is_ok());

  auto journal_rows = [&] { return sqlite_exec(path, "SELECT count(*) FROM ledger_journal"); };
  REQUIRE(ledger->flush("vip", "meta").is_ok());
  CHECK(journal_rows() == "1");
  CHECK(*ledger->count("vip", "meta") == 2);

  // The rest of the journal is one scope's alone, and goes in one step.
  REQUIRE(ledger->flush("vip", "google").is_ok());
  CHECK(journal_rows() == "0");
  auto found = ledger->lookup("vip", "google", std::vector<std::string>{"g1"});
  REQUIRE(found.is_ok());
  REQUIRE(found->front().has_value());
  CHECK(found->front()->hashed_keys == R"(["c"])");
  CHECK(*ledger->count("vip", "meta") == 2);
}

TEST_CASE("SQLite fold applies a thousand batches in order") {
  // 1,200 batches of members in random order, folded at once in chunks of 37 rows, so that chunks
  // end in the middle of a member's rows. Another scope's batches lie between this scope's. Runs
  // of keys in order are about two rows long here, so the journal has more runs than one merge
  // reads at once, and the fold merges them in passes first.
  ScratchDir dir;
  auto store = open_store(dir.file("runs.db"), chunks_of(37));
  auto ledger = Ledger::create(store).value();
  std::mt19937 random(7);
  std::map<std::string, std::string> keys;  // The expected keys of each member.
  std::map<std::string, JobId> seen;        // The expected newest mark of each member.
  auto member = [&] { return fmt::format("m{:02}", random() % 60); };

  for (int number = 1; number <= 1200; ++number) {
    const JobId job = number % 3 == 0 ? 0 : 1 + number % 7;
    LedgerBatch batch = batch_of(job);
    for (int i = 0; i < 3; ++i) {
      std::string key = member();
      // Half the keys have the engine's form, which the store packs into a blob, and half are
      // other JSON, which it keeps as text.
      std::string value = number % 2 == 0 ? fmt::format(R"([["email","{:064x}"]])", number * 10 + i)
                                          : fmt::format("[{}]", number * 10 + i);
      batch.updates.push_back(add(key, value));
      keys[key] = value;
      if (job != 0) seen[key] = job;
    }
    if (job != 0) {
      for (int i = 0; i < 2; ++i) {
        std::string key = member();
        batch.seen_member_keys.push_back(key);
        if (keys.count(key) != 0) seen[key] = job;  // A mark of a member not in the ledger is ignored.
      }
    }
    REQUIRE(ledger->apply(batch).is_ok());

    if (number % 3 == 0) {
      LedgerBatch other = batch_of(9);
      other.destination = "google";
      other.updates = {add(member(), "[0]")};
      REQUIRE(ledger->apply(other).is_ok());
    }
  }

  REQUIRE(ledger->flush("vip", "meta").is_ok());
  CHECK(*ledger->count("vip", "meta") == static_cast<std::int64_t>(keys.size()));
  for (const auto& [key, value] : keys) {
    CAPTURE(key);
    LedgerEntry entry = entry_of(*ledger, key);
    CHECK(entry.hashed_keys == value);
    CHECK(entry.last_seen_job == (seen.count(key) != 0 ? seen[key] : 0));
  }
  CHECK(*ledger->count("vip", "google") > 0);
}

TEST_CASE("SQLite fold ignores stale journal rows") {
  // One chunk folds in one transaction, smaller chunks through the sorted copy.
  for (std::int64_t chunk : {500'000, 1}) {
    CAPTURE(chunk);
    ScratchDir dir;
    const std::string path = dir.file("stale.db");
    auto store = open_store(path, chunks_of(chunk));
    auto ledger = Ledger::create(store).value();
    LedgerBatch first = batch_of(7);
    first.updates = {add("k1", R"(["old"])")};
    first.seen_member_keys = {"k1"};
    REQUIRE(ledger->apply(first).is_ok());
    REQUIRE(ledger->flush("vip", "meta").is_ok());
    LedgerBatch second = batch_of(9);
    second.updates = {add("k1", R"(["new"])")};
    second.seen_member_keys = {"k1"};
    REQUIRE(ledger->apply(second).is_ok());
    REQUIRE(ledger->flush("vip", "meta").is_ok());

    // What a second fold of the same pair would apply after this one: journal rows older than the
    // ledger row, with other keys and older marks.
    sqlite_exec(path,
                "INSERT INTO ledger_journal (seq, scope_id, member_key, hashed_keys, operation, outcome, updated_at, "
                "seen_job) SELECT 1, id, 'k1', '[\"stale\"]', 0, 0, 0, 5 FROM ledger_scopes UNION ALL "
                "SELECT 2, id, 'k1', NULL, NULL, NULL, 0, 4 FROM ledger_scopes");
    REQUIRE(ledger->flush("vip", "meta").is_ok());
    LedgerEntry entry = entry_of(*ledger, "k1");
    CHECK(entry.hashed_keys == R"(["new"])");
    CHECK(entry.last_seen_job == 9);
    CHECK(sqlite_exec(path, "SELECT count(*) FROM ledger_journal") == "0");

    // A newer row after the journal was emptied still wins: journal positions are never reused.
    LedgerBatch third = batch_of(0);
    third.updates = {add("k1", R"(["newest"])")};
    REQUIRE(ledger->apply(third).is_ok());
    CHECK(entry_of(*ledger, "k1").hashed_keys == R"(["newest"])");
  }
}

TEST_CASE("SQLite store migrates a version 4 journal") {
  ScratchDir dir;
  const std::string path = dir.file("v4.db");
  {
    auto store = open_store(path);
    auto ledger = Ledger::create(store).value();
    LedgerBatch batch = batch_of(3);
    batch.updates = {add("k1", R"(["a"])"), add("k2", R"(["b"])")};
    batch.seen_member_keys = {"k1"};
    REQUIRE(ledger->apply(batch).is_ok());
  }
  // Back to the version 4 layout, with the journal rows still unfolded.
  sqlite_exec(path,
              "ALTER TABLE ledger DROP COLUMN keys_seq; ALTER TABLE ledger DROP COLUMN seen_seq; "
              "CREATE TABLE journal_v4 (seq INTEGER PRIMARY KEY, scope_id INTEGER NOT NULL, member_key TEXT NOT NULL, "
              "hashed_keys TEXT, operation INTEGER, outcome INTEGER, reason TEXT, updated_at INTEGER NOT NULL, "
              "seen_job INTEGER NOT NULL DEFAULT 0); INSERT INTO journal_v4 SELECT * FROM ledger_journal; "
              "DROP TABLE ledger_journal; ALTER TABLE journal_v4 RENAME TO ledger_journal; "
              "CREATE INDEX ledger_journal_scope ON ledger_journal(scope_id, seq); PRAGMA user_version = 4;");
  REQUIRE(sqlite_exec(path, "SELECT count(*) FROM ledger_journal") == "3");

  auto store = open_store(path, chunks_of(2));
  auto ledger = Ledger::create(store).value();
  CHECK(sqlite_exec(path, "PRAGMA user_version") == "5");
  CHECK(entry_of(*ledger, "k1").hashed_keys == R"(["a"])");
  CHECK(entry_of(*ledger, "k1").last_seen_job == 3);
  CHECK(entry_of(*ledger, "k2").hashed_keys == R"(["b"])");
  CHECK(sqlite_exec(path, "SELECT count(*) FROM ledger_journal") == "0");
}
}

}  // namespace
}  // namespace activation
