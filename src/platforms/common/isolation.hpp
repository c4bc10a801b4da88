// Isolation of bad rows for platforms without per-row statuses (TikTok, Snapchat). A request that
// the platform rejects as a whole is split in halves and sent again, so that a bad value fails only
// its own row as long as the batch's request budget lasts.
#ifndef ACTIVATION_PLATFORMS_COMMON_ISOLATION_HPP_
#define ACTIVATION_PLATFORMS_COMMON_ISOLATION_HPP_

#include <cstddef>
#include <functional>
#include <optional>
#include <vector>

#include "activation/backend/destination.hpp"
#include "platforms/common/platform_client.hpp"

namespace activation::platforms {

// Sends the operations at `indexes` (positions in the batch) through `send_group`, which sends
// the operations it is given in one request. An invalid_request response to a group of two or
// more operations splits the group in halves, and each half is sent on its own. The same response
// to a single operation rejects it with reason_of(response). Accepted operations keep the default
// result.
//
// At most `max_requests` requests go out; once they are used up, a rejected group is rejected as
// a whole. Returns the first response of another failure class (throttled, auth, network, 5xx),
// which fails the whole batch, or nullopt when every operation has its result.
std::optional<PlatformResponse> send_isolating(
    const std::vector<std::size_t>& indexes,
    const std::function<PlatformResponse(const std::vector<std::size_t>&)>& send_group,
    const std::function<Reason(const PlatformResponse&)>& reason_of, std::size_t max_requests,
    std::vector<OperationResult>& results);

}  // namespace activation::platforms

#endif  // ACTIVATION_PLATFORMS_COMMON_ISOLATION_HPP_
