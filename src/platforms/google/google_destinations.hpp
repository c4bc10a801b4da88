// The two Google Customer Match destinations. "google" goes through the Data Manager API, the path
// Google requires of new integrations. "google_ads" goes through the Google Ads API's
// OfflineUserDataJob, which only accounts allow-listed for Customer Match may use.
// docs/platforms/google.md describes their settings and behaviour.
#ifndef ACTIVATION_PLATFORMS_GOOGLE_GOOGLE_DESTINATIONS_HPP_
#define ACTIVATION_PLATFORMS_GOOGLE_GOOGLE_DESTINATIONS_HPP_

#include <memory>

#include "activation/backend/destination.hpp"

namespace activation::platforms::google {

// Create an adapter for one run. They read and check the settings and secrets only; the first
// request to Google goes in begin(). They fail with kInvalidArgument naming the setting that is
// wrong, or kNotFound for a secret whose environment variable is not set.
Result<std::unique_ptr<DestinationAdapter>> make_data_manager_destination(
    const DestinationConfig& config, const DestinationEnvironment& environment);
Result<std::unique_ptr<DestinationAdapter>> make_ads_destination(const DestinationConfig& config,
                                                                 const DestinationEnvironment& environment);

}  // namespace activation::platforms::google

#endif  // ACTIVATION_PLATFORMS_GOOGLE_GOOGLE_DESTINATIONS_HPP_
