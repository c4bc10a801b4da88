// The payload of a distribution job: everything a worker in any process needs to run it, including
// a copy of the audience and destination configurations taken when the job was queued.
#ifndef ACTIVATION_ENGINE_JOB_PAYLOAD_HPP_
#define ACTIVATION_ENGINE_JOB_PAYLOAD_HPP_

#include <map>
#include <string>
#include <vector>

#include "activation/config.hpp"
#include "activation/engine.hpp"

namespace activation::engine {

struct JobPayload {
  AudienceConfig audience;
  std::vector<DestinationConfig> destinations;
  SyncMode mode = SyncMode::kAdd;
  bool dry_run = false;
  std::size_t batch_size = 0;
  int parallelism = 0;
  std::map<std::string, std::string> metadata;
};

std::string encode_payload(const JobPayload& payload);
// Fails with kInvalidArgument when the text is not a payload this engine writes.
Result<JobPayload> decode_payload(std::string_view json_text);

// Parses the progress JSON stored on a job: {"status": ..., "destinations": {...}}.
JobProgress decode_job_progress(std::int64_t job_id, std::string_view json_text, std::string* status);

}  // namespace activation::engine

#endif  // ACTIVATION_ENGINE_JOB_PAYLOAD_HPP_
