#include "storage/sqlite/journal_merge.hpp"

#include <algorithm>
#include <utility>

namespace activation::internal {
namespace {

// The heap's order: a cursor comes later than another when its (member key, seq) is larger.
struct Later {
  const std::vector<RunCursor>* cursors;
  bool operator()(std::size_t a, std::size_t b) const {
    const RunCursor& x = (*cursors)[a];
    const RunCursor& y = (*cursors)[b];
    const int order = x.member_key().compare(y.member_key());
    return order != 0 ? order > 0 : x.seq() > y.seq();
  }
};

}  // namespace

RunCursor::RunCursor(RunCursor&& other) noexcept { *this = std::move(other); }

RunCursor& RunCursor::operator=(RunCursor&& other) noexcept {
  std::swap(stmt_, other.stmt_);
  run_ = other.run_;
  position_ = other.position_;
  seq_ = other.seq_;
  scope_ = other.scope_;
  done_ = other.done_;
  member_key_ = other.member_key_;
  seen_job_ = other.seen_job_;
  return *this;
}

RunCursor::~RunCursor() { sqlite3_finalize(stmt_); }

Result<RunCursor> RunCursor::prepare(SqliteConnection& connection, const char* sql, JournalRun run,
                                     std::int64_t scope) {
  RunCursor cursor;
  const int rc = sqlite3_prepare_v2(connection.handle(), sql, -1, &cursor.stmt_, nullptr);
  if (rc != SQLITE_OK) return connection.error(rc, "prepare a ledger journal merge");
  cursor.run_ = run;
  cursor.position_ = run.first;
  cursor.scope_ = scope;
  return cursor;
}

Status RunCursor::seek(SqliteConnection& connection) {
  if (done_) return Status();
  sqlite3_reset(stmt_);
  sqlite3_bind_int64(stmt_, 1, position_);
  sqlite3_bind_int64(stmt_, 2, run_.last);
  if (scope_ != 0) sqlite3_bind_int64(stmt_, 3, scope_);
  return step(connection);
}

Status RunCursor::step(SqliteConnection& connection) {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    // Read once per row, because the merge compares keys many times.
    position_ = sqlite3_column_int64(stmt_, 0);
    seq_ = sqlite3_column_int64(stmt_, 1);
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, 2));
    member_key_ = std::string_view(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, 2)));
    seen_job_ = sqlite3_column_int64(stmt_, 8);
    return Status();
  }
  done_ = true;
  member_key_ = {};
  sqlite3_reset(stmt_);
  if (rc == SQLITE_DONE) return Status();
  return connection.error(rc, "read the ledger journal");
}

void RunCursor::pause() { sqlite3_reset(stmt_); }

Status JournalMerge::open(SqliteConnection& connection, const char* sql, std::span<const JournalRun> runs,
                          std::int64_t scope) {
  cursors_.clear();
  heap_.clear();
  for (const JournalRun& run : runs) {
    ACT_ASSIGN_OR_RETURN(auto cursor, RunCursor::prepare(connection, sql, run, scope));
    cursors_.push_back(std::move(cursor));
  }
  start_chunk(std::numeric_limits<std::int64_t>::max());
  return Status();
}

void JournalMerge::start_chunk(std::int64_t rows) {
  chunk_rows_ = rows;
  chunk_start_.clear();
  for (const RunCursor& cursor : cursors_) chunk_start_.push_back(cursor.place());
}

void JournalMerge::finish_chunk() {
  for (RunCursor& cursor : cursors_) cursor.pause();
}

Status JournalMerge::scan(SqliteConnection& connection) {
  heap_.clear();
  read_ = 0;
  chunk_has_marks_ = false;
  for (std::size_t i = 0; i < cursors_.size(); ++i) {
    cursors_[i].restore(chunk_start_[i]);
    ACT_RETURN_IF_ERROR(cursors_[i].seek(connection));
    if (!cursors_[i].done()) heap_.push_back(i);
  }
  std::make_heap(heap_.begin(), heap_.end(), Later{&cursors_});
  at_end_ = heap_.empty();
  return Status();
}

Status JournalMerge::next(SqliteConnection& connection) {
  if (at_end_) return Status();
  ++read_;
  if (row().seen_job() != 0) chunk_has_marks_ = true;
  // Only the rows from the chunk's minimum on may end it, so only their keys are kept.
  if (read_ >= chunk_rows_) last_key_.assign(row().member_key());
  std::pop_heap(heap_.begin(), heap_.end(), Later{&cursors_});
  RunCursor& cursor = cursors_[heap_.back()];
  ACT_RETURN_IF_ERROR(cursor.step(connection));
  if (cursor.done()) {
    heap_.pop_back();
  } else {
    std::push_heap(heap_.begin(), heap_.end(), Later{&cursors_});
  }
  // A chunk ends after its last member's rows: at the first row of another member once it has
  // enough rows.
  at_end_ = heap_.empty() || (read_ >= chunk_rows_ && row().member_key() != last_key_);
  return Status();
}

