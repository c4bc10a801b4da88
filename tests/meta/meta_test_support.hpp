// Helpers of the Meta adapter tests: a Meta destination pointed at the test server and readers of
// the server's Meta state. tests/platform_support/platform_test_support.hpp has the shared ones.
#ifndef ACTIVATION_TESTS_META_META_TEST_SUPPORT_HPP_
#define ACTIVATION_TESTS_META_META_TEST_SUPPORT_HPP_

#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "activation/backend/store.hpp"
#include "platform_support/platform_test_support.hpp"

namespace activation::testing {

// The environment variable the test destinations read their token from. The server accepts any
// token unless started with --token. Tests that set their own rate limit use an ad account of
// their own. The process keeps one limiter per account with the policy it was created with, and a
// later server may get the port of an earlier one.
inline constexpr const char* kTokenVariable = "ACT_META_TEST_TOKEN";
inline constexpr const char* kTestToken = "test-token";
inline constexpr const char* kAdAccount = "act_1001";

inline void set_test_token(const std::string& token = kTestToken) {
  ::setenv(kTokenVariable, token.c_str(), 1);
}

// A "meta" destination of `server` that finds or creates the audience `audience_name`. `extra`
// adds or replaces settings.
inline DestinationConfig meta_destination(const ServerProcess& server, const std::string& name,
                                          const std::string& audience_name,
                                          const nlohmann::json& extra = {}) {
  DestinationConfig destination;
  destination.name = name;
  destination.type = "meta";
  nlohmann::json settings = {{"ad_account_id", kAdAccount},
                             {"audience_name", audience_name},
                             {"base_url", server.base_url() + "/meta"},
                             {"api_version", "v24.0"},
                             {"max_throttle_wait_seconds", 0.5},
                             {"circuit_breaker", {{"open_seconds", 0.2}}}};
  if (extra.is_object()) {
    for (const auto& [key, value] : extra.items()) settings[key] = value;
  }
  destination.settings = settings.dump();
  destination.secret_env = {{"access_token", kTokenVariable}};
  return destination;
}

// The rows Meta stores for a person: one per phone.
inline std::size_t meta_rows(const Person& person) {
  return person.phone2.empty() ? 1 : 2;
}

// Returns the id of the audience called `name` on the server, or "" when there is none.
inline std::string audience_id_by_name(MetaClient& client, const std::string& name) {
  nlohmann::json all = client.inspect_path("/__inspect/meta/audiences");
  for (const auto& audience : all["audiences"]) {
    if (audience["name"] == name) return audience["id"].get<std::string>();
  }
  return {};
}

// The EXTERN_ID of every member row the audience contains, with the number of rows per id.
inline std::map<std::string, int> extern_ids(const nlohmann::json& audience) {
  std::map<std::string, int> ids;
  for (const auto& member : audience["members"]) {
    auto keys = member["keys"];
    if (keys.contains("EXTERN_ID")) ++ids[keys["EXTERN_ID"].get<std::string>()];
  }
  return ids;
}

// Sums the server's injected faults that struck after the request took effect.
inline std::int64_t faults_after_apply(const nlohmann::json& stats) {
  std::int64_t total = 0;
  if (!stats.contains("faults") || !stats["faults"].contains("meta")) return 0;
  for (const auto& [kind, count] : stats["faults"]["meta"].items()) {
    if (kind.find("_after_apply") != std::string::npos) total += count.get<std::int64_t>();
  }
  return total;
}

// The external ids of the members that the ledger stores as accepted adds for (audience,
// destination).
inline std::set<std::string> ledger_extern_ids(const std::string& store_path, const std::string& audience,
                                               const std::string& destination) {
  auto store = open_sqlite_store(store_path);
  REQUIRE(store.is_ok());
  std::set<std::string> ids;
  std::string after;
  while (true) {
    auto page = (*store)->page_members(audience, destination, MemberScan::kAll, 0, after, 1000);
    REQUIRE(page.is_ok());
    if (page->empty()) break;
    for (const auto& entry : *page) {
      after = entry.member_key;
      if (entry.operation != LedgerOperation::kAdd || entry.outcome != LedgerOutcome::kAccepted) continue;
      for (const auto& pair : nlohmann::json::parse(entry.hashed_keys)) {
        if (pair[0] == "external_id") ids.insert(pair[1].get<std::string>());
      }
    }
  }
  return ids;
}

}  // namespace activation::testing

#endif  // ACTIVATION_TESTS_META_META_TEST_SUPPORT_HPP_
