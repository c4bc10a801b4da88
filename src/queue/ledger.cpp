#include "activation/ledger.hpp"

#include <fmt/format.h>

#include "activation/backend/store.hpp"
#include "queue/ledger_checks.hpp"
#include "queue/retry_policy_codec.hpp"

namespace activation {
namespace internal {

namespace {

// Reads a JSON string without escapes whose bytes are all printable ASCII, the form of field
// names and hex digests, and moves `at` past it.
bool plain_string(std::string_view text, std::size_t& at) {
  if (at >= text.size() || text[at] != '"') return false;
  for (++at; at < text.size(); ++at) {
    const char c = text[at];
    if (c == '"') {
      ++at;
      return true;
    }
    if (c == '\\' || c < 0x20 || c > 0x7e) return false;
  }
  return false;
}

// True when `text` is an array of two-string arrays of plain strings, such as
// [["email","<hex>"],["phone","<hex>"]]: the form the engine writes, and valid JSON. False means
// only that the text needs the full parser.
bool is_plain_pair_array(std::string_view text) {
  std::size_t at = 0;
  if (text.empty() || text[at++] != '[') return false;
  if (at < text.size() && text[at] == ']') return at + 1 == text.size();
  while (true) {
    if (at >= text.size() || text[at++] != '[') return false;
    if (!plain_string(text, at)) return false;
    if (at >= text.size() || text[at++] != ',') return false;
    if (!plain_string(text, at)) return false;
    if (at >= text.size() || text[at++] != ']') return false;
    if (at >= text.size()) return false;
    const char next = text[at++];
    if (next == ']') return at == text.size();
    if (next != ',') return false;
  }
}

}  // namespace

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
    if (is_plain_pair_array(update.hashed_keys)) continue;  // Skips the parser on the usual form.
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

Status Ledger::flush(std::string_view audience, std::string_view destination) {
  return store_->flush_ledger(audience, destination);
}

}  // namespace activation
