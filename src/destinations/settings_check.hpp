// The configuration-time check of a destination's settings, run when a configuration is parsed.
#ifndef ACTIVATION_DESTINATIONS_SETTINGS_CHECK_HPP_
#define ACTIVATION_DESTINATIONS_SETTINGS_CHECK_HPP_

#include "activation/backend/destination.hpp"
#include "activation/config.hpp"
#include "activation/status.hpp"

namespace activation {

// Checks the settings, profile and secret names of a destination of a built-in type (file, meta,
// google, google_ads, linkedin, tiktok, snapchat, webhook) without the file system, the network or
// the secrets' values. Types registered by the host are not checked here, only when a
// distribution is queued. Errors are kInvalidArgument with the adapter's message, such as
// "destination 'meta_ads': settings.ad_account_id: expected ...".
Status check_destination_settings(const DestinationConfig& config);

// Checks that a destination of a built-in type takes `mode`. Google Data Manager, LinkedIn, TikTok,
// Snapchat and the webhook have no full replace, and their adapters reject kReplace when a run
// begins. This check makes a distribution in that mode, dry run included, fail when it is queued.
// Fails with kInvalidArgument naming the destination and pointing to mode mirror.
Status check_destination_mode(const DestinationConfig& config, SyncMode mode);

}  // namespace activation

#endif  // ACTIVATION_DESTINATIONS_SETTINGS_CHECK_HPP_
