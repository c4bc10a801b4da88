// The "webhook" destination: each batch is POSTed as JSON to a configured URL, signed with
// HMAC-SHA256 over the timestamp and the body, and retried like the platform adapters.
// docs/platforms/webhook.md describes the body, the headers and how a receiver verifies them.
#ifndef ACTIVATION_DESTINATIONS_WEBHOOK_WEBHOOK_DESTINATION_HPP_
#define ACTIVATION_DESTINATIONS_WEBHOOK_WEBHOOK_DESTINATION_HPP_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "activation/backend/destination.hpp"

namespace activation::destinations {

inline constexpr const char* kWebhookTimestampHeader = "X-Activation-Timestamp";
inline constexpr const char* kWebhookSignatureHeader = "X-Activation-Signature";
inline constexpr const char* kWebhookDeliveryHeader = "X-Activation-Delivery";

// Returns the value of the signature header: "v1=" and the lowercase hex HMAC-SHA256, keyed with
// `secret`, of the timestamp's decimal digits, a ".", and the body.
std::string webhook_signature(std::string_view secret, std::int64_t timestamp, std::string_view body);

Result<std::unique_ptr<DestinationAdapter>> make_webhook_destination(
    const DestinationConfig& config, const DestinationEnvironment& environment);

}  // namespace activation::destinations

#endif  // ACTIVATION_DESTINATIONS_WEBHOOK_WEBHOOK_DESTINATION_HPP_
