// The SQLite implementation of Store.
//
// One writer connection, guarded by a mutex, runs every write in a BEGIN IMMEDIATE transaction,
// so that the file's write lock is taken before anything is read and claims stay exclusive across
// processes. A few reader connections serve reads at the same time (WAL readers never block the
// writer). Several processes may open the same file; each holds its own connections.
#ifndef ACTIVATION_SRC_STORAGE_SQLITE_SQLITE_STORE_HPP_
#define ACTIVATION_SRC_STORAGE_SQLITE_SQLITE_STORE_HPP_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "activation/backend/store.hpp"
#include "storage/sqlite/sqlite_connection.hpp"

namespace activation::internal {

class MergeRows;

class SqliteStore final : public Store {
 public:
  static Result<std::shared_ptr<SqliteStore>> open(const std::string& path, const SqliteStoreOptions& options);
  ~SqliteStore() override;

  std::string_view backend_name() const noexcept override { return "sqlite"; }
  std::string_view location() const noexcept override { return path_; }
  Result<Timestamp> now() override;

  Result<std::vector<EnqueueResult>> insert_jobs(std::span<const NewJob> jobs) override;
  Result<std::optional<Job>> get_job(JobId id) override;
  Result<std::vector<Job>> list_jobs(const JobQuery& query) override;
  Result<std::vector<ClaimedJob>> claim_jobs(const ClaimRequest& request) override;
  Result<std::vector<HeartbeatResult>> heartbeat(std::span<const Lease> leases,
                                                 std::chrono::milliseconds lease_duration) override;
  Result<std::vector<Status>> transition_jobs(std::span<const JobTransition> transitions) override;
  Status set_progress(const Lease& lease, std::string_view progress_json) override;
  Result<CancelOutcome> cancel_job(JobId id, std::string_view reason) override;
  Result<Job> retry_job(JobId id) override;
  Result<MaintenanceReport> run_maintenance(const MaintenanceRequest& request) override;
  Result<QueueMetrics> metrics() override;
  Result<PruneReport> prune(const RetentionPolicy& retention) override;
  Result<std::optional<Timestamp>> next_due_at() override;
  std::uint64_t activity_token() override;
  void wait_for_activity(std::uint64_t token, std::chrono::milliseconds max_wait) override;
  void notify_activity() override;

  Result<std::optional<Checkpoint>> load_checkpoint(JobId job_id, std::string_view destination) override;
  Result<std::vector<Checkpoint>> load_checkpoints(JobId job_id) override;
  Status commit_checkpoint(const Checkpoint& checkpoint, const LedgerBatch* ledger, const Lease* lease) override;
  Status clear_checkpoint(JobId job_id, std::string_view destination) override;

  Result<std::vector<std::optional<LedgerEntry>>> lookup_members(std::string_view audience,
                                                                 std::string_view destination,
                                                                 std::span<const std::string> member_keys) override;
  Status apply_ledger(const LedgerBatch& batch) override;
  Status flush_ledger(std::string_view audience, std::string_view destination) override;
  Result<std::vector<LedgerEntry>> page_members(std::string_view audience, std::string_view destination,
                                                MemberScan filter, JobId job, std::string_view after_key,
                                                int limit) override;
  Result<std::int64_t> count_members(std::string_view audience, std::string_view destination) override;

  Result<RateReservation> reserve_rate(std::string_view key, const RateRequest& request) override;
  Result<RateReservation> reserve_window(std::string_view key, const WindowRequest& request) override;

