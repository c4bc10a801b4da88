#include "engine/pipeline.hpp"

#include <algorithm>
#include <cstdlib>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <sqlite3.h>

#include "engine/member.hpp"
#include "engine/outcome_log.hpp"
#include "platforms/platform_services.hpp"

namespace activation::engine {
namespace {

using Clock = std::chrono::steady_clock;

// The checkpoint's source_position records the phase of a run: "source:<position>" while the
// source is read, "leavers" while a mirror or replace run handles members absent from the source,
// and "done" when the destination finished.
constexpr std::string_view kSourcePrefix = "source:";
constexpr std::string_view kLeaversPhase = "leavers";
constexpr std::string_view kDonePhase = "done";

// A batch also closes when this many rows were read since the last commit, so that a source of
// mostly invalid or unchanged rows still commits its position and counters regularly.
constexpr std::size_t kMinRowsPerCommit = 10000;

// Progress snapshots are published at most this often, except the final one.
constexpr auto kProgressInterval = std::chrono::milliseconds(200);

// Rate-limit waits do not use up batch attempts, but a destination that never stops throttling
// still ends after this many.
constexpr int kMaxRateLimitWaits = 100;

bool is_retryable(StatusCode code) {
  return code == StatusCode::kUnavailable || code == StatusCode::kIoError ||
         code == StatusCode::kDeadlineExceeded || code == StatusCode::kResourceExhausted;
}

// The members seen by a dry run, kept in a private temporary SQLite database so that memory does
// not depend on the audience size. A dry run must not mark them in the ledger.
class SeenSet {
 public:
  ~SeenSet() {
    sqlite3_finalize(insert_);
    sqlite3_finalize(query_);
    sqlite3_close_v2(db_);
  }

  Status open() {
    // An empty file name opens a private database on disk that SQLite deletes on close.
    if (sqlite3_open_v2("", &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK ||
        sqlite3_exec(db_,
                     "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; CREATE TABLE seen(k TEXT PRIMARY KEY) "
                     "WITHOUT ROWID;",
                     nullptr, nullptr, nullptr) != SQLITE_OK ||
        sqlite3_prepare_v2(db_, "INSERT OR IGNORE INTO seen(k) VALUES (?)", -1, &insert_, nullptr) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db_, "SELECT 1 FROM seen WHERE k = ?", -1, &query_, nullptr) != SQLITE_OK) {
      return io_error(std::string("dry run: cannot create its temporary database: ") + sqlite3_errmsg(db_));
    }
    return Status::ok();
  }

  void add(const std::vector<std::string>& keys) {
    sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr);
    for (const auto& key : keys) {
      sqlite3_bind_text(insert_, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
      sqlite3_step(insert_);
      sqlite3_reset(insert_);
    }
    sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  }

