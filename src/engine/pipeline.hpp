// The pipeline of one (job, destination) run: read, normalize and hash, diff against the ledger,
// batch, send, commit the checkpoint with the ledger updates, report progress.
#ifndef ACTIVATION_ENGINE_PIPELINE_HPP_
#define ACTIVATION_ENGINE_PIPELINE_HPP_

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "activation/checkpointer.hpp"
#include "activation/config.hpp"
#include "activation/engine.hpp"
#include "activation/ledger.hpp"
#include "activation/progress.hpp"

namespace activation::engine {

struct PipelineRequest {
  JobId job_id = 0;
  AudienceConfig audience;
  DestinationConfig destination;
  SyncMode mode = SyncMode::kAdd;
  bool dry_run = false;
  std::size_t batch_size = 10000;
  int batch_attempts = 4;
  std::chrono::milliseconds batch_retry_base{500};
  std::string outcome_log_path;
};

struct PipelineServices {
  std::shared_ptr<Checkpointer> checkpointer;
  std::shared_ptr<Ledger> ledger;
  ProgressTracker* progress = nullptr;
  const Lease* lease = nullptr;            // Fences checkpoint commits; null outside a worker.
  std::function<bool()> cancel_requested;  // May be empty.
  Logger logger;
};

struct PipelineResult {
  RunState state = RunState::kDone;
  DestinationCounters counters;
  Status error;            // Set when state is kFailed.
  bool retryable = false;  // The failure may pass on a later attempt of the job.
  bool lease_lost = false;
};

// Runs one destination to its end, or until cancelled or failed. Exceptions from the adapter or
// the library become a failed result.
PipelineResult run_destination(const PipelineRequest& request, const PipelineServices& services);

// Creates the adapter of `destination` with secrets read from the environment.
Result<std::unique_ptr<DestinationAdapter>> create_adapter(const DestinationConfig& destination,
                                                           const Logger& logger);

}  // namespace activation::engine

#endif  // ACTIVATION_ENGINE_PIPELINE_HPP_