 private:
  SqliteStore(std::string path, SqliteStoreOptions options, std::unique_ptr<SqliteConnection> writer);

  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT on the writer, rolling back when it fails.
  Status write(std::string_view action, const std::function<Status(SqliteConnection&)>& body);
  // Runs `body` inside `begin` ... COMMIT on `connection`, rolling back and logging when it fails.
  Status run_transaction(SqliteConnection& connection, const char* begin, std::string_view action,
                         const std::function<Status(SqliteConnection&)>& body);
  // Runs `body` on a reader connection inside one read transaction, so that its queries see one
  // snapshot.
  Status read(const std::function<Status(SqliteConnection&)>& body);
  Result<std::unique_ptr<SqliteConnection>> open_extra_connection(bool read_only);
  // True when another connection committed since the last call.
  bool poll_data_version();
  // Watches the WAL file with inotify; without it, waits fall back to polling PRAGMA data_version.
  void start_wal_watch();
  void start_checkpointer();
  void checkpoint_loop();
  static int on_wal_commit(void* self, sqlite3* db, const char* database, int wal_pages);

  // The scope id of (audience, destination); with `create`, inserts it inside the caller's write
  // transaction. Returns 0 when the scope does not exist and `create` is false.
  Result<std::int64_t> scope_id(SqliteConnection& connection, std::string_view audience,
                                std::string_view destination, bool create);
  Status apply_ledger_locked(SqliteConnection& connection, const LedgerBatch& batch, std::int64_t now_ms);
  // Moves the journaled ledger updates of (audience, destination) into the ledger.
  Status fold_journal(std::string_view audience, std::string_view destination);
  // Folds a journal larger than one chunk: merges its sorted runs read on `reader`, applies them
  // on `connection` about `chunk` rows per write transaction, and deletes it.
  Status fold_journal_runs(SqliteConnection& connection, SqliteConnection& reader, std::int64_t scope,
                           std::int64_t chunk);
  Status conflict_status(SqliteConnection& connection, const Lease& lease, std::string_view action);
  Status check_lease(SqliteConnection& connection, const Lease& lease, std::string_view action);

  const std::string path_;
  const SqliteStoreOptions options_;

  std::mutex write_mutex_;
  std::unique_ptr<SqliteConnection> writer_;

  // The connections that fold the ledger journal. The first fold opens them, and a process runs
  // one fold at a time. The fold connection writes the ledger, and its virtual table
  // ledger_journal_merge reads fold_rows_. The reader finds the journal's runs and reads them for
  // the merge, on a thread of its own during the apply. Its temporary tables keep the runs of the
  // merge passes across the fold's transactions, and its ledger_journal_merge reads pass_rows_.
  std::mutex fold_mutex_;
  std::unique_ptr<SqliteConnection> fold_connection_;
  std::unique_ptr<SqliteConnection> fold_reader_;
  MergeRows* fold_rows_ = nullptr;  // Guarded by fold_mutex_.
  MergeRows* pass_rows_ = nullptr;  // Guarded by fold_mutex_.

  std::mutex readers_mutex_;
  std::condition_variable readers_available_;
  std::vector<std::unique_ptr<SqliteConnection>> idle_readers_;
  int readers_open_ = 0;

  // wait_for_activity(): a generation moved on by local writes and by writes of other processes,
  // seen through inotify on the WAL file, or else by polling PRAGMA data_version on `watcher_`.
  // Each waiting thread registers an eventfd that notify_activity() writes to.
  std::mutex activity_mutex_;
  std::uint64_t activity_generation_ = 0;
  std::vector<int> waiter_fds_;
  std::once_flag wal_watch_started_;
  int inotify_fd_ = -1;
  std::mutex watcher_mutex_;
  std::unique_ptr<SqliteConnection> watcher_;
  std::int64_t watcher_data_version_ = -1;

  // Checkpoints run on their own connection and thread, so that the two fsyncs of a checkpoint stay
  // off the path of the writes that fill the WAL (WAL mode lets a checkpoint run beside a writer).
  std::mutex checkpoint_mutex_;
  std::condition_variable checkpoint_wanted_;
  bool checkpoint_requested_ = false;
  bool checkpoint_stop_ = false;
  std::thread checkpoint_thread_;

  std::mutex scopes_mutex_;
  std::map<std::pair<std::string, std::string>, std::int64_t, std::less<>> scopes_;
};

}  // namespace activation::internal

#endif  // ACTIVATION_SRC_STORAGE_SQLITE_SQLITE_STORE_HPP_
