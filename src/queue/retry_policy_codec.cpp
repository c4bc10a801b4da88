#include "queue/retry_policy_codec.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace activation::internal {
namespace {

nlohmann::json encode_backoff(const BackoffPolicy& backoff) {
  return {
      {"kind", backoff.kind == BackoffKind::kFixed ? "fixed" : "exponential"},
      {"base_ms", backoff.base.count()},
      {"cap_ms", backoff.cap.count()},
      {"jitter", backoff.jitter},
  };
}

Result<BackoffPolicy> decode_backoff(const nlohmann::json& json, std::string_view name) {
  if (!json.is_object()) {
    return Status(StatusCode::kDataLoss, std::string("retry policy field '") + std::string(name) + "' is not an object");
  }
  BackoffPolicy backoff;
  const auto kind = json.value("kind", std::string("exponential"));
  if (kind == "fixed") {
    backoff.kind = BackoffKind::kFixed;
  } else if (kind != "exponential") {
    return Status(StatusCode::kDataLoss, "retry policy field '" + std::string(name) + ".kind' is '" + kind +
                                             "'; expected 'exponential' or 'fixed'");
  }
  backoff.base = std::chrono::milliseconds(json.value("base_ms", backoff.base.count()));
  backoff.cap = std::chrono::milliseconds(json.value("cap_ms", backoff.cap.count()));
  backoff.jitter = json.value("jitter", backoff.jitter);
  return backoff;
}

}  // namespace

std::string encode_retry_policy(const RetryPolicy& policy) {
  nlohmann::json json = {
      {"transient", encode_backoff(policy.transient)},
      {"rate_limited", encode_backoff(policy.rate_limited)},
      {"timeout", encode_backoff(policy.timeout)},
  };
  return json.dump();
}

Result<RetryPolicy> decode_retry_policy(std::string_view text) {
  auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return Status(StatusCode::kDataLoss, "stored retry policy is not a JSON object");
  }
  RetryPolicy policy;
  try {
    if (json.contains("transient")) {
      ACT_ASSIGN_OR_RETURN(policy.transient, decode_backoff(json["transient"], "transient"));
    }
    if (json.contains("rate_limited")) {
      ACT_ASSIGN_OR_RETURN(policy.rate_limited, decode_backoff(json["rate_limited"], "rate_limited"));
    }
    if (json.contains("timeout")) {
      ACT_ASSIGN_OR_RETURN(policy.timeout, decode_backoff(json["timeout"], "timeout"));
    }
  } catch (const nlohmann::json::exception& error) {
    // json::value() throws when a field has the wrong type.
    return Status(StatusCode::kDataLoss, std::string("stored retry policy has a field of the wrong type: ") + error.what());
  }
  return policy;
}

std::string json_syntax_error(std::string_view json_text) {
  if (nlohmann::json::accept(json_text)) return {};
  // accept() gives no position, so parse again for the message; this runs only on invalid input.
  try {
    const auto parsed = nlohmann::json::parse(json_text);
    (void)parsed;
  } catch (const nlohmann::json::parse_error& error) {
    return fmt::format("{} (at byte {})", error.what(), error.byte);
  } catch (const nlohmann::json::exception& error) {
    return error.what();
  }
  return "not valid JSON";
}

}  // namespace activation::internal
