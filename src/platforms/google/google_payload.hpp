// The request bodies of the Google adapters: Data Manager audience members and Google Ads
// UserData, built from a member's wire identifiers and the list's upload key type.
#ifndef ACTIVATION_PLATFORMS_GOOGLE_GOOGLE_PAYLOAD_HPP_
#define ACTIVATION_PLATFORMS_GOOGLE_GOOGLE_PAYLOAD_HPP_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "activation/backend/destination.hpp"
#include "platforms/google/google_settings.hpp"

namespace activation::platforms::google {

// The Data Manager API takes at most 10 user identifiers per audience member, and the Google Ads
// API at most 20 per UserData.
inline constexpr std::size_t kMaxDataManagerIdentifiers = 10;
inline constexpr std::size_t kMaxAdsIdentifiers = 20;

// Returns the Data Manager AudienceMember of `operation` for a list of `key_type`, or nullopt when
// the member has no identifier of that type. A contact-info member sends its emails and phones,
// and one address when first name, last name, country and postal code are all known. Identifiers
// beyond the 10th are left out. Consent goes on the request, not on the member.
std::optional<nlohmann::json> data_manager_member(const MemberOperation& operation, UploadKeyType key_type);

// Returns the Google Ads UserData of `operation` for a list of `key_type` (hashedEmail,
// hashedPhoneNumber, addressInfo, mobileId or thirdPartyUserId identifiers, at most 20), or
// nullopt when the member has none of that type.
std::optional<nlohmann::json> ads_user_data(const MemberOperation& operation, UploadKeyType key_type);

// Returns the number of user identifiers in an AudienceMember or UserData.
std::size_t identifier_count(const nlohmann::json& member);

// Consent as the Data Manager API spells it ("CONSENT_GRANTED"), or as the Google Ads API does
// ("GRANTED"). Returns null when no consent is set.
nlohmann::json data_manager_consent(const Consent& consent);
nlohmann::json ads_consent(const Consent& consent);

}  // namespace activation::platforms::google

#endif  // ACTIVATION_PLATFORMS_GOOGLE_GOOGLE_PAYLOAD_HPP_