void DirectMergeRows::result(sqlite3_context* context, int column) const {
  // The run's column after its position: seq is column 1 of the run's statement.
  sqlite3_result_value(context, merge_.row().value(column + 1));
}

Status FedMergeRows::scan() {
  stop();
  for (Block& block : blocks_) {
    block.count = 0;
    block.last = false;
  }
  head_ = 0;
  ready_ = 0;
  stopping_ = false;
  producer_status_ = Status();
  row_in_block_ = 0;
  read_ = 0;
  at_end_ = false;
  producer_ = std::thread(&FedMergeRows::produce, this);
  return wait_for_row();
}

Status FedMergeRows::next() {
  if (at_end_) return Status();
  ++row_in_block_;
  ++read_;
  return wait_for_row();
}

Status FedMergeRows::wait_for_row() {
  std::unique_lock lock(mutex_);
  while (true) {
    blocks_moved_.wait(lock, [&] { return ready_ > 0; });
    const Block& block = blocks_[head_];
    if (row_in_block_ < block.count) return Status();
    if (block.last) {
      at_end_ = true;
      return producer_status_;
    }
    // Every row of the block was read, so the reading thread may fill it again.
    head_ = (head_ + 1) % kBlocks;
    --ready_;
    row_in_block_ = 0;
    blocks_moved_.notify_all();
  }
}

void FedMergeRows::result(sqlite3_context* context, int column) const {
  // blocks_[head_] stays put until next() moves past it, and SQLite copies the value.
  const Value& value = blocks_[head_].rows[row_in_block_][static_cast<std::size_t>(column)];
  switch (value.type) {
    case SQLITE_INTEGER: sqlite3_result_int64(context, value.integer); return;
    case SQLITE_FLOAT: sqlite3_result_double(context, value.real); return;
    case SQLITE_TEXT:
      sqlite3_result_text(context, value.bytes.data(), static_cast<int>(value.bytes.size()), SQLITE_TRANSIENT);
      return;
    case SQLITE_BLOB:
      sqlite3_result_blob(context, value.bytes.data(), static_cast<int>(value.bytes.size()), SQLITE_TRANSIENT);
      return;
    default: sqlite3_result_null(context); return;
  }
}

void FedMergeRows::produce() {
  Status status = merge_.scan(reader_);
  while (true) {
    std::size_t index = 0;
    {
      std::unique_lock lock(mutex_);
      blocks_moved_.wait(lock, [&] { return stopping_ || ready_ < kBlocks; });
      if (stopping_) break;
      index = (head_ + ready_) % kBlocks;
    }
    // The statement's thread reads only published blocks, so this one belongs to the reading thread.
    Block& block = blocks_[index];
    block.count = 0;
    if (block.rows.size() < kBlockRows) block.rows.resize(kBlockRows);
    while (status.is_ok() && !merge_.at_end() && block.count < kBlockRows) {
      Row& row = block.rows[block.count++];
      const RunCursor& cursor = merge_.row();
      for (std::size_t column = 0; column < row.size(); ++column) {
        sqlite3_value* source = cursor.value(static_cast<int>(column) + 1);
        Value& value = row[column];
        value.type = sqlite3_value_type(source);
        switch (value.type) {
          case SQLITE_INTEGER: value.integer = sqlite3_value_int64(source); break;
          case SQLITE_FLOAT: value.real = sqlite3_value_double(source); break;
          case SQLITE_TEXT: {
            const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(source));
            value.bytes.assign(text == nullptr ? "" : text, static_cast<std::size_t>(sqlite3_value_bytes(source)));
            break;
          }
          case SQLITE_BLOB: {
            // An empty blob has no pointer.
            const auto* bytes = static_cast<const char*>(sqlite3_value_blob(source));
            value.bytes.assign(bytes == nullptr ? "" : bytes, static_cast<std::size_t>(sqlite3_value_bytes(source)));
            break;
          }
          default: break;
        }
      }
      status = merge_.next(reader_);
    }
    block.last = !status.is_ok() || merge_.at_end();
    std::lock_guard lock(mutex_);
    if (!status.is_ok()) producer_status_ = status;
    ++ready_;
    blocks_moved_.notify_all();
    if (block.last) break;
  }
  // Resets the run statements on the thread that stepped them, which ends the reader's read
  // transaction.
  merge_.finish_chunk();
}

void FedMergeRows::stop() {
  if (!producer_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    blocks_moved_.notify_all();
  }
  producer_.join();
  at_end_ = true;
}

