// Checkpoints and the membership ledger in the SQLite store.
#include <algorithm>
#include <array>
#include <limits>

#include <fmt/format.h>

#include "storage/sqlite/journal_merge.hpp"
#include "storage/sqlite/packed_keys.hpp"
#include "storage/sqlite/sqlite_store.hpp"

namespace activation::internal {
namespace {

using std::chrono::milliseconds;

std::int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

#define ACT_CHECKPOINT_COLUMNS "job_id, destination, batch_number, source_position, counters, session_state, updated_at"
#define ACT_LEDGER_COLUMNS "member_key, hashed_keys, operation, outcome, reason, updated_at, last_seen_job"
// A fold's statements, over the journal rows that `rows` selects: a FROM ... WHERE clause with
// the scope as ?1 and a range as ?2 and ?3. A row's keys replace those of an older journal row
// only, and a member's newest mark sets last_seen_job unless a newer mark is already there.
// SQLite takes the bare column seen_job from the row with max(seq).
#define ACT_FOLD_UPSERT(rows, order)                                                                       \
  "INSERT INTO ledger (scope_id, member_key, hashed_keys, operation, outcome, reason, updated_at, keys_seq) " \
  "SELECT ?1, member_key, hashed_keys, operation, outcome, reason, updated_at, seq FROM " rows               \
  " AND hashed_keys IS NOT NULL ORDER BY " order                                                           \
  " ON CONFLICT (scope_id, member_key) DO UPDATE SET hashed_keys = excluded.hashed_keys, "                 \
  "operation = excluded.operation, outcome = excluded.outcome, reason = excluded.reason, "                 \
  "updated_at = excluded.updated_at, keys_seq = excluded.keys_seq WHERE excluded.keys_seq > ledger.keys_seq"
#define ACT_FOLD_MARKS(rows)                                                                               \
  "UPDATE ledger SET last_seen_job = marks.job, seen_seq = marks.seq FROM (SELECT member_key, "            \
  "seen_job AS job, max(seq) AS seq FROM " rows " AND seen_job <> 0 GROUP BY member_key) AS marks "        \
  "WHERE ledger.scope_id = ?1 AND ledger.member_key = marks.member_key AND marks.seq > ledger.seen_seq"
#define ACT_FOLD_FROM_JOURNAL "ledger_journal WHERE scope_id = ?1 AND seq BETWEEN ?2 AND ?3"

Checkpoint read_checkpoint(const Statement& row) {
  Checkpoint checkpoint;
  checkpoint.job_id = row.column_int64(0);
  checkpoint.destination = row.column_text(1);
  checkpoint.batch_number = row.column_int64(2);
  checkpoint.source_position = row.column_text(3);
  checkpoint.counters = row.column_text(4);
  checkpoint.session_state = row.column_text(5);
  checkpoint.updated_at = Timestamp(milliseconds(row.column_int64(6)));
  return checkpoint;
}

// hashed_keys is a BLOB when the store packed it (packed_keys.hpp) and TEXT otherwise, as in
// stores written before packing.
Result<LedgerEntry> read_entry(const Statement& row) {
  LedgerEntry entry;
  entry.member_key = row.column_text(0);
  if (row.column_is_blob(1)) {
    if (!unpack_keys(row.column_blob(1), entry.hashed_keys)) {
      return Status(StatusCode::kDataLoss,
                    fmt::format("ledger entry of member {}: hashed_keys is a BLOB that is not in the packed form "
                                "this store writes",
                                entry.member_key));
    }
  } else {
    entry.hashed_keys = row.column_text(1);
  }
  entry.operation = row.column_int64(2) == 1 ? LedgerOperation::kRemove : LedgerOperation::kAdd;
  switch (row.column_int64(3)) {
    case 1: entry.outcome = LedgerOutcome::kRejected; break;
    case 2: entry.outcome = LedgerOutcome::kDeferred; break;
    default: entry.outcome = LedgerOutcome::kAccepted; break;
  }
  entry.reason = row.column_text(4);
  entry.updated_at = Timestamp(milliseconds(row.column_int64(5)));
  entry.last_seen_job = row.column_int64(6);
  return entry;
}

// Runs a fold's upsert and marks statements (ACT_FOLD_UPSERT, ACT_FOLD_MARKS) over the rows
// from `from` to `to`.
Status apply_fold_rows(SqliteConnection& connection, const char* upsert_sql, const char* marks_sql,
                       std::int64_t scope, std::int64_t from, std::int64_t to) {
  {
    ACT_ASSIGN_OR_RETURN(auto upsert, connection.prepare(upsert_sql));
    upsert.bind(1, scope).bind(2, from).bind(3, to);
    ACT_RETURN_IF_ERROR(upsert.run());
  }
  ACT_ASSIGN_OR_RETURN(auto marks, connection.prepare(marks_sql));
  marks.bind(1, scope).bind(2, from).bind(3, to);
  return marks.run();
}

// Deletes, inside the caller's write transaction, up to `chunk` journal rows of `scope` at
// positions up to `last`, and sets `more` when some are left. When the journal contains nothing
// else, it is emptied in one step: SQLite frees its pages whole instead of deleting row by row.
Status erase_folded_journal(SqliteConnection& connection, std::int64_t scope, std::int64_t last, std::int64_t chunk,
                            bool& more) {
  {
    ACT_ASSIGN_OR_RETURN(auto rest, connection.prepare(
        "SELECT (SELECT min(scope_id) FROM ledger_journal), (SELECT max(scope_id) FROM ledger_journal), "
        "(SELECT max(seq) FROM ledger_journal)"));
    ACT_ASSIGN_OR_RETURN(const bool row, rest.step());
    if (row && rest.column_int64(0) == scope && rest.column_int64(1) == scope && rest.column_int64(2) <= last) {
      more = false;
      return connection.exec("DELETE FROM ledger_journal");
    }
  }
  std::int64_t bound = last;
  {
    ACT_ASSIGN_OR_RETURN(auto next, connection.prepare(
        "SELECT seq FROM ledger_journal WHERE scope_id = ?1 AND seq <= ?2 ORDER BY seq LIMIT 1 OFFSET ?3"));
    next.bind(1, scope).bind(2, last).bind(3, chunk);
    ACT_ASSIGN_OR_RETURN(const bool row, next.step());
    more = row;
    if (row) bound = next.column_int64(0) - 1;
  }
  ACT_ASSIGN_OR_RETURN(auto erase, connection.prepare("DELETE FROM ledger_journal WHERE scope_id = ?1 AND seq <= ?2"));
  erase.bind(1, scope).bind(2, bound);
  return erase.run();
}

}  // namespace

Result<std::int64_t> SqliteStore::scope_id(SqliteConnection& connection, std::string_view audience,
                                           std::string_view destination, bool create) {
  // Only ids read outside a write transaction are cached: an id inserted by a transaction that
  // later rolls back must not outlive it.
  if (!create) {
    std::lock_guard lock(scopes_mutex_);
    auto found = scopes_.find(std::pair<std::string, std::string>(audience, destination));
    if (found != scopes_.end()) return found->second;
  }

  std::int64_t id = 0;
  {
    ACT_ASSIGN_OR_RETURN(auto select, connection.prepare(
        "SELECT id FROM ledger_scopes WHERE audience = ?1 AND destination = ?2"));
    select.bind(1, audience).bind(2, destination);
    ACT_ASSIGN_OR_RETURN(const bool row, select.step());
    if (row) id = select.column_int64(0);
  }
  if (id == 0 && create) {
    ACT_ASSIGN_OR_RETURN(auto insert, connection.prepare(
        "INSERT INTO ledger_scopes (audience, destination) VALUES (?1, ?2) RETURNING id"));
    insert.bind(1, audience).bind(2, destination);
    ACT_ASSIGN_OR_RETURN(const bool row, insert.step());
    if (!row) return internal_error("inserting a ledger scope returned no id");
    id = insert.column_int64(0);
    ACT_RETURN_IF_ERROR(insert.run());
  }
  if (id != 0 && !create) {
    std::lock_guard lock(scopes_mutex_);
    scopes_.emplace(std::pair<std::string, std::string>(audience, destination), id);
  }
  return id;
}

namespace {

// Rows per INSERT statement when a batch is appended to the journal. A statement's own cost (its
// run, and the AUTOINCREMENT counter it reads and writes) then falls on many rows: in a test of a
// million journal rows, 32 rows per statement took about half the time of one.
constexpr std::size_t kJournalRowsPerInsert = 32;

// "INSERT INTO <table and columns> VALUES <row>, <row>, ..." with `rows` copies of `row`, whose
// parameters are anonymous and so numbered in order.
std::string multi_row_insert(std::string_view head, std::string_view row, std::size_t rows) {
  std::string sql(head);
  sql += " VALUES ";
  for (std::size_t i = 0; i < rows; ++i) {
    if (i > 0) sql += ',';
    sql += row;
  }
  return sql;
}

// The journal inserts, for one row and for kJournalRowsPerInsert rows. The texts live as long as
// the process, as SqliteConnection::prepare() requires.
struct JournalInserts {
  std::string update_one;
  std::string update_many;
  std::string mark_one;
  std::string mark_many;
};

const JournalInserts& journal_inserts() {
  static const JournalInserts* const kInserts = [] {
    constexpr std::string_view kUpdate =
        "INSERT INTO ledger_journal (scope_id, member_key, hashed_keys, operation, outcome, reason, updated_at, "
        "seen_job)";
    constexpr std::string_view kUpdateRow = "(?,?,?,?,?,?,?,?)";
    constexpr std::string_view kMark = "INSERT INTO ledger_journal (scope_id, member_key, updated_at, seen_job)";
    constexpr std::string_view kMarkRow = "(?,?,?,?)";
    auto* inserts = new JournalInserts();
    inserts->update_one = multi_row_insert(kUpdate, kUpdateRow, 1);
    inserts->update_many = multi_row_insert(kUpdate, kUpdateRow, kJournalRowsPerInsert);
    inserts->mark_one = multi_row_insert(kMark, kMarkRow, 1);
    inserts->mark_many = multi_row_insert(kMark, kMarkRow, kJournalRowsPerInsert);
    return inserts;
  }();
  return *kInserts;
}

}  // namespace

// Ledger updates are appended to ledger_journal in the batch's transaction. Appending at the end
// of a rowid table writes a few pages per batch. Upserting random member keys into the ledger's
// B-tree dirties one page per member once the ledger outgrows the page cache. The journal is
// folded into the ledger in member-key order before the scope is read, and when a run ends
// (flush_ledger), so that each ledger page is written once per fold rather than once per member.
// Rows go in kJournalRowsPerInsert at a time, in the batch's order, which gives them increasing
// positions as one row per statement would.
Status SqliteStore::apply_ledger_locked(SqliteConnection& connection, const LedgerBatch& batch, std::int64_t now) {
  if (batch.empty()) return Status();
  ACT_ASSIGN_OR_RETURN(const std::int64_t scope, scope_id(connection, batch.audience, batch.destination, true));
  const JournalInserts& inserts = journal_inserts();

  // Each row of a statement binds its own packed keys, which must outlive the statement's run.
  std::array<std::string, kJournalRowsPerInsert> packed;
  const std::vector<LedgerUpdate>& updates = batch.updates;
  for (std::size_t first = 0; first < updates.size();) {
    const std::size_t rows = updates.size() - first >= kJournalRowsPerInsert ? kJournalRowsPerInsert : 1;
    ACT_ASSIGN_OR_RETURN(auto append, connection.prepare(rows == 1 ? inserts.update_one.c_str()
                                                                   : inserts.update_many.c_str()));
    for (std::size_t row = 0; row < rows; ++row) {
      const LedgerUpdate& update = updates[first + row];
      const int base = static_cast<int>(row * 8);
      append.bind(base + 1, scope).bind(base + 2, update.member_key);
      if (pack_keys(update.hashed_keys, packed[row])) {
        append.bind_blob(base + 3, packed[row]);
      } else {
        append.bind(base + 3, update.hashed_keys);
      }
      append.bind(base + 4, static_cast<int>(update.operation))
          .bind(base + 5, static_cast<int>(update.outcome))
          .bind_text_or_null(base + 6, update.reason)
          .bind(base + 7, now)
          .bind(base + 8, batch.seen_by_job);
    }
    ACT_RETURN_IF_ERROR(append.run());
    first += rows;
  }
  // A mark that a job saw a member: hashed_keys stays NULL and only last_seen_job changes on fold.
  if (batch.seen_by_job != 0) {
    const std::vector<std::string>& keys = batch.seen_member_keys;
    for (std::size_t first = 0; first < keys.size();) {
      const std::size_t rows = keys.size() - first >= kJournalRowsPerInsert ? kJournalRowsPerInsert : 1;
      ACT_ASSIGN_OR_RETURN(auto mark, connection.prepare(rows == 1 ? inserts.mark_one.c_str()
                                                                   : inserts.mark_many.c_str()));
      for (std::size_t row = 0; row < rows; ++row) {
        const int base = static_cast<int>(row * 4);
        mark.bind(base + 1, scope).bind(base + 2, keys[first + row]).bind(base + 3, now).bind(base + 4,
                                                                                           batch.seen_by_job);
      }
      ACT_RETURN_IF_ERROR(mark.run());
      first += rows;
    }
  }
  return Status();
}

// A journal of one chunk at most folds in one write transaction. A larger one is merged from its
// sorted runs on the fold's own connections (fold_journal_runs). The merge is applied in write
// transactions of one chunk each (SqliteStoreOptions::ledger_fold_chunk), each to its own range
// of member keys, so that a ledger page is written once per fold however large the journal.
// Last, it deletes the folded journal rows. Another process may fold
// the same pair meanwhile: keys_seq and seen_seq make a ledger row take only journal rows newer
// than what it holds, so applying a row twice, or an older row after a newer one, changes nothing.
// A fold that fails has deleted only journal rows it applied, and the next fold starts again from
// the rest.
Status SqliteStore::fold_journal(std::string_view audience, std::string_view destination) {
  // Rows per write transaction: bounds how long one fold holds the write lock that claims and
  // heartbeats of other workers wait for.
  const std::int64_t chunk = options_.ledger_fold_chunk;
  std::int64_t scope = 0;
  bool pending = false;
  bool large = false;
  ACT_RETURN_IF_ERROR(read([&](SqliteConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(scope, scope_id(connection, audience, destination, false));
    if (scope == 0) return Status();
    ACT_ASSIGN_OR_RETURN(auto any, connection.prepare(
        "SELECT 1 FROM ledger_journal WHERE scope_id = ?1 LIMIT 1"));
    any.bind(1, scope);
    ACT_ASSIGN_OR_RETURN(pending, any.step());
    if (!pending) return Status();
    ACT_ASSIGN_OR_RETURN(auto beyond, connection.prepare(
        "SELECT 1 FROM ledger_journal WHERE scope_id = ?1 ORDER BY seq LIMIT 1 OFFSET ?2"));
    beyond.bind(1, scope).bind(2, chunk);
    ACT_ASSIGN_OR_RETURN(large, beyond.step());
    return Status();
  }));
  if (!pending) return Status();

  // A small journal, such as a mirror run's batch, needs no sorted copy.
  if (!large) {
    return write("fold ledger journal", [&](SqliteConnection& connection) -> Status {
      ACT_RETURN_IF_ERROR(apply_fold_rows(connection, ACT_FOLD_UPSERT(ACT_FOLD_FROM_JOURNAL, "member_key, seq"),
                                          ACT_FOLD_MARKS(ACT_FOLD_FROM_JOURNAL), scope, 0,
                                          std::numeric_limits<std::int64_t>::max()));
      bool more = false;
      return erase_folded_journal(connection, scope, std::numeric_limits<std::int64_t>::max(),
                                  std::numeric_limits<std::int64_t>::max(), more);
    });
  }

  std::lock_guard lock(fold_mutex_);
  if (fold_connection_ == nullptr) {
    ACT_ASSIGN_OR_RETURN(auto opened, open_extra_connection(/*read_only=*/false));
    ACT_RETURN_IF_ERROR(register_journal_merge(*opened, &fold_rows_));
    // The fold's commits are checkpointed as the writer's are, mostly off this thread.
    sqlite3_wal_hook(opened->handle(), &SqliteStore::on_wal_commit, this);
    fold_connection_ = std::move(opened);
  }
  if (fold_reader_ == nullptr) {
    // It is not query_only, because the merge passes write its temporary tables.
    ACT_ASSIGN_OR_RETURN(auto opened, open_extra_connection(/*read_only=*/false));
    ACT_RETURN_IF_ERROR(register_journal_merge(*opened, &pass_rows_));
    // A merge reads each run in order, so it needs about one leaf page per run in cache: 4 MiB
    // of 4 KiB pages (SQLite's default size) for the 1,024 runs a merge reads at most, and the
    // rest for the tables' interior pages.
    ACT_RETURN_IF_ERROR(opened->exec("PRAGMA cache_size = -8192"));
    fold_reader_ = std::move(opened);
  }
  Status status = fold_journal_runs(*fold_connection_, *fold_reader_, scope, chunk);
  // The pass tables are dropped in any case, because a fold that failed starts again from the
  // journal, and their pages go back to the system.
  for (const char* sql : {"DROP TABLE IF EXISTS temp.fold_rows_a", "DROP TABLE IF EXISTS temp.fold_rows_b"}) {
    Status dropped = fold_reader_->exec(sql);
    if (status.is_ok()) status = dropped;
  }
  return status;
}

namespace {

// Runs merged at once. Each run takes a statement and a current row, about 2.5 KB by the peak RSS
// of folds of 100 and 991 runs. A journal of more runs is merged in passes through temporary
// tables first, and a pass costs about as much as the apply (21 s and 26 s at 10,000,000 rows).
constexpr std::size_t kMergeFanIn = 1024;

constexpr const char* kJournalRunSql =
    "SELECT seq, seq, member_key, hashed_keys, operation, outcome, reason, updated_at, seen_job FROM "
    "ledger_journal NOT INDEXED WHERE seq BETWEEN ?1 AND ?2 AND scope_id = ?3";
constexpr const char* kPassTables[] = {"fold_rows_a", "fold_rows_b"};

std::string with_table(const char* pattern, const char* table) {
  return fmt::format(fmt::runtime(pattern), table);
}

}  // namespace

// 1. Runs. The engine writes each batch's rows in member-key order, so the journal is a series of
//    sorted runs. Rows in another order only make more, shorter runs. One read of the keys finds
//    where each run starts.
// 2. Passes. While there are more than kMergeFanIn runs, each group of kMergeFanIn is merged into
//    one run of a temporary table. An add run in batches of 10,000 rows needs no pass up to
//    10,240,000 rows. The passes read the store and write temporary tables only, so they take no
//    write lock.
// 3. Apply. The merge of the remaining runs, the virtual table ledger_journal_merge, is upserted
//    into the ledger in member-key order, in write transactions of about one chunk each. The runs
//    are read and merged on `reader` by another thread meanwhile (FedMergeRows).
// 4. The folded journal rows are deleted.
Status SqliteStore::fold_journal_runs(SqliteConnection& connection, SqliteConnection& reader, std::int64_t scope,
                                      std::int64_t chunk) {
  JournalMerge merge;
  DirectMergeRows pass_rows(merge, reader);
  FedMergeRows fold_rows(merge, reader);
  pass_rows_ = &pass_rows;
  fold_rows_ = &fold_rows;
  struct Release {
    MergeRows*& pass;
    MergeRows*& fold;
    ~Release() {
      pass = nullptr;
      fold = nullptr;
    }
  } release{pass_rows_, fold_rows_};

  std::int64_t last = 0;
  std::vector<JournalRun> runs;
  const char* run_sql = kJournalRunSql;
  std::int64_t run_scope = scope;
  std::string table_sql;  // The runs' statement when they are in a pass table.
  ACT_RETURN_IF_ERROR(run_transaction(reader, "BEGIN", "merge ledger journal runs", [&](SqliteConnection& c) -> Status {
    {
      // When every journal row belongs to this pair, reading the table in journal order skips a
      // lookup from the index into the table for every row.
      ACT_ASSIGN_OR_RETURN(auto scopes, c.prepare(
          "SELECT (SELECT min(scope_id) FROM ledger_journal), (SELECT max(scope_id) FROM ledger_journal)"));
      ACT_ASSIGN_OR_RETURN(const bool any, scopes.step());
      const bool alone = any && scopes.column_int64(0) == scope && scopes.column_int64(1) == scope;
      scopes.reset();
      ACT_ASSIGN_OR_RETURN(auto keys, c.prepare(
          alone ? "SELECT seq, member_key FROM ledger_journal NOT INDEXED ORDER BY seq"
                : "SELECT seq, member_key FROM ledger_journal WHERE scope_id = ?1 ORDER BY seq"));
      if (!alone) keys.bind(1, scope);
      std::string previous;
      while (true) {
        ACT_ASSIGN_OR_RETURN(const bool row, keys.step());
        if (!row) break;
        const std::int64_t seq = keys.column_int64(0);
        const std::string_view key = keys.column_text_view(1);
        if (runs.empty() || key < previous) runs.push_back(JournalRun{seq, seq});
        runs.back().last = seq;
        previous.assign(key);
        last = seq;
      }
    }
    for (int pass = 0; runs.size() > kMergeFanIn; ++pass) {
      const char* table = kPassTables[pass % 2];
      ACT_RETURN_IF_ERROR(c.exec(with_table(
          "CREATE TEMP TABLE IF NOT EXISTS {} (seq INTEGER NOT NULL, member_key TEXT NOT NULL, hashed_keys, "
          "operation INTEGER, outcome INTEGER, reason TEXT, updated_at INTEGER NOT NULL, seen_job INTEGER NOT NULL)",
          table).c_str()));
      ACT_RETURN_IF_ERROR(c.exec(with_table("DELETE FROM temp.{}", table).c_str()));
      std::vector<JournalRun> longer;
      for (std::size_t first = 0; first < runs.size(); first += kMergeFanIn) {
        const std::size_t count = std::min(kMergeFanIn, runs.size() - first);
        ACT_RETURN_IF_ERROR(merge.open(c, run_sql, std::span(runs).subspan(first, count), run_scope));
        ACT_ASSIGN_OR_RETURN(const std::int64_t before,
                             c.query_int(with_table("SELECT coalesce(max(rowid), 0) FROM temp.{}", table).c_str()));
        ACT_RETURN_IF_ERROR(c.exec(with_table(
            "INSERT INTO temp.{} SELECT seq, member_key, hashed_keys, operation, outcome, reason, updated_at, "
            "seen_job FROM ledger_journal_merge",
            table).c_str()));
        longer.push_back(JournalRun{before + 1, before + merge.rows_read()});
      }
      runs = std::move(longer);
      table_sql = with_table(
          "SELECT rowid, seq, member_key, hashed_keys, operation, outcome, reason, updated_at, seen_job FROM "
          "temp.{} WHERE rowid BETWEEN ?1 AND ?2",
          table);
      run_sql = table_sql.c_str();
      run_scope = 0;
    }
    return Status();
  }));
  if (runs.empty()) return Status();

  // 3. Apply. A row's keys replace those of an older journal row only, and after the upserts, a
  // member's newest mark in the chunk sets last_seen_job unless a newer mark is already there.
  // A chunk without marks needs no second read.
  // The runs are read on the reader, by fold_rows' thread while each statement below reads
  // ledger_journal_merge. Each statement's end stops that thread and resets the runs'
  // statements, so the reader has no open read transaction when the chunk's transaction commits.
  ACT_RETURN_IF_ERROR(merge.open(reader, run_sql, runs, run_scope));
  do {
    merge.start_chunk(chunk);
    ACT_RETURN_IF_ERROR(run_transaction(connection, "BEGIN IMMEDIATE", "fold ledger journal",
                                        [&](SqliteConnection& c) -> Status {
      // Runs a statement over the chunk's rows, then ends the merge's reads in any case.
      auto over_chunk = [&](const char* sql) -> Status {
        ACT_ASSIGN_OR_RETURN(auto statement, c.prepare(sql));
        statement.bind(1, scope);
        Status status = statement.run();
        fold_rows.finish();
        return status;
      };
      ACT_RETURN_IF_ERROR(over_chunk(
          "INSERT INTO ledger (scope_id, member_key, hashed_keys, operation, outcome, reason, updated_at, "
          "keys_seq) SELECT ?1, member_key, hashed_keys, operation, outcome, reason, updated_at, seq FROM "
          "ledger_journal_merge WHERE hashed_keys IS NOT NULL ON CONFLICT (scope_id, member_key) DO UPDATE SET "
          "hashed_keys = excluded.hashed_keys, operation = excluded.operation, outcome = excluded.outcome, "
          "reason = excluded.reason, updated_at = excluded.updated_at, keys_seq = excluded.keys_seq "
          "WHERE excluded.keys_seq > ledger.keys_seq"));
      if (!merge.chunk_has_marks()) return Status();
      return over_chunk(
          "UPDATE ledger SET last_seen_job = marks.job, seen_seq = marks.seq FROM (SELECT member_key, "
          "seen_job AS job, max(seq) AS seq FROM ledger_journal_merge WHERE seen_job <> 0 GROUP BY member_key) "
          "AS marks WHERE ledger.scope_id = ?1 AND ledger.member_key = marks.member_key AND "
          "marks.seq > ledger.seen_seq");
    }));
  } while (!merge.finished());

  // 4. Delete the folded journal rows.
  bool more = true;
  while (more) {
    ACT_RETURN_IF_ERROR(run_transaction(connection, "BEGIN IMMEDIATE", "delete folded ledger journal",
                                        [&](SqliteConnection& c) {
                                          return erase_folded_journal(c, scope, last, chunk, more);
                                        }));
  }
  return Status();
}

Status SqliteStore::flush_ledger(std::string_view audience, std::string_view destination) {
  return fold_journal(audience, destination);
}

Result<std::optional<Checkpoint>> SqliteStore::load_checkpoint(JobId job_id, std::string_view destination) {
  std::optional<Checkpoint> checkpoint;
  ACT_RETURN_IF_ERROR(read([&](SqliteConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare(
        "SELECT " ACT_CHECKPOINT_COLUMNS " FROM checkpoints WHERE job_id = ?1 AND destination = ?2"));
    statement.bind(1, job_id).bind(2, destination);
    ACT_ASSIGN_OR_RETURN(const bool row, statement.step());
    if (row) checkpoint = read_checkpoint(statement);
    return Status();
  }));
  return checkpoint;
}

