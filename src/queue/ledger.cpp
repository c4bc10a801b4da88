#include "activation/ledger.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <fmt/format.h>

#include "activation/backend/store.hpp"
#include "queue/ledger_checks.hpp"
#include "queue/retry_policy_codec.hpp"

namespace activation {
namespace internal {

namespace {

// True when every byte of `text` is printable ASCII (0x20 to 0x7e) other than a backslash: then
// no string in it contains an escape, and the next quote always ends a string.
bool printable_without_escapes(std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
#if defined(__SSE2__)
  // Sixteen bytes at a time. Compared as signed bytes, those from 0x80 are below a space too.
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i delete_byte = _mm_set1_epi8(0x7f);
  const __m128i backslash = _mm_set1_epi8('\\');
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + i));
    const __m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, space),
                                     _mm_or_si128(_mm_cmpeq_epi8(v, delete_byte), _mm_cmpeq_epi8(v, backslash)));
    if (_mm_movemask_epi8(bad) != 0) return false;
  }
#endif
  for (; i < n; ++i) {
    if (bytes[i] < 0x20 || bytes[i] > 0x7e || bytes[i] == '\\') return false;
  }
  return true;
}

// Moves `at` past a JSON string that starts there, in a text without escapes.
bool skip_plain_string(std::string_view text, std::size_t& at) {
  if (at >= text.size() || text[at] != '"') return false;
  const std::size_t close = text.find('"', at + 1);
  if (close == std::string_view::npos) return false;
  at = close + 1;
  return true;
}

// True when `text` is an array of two-string arrays of strings without escapes whose bytes are
// all printable ASCII, such as [["email","<hex>"],["phone","<hex>"]]: the form the engine writes,
// and valid JSON. False means only that the text needs the full parser.
bool is_plain_pair_array(std::string_view text) {
  if (!printable_without_escapes(text)) return false;
  std::size_t at = 0;
  if (text.empty() || text[at++] != '[') return false;
  if (at < text.size() && text[at] == ']') return at + 1 == text.size();
  while (true) {
    if (at >= text.size() || text[at++] != '[') return false;
    if (!skip_plain_string(text, at)) return false;
    if (at >= text.size() || text[at++] != ',') return false;
    if (!skip_plain_string(text, at)) return false;
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
