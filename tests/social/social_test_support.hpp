// Helpers of the LinkedIn, TikTok, Snapchat and webhook tests: destinations pointed at the test
// server, adapters made the way the engine makes them, and the email hashes of the people files
// that tests/meta/meta_test_support.hpp writes.
#ifndef ACTIVATION_TESTS_SOCIAL_SOCIAL_TEST_SUPPORT_HPP_
#define ACTIVATION_TESTS_SOCIAL_SOCIAL_TEST_SUPPORT_HPP_

#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "activation/backend/destination.hpp"
#include "meta/meta_test_support.hpp"

namespace activation::testing {

inline constexpr const char* kSocialTokenVariable = "ACT_SOCIAL_TEST_TOKEN";
inline constexpr const char* kWebhookSecretVariable = "ACT_WEBHOOK_TEST_SECRET";
inline constexpr const char* kWebhookSecret = "whsec-test";

inline void set_env(const char* name, const std::string& value) {
  ::setenv(name, value.c_str(), 1);
}

// Creates the adapter of `config` the way the engine does, with secrets read from the environment.
inline Result<std::unique_ptr<DestinationAdapter>> make_social_adapter(const DestinationConfig& config) {
  auto factory = find_destination_type(config.type);
  REQUIRE(factory.has_value());
  DestinationEnvironment environment;
  environment.secret = [config](std::string_view name) -> Result<std::string> {
    auto found = config.secret_env.find(std::string(name));
    if (found == config.secret_env.end()) return not_found("no secret " + std::string(name));
    const char* value = std::getenv(found->second.c_str());
    if (value == nullptr) return not_found("environment variable " + found->second + " is not set");
    return std::string(value);
  };
  return (*factory)(config, environment);
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

inline JobId queue_job(DistributionEngine& engine, const std::string& audience,
                       const std::string& destination, SyncMode mode = SyncMode::kAdd) {
  DistributeOptions options;
  options.mode = mode;
  std::vector<std::string> destinations = {destination};
  auto job = engine.distribute(audience, destinations, options);
  REQUIRE_MESSAGE(job.is_ok(), job.status().to_string());
  return job->id;
}

inline std::unique_ptr<DistributionEngine> open_social_engine(const Config& config) {
  auto engine = DistributionEngine::open(config);
  REQUIRE_MESSAGE(engine.is_ok(), engine.status().to_string());
  return std::move(*engine);
}

// The SHA-256 of each person's normalized email: the key every platform here receives.
inline std::set<std::string> email_hashes(const std::vector<Person>& people) {
  std::set<std::string> hashes;
  for (const auto& person : people) hashes.insert(sha256_hex(person.email));
  return hashes;
}

// The id of the audience called `name` in the inspection list of `platform`, or "".
inline std::string inspected_id(MetaClient& client, const std::string& platform, const std::string& name) {
  nlohmann::json all = client.inspect_path("/__inspect/" + platform + "/audiences");
  for (const auto& audience : all["audiences"]) {
    if (audience["name"] == name) return audience["id"].get<std::string>();
  }
  return {};
}

inline nlohmann::json inspect_audience(MetaClient& client, const std::string& platform,
                                       const std::string& id) {
  return client.inspect_path("/__inspect/" + platform + "/audiences/" + id);
}

inline std::int64_t platform_faults(const nlohmann::json& stats, const std::string& platform) {
  std::int64_t total = 0;
  if (!stats.contains("faults") || !stats["faults"].contains(platform)) return 0;
  for (const auto& [kind, count] : stats["faults"][platform].items()) total += count.get<std::int64_t>();
  return total;
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