  bool contains(const std::string& key) {
    sqlite3_bind_text(query_, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    bool found = sqlite3_step(query_) == SQLITE_ROW;
    sqlite3_reset(query_);
    return found;
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* query_ = nullptr;
};

// A valid row waiting for its batch.
struct PendingRow {
  std::uint64_t line = 0;
  RowIdentifiers ids;
  int remove_index = -1;  // Index of its remove in the batch, or -1.
  int add_index = -1;     // Index of its add in the batch, or -1.
  bool unchanged = false;
};

// Rows read and normalized by the reading thread, waiting for the delivery thread. The counts
// cover only these rows, so that a checkpoint's counters always match its source position.
struct ReadBatch {
  std::vector<PendingRow> rows;  // The first `count` are this batch's valid rows; the rest are reused.
  std::size_t count = 0;
  std::vector<RowOutcomeRecord> invalid_records;
  DestinationCounters counts;
  std::string next_position;
  std::optional<double> fraction;
};

// The values a progress report shows, taken on the thread that sends, for a report made on
// another thread.
struct ProgressSnapshot {
  DestinationCounters counters;
  std::optional<double> fraction;
  std::string waiting;
};

// A sent batch's writes to the store and its report, taken when it was sent, so that the next
// batch may be sent while these are written.
struct BatchCommit {
  LedgerBatch ledger;
  Checkpoint checkpoint;
  std::vector<RowOutcomeRecord> outcome_records;
  ProgressSnapshot progress;
};

void add_counts(DestinationCounters& total, const DestinationCounters& part) {
  total.rows_read += part.rows_read;
  for (int i = 0; i < kRowOutcomeCount; ++i) total.outcomes[i] += part.outcomes[i];
  total.adds_sent += part.adds_sent;
  total.removes_sent += part.removes_sent;
  total.unchanged += part.unchanged;
  total.members_left += part.members_left;
  total.batches += part.batches;
  total.batch_retries += part.batch_retries;
  for (int field = 0; field < kFieldCount; ++field) {
    total.fields[field].valid += part.fields[field].valid;
    total.fields[field].dropped += part.fields[field].dropped;
    for (int i = 0; i < kRowOutcomeCount; ++i) total.fields[field].rows[i] += part.fields[field].rows[i];
  }
  for (const auto& [code, count] : part.reasons) total.reasons[code] += count;
}

// An element's place in a sort by key: its key's first eight bytes as a big-endian number, which
// orders as the bytes do, and its index.
struct KeyOrder {
  std::uint64_t prefix = 0;
  std::uint32_t index = 0;
};

std::uint64_t key_prefix(std::string_view key) {
  std::uint64_t prefix = 0;
  const std::size_t n = std::min<std::size_t>(key.size(), 8);
  for (std::size_t i = 0; i < n; ++i) prefix |= std::uint64_t{static_cast<unsigned char>(key[i])} << (56 - 8 * i);
  return prefix;
}

// Sorts `items` by the string `key_of` returns, keeping equal keys in their order. It sorts small
// records of eight key bytes and an index, then swaps each item into its place, so no string is
// copied and each keeps its buffer. `order` is scratch space, kept between calls.
template <typename T, typename KeyOf>
void sort_by_key(std::vector<T>& items, KeyOf key_of, std::vector<KeyOrder>& order) {
  order.resize(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    order[i] = KeyOrder{key_prefix(key_of(items[i])), static_cast<std::uint32_t>(i)};
  }
  std::sort(order.begin(), order.end(), [&](const KeyOrder& a, const KeyOrder& b) {
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    const int compared = key_of(items[a.index]).compare(key_of(items[b.index]));
    return compared != 0 ? compared < 0 : a.index < b.index;
  });
  // Position i takes the item at order[i].index. Each cycle of that permutation is followed once,
  // and an index set to its own position marks it done.
  for (std::size_t start = 0; start < order.size(); ++start) {
    std::size_t at = start;
    while (order[at].index != start) {
      const std::size_t from = order[at].index;
      std::swap(items[at], items[from]);
      order[at].index = static_cast<std::uint32_t>(at);
      at = from;
    }
    order[at].index = static_cast<std::uint32_t>(at);
  }
}

RowOutcome worse(RowOutcome a, RowOutcome b) {
  auto rank = [](RowOutcome outcome) {
    switch (outcome) {
      case RowOutcome::kInvalid: return 3;
      case RowOutcome::kRejected: return 2;
      case RowOutcome::kDeferred: return 1;
      case RowOutcome::kAccepted: return 0;
    }
    return 0;
  };
  return rank(a) >= rank(b) ? a : b;
}

LedgerOutcome to_ledger(RowOutcome outcome) {
  switch (outcome) {
    case RowOutcome::kRejected: return LedgerOutcome::kRejected;
    case RowOutcome::kDeferred: return LedgerOutcome::kDeferred;
    default: return LedgerOutcome::kAccepted;
  }
}

class Pipeline {
 public:
  Pipeline(const PipelineRequest& request, const PipelineServices& services)
      : request_(request), services_(services), random_(std::random_device{}()) {}

  PipelineResult run() {
    PipelineResult result;
    Status status = run_phases();
    result.counters = counters_;
    if (status.is_ok()) {
      result.state = cancelled_ ? RunState::kCancelled : RunState::kDone;
    } else {
      result.state = RunState::kFailed;
      result.error = status;
      result.retryable = is_retryable(status.code());
      result.lease_lost = status.code() == StatusCode::kConflict;
    }
    report(result.state, status, /*force=*/true);
    save_run_record(result.state, status.is_ok() ? std::string() : status.message());
    return result;
  }

 private:
  const std::string& name() const { return request_.destination.name; }

  Status run_phases() {
    ACT_RETURN_IF_ERROR(prepare());
    if (phase_ == kDonePhase) return Status::ok();

    if (phase_ == kSourcePrefix) {
      ACT_RETURN_IF_ERROR(run_source());
      if (cancelled_) return Status::ok();
    }
    if (request_.mode == SyncMode::kReplace) {
      // The platform drops the members absent from the source only when the adapter's finish()
      // completes the replace, so the ledger marks them removed after it, never before: a replace
      // that the platform refused leaves the ledger as it was.
      ACT_RETURN_IF_ERROR(finish_adapter());
      ACT_RETURN_IF_ERROR(run_leavers());
      if (cancelled_) return Status::ok();
      return finish_run();
    }
    if (request_.mode == SyncMode::kMirror) {
      ACT_RETURN_IF_ERROR(run_leavers());
      if (cancelled_) return Status::ok();
    }
    ACT_RETURN_IF_ERROR(finish_adapter());
    return finish_run();
  }

  Status prepare() {
    ACT_ASSIGN_OR_RETURN(outcome_log_, OutcomeLog::open(request_.outcome_log_path));
    ACT_ASSIGN_OR_RETURN(adapter_, create_adapter(request_.destination, services_.logger));

    Platform profile = request_.destination.profile.value_or(adapter_->profile());
    NormalizerOptions options;
    options.default_region = request_.audience.default_region;
    options.google_canonicalize_gmail = request_.audience.google_canonicalize_gmail;
    auto normalizer = Normalizer::create(profile, options);
    if (!normalizer.is_ok()) {
      return invalid_argument("destination '" + name() + "': " + normalizer.status().message());
    }
    processor_ = std::make_unique<RowProcessor>(std::move(*normalizer));

    batch_size_ = request_.batch_size == 0 ? 10000 : request_.batch_size;
    batch_size_ = std::min(batch_size_, adapter_->max_batch_size());
    rows_per_commit_ = std::max(kMinRowsPerCommit, batch_size_ * 4);

    // The columns a file or a multi-key schema needs: each field the profile accepts, as often as
    // the mapping names it.
    for (const auto& column : request_.audience.source.mapping) {
      if (!processor_->accepts(column.field)) continue;
      auto found = std::find_if(field_slots_.begin(), field_slots_.end(),
                                [&](const auto& slot) { return slot.first == column.field; });
      if (found == field_slots_.end()) {
        field_slots_.emplace_back(column.field, 1);
      } else {
        ++found->second;
      }
    }
    std::sort(field_slots_.begin(), field_slots_.end());

    ACT_ASSIGN_OR_RETURN(source_, open_source(request_.audience.source));

    std::string session_state = "{}";
    bool resumed = false;
    phase_ = kSourcePrefix;
    if (!request_.dry_run) {
      ACT_ASSIGN_OR_RETURN(auto checkpoint, services_.checkpointer->load(request_.job_id, name()));
      if (checkpoint) {
        resumed = true;
        batch_number_ = checkpoint->batch_number;
        session_state = checkpoint->session_state;
        ACT_ASSIGN_OR_RETURN(counters_, DestinationCounters::from_json(checkpoint->counters));
        const std::string& position = checkpoint->source_position;
        if (position == kDonePhase) {
          phase_ = kDonePhase;
          return Status::ok();
        }
        if (position == kLeaversPhase) {
          phase_ = kLeaversPhase;
        } else if (position.rfind(kSourcePrefix, 0) == 0) {
          ACT_RETURN_IF_ERROR(source_->seek(std::string_view(position).substr(kSourcePrefix.size())));
        } else {
          return Status(StatusCode::kDataLoss, "destination '" + name() + "': checkpoint position '" +
                                                   position + "' is not one this engine writes");
        }
        services_.logger.log(LogLevel::kInfo, "engine",
                             "job {} destination {}: resuming after batch {} ({} rows read)", request_.job_id,
                             name(), batch_number_, counters_.rows_read);
      }
    } else {
      seen_ = std::make_unique<SeenSet>();
      ACT_RETURN_IF_ERROR(seen_->open());
    }
    session_state_ = session_state;
    start_rows_ = counters_.rows_read;
    start_time_ = Clock::now();
    start_fraction_ = fraction();
    read_fraction_ = start_fraction_;

    if (!request_.dry_run) {
      DestinationRun run;
      run.job_id = request_.job_id;
      run.audience = request_.audience.name;
      run.destination = name();
      run.mode = request_.mode;
      run.field_slots = field_slots_;
      run.session_state = session_state;
      run.resumed = resumed;
      ACT_RETURN_IF_ERROR(adapter_->begin(run));
    }
    report(RunState::kRunning, {}, true);
    return Status::ok();
  }

  std::optional<double> fraction() const {
    if (!source_) return std::nullopt;
    SourceExtent extent = source_->extent();
    if (!extent.total) return std::nullopt;
    if (*extent.total == 0) return 1.0;
    return std::min(1.0, static_cast<double>(extent.done) / static_cast<double>(*extent.total));
  }

  bool cancel_requested() const { return services_.cancel_requested && services_.cancel_requested(); }

  // Reads rows until a batch is full or the source ends, then hands the batch to a delivery thread
  // that sends and commits it, and reads the next batch meanwhile. Deliveries run in source order,
  // and a mirror's ledger lookups see every earlier commit. Usually at most one batch is in
  // flight, so the checkpoint names the only batch a crash may send again. Some destinations
  // replace a batch that is sent again (replaces_resent_batches()). For those, in a run that looks
  // nothing up in the ledger (add and replace), a batch's commit runs on a thread of its own while
  // the next batch is sent. A crash may then send two batches again, which replace what they wrote.
  Status run_source() {
    ReadBatch buffers[2];
    BatchCommit commits[2];
    int current = 0;
    const bool overlap = !request_.dry_run &&
                         (request_.mode == SyncMode::kAdd || request_.mode == SyncMode::kReplace) &&
                         adapter_->replaces_resent_batches();
    // Declared before `delivering`, whose task may wait on it, so that it is destroyed after.
    std::future<Status> committing;
    std::future<Status> delivering;
    SourceRow row;
    bool more = true;
    while (more) {
      if (cancel_requested()) {
        cancelled_ = true;
        break;
      }
      ReadBatch& batch = buffers[current];
      batch.count = 0;
      batch.invalid_records.clear();
      batch.counts = DestinationCounters{};
      std::size_t read = 0;
      while (batch.count < batch_size_ && read < rows_per_commit_) {
        ACT_ASSIGN_OR_RETURN(more, source_->next(row));
        if (!more) break;
        ++read;
        ++batch.counts.rows_read;
        take_row(row, batch);
      }
      batch.next_position = more ? "source:" + source_->position() : std::string(kLeaversPhase);
      batch.fraction = fraction();

      if (delivering.valid()) ACT_RETURN_IF_ERROR(delivering.get());
      BatchCommit& commit = commits[current];
      delivering = std::async(std::launch::async, [this, &batch, &commit, &committing, overlap] {
        ACT_RETURN_IF_ERROR(process_batch(batch, commit));
        if (!overlap) return write_commit(commit);
        // One commit at a time, in batch order, so that checkpoints only move forward.
        if (committing.valid()) ACT_RETURN_IF_ERROR(committing.get());
        committing = std::async(std::launch::async, [this, &commit] { return write_commit(commit); });
        return Status::ok();
      });
      current ^= 1;
    }
    if (delivering.valid()) ACT_RETURN_IF_ERROR(delivering.get());
    if (committing.valid()) ACT_RETURN_IF_ERROR(committing.get());
    return Status::ok();
  }

  // Normalizes one row into the batch's pending rows, or counts it invalid.
  void take_row(const SourceRow& row, ReadBatch& batch) {
    if (!row.valid()) {
      count_invalid(row.line, *row.error, 0, batch);
      return;
    }
    if (batch.count == batch.rows.size()) batch.rows.emplace_back();
    PendingRow& pending = batch.rows[batch.count];
    auto invalid = processor_->process(row, pending.ids, batch.counts);
    if (invalid) {
      count_invalid(row.line, *invalid, pending.ids.fields_present, batch);
      return;
    }
    pending.line = row.line;
    pending.remove_index = -1;
    pending.add_index = -1;
    pending.unchanged = false;
    ++batch.count;
  }

  void count_invalid(std::uint64_t line, const Reason& reason, std::uint32_t fields_present, ReadBatch& batch) {
    constexpr int kInvalid = static_cast<int>(RowOutcome::kInvalid);
    DestinationCounters& counts = batch.counts;
    ++counts.outcomes[kInvalid];
    ++counts.reasons[reason.code];
    for (int field = 0; field < kFieldCount; ++field) {
      if (fields_present & (1u << field)) ++counts.fields[field].rows[kInvalid];
    }
    batch.invalid_records.push_back(
        RowOutcomeRecord{name(), line, "", RowOutcome::kInvalid, reason.code, reason.message, ""});
  }

  // Turns a read batch's rows into operations by the sync mode, sends them, and takes what its
  // commit writes into `commit`. Runs on the delivery thread; it alone touches counters_ and the
  // adapter during the source phase.
  Status process_batch(ReadBatch& read_batch, BatchCommit& commit) {
    add_counts(counters_, read_batch.counts);
    outcome_records_ = std::move(read_batch.invalid_records);
    read_fraction_ = read_batch.fraction;
    std::vector<PendingRow>& rows = read_batch.rows;
    const std::size_t row_count = read_batch.count;
    const std::string& next_position = read_batch.next_position;
    std::vector<std::optional<LedgerEntry>> entries;
    if (row_count > 0 && (request_.mode == SyncMode::kMirror || request_.mode == SyncMode::kRemove)) {
      std::vector<std::string> keys;
      keys.reserve(row_count);
      for (std::size_t i = 0; i < row_count; ++i) keys.push_back(rows[i].ids.member_key);
      ACT_ASSIGN_OR_RETURN(entries, services_.ledger->lookup(request_.audience.name, name(), keys));
    }

    // Removes first, then adds: a member whose keys changed loses its old keys before it gets new ones.
    // The operations, and below the ledger updates, overwrite those of an earlier batch, so their
    // strings keep their capacity.
    Batch& batch = send_batch_;
    // The ledger entry of row `i` when the destination has the member (an accepted add), else null.
    auto held_entry = [&](std::size_t i) -> const LedgerEntry* {
      if (entries.empty() || !entries[i]) return nullptr;
      const LedgerEntry& entry = *entries[i];
      const bool accepted_add =
          entry.operation == LedgerOperation::kAdd && entry.outcome == LedgerOutcome::kAccepted;
      return accepted_add ? &entry : nullptr;
    };
    std::size_t remove_count = 0;
    std::size_t add_count = 0;
    for (std::size_t i = 0; i < row_count; ++i) {
      PendingRow& row = rows[i];
      const LedgerEntry* entry = held_entry(i);
      switch (request_.mode) {
        case SyncMode::kAdd:
        case SyncMode::kReplace:
          row.add_index = static_cast<int>(add_count++);
          break;
        case SyncMode::kRemove:
          row.remove_index = static_cast<int>(remove_count++);
          break;
        case SyncMode::kMirror:
          if (entry && entry->hashed_keys == row.ids.keys_json) {
            row.unchanged = true;
            break;
          }
          if (entry) row.remove_index = static_cast<int>(remove_count++);
          row.add_index = static_cast<int>(add_count++);
          break;
      }
    }
    batch.operations.resize(remove_count + add_count);
    for (std::size_t i = 0; i < row_count; ++i) {
      PendingRow& row = rows[i];
      if (row.remove_index >= 0) {
        MemberOperation& operation = batch.operations[row.remove_index];
        operation.type = OperationType::kRemove;
        operation.member_key.assign(row.ids.member_key);
        operation.line = row.line;
        // A member in the ledger is removed with exactly the keys it was added with.
        if (const LedgerEntry* entry = held_entry(i)) {
          ACT_ASSIGN_OR_RETURN(operation.identifiers, decode_keys(entry->hashed_keys));
        } else {
          operation.identifiers = row.ids.identifiers;
        }
      }
      if (row.add_index >= 0) {
        row.add_index += static_cast<int>(remove_count);
        MemberOperation& operation = batch.operations[row.add_index];
        operation.type = OperationType::kAdd;
        operation.member_key.assign(row.ids.member_key);
        operation.line = row.line;
        // The row takes the operation's earlier identifiers, whose strings the next batch
        // overwrites in place.
        std::swap(operation.identifiers, row.ids.identifiers);
      }
    }

    std::vector<OperationResult> results(batch.operations.size());
    if (!batch.operations.empty()) {
      batch.number = batch_number_ + 1;
      ACT_RETURN_IF_ERROR(send(batch, results));
      batch_number_ = batch.number;
      ++counters_.batches;
    }

    LedgerBatch& ledger = commit.ledger;
    ledger.audience = request_.audience.name;
    ledger.destination = name();
    bool mark_seen = request_.mode == SyncMode::kMirror || request_.mode == SyncMode::kReplace;
    ledger.seen_by_job = mark_seen ? request_.job_id : 0;
    std::size_t update_count = 0;
    std::size_t seen_count = 0;
    auto next_update = [&]() -> LedgerUpdate& {
      if (update_count == ledger.updates.size()) ledger.updates.emplace_back();
      return ledger.updates[update_count++];
    };

    for (std::size_t i = 0; i < row_count; ++i) {
      PendingRow& row = rows[i];
      RowOutcome outcome = RowOutcome::kAccepted;
      if (row.remove_index >= 0) {
        const OperationResult& removed = results[row.remove_index];
        const MemberOperation& operation = batch.operations[row.remove_index];
        if (removed.outcome == RowOutcome::kAccepted) {
          ++counters_.removes_sent;
          if (request_.mode == SyncMode::kRemove) {
            LedgerUpdate& update = next_update();
            update.member_key.assign(row.ids.member_key);
            update.hashed_keys = encode_keys(operation.identifiers);
            update.operation = LedgerOperation::kRemove;
            update.outcome = LedgerOutcome::kAccepted;
            update.reason.clear();
          }
        } else {
          record_failure(row.line, "remove", row.ids.member_key, removed);
        }
        outcome = worse(outcome, removed.outcome);
      }
      if (row.add_index >= 0) {
        const OperationResult& added = results[row.add_index];
        if (added.outcome == RowOutcome::kAccepted) {
          ++counters_.adds_sent;
        } else {
          record_failure(row.line, "add", row.ids.member_key, added);
        }
        // The add decides the row because after a changed member's remove, only the add's outcome
        // shows whether the destination now has the member.
        outcome = added.outcome;
        LedgerUpdate& update = next_update();
        update.member_key.assign(row.ids.member_key);
        // The row's keys text is not read again, so the next row read into it reuses the buffer.
        std::swap(update.hashed_keys, row.ids.keys_json);
        update.operation = LedgerOperation::kAdd;
        update.outcome = to_ledger(added.outcome);
        update.reason.assign(added.outcome == RowOutcome::kAccepted ? std::string_view() : added.reason.code);
      }
      if (row.unchanged) ++counters_.unchanged;
      if (mark_seen) {
        if (seen_count == ledger.seen_member_keys.size()) ledger.seen_member_keys.emplace_back();
        ledger.seen_member_keys[seen_count++].assign(row.ids.member_key);
      }

      const int index = static_cast<int>(outcome);
      ++counters_.outcomes[index];
      for (int field = 0; field < kFieldCount; ++field) {
        if (row.ids.fields_usable & (1u << field)) ++counters_.fields[field].rows[index];
      }
    }
    ledger.updates.resize(update_count);
    ledger.seen_member_keys.resize(seen_count);

    // SQLite inserts keys in order with fewer page visits than in random order. A member twice in
    // one batch keeps its updates in batch order, so that its last update wins.
    sort_by_key(ledger.updates, [](const LedgerUpdate& update) -> const std::string& { return update.member_key; },
                key_order_);
    sort_by_key(ledger.seen_member_keys, [](const std::string& key) -> const std::string& { return key; },
                key_order_);
    take_commit(next_position, commit);
    return Status::ok();
  }

  void record_failure(std::uint64_t line, const char* operation, const std::string& member_key,
                      const OperationResult& result) {
    ++counters_.reasons[result.reason.code.empty() ? std::string(row_outcome_name(result.outcome))
                                                   : result.reason.code];
    outcome_records_.push_back(RowOutcomeRecord{name(), line, operation, result.outcome, result.reason.code,
                                                result.reason.message, member_key});
  }

  // Sends one batch, retrying transport errors with exponential backoff and full jitter.
  Status send(const Batch& batch, std::vector<OperationResult>& results) {
    if (request_.dry_run) {
      std::fill(results.begin(), results.end(), OperationResult{});
      return Status::ok();
    }
    int attempt = 0;
    int rate_limit_waits = 0;
    while (true) {
      BatchResult answer = adapter_->send(batch);
      waiting_.clear();
      if (answer.transport.is_ok()) {
        if (answer.results.size() != batch.operations.size()) {
          return internal_error("destination '" + name() + "' returned " +
                                std::to_string(answer.results.size()) + " results for a batch of " +
                                std::to_string(batch.operations.size()));
        }
        results = std::move(answer.results);
        session_state_ = answer.session_state.empty() ? "{}" : answer.session_state;
        return Status::ok();
      }

      const Status& error = answer.transport;
      bool rate_limited = error.code() == StatusCode::kResourceExhausted;
      if (!is_retryable(error.code())) return error;
      if (rate_limited) {
        if (++rate_limit_waits > kMaxRateLimitWaits) return error;
      } else if (++attempt >= request_.batch_attempts) {
        return Status(error.code(), "destination '" + name() + "': batch " + std::to_string(batch.number) +
                                        " failed after " + std::to_string(attempt) +
                                        " attempts: " + error.message());
      }
      ++counters_.batch_retries;

      auto cap = request_.batch_retry_base * (1 << std::min(attempt, 10));
      std::uniform_real_distribution<double> unit(0.0, 1.0);
      auto delay = std::chrono::milliseconds(
          static_cast<std::int64_t>(static_cast<double>(cap.count()) * unit(random_)));
      if (answer.retry_after) delay = std::max(delay, *answer.retry_after);
      services_.logger.log(LogLevel::kWarn, "engine",
                           "job {} destination {}: batch {} failed ({}); retrying in {} ms", request_.job_id,
                           name(), batch.number, error.to_string(), delay.count());
      waiting_ = fmt::format("{}; batch {} again in {} s", rate_limited ? "throttled" : "failed", batch.number,
                             (delay.count() + 999) / 1000);
      report(RunState::kRunning, {}, true);
      auto deadline = Clock::now() + delay;
      while (Clock::now() < deadline) {
        if (cancel_requested())
          return Status(StatusCode::kCancelled, "cancelled while waiting to retry a batch");
        std::this_thread::sleep_for(
            std::min<Clock::duration>(deadline - Clock::now(), std::chrono::milliseconds(50)));
      }
    }
  }

  Status commit(LedgerBatch& ledger, const std::string& position) {
    BatchCommit commit;
    commit.ledger = std::move(ledger);
    take_commit(position, commit);
    return write_commit(commit);
  }

  // Moves the outcomes recorded so far into `commit`, beside the batch's ledger updates, with the
  // checkpoint and the progress as they are after the batch.
  void take_commit(const std::string& position, BatchCommit& commit) {
    commit.outcome_records = std::move(outcome_records_);
    outcome_records_.clear();
    Checkpoint& checkpoint = commit.checkpoint;
    checkpoint.job_id = request_.job_id;
    checkpoint.destination = name();
    checkpoint.batch_number = batch_number_;
    checkpoint.source_position = position;
    checkpoint.counters = counters_.to_json();
    checkpoint.session_state = session_state_;
    commit.progress = ProgressSnapshot{counters_, read_fraction_, waiting_};
  }

  Status write_commit(BatchCommit& commit) {
    // Outcomes first: a crash between the two re-sends the batch and records the same rows again,
    // which replaces them.
    ACT_RETURN_IF_ERROR(outcome_log_->record(request_.job_id, name(), commit.outcome_records));
    commit.outcome_records.clear();

    const LedgerBatch& ledger = commit.ledger;
    if (request_.dry_run) {
      if (seen_ && !ledger.seen_member_keys.empty()) seen_->add(ledger.seen_member_keys);
    } else if (ledger.empty()) {
      ACT_RETURN_IF_ERROR(services_.checkpointer->save(commit.checkpoint, services_.lease));
    } else {
      ACT_RETURN_IF_ERROR(services_.checkpointer->commit_batch(commit.checkpoint, ledger, services_.lease));
    }
    report_progress(RunState::kRunning, {}, false, commit.progress);
    return Status::ok();
  }

  // Mirror: removes the members in the ledger that this job's source did not contain, with the
  // keys they were added with. Replace: the platform dropped them already, so they are only
  // marked removed in the ledger.
  Status run_leavers() {
    const bool send_removes = request_.mode == SyncMode::kMirror;
    if (request_.dry_run) return count_dry_run_leavers(send_removes);

    while (true) {
      if (cancel_requested()) {
        cancelled_ = true;
        return Status::ok();
      }
      std::vector<LedgerEntry> page;
      const Status stop(StatusCode::kCancelled, "page full");
      Status scanned = services_.ledger->scan(
          request_.audience.name, name(), MemberScan::kAcceptedNotSeenBy, request_.job_id,
          [&](const LedgerEntry& entry) {
            page.push_back(entry);
            return page.size() >= batch_size_ ? stop : Status::ok();
          },
          static_cast<int>(std::min<std::size_t>(batch_size_, 1000)));
      if (!scanned.is_ok() &&
          !(scanned.code() == StatusCode::kCancelled && scanned.message() == stop.message())) {
        return scanned;
      }
      if (page.empty()) break;

      Batch batch;
      for (const auto& entry : page) {
        ACT_ASSIGN_OR_RETURN(auto keys, decode_keys(entry.hashed_keys));
        batch.operations.push_back(
            MemberOperation{OperationType::kRemove, entry.member_key, 0, std::move(keys)});
      }
      std::vector<OperationResult> results(batch.operations.size());
      if (send_removes) {
        batch.number = batch_number_ + 1;
        ACT_RETURN_IF_ERROR(send(batch, results));
        batch_number_ = batch.number;
        ++counters_.batches;
      }

      LedgerBatch ledger;
      ledger.audience = request_.audience.name;
      ledger.destination = name();
      ledger.seen_by_job = request_.job_id;
      for (std::size_t i = 0; i < page.size(); ++i) {
        const LedgerEntry& entry = page[i];
        if (results[i].outcome == RowOutcome::kAccepted) {
          ledger.updates.push_back(LedgerUpdate{entry.member_key, entry.hashed_keys, LedgerOperation::kRemove,
                                                LedgerOutcome::kAccepted, ""});
          ++counters_.members_left;
          if (send_removes) ++counters_.removes_sent;
        } else {
          // Marked seen so this run does not pick the member again; the next mirror run retries it.
          ledger.seen_member_keys.push_back(entry.member_key);
          record_failure(0, "remove", entry.member_key, results[i]);
        }
      }
      ACT_RETURN_IF_ERROR(commit(ledger, std::string(kLeaversPhase)));
    }
    return Status::ok();
  }

  // Counts what run_leavers() would do, the batches of removes included.
  Status count_dry_run_leavers(bool send_removes) {
    std::size_t leavers = 0;
    ACT_RETURN_IF_ERROR(services_.ledger->scan(request_.audience.name, name(), MemberScan::kAcceptedNotSeenBy,
                                               request_.job_id, [&](const LedgerEntry& entry) {
                                                 if (!seen_->contains(entry.member_key)) ++leavers;
                                                 return Status::ok();
                                               }));
    counters_.members_left += leavers;
    if (send_removes) {
      counters_.removes_sent += leavers;
      counters_.batches += (leavers + batch_size_ - 1) / batch_size_;
    }
    return Status::ok();
  }

  // Ends the adapter's run (closes sessions, writes a manifest). A run resumed after a crash may
  // call it a second time; adapters treat that as done.
  Status finish_adapter() {
    if (request_.dry_run) return Status::ok();
    DestinationRunSummary summary;
    summary.batches = batch_number_;
    summary.rows_read = counters_.rows_read;
    summary.adds_sent = counters_.adds_sent;
    summary.removes_sent = counters_.removes_sent;
    for (int i = 0; i < kRowOutcomeCount; ++i) summary.outcome_counts[i] = counters_.outcomes[i];
    return adapter_->finish(summary);
  }

  // Folds the run's ledger writes and saves the "done" checkpoint.
  Status finish_run() {
    if (!request_.dry_run) {
      ACT_RETURN_IF_ERROR(services_.ledger->flush(request_.audience.name, name()));
      Checkpoint checkpoint;
      checkpoint.job_id = request_.job_id;
      checkpoint.destination = name();
      checkpoint.batch_number = batch_number_;
      checkpoint.source_position = std::string(kDonePhase);
      checkpoint.counters = counters_.to_json();
      checkpoint.session_state = session_state_;
      ACT_RETURN_IF_ERROR(services_.checkpointer->save(checkpoint, services_.lease));
    }
    services_.logger.log(
        LogLevel::kInfo, "engine",
        "job {} destination {}: done, {} rows read, {} accepted, {} invalid, {} rejected, {} deferred",
        request_.job_id, name(), counters_.rows_read, counters_.outcome(RowOutcome::kAccepted),
        counters_.outcome(RowOutcome::kInvalid), counters_.outcome(RowOutcome::kRejected),
        counters_.outcome(RowOutcome::kDeferred));
    return Status::ok();
  }

  void report(RunState state, const Status& error, bool force) {
    report_progress(state, error, force, ProgressSnapshot{counters_, read_fraction_, waiting_});
  }

  // Publishes `snapshot`. The thread that commits a batch and the one that sends the next may
  // both report.
  void report_progress(RunState state, const Status& error, bool force, const ProgressSnapshot& snapshot) {
    if (!services_.progress) return;
    std::lock_guard lock(report_mutex_);
    auto now = Clock::now();
    if (!force && now - last_report_ < kProgressInterval) return;
    last_report_ = now;

    const DestinationCounters& counters = snapshot.counters;
    DestinationProgress progress;
    progress.job_id = request_.job_id;
    progress.destination = name();
    progress.state = state;
    progress.dry_run = request_.dry_run;
    progress.counters = counters;
    if (!error.is_ok()) {
      progress.error = error.message();
      progress.error_code = std::string(status_code_name(error.code()));
    }
    if (state == RunState::kRunning) progress.waiting = snapshot.waiting;
    auto current = snapshot.fraction;
    if (phase_ == kLeaversPhase || phase_ == kDonePhase) current = 1.0;
    if (current) progress.percent = *current * 100.0;
    double elapsed = std::chrono::duration<double>(now - start_time_).count();
    if (elapsed > 0)
      progress.rows_per_second = static_cast<double>(counters.rows_read - start_rows_) / elapsed;
    if (current && start_fraction_ && *current > *start_fraction_ && elapsed > 0 &&
        state == RunState::kRunning) {
      progress.seconds_remaining = elapsed * (1.0 - *current) / (*current - *start_fraction_);
    }
    if (state == RunState::kDone) progress.seconds_remaining = 0.0;
    if (auto circuit = platforms::destination_circuit_state(name())) {
      progress.circuit = std::string(circuit_state_name(*circuit));
    }
    services_.progress->update(progress);
  }

  void save_run_record(RunState state, const std::string& error) {
    if (!outcome_log_) return;
    RunRecord record;
    record.job_id = request_.job_id;
    record.destination = name();
    record.audience = request_.audience.name;
    record.mode = std::string(sync_mode_name(request_.mode));
    record.dry_run = request_.dry_run;
    record.state = std::string(run_state_name(state));
    record.counters = counters_.to_json();
    record.error = error;
    Status saved = outcome_log_->save_run(record);
    if (!saved.is_ok()) {
      services_.logger.log(LogLevel::kWarn, "engine", "job {} destination {}: {}", request_.job_id, name(),
                           saved.message());
    }
  }

  const PipelineRequest& request_;
  const PipelineServices& services_;
  std::mt19937_64 random_;
  std::unique_ptr<OutcomeLog> outcome_log_;
  std::unique_ptr<DestinationAdapter> adapter_;
  std::unique_ptr<RowProcessor> processor_;
  std::unique_ptr<AudienceSource> source_;
  std::unique_ptr<SeenSet> seen_;
  Batch send_batch_;  // The batch being sent. The next batch reuses its strings.
  std::vector<KeyOrder> key_order_;  // Scratch space of sort_by_key().
  std::vector<std::pair<Field, int>> field_slots_;
  std::size_t batch_size_ = 10000;
  std::size_t rows_per_commit_ = kMinRowsPerCommit;
  std::string_view phase_ = kSourcePrefix;
  std::int64_t batch_number_ = 0;
  std::string session_state_ = "{}";
  std::string waiting_;  // The DestinationProgress::waiting text while send() waits to retry a batch.
  DestinationCounters counters_;
  std::vector<RowOutcomeRecord> outcome_records_;
  // The source's fraction read when the batch being delivered was read: report() must not ask the
  // source, which the reading thread moves on meanwhile.
  std::optional<double> read_fraction_;
  bool cancelled_ = false;
  std::uint64_t start_rows_ = 0;
  Clock::time_point start_time_ = Clock::now();
  std::mutex report_mutex_;
  Clock::time_point last_report_{};  // Guarded by report_mutex_.
  std::optional<double> start_fraction_;
};

}  // namespace

Result<std::unique_ptr<DestinationAdapter>> create_adapter(const DestinationConfig& destination,
                                                           const Logger& logger) {
  auto factory = find_destination_type(destination.type);
  if (!factory) {
    std::string known;
    for (const auto& type : destination_types()) known += (known.empty() ? "" : ", ") + type;
    return invalid_argument("destination '" + destination.name + "': unknown type \"" + destination.type +
                            "\"; registered types: " + known);
  }
  DestinationEnvironment environment;
  environment.logger = logger;
  std::map<std::string, std::string> secret_env = destination.secret_env;
  std::string destination_name = destination.name;
  environment.secret = [secret_env, destination_name](std::string_view secret) -> Result<std::string> {
    auto found = secret_env.find(std::string(secret));
    if (found == secret_env.end()) {
      return not_found("destination '" + destination_name + "': secrets." + std::string(secret) +
                       " is not configured; name the environment variable that holds it");
    }
    const char* value = std::getenv(found->second.c_str());
    if (value == nullptr || *value == '\0') {
      return not_found("destination '" + destination_name + "': environment variable " + found->second +
                       " (secret " + std::string(secret) + ") is not set");
    }
    return std::string(value);
  };
  return (*factory)(destination, environment);
}

PipelineResult run_destination(const PipelineRequest& request, const PipelineServices& services) {
  try {
    Pipeline pipeline(request, services);
    return pipeline.run();
  } catch (const std::exception& error) {
    PipelineResult result;
    result.state = RunState::kFailed;
    result.error = internal_error("destination '" + request.destination.name + "': " + error.what());
    return result;
  }
}

}  // namespace activation::engine