Result<std::vector<Checkpoint>> SqliteStore::load_checkpoints(JobId job_id) {
  std::vector<Checkpoint> checkpoints;
  ACT_RETURN_IF_ERROR(read([&](SqliteConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare(
        "SELECT " ACT_CHECKPOINT_COLUMNS " FROM checkpoints WHERE job_id = ?1 ORDER BY destination"));
    statement.bind(1, job_id);
    while (true) {
      ACT_ASSIGN_OR_RETURN(const bool row, statement.step());
      if (!row) break;
      checkpoints.push_back(read_checkpoint(statement));
    }
    return Status();
  }));
  return checkpoints;
}

Status SqliteStore::commit_checkpoint(const Checkpoint& checkpoint, const LedgerBatch* ledger, const Lease* lease) {
  const std::int64_t now = now_ms();
  return write("commit checkpoint", [&](SqliteConnection& connection) -> Status {
    if (lease != nullptr) ACT_RETURN_IF_ERROR(check_lease(connection, *lease, "commit a batch of"));

    {
      ACT_ASSIGN_OR_RETURN(auto stored, connection.prepare(
          "SELECT batch_number FROM checkpoints WHERE job_id = ?1 AND destination = ?2"));
      stored.bind(1, checkpoint.job_id).bind(2, checkpoint.destination);
      ACT_ASSIGN_OR_RETURN(const bool row, stored.step());
      if (row && stored.column_int64(0) > checkpoint.batch_number) {
        return conflict(fmt::format(
            "checkpoint of job {} destination '{}' is at batch {}; saving batch {} would move it back",
            checkpoint.job_id, checkpoint.destination, stored.column_int64(0), checkpoint.batch_number));
      }
    }
    {
      ACT_ASSIGN_OR_RETURN(auto upsert, connection.prepare(
          "INSERT INTO checkpoints (" ACT_CHECKPOINT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
          "ON CONFLICT (job_id, destination) DO UPDATE SET batch_number = excluded.batch_number, "
          "source_position = excluded.source_position, counters = excluded.counters, "
          "session_state = excluded.session_state, updated_at = excluded.updated_at"));
      upsert.bind(1, checkpoint.job_id)
          .bind(2, checkpoint.destination)
          .bind(3, checkpoint.batch_number)
          .bind(4, checkpoint.source_position)
          .bind(5, checkpoint.counters)
          .bind(6, checkpoint.session_state)
          .bind(7, now);
      ACT_RETURN_IF_ERROR(upsert.run());
    }
    if (ledger != nullptr) ACT_RETURN_IF_ERROR(apply_ledger_locked(connection, *ledger, now));
    return Status();
  });
}

