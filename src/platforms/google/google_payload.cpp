#include "platforms/google/google_payload.hpp"

namespace activation::platforms::google {
namespace {

using Json = nlohmann::json;

// A member's identifiers by kind. The engine sorts them by field, so the order is stable.
struct Identifiers {
  std::vector<const std::string*> emails, phones, maids, user_ids;
  const std::string* given = nullptr;
  const std::string* family = nullptr;
  const std::string* region = nullptr;
  const std::string* postal = nullptr;

  explicit Identifiers(const MemberOperation& operation) {
    for (const auto& identifier : operation.identifiers) {
      const std::string* value = &identifier.value;
      switch (identifier.field) {
        case Field::kEmail: emails.push_back(value); break;
        case Field::kPhone: phones.push_back(value); break;
        case Field::kMaid: maids.push_back(value); break;
        case Field::kExternalId: user_ids.push_back(value); break;
        case Field::kFirstName: given = given ? given : value; break;
        case Field::kLastName: family = family ? family : value; break;
        case Field::kCountry: region = region ? region : value; break;
        case Field::kZip: postal = postal ? postal : value; break;
        default: break;
      }
    }
  }

  // Google matches a name only together with a country and a postal code.
  bool has_address() const { return given && family && region && postal; }
};

std::string data_manager_status(const std::string& value) {
  if (value == "UNSPECIFIED") return "CONSENT_STATUS_UNSPECIFIED";
  return "CONSENT_" + value;
}

}  // namespace

std::optional<Json> data_manager_member(const MemberOperation& operation, UploadKeyType key_type) {
  Identifiers ids(operation);
  switch (key_type) {
    case UploadKeyType::kContactInfo: {
      Json identifiers = Json::array();
      auto add = [&](Json identifier) {
        if (identifiers.size() < kMaxDataManagerIdentifiers) identifiers.push_back(std::move(identifier));
      };
      for (const std::string* email : ids.emails) add(Json{{"emailAddress", *email}});
      for (const std::string* phone : ids.phones) add(Json{{"phoneNumber", *phone}});
      if (ids.has_address()) {
        Json address = {{"givenName", *ids.given},
                        {"familyName", *ids.family},
                        {"regionCode", *ids.region},
                        {"postalCode", *ids.postal}};
        add(Json{{"addressInfo", std::move(address)}});
      }
      if (identifiers.empty()) return std::nullopt;
      return Json{{"userData", {{"userIdentifiers", std::move(identifiers)}}}};
    }
    case UploadKeyType::kMobileAdvertisingId: {
      if (ids.maids.empty()) return std::nullopt;
      Json mobile_ids = Json::array();
      for (const std::string* maid : ids.maids) {
        if (mobile_ids.size() < kMaxDataManagerIdentifiers) mobile_ids.push_back(*maid);
      }
      return Json{{"mobileData", {{"mobileIds", std::move(mobile_ids)}}}};
    }
    case UploadKeyType::kCrmId:
      if (ids.user_ids.empty()) return std::nullopt;
      return Json{{"userIdData", {{"userId", *ids.user_ids.front()}}}};
  }
  return std::nullopt;
}

std::optional<Json> ads_user_data(const MemberOperation& operation, UploadKeyType key_type) {
  Identifiers ids(operation);
  Json identifiers = Json::array();
  auto add = [&](Json identifier) {
    if (identifiers.size() < kMaxAdsIdentifiers) identifiers.push_back(std::move(identifier));
  };
  switch (key_type) {
    case UploadKeyType::kContactInfo:
      for (const std::string* email : ids.emails) add(Json{{"hashedEmail", *email}});
      for (const std::string* phone : ids.phones) add(Json{{"hashedPhoneNumber", *phone}});
      if (ids.has_address()) {
        Json address = {{"hashedFirstName", *ids.given},
                        {"hashedLastName", *ids.family},
                        {"countryCode", *ids.region},
                        {"postalCode", *ids.postal}};
        add(Json{{"addressInfo", std::move(address)}});
      }
      break;
    case UploadKeyType::kMobileAdvertisingId:
      for (const std::string* maid : ids.maids) add(Json{{"mobileId", *maid}});
      break;
    case UploadKeyType::kCrmId:
      if (!ids.user_ids.empty()) add(Json{{"thirdPartyUserId", *ids.user_ids.front()}});
      break;
  }
  if (identifiers.empty()) return std::nullopt;
  return Json{{"userIdentifiers", std::move(identifiers)}};
}

std::size_t identifier_count(const Json& member) {
  if (member.contains("userIdentifiers")) return member["userIdentifiers"].size();
  if (member.contains("userData")) return member["userData"]["userIdentifiers"].size();
  if (member.contains("mobileData")) return member["mobileData"]["mobileIds"].size();
  return 1;
}

Json data_manager_consent(const Consent& consent) {
  if (consent.empty()) return nullptr;
  Json out = Json::object();
  if (!consent.ad_user_data.empty()) out["adUserData"] = data_manager_status(consent.ad_user_data);
  if (!consent.ad_personalization.empty())
    out["adPersonalization"] = data_manager_status(consent.ad_personalization);
  return out;
}

Json ads_consent(const Consent& consent) {
  if (consent.empty()) return nullptr;
  Json out = Json::object();
  if (!consent.ad_user_data.empty()) out["adUserData"] = consent.ad_user_data;
  if (!consent.ad_personalization.empty()) out["adPersonalization"] = consent.ad_personalization;
  return out;
}

}  // namespace activation::platforms::google
