// The "meta" destination: a customer-file Custom Audience of Meta's Marketing API. It finds the
// audience by id, or finds or creates it by name, uploads multi-key rows in sessions, removes
// members with exactly the keys they were added with, and replaces the audience through
// `usersreplace`. docs/platforms/meta.md describes its settings and behaviour.
#ifndef ACTIVATION_PLATFORMS_META_META_DESTINATION_HPP_
#define ACTIVATION_PLATFORMS_META_META_DESTINATION_HPP_

#include <memory>

#include "activation/backend/destination.hpp"

namespace activation::platforms::meta {

// Creates an adapter for one run. Reads and checks the settings and secrets only; the first
// request to Meta goes in begin(). Fails with kInvalidArgument naming the setting that is wrong,
// or kNotFound for a secret whose environment variable is not set.
Result<std::unique_ptr<DestinationAdapter>> make_meta_destination(const DestinationConfig& config,
                                                                  const DestinationEnvironment& environment);

}  // namespace activation::platforms::meta

#endif  // ACTIVATION_PLATFORMS_META_META_DESTINATION_HPP_