Status SqliteStore::clear_checkpoint(JobId job_id, std::string_view destination) {
  return write("clear checkpoint", [&](SqliteConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare(
        "DELETE FROM checkpoints WHERE job_id = ?1 AND destination = ?2"));
    statement.bind(1, job_id).bind(2, destination);
    return statement.run();
  });
}

Result<std::vector<std::optional<LedgerEntry>>> SqliteStore::lookup_members(std::string_view audience,
                                                                            std::string_view destination,
                                                                            std::span<const std::string> member_keys) {
  std::vector<std::optional<LedgerEntry>> entries(member_keys.size());
  ACT_RETURN_IF_ERROR(fold_journal(audience, destination));
  ACT_RETURN_IF_ERROR(read([&](SqliteConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(const std::int64_t scope, scope_id(connection, audience, destination, false));
    if (scope == 0) return Status();
    // Point lookups on the primary key inside one read transaction: each costs one B-tree descent,
    // and the pages near the top stay in the cache across the batch.
    ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare(
        "SELECT " ACT_LEDGER_COLUMNS " FROM ledger WHERE scope_id = ?1 AND member_key = ?2"));
    for (std::size_t i = 0; i < member_keys.size(); ++i) {
      statement.bind(1, scope).bind(2, member_keys[i]);
      ACT_ASSIGN_OR_RETURN(const bool row, statement.step());
      if (row) {
        ACT_ASSIGN_OR_RETURN(entries[i], read_entry(statement));
      }
      statement.reset();
    }
    return Status();
  }));
  return entries;
}

