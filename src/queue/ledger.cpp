#include "activation/ledger.hpp"

#include <fmt/format.h>

#include "activation/backend/store.hpp"
#include "queue/ledger_checks.hpp"
#include "queue/retry_policy_codec.hpp"

namespace activation {
namespace internal {

Status check_ledger_batch(const LedgerBatch& batch) {
  if (batch.empty()) return Status();
  if (batch.audience.empty() || batch.destination.empty()) {
    return invalid_argument("ledger batch needs both an audience and a destination name");
  }
  for (std::size_t i = 0; i < batch.updates.size(); ++i) {
    const LedgerUpdate& update = batch.updates[i];
    if (update.member_key.empty()) {
      return invalid_argument(fmt::format("ledger update {} of audience '{}' destination '{}' has an empty member key",
                                          i, batch.audience, batch.destination));
    }
    if (std::string error = internal::json_syntax_error(update.hashed_keys); !error.empty()) {
      return invalid_argument(fmt::format("ledger update {} (member {}): hashed_keys is not valid JSON: {}", i,
                                          update.member_key, error));
    }
  }
  return Status();
}

}  // namespace internal

Result<std::shared_ptr<Ledger>> Ledger::create(std::shared_ptr<Store> store) {
  if (store == nullptr) return invalid_argument("Ledger needs a store; got a null pointer");
  return std::shared_ptr<Ledger>(new Ledger(std::move(store)));
}

Ledger::Ledger(std::shared_ptr<Store> store) : store_(std::move(store)) {}

Result<std::vector<std::optional<LedgerEntry>>> Ledger::lookup(std::string_view audience, std::string_view destination,
                                                               std::span<const std::string> member_keys) {
  return store_->lookup_members(audience, destination, member_keys);
}

Status Ledger::apply(const LedgerBatch& batch) {
  ACT_RETURN_IF_ERROR(internal::check_ledger_batch(batch));
  return store_->apply_ledger(batch);
}

Status Ledger::scan(std::string_view audience, std::string_view destination, MemberScan filter, JobId job,
                    const LedgerVisitor& visitor, int page_size) {
  if (page_size < 1) return invalid_argument(fmt::format("page_size is {}; expected 1 or more", page_size));
  if (!visitor) return invalid_argument("ledger scan needs a visitor");

  // Keyset paging: each page is a short read of its own, so the visitor may write to the store
  // between pages, and memory keeps one page at most.
  std::string after;
  while (true) {
    ACT_ASSIGN_OR_RETURN(auto page, store_->page_members(audience, destination, filter, job, after, page_size));
    for (const LedgerEntry& entry : page) ACT_RETURN_IF_ERROR(visitor(entry));
    if (static_cast<int>(page.size()) < page_size) return Status();
    after = page.back().member_key;
  }
}

Result<std::int64_t> Ledger::count(std::string_view audience, std::string_view destination) {
  return store_->count_members(audience, destination);
}

}  // namespace activation
