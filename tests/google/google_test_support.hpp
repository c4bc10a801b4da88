// Helpers of the Google adapter tests: destinations pointed at the test server, OAuth secrets in
// the environment, an inspection client for the server's user lists, and a people file.
#ifndef ACTIVATION_TESTS_GOOGLE_GOOGLE_TEST_SUPPORT_HPP_
#define ACTIVATION_TESTS_GOOGLE_GOOGLE_TEST_SUPPORT_HPP_

#include <doctest/doctest.h>

#include <cstdlib>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "platform_support/platform_test_support.hpp"

namespace activation::testing {

// The environment variables the test destinations read their OAuth secrets from. The server
// accepts any client and refresh token unless started with --oauth-client or --oauth-revoke.
inline constexpr const char* kClientIdVariable = "ACT_GOOGLE_TEST_CLIENT_ID";
inline constexpr const char* kClientSecretVariable = "ACT_GOOGLE_TEST_CLIENT_SECRET";
inline constexpr const char* kRefreshTokenVariable = "ACT_GOOGLE_TEST_REFRESH_TOKEN";
inline constexpr const char* kCustomerId = "1234567890";

// Sets the three secrets. Each test passes its own client id, because the process keeps one
// rate limiter per (client id, server) with the policy it was created with, and a later server
// may get the port of an earlier one.
inline void set_google_secrets(const std::string& client_id, const std::string& refresh_token = "refresh-1") {
  ::setenv(kClientIdVariable, client_id.c_str(), 1);
  ::setenv(kClientSecretVariable, "client-secret", 1);
  ::setenv(kRefreshTokenVariable, refresh_token.c_str(), 1);
}

inline std::map<std::string, std::string> google_secret_env() {
  return {{"client_id", kClientIdVariable},
          {"client_secret", kClientSecretVariable},
          {"refresh_token", kRefreshTokenVariable}};
}

// A destination of `type` ("google" or "google_ads") on `server`; `extra` adds or replaces settings.
inline DestinationConfig google_destination(const ServerProcess& server, const std::string& name,
                                            const std::string& type, const nlohmann::json& extra = {}) {
  DestinationConfig destination;
  destination.name = name;
  destination.type = type;
  bool ads = type == "google_ads";
  nlohmann::json settings = {{"customer_id", "123-456-7890"},
                             {"base_url", server.base_url() + (ads ? "/google/ads" : "/google/datamanager")},
                             {"token_url", server.base_url() + "/oauth2/token"},
                             {"max_throttle_wait_seconds", 2},
                             {"poll_interval_seconds", 0.01},
                             {"poll_max_interval_seconds", 0.05},
                             {"poll_timeout_seconds", 30},
                             {"circuit_breaker", {{"open_seconds", 0.2}}}};
  if (extra.is_object()) {
    for (const auto& [key, value] : extra.items()) settings[key] = value;
  }
  destination.settings = settings.dump();
  destination.secret_env = google_secret_env();
  return destination;
}

// Writes {1, 2, 3, 7} as "1-3,7".
inline std::string ranges_text(const std::set<int>& ids) {
  std::string out;
  for (auto it = ids.begin(); it != ids.end();) {
    int first = *it;
    int last = first;
    while (++it != ids.end() && *it == last + 1) last = *it;
    if (!out.empty()) out += ",";
    out += first == last ? std::to_string(first) : std::to_string(first) + "-" + std::to_string(last);
  }
  return out;
}

inline std::set<int> id_set(int first, int last) {
  std::set<int> ids;
  for (int id = first; id <= last; ++id) ids.insert(id);
  return ids;
}

inline std::string id_range(int first, int last) {
  return ranges_text(id_set(first, last));
}

// Reads and controls the test server's Google and OAuth state.
class GoogleInspector : public InspectionClient {
 public:
  explicit GoogleInspector(const ServerProcess& server) : InspectionClient(server) {}

  std::string create_list(const std::string& name, const std::string& key_type = "CONTACT_INFO") {
    return post("/__inspect/google/user_lists",
                {{"customer_id", kCustomerId}, {"name", name}, {"upload_key_type", key_type}})
        .at("id")
        .get<std::string>();
  }

  nlohmann::json list(const std::string& id) { return get("/__inspect/google/audiences/" + id); }
  nlohmann::json oauth_stats() { return stats()["platforms"]["oauth"]; }

  // The ids of the people in the list, found by the hash of their email, as "1-40" ranges, so
  // that a failed comparison shows the difference.
  std::string people_in(const std::string& list_id, int first_id, int last_id) {
    return ranges_text(people_set(list_id, first_id, last_id));
  }

  std::set<int> people_set(const std::string& list_id, int first_id, int last_id) {
    std::map<std::string, int> by_hash;
    for (int id = first_id; id <= last_id; ++id) {
      by_hash["email:" + sha256_of("person" + std::to_string(id) + "@example.com")] = id;
    }
    std::set<int> found;
    nlohmann::json members = list(list_id)["members"];
    for (const auto& member : members) {
      for (const auto& identifier : member["identifiers"]) {
        auto hit = by_hash.find(identifier.get<std::string>());
        if (hit != by_hash.end()) found.insert(hit->second);
      }
    }
    return found;
  }
};

// The people file mapped without the external id, which a contact-info list does not take.
inline std::vector<ColumnMapping> google_people_mapping() {
  return {{"EMAIL", Field::kEmail}, {"PHONE1", Field::kPhone}, {"PHONE2", Field::kPhone}};
}

}  // namespace activation::testing

#endif  // ACTIVATION_TESTS_GOOGLE_GOOGLE_TEST_SUPPORT_HPP_