Status SqliteStore::apply_ledger(const LedgerBatch& batch) {
  if (batch.empty()) return Status();
  const std::int64_t now = now_ms();
  return write("apply ledger updates",
               [&](SqliteConnection& connection) { return apply_ledger_locked(connection, batch, now); });
}

Result<std::vector<LedgerEntry>> SqliteStore::page_members(std::string_view audience, std::string_view destination,
                                                           MemberScan filter, JobId job, std::string_view after_key,
                                                           int limit) {
  std::vector<LedgerEntry> entries;
  ACT_RETURN_IF_ERROR(fold_journal(audience, destination));
  ACT_RETURN_IF_ERROR(read([&](SqliteConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(const std::int64_t scope, scope_id(connection, audience, destination, false));
    if (scope == 0) return Status();
    const char* sql = filter == MemberScan::kAll
                          ? "SELECT " ACT_LEDGER_COLUMNS " FROM ledger WHERE scope_id = ?1 AND member_key > ?2 "
                            "ORDER BY member_key LIMIT ?3"
                          : "SELECT " ACT_LEDGER_COLUMNS " FROM ledger WHERE scope_id = ?1 AND member_key > ?2 "
                            "AND operation = 0 AND outcome = 0 AND last_seen_job <> ?4 ORDER BY member_key LIMIT ?3";
    ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare(sql));
    statement.bind(1, scope).bind(2, after_key).bind(3, limit);
    if (filter != MemberScan::kAll) statement.bind(4, job);
    while (true) {
      ACT_ASSIGN_OR_RETURN(const bool row, statement.step());
      if (!row) break;
      ACT_ASSIGN_OR_RETURN(auto entry, read_entry(statement));
      entries.push_back(std::move(entry));
    }
    return Status();
  }));
  return entries;
}

Result<std::int64_t> SqliteStore::count_members(std::string_view audience, std::string_view destination) {
  std::int64_t count = 0;
  ACT_RETURN_IF_ERROR(fold_journal(audience, destination));
  ACT_RETURN_IF_ERROR(read([&](SqliteConnection& connection) -> Status {
    ACT_ASSIGN_OR_RETURN(const std::int64_t scope, scope_id(connection, audience, destination, false));
    if (scope == 0) return Status();
    ACT_ASSIGN_OR_RETURN(auto statement, connection.prepare("SELECT count(*) FROM ledger WHERE scope_id = ?1"));
    statement.bind(1, scope);
    ACT_ASSIGN_OR_RETURN(const bool row, statement.step());
    if (row) count = statement.column_int64(0);
    return Status();
  }));
  return count;
}

}  // namespace activation::internal
