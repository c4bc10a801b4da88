// The checkpointer: where a (job, destination) resumes after a crash, a stall or a retry.
//
// A checkpoint contains the last acknowledged batch number, the source position to read from next,
// the counters and the destination's session state. commit_batch() saves it together with the
// batch's ledger updates in one transaction, so the ledger never runs ahead of, or behind, the
// checkpoint.
#ifndef ACTIVATION_CHECKPOINTER_HPP_
#define ACTIVATION_CHECKPOINTER_HPP_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "activation/export.hpp"
#include "activation/job_queue.hpp"
#include "activation/ledger.hpp"
#include "activation/status.hpp"

namespace activation {

struct Checkpoint {
  JobId job_id = 0;
  std::string destination;
  // The last batch the destination acknowledged; batches are numbered from 1, so 0 = none yet.
  std::int64_t batch_number = 0;
  std::string source_position;   // Opaque to the store: a byte offset, a row number.
  std::string counters = "{}";   // JSON text.
  std::string session_state = "{}";  // JSON text: the destination's upload session.
  Timestamp updated_at{};        // Set by the store on save.
};

// Thread safety: all methods may be called from many threads at once.
class ACT_EXPORT Checkpointer {
 public:
  // Fails with kInvalidArgument when `store` is null.
  static Result<std::shared_ptr<Checkpointer>> create(std::shared_ptr<Store> store);

  // Returns nullopt when (job, destination) has no checkpoint.
  Result<std::optional<Checkpoint>> load(JobId job_id, std::string_view destination);
  // Every checkpoint of a job, by destination name.
  Result<std::vector<Checkpoint>> load_all(JobId job_id);

  // Saves `checkpoint`, replacing the previous one. With a `lease`, the save is fenced: it fails
  // with kConflict unless the job is still active under that lease. Fails with kConflict as well
  // when the stored batch number is higher (an older worker's late save), and kInvalidArgument
  // when counters or session_state are not JSON.
  Status save(const Checkpoint& checkpoint, const Lease* lease = nullptr);

  // Saves `checkpoint` and applies `ledger` in one transaction: both happen, or neither. The same
  // fencing and batch-number rules as save(). Replaying the same batch number is allowed, because
  // a crash between the send and the commit re-sends that batch.
  Status commit_batch(const Checkpoint& checkpoint, const LedgerBatch& ledger, const Lease* lease = nullptr);

  // Deletes the checkpoint of (job, destination); no error when there is none.
  Status clear(JobId job_id, std::string_view destination);

 private:
  explicit Checkpointer(std::shared_ptr<Store> store);
  std::shared_ptr<Store> store_;
};

}  // namespace activation

#endif  // ACTIVATION_CHECKPOINTER_HPP_
