// Helpers of the LinkedIn, TikTok, Snapchat and webhook tests: destinations pointed at the test
// server and operations keyed by an email hash. tests/platform_support/platform_test_support.hpp
// has the shared ones.
#ifndef ACTIVATION_TESTS_SOCIAL_SOCIAL_TEST_SUPPORT_HPP_
#define ACTIVATION_TESTS_SOCIAL_SOCIAL_TEST_SUPPORT_HPP_

#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "activation/backend/destination.hpp"
#include "platform_support/platform_test_support.hpp"

namespace activation::testing {

inline constexpr const char* kSocialTokenVariable = "ACT_SOCIAL_TEST_TOKEN";
inline constexpr const char* kWebhookSecretVariable = "ACT_WEBHOOK_TEST_SECRET";
inline constexpr const char* kWebhookSecret = "whsec-test";
inline constexpr const char* kSnapClientIdVariable = "ACT_SNAP_TEST_CLIENT_ID";
inline constexpr const char* kSnapClientSecretVariable = "ACT_SNAP_TEST_CLIENT_SECRET";
inline constexpr const char* kSnapRefreshTokenVariable = "ACT_SNAP_TEST_REFRESH_TOKEN";

// Sets Snapchat's three OAuth secrets. Each test passes a refresh token of its own, so that the
// OAuth clients that the process shares between runs are never those of an earlier test.
inline void set_snapchat_secrets(const std::string& refresh_token) {
  set_env(kSnapClientIdVariable, "snap-client");
  set_env(kSnapClientSecretVariable, "snap-secret");
  set_env(kSnapRefreshTokenVariable, refresh_token);
}

inline DestinationConfig social_destination(const std::string& type, const std::string& name,
                                            const nlohmann::json& settings,
                                            std::map<std::string, std::string> secrets) {
  DestinationConfig destination;
  destination.name = name;
  destination.type = type;
  nlohmann::json merged = {{"max_throttle_wait_seconds", 0.5}, {"circuit_breaker", {{"open_seconds", 0.2}}}};
  for (const auto& [key, value] : settings.items()) merged[key] = value;
  destination.settings = merged.dump();
  destination.secret_env = std::move(secrets);
  return destination;
}

inline DestinationConfig linkedin_destination(const ServerProcess& server, const std::string& name,
                                              const std::string& segment, const nlohmann::json& extra = {}) {
  nlohmann::json settings = {{"ad_account_id", "507404993"},
                             {"segment_name", segment},
                             {"source_platform", "ACTIVATION_TEST"},
                             {"base_url", server.base_url() + "/linkedin/rest"},
                             {"segment_ready_delay_seconds", 0.3}};
  if (extra.is_object()) {
    for (const auto& [key, value] : extra.items()) settings[key] = value;
  }
  return social_destination("linkedin", name, settings, {{"access_token", kSocialTokenVariable}});
}

inline DestinationConfig tiktok_destination(const ServerProcess& server, const std::string& name,
                                            const std::string& audience, const nlohmann::json& extra = {}) {
  nlohmann::json settings = {{"advertiser_id", "7012345678901234567"},
                             {"audience_name", audience},
                             {"base_url", server.base_url() + "/tiktok/open_api/v1.3"}};
  if (extra.is_object()) {
    for (const auto& [key, value] : extra.items()) settings[key] = value;
  }
  return social_destination("tiktok", name, settings, {{"access_token", kSocialTokenVariable}});
}

inline DestinationConfig webhook_destination(const ServerProcess& server, const std::string& name,
                                             const std::string& receiver, const nlohmann::json& extra = {}) {
  nlohmann::json settings = {{"url", server.base_url() + "/webhook/" + receiver}};
  if (extra.is_object()) {
    for (const auto& [key, value] : extra.items()) settings[key] = value;
  }
  return social_destination("webhook", name, settings, {{"signing_secret", kWebhookSecretVariable}});
}

inline DestinationConfig snapchat_destination(const ServerProcess& server, const std::string& name,
                                              const std::string& segment, const nlohmann::json& extra = {}) {
  nlohmann::json settings = {{"ad_account_id", "8adc3db7-8148-4fbf-999c-8d2266369d74"},
                             {"segment_name", segment},
                             {"base_url", server.base_url() + "/snapchat/v1"},
                             {"token_url", server.base_url() + "/oauth2/token"}};
  if (extra.is_object()) {
    for (const auto& [key, value] : extra.items()) settings[key] = value;
  }
  return social_destination("snapchat", name, settings,
                            {{"client_id", kSnapClientIdVariable},
                             {"client_secret", kSnapClientSecretVariable},
                             {"refresh_token", kSnapRefreshTokenVariable}});
}

inline MemberOperation email_operation(OperationType type, const std::string& email_hash) {
  MemberOperation operation;
  operation.type = type;
  operation.member_key = sha256_hex("member:" + email_hash);
  operation.identifiers.push_back({Field::kEmail, email_hash});
  return operation;
}

}  // namespace activation::testing

#endif  // ACTIVATION_TESTS_SOCIAL_SOCIAL_TEST_SUPPORT_HPP_
