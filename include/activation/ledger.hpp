// The membership ledger: per (audience, destination), what was last sent for each member.
//
// It stores hashes only: a member key (a stable hash that identifies the member within the
// audience) and the hashed identifiers that were sent, as JSON text. It drives mirror diffs,
// removals sent with exactly the keys that were added, retries of rejected rows, and reports.
#ifndef ACTIVATION_LEDGER_HPP_
#define ACTIVATION_LEDGER_HPP_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "activation/export.hpp"
#include "activation/job_queue.hpp"
#include "activation/status.hpp"

namespace activation {

enum class LedgerOperation : int { kAdd = 0, kRemove = 1 };
enum class LedgerOutcome : int { kAccepted = 0, kRejected = 1, kDeferred = 2 };

ACT_EXPORT std::string_view ledger_operation_name(LedgerOperation operation) noexcept;
ACT_EXPORT std::string_view ledger_outcome_name(LedgerOutcome outcome) noexcept;

// One member of one (audience, destination).
struct LedgerEntry {
  std::string member_key;
  std::string hashed_keys;  // JSON text, as given in the last update.
  LedgerOperation operation = LedgerOperation::kAdd;
  LedgerOutcome outcome = LedgerOutcome::kAccepted;
  std::string reason;  // The reason for a rejected or deferred row; empty when accepted.
  Timestamp updated_at{};
  JobId last_seen_job = 0;  // The last job whose source contained the member; 0 = none yet.
};

// The result of one operation on one member. Applying it replaces the member's row, and sets
// last_seen_job when the batch has `seen_by_job`.
struct LedgerUpdate {
  std::string member_key;
  std::string hashed_keys;  // JSON text.
  LedgerOperation operation = LedgerOperation::kAdd;
  LedgerOutcome outcome = LedgerOutcome::kAccepted;
  std::string reason;
};

// The ledger changes of one batch of one (audience, destination).
struct LedgerBatch {
  std::string audience;
  std::string destination;
  std::vector<LedgerUpdate> updates;
  // Members that the source of job `seen_by_job` contained in this batch, including those that
  // needed no operation. Keys without a ledger row are ignored.
  std::vector<std::string> seen_member_keys;
  JobId seen_by_job = 0;  // 0 = mark nothing seen.

  bool empty() const noexcept { return updates.empty() && seen_member_keys.empty(); }
};

// The members a scan visits.
enum class MemberScan : int {
  kAll = 0,
  // Members whose last operation is an accepted add and whose last_seen_job is not the given job:
  // the removes of a mirror run, once that job has read its whole source.
  kAcceptedNotSeenBy = 1,
};

// Called once per member in member_key order. Returning a non-OK status stops the scan and is
// returned by the scan.
using LedgerVisitor = std::function<Status(const LedgerEntry& entry)>;

// Reads and writes the ledger of a store. Updates that belong to a batch go through
// Checkpointer::commit_batch(), which applies them with the checkpoint in one transaction.
//
// Thread safety: all methods may be called from many threads at once.
class ACT_EXPORT Ledger {
 public:
  // Fails with kInvalidArgument when `store` is null.
  static Result<std::shared_ptr<Ledger>> create(std::shared_ptr<Store> store);

  // Looks up many members at once, in one read transaction. The result has one element per key,
  // in order; nullopt for a member without a row.
  Result<std::vector<std::optional<LedgerEntry>>> lookup(std::string_view audience, std::string_view destination,
                                                         std::span<const std::string> member_keys);

  // Applies `batch` in its own transaction.
  Status apply(const LedgerBatch& batch);

  // Visits the members of (audience, destination) in pages of `page_size` rows, so memory does not
  // depend on the ledger's size. Updates made by the visitor to rows not yet visited may or may not
  // be seen by the scan.
  Status scan(std::string_view audience, std::string_view destination, MemberScan filter, JobId job,
              const LedgerVisitor& visitor, int page_size = 1000);

  // The number of members of (audience, destination).
  Result<std::int64_t> count(std::string_view audience, std::string_view destination);

  // Completes the store's deferred writes of (audience, destination) (Store::flush_ledger()).
  Status flush(std::string_view audience, std::string_view destination);

 private:
  explicit Ledger(std::shared_ptr<Store> store);
  std::shared_ptr<Store> store_;
};

}  // namespace activation

#endif  // ACTIVATION_LEDGER_HPP_
