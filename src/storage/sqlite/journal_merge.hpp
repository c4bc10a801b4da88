// The merge of a ledger journal's sorted runs, read by SQL as the virtual table
// ledger_journal_merge, so that a fold applies it with INSERT ... SELECT instead of sorting the
// journal first.
//
// The engine writes each batch's ledger updates in member-key order, so a scope's journal is a
// series of runs sorted by member key (journal positions increase within a run). The merge reads
// each run with a statement of its own and yields the rows in (member key, seq) order: the order
// a sort of the journal would give, without the sort's copies.
//
// Thread safety: a JournalMerge and the connection it reads belong to one thread at a time.
#ifndef ACTIVATION_SRC_STORAGE_SQLITE_JOURNAL_MERGE_HPP_
#define ACTIVATION_SRC_STORAGE_SQLITE_JOURNAL_MERGE_HPP_

#include <sqlite3.h>

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "storage/sqlite/sqlite_connection.hpp"

namespace activation::internal {

// The rows of one sorted run: from position `first` to `last`. Positions are journal positions
// (seq) in ledger_journal and rowids in a merge table.
struct JournalRun {
  std::int64_t first = 0;
  std::int64_t last = 0;
};

// Reads one run with a statement of its own. The statement's columns: position, seq, member_key,
// hashed_keys, operation, outcome, reason, updated_at, seen_job.
class RunCursor {
 public:
  RunCursor() = default;
  RunCursor(RunCursor&& other) noexcept;
  RunCursor& operator=(RunCursor&& other) noexcept;
  RunCursor(const RunCursor&) = delete;
  RunCursor& operator=(const RunCursor&) = delete;
  ~RunCursor();

  // `sql` binds the run's first and last positions as ?1 and ?2, and `scope` as ?3 unless it is 0.
  static Result<RunCursor> prepare(SqliteConnection& connection, const char* sql, JournalRun run,
                                   std::int64_t scope);

  // Reads the run from its place: its current row, or the place given to restore().
  Status seek(SqliteConnection& connection);
  Status step(SqliteConnection& connection);
  // Ends the statement's read, so that the transaction can end. seek() reads again.
  void pause();

  struct Place {
    std::int64_t position = 0;
    bool done = false;
  };
  Place place() const noexcept { return {position_, done_}; }
  void restore(Place place) noexcept {
    position_ = place.position;
    done_ = place.done;
  }

  bool done() const noexcept { return done_; }
  std::int64_t seq() const noexcept { return seq_; }
  // Valid until the next step, seek or pause.
  std::string_view member_key() const noexcept { return member_key_; }
  std::int64_t seen_job() const noexcept { return seen_job_; }
  // Column `index` of the current row (1 for seq, ..., 8 for seen_job).
  sqlite3_value* value(int index) const { return sqlite3_column_value(stmt_, index); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  JournalRun run_;
  std::int64_t position_ = 0;
  std::int64_t seq_ = 0;
  std::int64_t scope_ = 0;
  bool done_ = false;
  std::string_view member_key_;
  std::int64_t seen_job_ = 0;
};

// The rows of a set of runs in (member key, seq) order, one chunk at a time.
class JournalMerge {
 public:
  // Prepares a cursor for each run. The next scan starts at each run's first row.
  Status open(SqliteConnection& connection, const char* sql, std::span<const JournalRun> runs,
              std::int64_t scope);

  // Starts a chunk where the last one ended: `rows` rows at least, then up to the end of the last
  // member's rows, so that all rows of a member are in one chunk. Until the next start_chunk(),
  // each scan reads this chunk from its start, so a second statement can read the same rows.
  void start_chunk(std::int64_t rows);
  // Ends the read of the chunk's statements, so that the transaction can end.
  void finish_chunk();
  // After a scan, true when no row is left after the chunk.
  bool finished() const noexcept { return heap_.empty(); }
  // True when a row of the chunk marked its member seen (seen_job is not 0).
  bool chunk_has_marks() const noexcept { return chunk_has_marks_; }

  // The virtual table's scan.
  Status scan(SqliteConnection& connection);
  bool at_end() const noexcept { return at_end_; }
  Status next(SqliteConnection& connection);
  const RunCursor& row() const { return cursors_[heap_.front()]; }
  std::int64_t rows_read() const noexcept { return read_; }

 private:
  std::vector<RunCursor> cursors_;
  std::vector<std::size_t> heap_;  // Indexes of the cursors with a current row, smallest first.
  std::vector<RunCursor::Place> chunk_start_;
  std::int64_t chunk_rows_ = std::numeric_limits<std::int64_t>::max();
  std::int64_t read_ = 0;
  std::string last_key_;  // The member key of the row read last, once the chunk has its minimum.
  bool at_end_ = true;
  bool chunk_has_marks_ = false;
};

// Registers the eponymous virtual table ledger_journal_merge on `connection`. A statement over it
// reads the merge that `*current` points to when it starts. Its columns: seq, member_key,
// hashed_keys, operation, outcome, reason, updated_at, seen_job. It is ordered by member_key.
Status register_journal_merge(SqliteConnection& connection, JournalMerge** current);

}  // namespace activation::internal

#endif  // ACTIVATION_SRC_STORAGE_SQLITE_JOURNAL_MERGE_HPP_
