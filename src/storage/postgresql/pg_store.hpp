// The PostgreSQL implementation of Store.
//
// A small pool of libpq connections serves every method; each write runs in one transaction
// (BEGIN ... COMMIT) and each change to a job in it is a compare-and-set. Claims pick rows with
// SELECT ... FOR UPDATE SKIP LOCKED, so workers in many processes and on many machines never wait
// for each other's rows. Every time (due times, leases, heartbeats, expiry, rate limits) comes from
// the server's now(). A listener thread holds one more connection in LISTEN, so that an enqueue by
// any process wakes idle workers at once; when that connection is down, waits fall back to polling.
// A connection lost to a server restart is replaced with exponential backoff, and the operation is
// run again when the server cannot have committed it.
#ifndef ACTIVATION_SRC_STORAGE_POSTGRESQL_PG_STORE_HPP_
#define ACTIVATION_SRC_STORAGE_POSTGRESQL_PG_STORE_HPP_

#include <atomic>
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
#include "storage/postgresql/pg_connection.hpp"

namespace activation::internal {

class PostgresStore final : public Store {
 public:
  static Result<std::shared_ptr<PostgresStore>> open(const std::string& conninfo,
                                                     const PostgresStoreOptions& options);
  ~PostgresStore() override;

  std::string_view backend_name() const noexcept override { return "postgresql"; }
  std::string_view location() const noexcept override { return location_; }
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
  Status commit_checkpoint(const Checkpoint& checkpoint, const LedgerBatch* ledger,
                           const Lease* lease) override;
  Status clear_checkpoint(JobId job_id, std::string_view destination) override;

  Result<std::vector<std::optional<LedgerEntry>>> lookup_members(
      std::string_view audience, std::string_view destination,
      std::span<const std::string> member_keys) override;
  Status apply_ledger(const LedgerBatch& batch) override;
  Result<std::vector<LedgerEntry>> page_members(std::string_view audience, std::string_view destination,
                                                MemberScan filter, JobId job, std::string_view after_key,
                                                int limit) override;
  Result<std::int64_t> count_members(std::string_view audience, std::string_view destination) override;

  Result<RateReservation> reserve_rate(std::string_view key, const RateRequest& request) override;
  Result<RateReservation> reserve_window(std::string_view key, const WindowRequest& request) override;

 private:
  PostgresStore(std::string conninfo, std::string location, PostgresStoreOptions options);

  enum class RunMode {
    kRead,   // No transaction; reads and idempotent writes (heartbeats), run again after a lost connection.
    kWrite,  // BEGIN ... COMMIT around the body.
    kSingleWrite,  // One statement in autocommit mode: one round trip less than kWrite.
  };

  // Runs `body` on a pooled connection in `mode`. After a lost connection `body` runs again on a
  // new one, with backoff, for up to options_.reconnect_timeout, when the server cannot have
  // applied it: always for kRead, and for kWrite when COMMIT was not sent yet (the server rolls an
  // open transaction back). A kWrite that lost a deadlock or serialization check runs again too.
  // A connection lost during COMMIT or during a kSingleWrite leaves the outcome unknown: that
  // fails with kUnavailable and is not run again.
  Status run(std::string_view action, RunMode mode, const std::function<Status(PgConnection&)>& body);
  Status write(std::string_view action, const std::function<Status(PgConnection&)>& body) {
    return run(action, RunMode::kWrite, body);
  }
  Status read(const std::function<Status(PgConnection&)>& body) { return run("read", RunMode::kRead, body); }

  Result<std::unique_ptr<PgConnection>> take_connection();
  void return_connection(std::unique_ptr<PgConnection> connection);

  // Sends NOTIFY on this store's channel inside the caller's transaction.
  Status notify_waiters(PgConnection& connection);
  void listen_loop();
  void bump_generation();

  Status conflict_status(PgConnection& connection, const Lease& lease, std::string_view action);
  Status check_lease(PgConnection& connection, const Lease& lease, std::string_view action);
  Result<std::int64_t> scope_id(PgConnection& connection, std::string_view audience,
                                std::string_view destination, bool create);
  Status apply_ledger_locked(PgConnection& connection, const LedgerBatch& batch);

  const std::string conninfo_;
  const std::string location_;
  const PostgresStoreOptions options_;
  const std::string channel_;

  std::mutex pool_mutex_;
  std::condition_variable pool_available_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  int open_connections_ = 0;

  // wait_for_activity(): a generation moved on by local writes and by notifications that the
  // listener thread receives. `listening_` is false while the listener has no connection; waits
  // are then cut to options_.poll_interval.
  std::mutex activity_mutex_;
  std::condition_variable activity_changed_;
  std::uint64_t generation_ = 0;
  std::atomic<bool> listening_{false};
  std::atomic<bool> stopping_{false};
  int stop_fd_ = -1;
  std::thread listener_;

  std::mutex scopes_mutex_;
  std::map<std::pair<std::string, std::string>, std::int64_t, std::less<>> scopes_;
};

}  // namespace activation::internal

#endif  // ACTIVATION_SRC_STORAGE_POSTGRESQL_PG_STORE_HPP_
