// Input checks shared by Ledger::apply() and Checkpointer::commit_batch().
#ifndef ACTIVATION_SRC_QUEUE_LEDGER_CHECKS_HPP_
#define ACTIVATION_SRC_QUEUE_LEDGER_CHECKS_HPP_

#include "activation/ledger.hpp"
#include "activation/status.hpp"

namespace activation::internal {

// Fails with kInvalidArgument naming the update for a missing scope name, an empty member key or
// hashed keys that are not JSON.
Status check_ledger_batch(const LedgerBatch& batch);

}  // namespace activation::internal

#endif  // ACTIVATION_SRC_QUEUE_LEDGER_CHECKS_HPP_