namespace {

// The module's data on one connection: where a scan finds the rows to read.
struct MergeModule {
  MergeRows** current;
};

// The virtual table. SQLite reads it through the callbacks below.
struct MergeTable {
  sqlite3_vtab base;  // First, as SQLite requires.
  const MergeModule* module;
};

// One scan of the table, over the rows that were current when it started.
struct MergeScan {
  sqlite3_vtab_cursor base;  // First, as SQLite requires.
  MergeRows* rows = nullptr;
};

MergeTable* table_of(sqlite3_vtab* table) { return reinterpret_cast<MergeTable*>(table); }
MergeScan* scan_of(sqlite3_vtab_cursor* cursor) { return reinterpret_cast<MergeScan*>(cursor); }

// Reports `status` as the error of the statement that reads the table.
int fail(sqlite3_vtab* table, const Status& status) {
  sqlite3_free(table->zErrMsg);
  table->zErrMsg = sqlite3_mprintf("%s", status.message().c_str());
  return SQLITE_ERROR;
}

int merge_connect(sqlite3* db, void* aux, int, const char* const*, sqlite3_vtab** out, char**) {
  const int rc = sqlite3_declare_vtab(
      db,
      "CREATE TABLE x(seq INTEGER, member_key TEXT, hashed_keys, operation INTEGER, outcome INTEGER, "
      "reason TEXT, updated_at INTEGER, seen_job INTEGER)");
  if (rc != SQLITE_OK) return rc;
  auto* table = static_cast<MergeTable*>(sqlite3_malloc(sizeof(MergeTable)));
  if (table == nullptr) return SQLITE_NOMEM;
  *table = MergeTable{};
  table->module = static_cast<const MergeModule*>(aux);
  *out = &table->base;
  return SQLITE_OK;
}

int merge_disconnect(sqlite3_vtab* table) {
  sqlite3_free(table);
  return SQLITE_OK;
}

int merge_best_index(sqlite3_vtab*, sqlite3_index_info* info) {
  // Every constraint is left to SQLite. Rows come in member-key order, so an ORDER BY or GROUP BY
  // of member_key alone needs no sort.
  if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == 1 && !info->aOrderBy[0].desc) {
    info->orderByConsumed = 1;
  }
  info->estimatedCost = 1e6;
  info->estimatedRows = 1000000;
  return SQLITE_OK;
}

int merge_open(sqlite3_vtab*, sqlite3_vtab_cursor** out) {
  auto* scan = static_cast<MergeScan*>(sqlite3_malloc(sizeof(MergeScan)));
  if (scan == nullptr) return SQLITE_NOMEM;
  *scan = MergeScan{};
  *out = &scan->base;
  return SQLITE_OK;
}

int merge_close(sqlite3_vtab_cursor* cursor) {
  sqlite3_free(cursor);
  return SQLITE_OK;
}

int merge_filter(sqlite3_vtab_cursor* cursor, int, const char*, int, sqlite3_value**) {
  const MergeModule* module = table_of(cursor->pVtab)->module;
  MergeScan* scan = scan_of(cursor);
  scan->rows = *module->current;
  if (scan->rows == nullptr) {
    return fail(cursor->pVtab, internal_error("ledger_journal_merge was read outside a fold"));
  }
  Status status = scan->rows->scan();
  return status.is_ok() ? SQLITE_OK : fail(cursor->pVtab, status);
}

int merge_next(sqlite3_vtab_cursor* cursor) {
  Status status = scan_of(cursor)->rows->next();
  return status.is_ok() ? SQLITE_OK : fail(cursor->pVtab, status);
}

int merge_eof(sqlite3_vtab_cursor* cursor) {
  const MergeScan* scan = scan_of(cursor);
  return scan->rows == nullptr || scan->rows->at_end() ? 1 : 0;
}

int merge_column(sqlite3_vtab_cursor* cursor, sqlite3_context* context, int column) {
  scan_of(cursor)->rows->result(context, column);
  return SQLITE_OK;
}

int merge_rowid(sqlite3_vtab_cursor* cursor, sqlite3_int64* rowid) {
  *rowid = scan_of(cursor)->rows->rows_read();
  return SQLITE_OK;
}

sqlite3_module make_module() {
  sqlite3_module module{};
  module.iVersion = 0;
  module.xCreate = nullptr;  // Eponymous only: no CREATE VIRTUAL TABLE.
  module.xConnect = merge_connect;
  module.xBestIndex = merge_best_index;
  module.xDisconnect = merge_disconnect;
  module.xDestroy = nullptr;
  module.xOpen = merge_open;
  module.xClose = merge_close;
  module.xFilter = merge_filter;
  module.xNext = merge_next;
  module.xEof = merge_eof;
  module.xColumn = merge_column;
  module.xRowid = merge_rowid;
  return module;
}

const sqlite3_module kMergeModule = make_module();

}  // namespace

Status register_journal_merge(SqliteConnection& connection, MergeRows** current) {
  auto* module = new MergeModule{current};
  const int rc = sqlite3_create_module_v2(connection.handle(), "ledger_journal_merge", &kMergeModule, module,
                                          [](void* aux) { delete static_cast<MergeModule*>(aux); });
  if (rc != SQLITE_OK) return connection.error(rc, "register ledger_journal_merge");
  return Status();
}

}  // namespace activation::internal
