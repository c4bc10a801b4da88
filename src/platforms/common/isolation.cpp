#include "platforms/common/isolation.hpp"

namespace activation::platforms {

std::optional<PlatformResponse> send_isolating(
    const std::vector<std::size_t>& indexes,
    const std::function<PlatformResponse(const std::vector<std::size_t>&)>& send_group,
    const std::function<Reason(const PlatformResponse&)>& reason_of, std::size_t max_requests,
    std::vector<OperationResult>& results) {
  // Groups still to send, the next one last. Halves are pushed in reverse so that the rows go out
  // in batch order.
  std::vector<std::vector<std::size_t>> pending;
  if (!indexes.empty()) pending.push_back(indexes);
  std::size_t sent = 0;

  while (!pending.empty()) {
    std::vector<std::size_t> group = std::move(pending.back());
    pending.pop_back();
    PlatformResponse response = send_group(group);
    ++sent;
    if (response.ok()) continue;
    if (response.error_class() != PlatformErrorClass::kInvalidRequest) return response;

    if (group.size() == 1 || sent + 2 > max_requests) {
      Reason reason = reason_of(response);
      for (std::size_t index : group) results[index] = OperationResult{RowOutcome::kRejected, reason};
      continue;
    }
    std::size_t half = group.size() / 2;
    pending.emplace_back(group.begin() + static_cast<std::ptrdiff_t>(half), group.end());
    pending.emplace_back(group.begin(), group.begin() + static_cast<std::ptrdiff_t>(half));
  }
  return std::nullopt;
}

}  // namespace activation::platforms
