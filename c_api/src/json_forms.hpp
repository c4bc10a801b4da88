// The JSON forms of the C ABI: distribution requests in, jobs, progress and metrics out.
// docs/c-api.md lists their keys.
#ifndef ACTIVATION_C_API_JSON_FORMS_HPP_
#define ACTIVATION_C_API_JSON_FORMS_HPP_

#include <string>
#include <string_view>
#include <vector>

#include "activation/engine.hpp"
#include "activation/job_queue.hpp"
#include "activation/progress.hpp"
#include "activation/worker_pool.hpp"

namespace activation::capi {

struct DistributeRequest {
  std::string audience;
  std::vector<std::string> destinations;
  DistributeOptions options;
};

// Parses the request of act_engine_distribute(). Errors are kInvalidArgument and name the key
// and what was expected, such as "request.mode: expected add, remove, replace or mirror, got \"x\"".
Result<DistributeRequest> parse_distribute_request(std::string_view json_text);

std::string job_to_json(const DistributionJob& job);
std::string jobs_to_json(const std::vector<DistributionJob>& jobs);
std::string progress_to_json(const DestinationProgress& progress);
std::string queue_metrics_to_json(const QueueMetrics& metrics);
std::string pool_stats_to_json(const WorkerPoolStats& stats);

}  // namespace activation::capi

#endif  // ACTIVATION_C_API_JSON_FORMS_HPP_
