// JSON text for a RetryPolicy, as stored with a job that has its own policy.
#ifndef ACTIVATION_SRC_QUEUE_RETRY_POLICY_CODEC_HPP_
#define ACTIVATION_SRC_QUEUE_RETRY_POLICY_CODEC_HPP_

#include <string>
#include <string_view>

#include "activation/job_queue.hpp"
#include "activation/status.hpp"

namespace activation::internal {

std::string encode_retry_policy(const RetryPolicy& policy);
// Fails with kDataLoss naming the field when `text` is not a policy written by encode_retry_policy().
Result<RetryPolicy> decode_retry_policy(std::string_view text);

// Returns an empty string when `json_text` is valid JSON, or else a description of the first error
// with its byte offset.
std::string json_syntax_error(std::string_view json_text);

}  // namespace activation::internal

#endif  // ACTIVATION_SRC_QUEUE_RETRY_POLICY_CODEC_HPP_
