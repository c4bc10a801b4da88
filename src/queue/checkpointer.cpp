#include "activation/checkpointer.hpp"

#include <fmt/format.h>

#include "activation/backend/store.hpp"
#include "queue/ledger_checks.hpp"
#include "queue/retry_policy_codec.hpp"

namespace activation {
namespace {

Status check_checkpoint(const Checkpoint& checkpoint) {
  if (checkpoint.destination.empty()) {
    return invalid_argument(fmt::format("checkpoint of job {} has an empty destination name", checkpoint.job_id));
  }
  if (checkpoint.batch_number < 0) {
    return invalid_argument(fmt::format("checkpoint of job {} destination '{}' has batch number {}; expected 0 or more",
                                        checkpoint.job_id, checkpoint.destination, checkpoint.batch_number));
  }
  if (std::string error = internal::json_syntax_error(checkpoint.counters); !error.empty()) {
    return invalid_argument(fmt::format("checkpoint of job {} destination '{}': counters are not valid JSON: {}",
                                        checkpoint.job_id, checkpoint.destination, error));
  }
  if (std::string error = internal::json_syntax_error(checkpoint.session_state); !error.empty()) {
    return invalid_argument(fmt::format("checkpoint of job {} destination '{}': session_state is not valid JSON: {}",
                                        checkpoint.job_id, checkpoint.destination, error));
  }
  return Status();
}

}  // namespace

Result<std::shared_ptr<Checkpointer>> Checkpointer::create(std::shared_ptr<Store> store) {
  if (store == nullptr) return invalid_argument("Checkpointer needs a store; got a null pointer");
  return std::shared_ptr<Checkpointer>(new Checkpointer(std::move(store)));
}

Checkpointer::Checkpointer(std::shared_ptr<Store> store) : store_(std::move(store)) {}

Result<std::optional<Checkpoint>> Checkpointer::load(JobId job_id, std::string_view destination) {
  return store_->load_checkpoint(job_id, destination);
}

Result<std::vector<Checkpoint>> Checkpointer::load_all(JobId job_id) { return store_->load_checkpoints(job_id); }

Status Checkpointer::save(const Checkpoint& checkpoint, const Lease* lease) {
  ACT_RETURN_IF_ERROR(check_checkpoint(checkpoint));
  return store_->commit_checkpoint(checkpoint, nullptr, lease);
}

Status Checkpointer::commit_batch(const Checkpoint& checkpoint, const LedgerBatch& ledger, const Lease* lease) {
  ACT_RETURN_IF_ERROR(check_checkpoint(checkpoint));
  ACT_RETURN_IF_ERROR(internal::check_ledger_batch(ledger));
  return store_->commit_checkpoint(checkpoint, &ledger, lease);
}

Status Checkpointer::clear(JobId job_id, std::string_view destination) {
  return store_->clear_checkpoint(job_id, destination);
}

}  // namespace activation
