// Helpers of the Meta adapter tests: a Meta destination pointed at the test server, an engine over
// a scratch folder, a small audience file with known members, and readers of the server's state.
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
#include "activation/engine.hpp"
#include "engine/test_util.hpp"
#include "platform/meta_client.hpp"
#include "platform/server_process.hpp"

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

inline Config meta_engine_config(const ScratchDir& dir) {
  Config config;
  config.store_path = dir.file("store/activation.db");
  config.engine.workers = 1;
  config.engine.batch_size = 500;
  config.engine.lease_duration = std::chrono::seconds(10);
  config.engine.heartbeat_interval = std::chrono::seconds(2);
  config.engine.batch_attempts = 10;
  config.engine.batch_retry_base = std::chrono::milliseconds(5);
  return config;
}

inline AudienceConfig csv_audience(const std::string& name, const std::string& path,
                                   std::vector<ColumnMapping> mapping) {
  AudienceConfig audience;
  audience.name = name;
  audience.source.type = SourceType::kCsv;
  audience.source.path = path;
  audience.source.mapping = std::move(mapping);
  return audience;
}

// One member of a people file: an external id, an email, one or two phones and a name.
struct Person {
  int id = 0;
  std::string email;
  std::string phone1;
  std::string phone2;  // Empty for most.
  std::string first_name = "Ann";
  std::string last_name = "Lee";
};

inline std::vector<Person> make_people(int first_id, int count) {
  static const char* kFirst[] = {"Ann", "Bob", "Chloé", "Dmitri", "Eve", "Frank", "Grace", "Hiro"};
  static const char* kLast[] = {"Lee", "Smith", "Müller", "García", "Nowak", "Okafor", "Sato"};
  std::vector<Person> people;
  for (int i = first_id; i < first_id + count; ++i) {
    Person person;
    person.id = i;
    person.email = "person" + std::to_string(i) + "@example.com";
    char phone[32];
    std::snprintf(phone, sizeof phone, "+1 415 555 %04d", i % 10000);
    person.phone1 = phone;
    if (i % 3 == 0) {
      std::snprintf(phone, sizeof phone, "+44 20 7946 %04d", i % 10000);
      person.phone2 = phone;
    }
    person.first_name = kFirst[i % 8];
    person.last_name = kLast[i % 7];
    people.push_back(person);
  }
  return people;
}

inline void write_people(const std::string& path, const std::vector<Person>& people) {
  std::string text = "ID,EMAIL,PHONE1,PHONE2,FIRST,LAST\n";
  for (const auto& person : people) {
    text += std::to_string(person.id) + "," + person.email + "," + person.phone1 + "," + person.phone2 + "," +
            person.first_name + "," + person.last_name + "\n";
  }
  write_file(path, text);
}

inline std::vector<ColumnMapping> people_mapping() {
  return {{"ID", Field::kExternalId}, {"EMAIL", Field::kEmail},     {"PHONE1", Field::kPhone},
          {"PHONE2", Field::kPhone},  {"FIRST", Field::kFirstName}, {"LAST", Field::kLastName}};
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

inline std::int64_t faults_total(const nlohmann::json& stats) {
  std::int64_t total = 0;
  if (!stats.contains("faults") || !stats["faults"].contains("meta")) return 0;
  for (const auto& [kind, count] : stats["faults"]["meta"].items()) total += count.get<std::int64_t>();
  return total;
}

inline DistributionJob run_to_end(DistributionEngine& engine, JobId id) {
  auto stats = engine.run_until_idle(std::chrono::minutes(3));
  REQUIRE(stats.is_ok());
  auto job = engine.job(id);
  REQUIRE(job.is_ok());
  return *job;
}

inline const DestinationProgress* progress_of(const DistributionJob& job, const std::string& destination) {
  for (const auto& entry : job.progress.destinations) {
    if (entry.destination == destination) return &entry;
  }
  return nullptr;
}

}  // namespace activation::testing

namespace activation::testing {

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
