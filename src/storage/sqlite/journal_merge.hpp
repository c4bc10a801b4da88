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
// During a scan of FedMergeRows, that is FedMergeRows' own thread.
#ifndef ACTIVATION_SRC_STORAGE_SQLITE_JOURNAL_MERGE_HPP_
#define ACTIVATION_SRC_STORAGE_SQLITE_JOURNAL_MERGE_HPP_

#include <sqlite3.h>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
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

// The rows that a statement over ledger_journal_merge reads: one chunk of a JournalMerge.
class MergeRows {
 public:
  virtual ~MergeRows() = default;

  // Starts a read of the merge's current chunk from its start.
  virtual Status scan() = 0;
  virtual Status next() = 0;
  virtual bool at_end() const = 0;
  // Sets the result of `context` to column `column` of the current row (0 for seq, ..., 7 for
  // seen_job).
  virtual void result(sqlite3_context* context, int column) const = 0;
  virtual std::int64_t rows_read() const = 0;
  // Ends the chunk's reads, so that the transactions of the connections involved can end.
  virtual void finish() = 0;
};

// Reads a JournalMerge on the thread of the statement, over the merge's own connection.
class DirectMergeRows final : public MergeRows {
 public:
  DirectMergeRows(JournalMerge& merge, SqliteConnection& connection) : merge_(merge), connection_(connection) {}

  Status scan() override { return merge_.scan(connection_); }
  Status next() override { return merge_.next(connection_); }
  bool at_end() const override { return merge_.at_end(); }
  void result(sqlite3_context* context, int column) const override;
  std::int64_t rows_read() const override { return merge_.rows_read(); }
  void finish() override { merge_.finish_chunk(); }

 private:
  JournalMerge& merge_;
  SqliteConnection& connection_;
};

// Reads a JournalMerge on a thread of its own, over a connection that only this class uses while
// a scan runs, and hands its rows over in blocks. The statement that reads them (the fold's
// upsert on another connection) then spends its time in the ledger's B-tree while the journal's
// runs are read and merged on a second core.
class FedMergeRows final : public MergeRows {
 public:
  FedMergeRows(JournalMerge& merge, SqliteConnection& reader) : merge_(merge), reader_(reader) {}
  FedMergeRows(const FedMergeRows&) = delete;
  FedMergeRows& operator=(const FedMergeRows&) = delete;
  ~FedMergeRows() override { stop(); }

  Status scan() override;
  Status next() override;
  bool at_end() const override { return at_end_; }
  void result(sqlite3_context* context, int column) const override;
  std::int64_t rows_read() const override { return read_; }
  // Stops the reading thread and waits for it. The merge's statements are reset by then.
  void finish() override { stop(); }

 private:
  // A copy of one column: its SQLite type and its value.
  struct Value {
    int type = SQLITE_NULL;
    std::int64_t integer = 0;
    double real = 0;
    std::string bytes;
  };
  using Row = std::array<Value, 8>;
  struct Block {
    std::vector<Row> rows;
    std::size_t count = 0;
    bool last = false;  // No block follows in this scan.
  };
  static constexpr std::size_t kBlocks = 4;
  static constexpr std::size_t kBlockRows = 512;

  void produce();
  void stop();
  // Waits until the current row is in a block, moving past used blocks, or the scan has ended.
  Status wait_for_row();

  JournalMerge& merge_;
  SqliteConnection& reader_;
  std::thread producer_;

  // Blocks are read at head_ and filled at (head_ + ready_) % kBlocks. A block belongs to the
  // reading thread until it is published (ready_ grows), then to the statement's thread until
  // that moves past it (head_ moves on). The other members are guarded by mutex_.
  std::array<Block, kBlocks> blocks_;
  std::mutex mutex_;
  std::condition_variable blocks_moved_;
  std::size_t head_ = 0;
  std::size_t ready_ = 0;
  bool stopping_ = false;
  Status producer_status_;  // The reading thread's error, if any.

  // The statement's thread only.
  std::size_t row_in_block_ = 0;  // The current row in blocks_[head_].
  std::int64_t read_ = 0;
  bool at_end_ = true;
};

// Registers the eponymous virtual table ledger_journal_merge on `connection`. A statement over it
// reads the rows that `*current` points to when it starts. Its columns: seq, member_key,
// hashed_keys, operation, outcome, reason, updated_at, seen_job. It is ordered by member_key.
Status register_journal_merge(SqliteConnection& connection, MergeRows** current);

}  // namespace activation::internal

#endif  // ACTIVATION_SRC_STORAGE_SQLITE_JOURNAL_MERGE_HPP_
