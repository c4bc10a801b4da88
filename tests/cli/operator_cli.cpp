// What an operator of the activate host reads: error codes of rejected credentials, configuration
// errors, the jobs table, the rejects export and the progress line. Real processes, a real store
// and the platform test server on loopback.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/test_util.hpp"
#include "platform/server_process.hpp"
#include "platform_support/platform_test_support.hpp"

using activation::testing::read_file;
using activation::testing::run_activate;
using activation::testing::ScratchDir;
using activation::testing::ServerProcess;
using activation::testing::write_file;
using Json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

const char* kPeople = "ID,EMAIL,PHONE\n1,ann@example.com,\n2,bob@example.com,+14155550123\n3,not-an-email,\n";

}  // namespace

TEST_CASE("rejected credentials end unauthenticated") {
  ServerProcess server({"--token", "good-token", "--oauth-revoke", "revoked-refresh-token", "--webhook-secret",
                        "good-secret"});
  ScratchDir dir("cli-auth");
  write_file(dir.file("people.csv"), kPeople);
  const std::string base = server.base_url();
  Json destinations = {
      {"meta", {{"type", "meta"},
                {"settings", {{"ad_account_id", "act_1"}, {"audience_name", "a"}, {"base_url", base + "/meta"}}},
                {"secrets", {{"access_token", "ACT_AUTH_TOKEN"}}}}},
      {"google_ads", {{"type", "google_ads"},
                      {"settings", {{"customer_id", "123-456-7890"}, {"user_list_name", "a"},
                                    {"consent", {{"ad_user_data", "granted"}, {"ad_personalization", "granted"}}},
                                    {"base_url", base + "/google/ads"}, {"token_url", base + "/oauth2/token"}}},
                      {"secrets", {{"client_id", "ACT_AUTH_CLIENT"}, {"client_secret", "ACT_AUTH_CLIENT"},
                                   {"refresh_token", "ACT_AUTH_REFRESH"}}}}},
      {"linkedin", {{"type", "linkedin"},
                    {"settings", {{"ad_account_id", "507404993"}, {"segment_name", "a"},
                                  {"source_platform", "TEST"}, {"base_url", base + "/linkedin/rest"}}},
                    {"secrets", {{"access_token", "ACT_AUTH_TOKEN"}}}}},
      {"tiktok", {{"type", "tiktok"},
                  {"settings", {{"advertiser_id", "7012345678901234567"}, {"audience_name", "a"},
                                {"base_url", base + "/tiktok/open_api/v1.3"}}},
                  {"secrets", {{"access_token", "ACT_AUTH_TOKEN"}}}}},
      {"snapchat", {{"type", "snapchat"},
                    {"settings", {{"ad_account_id", "8adc3db7-8148-4fbf-999c-8d2266369d74"}, {"segment_name", "a"},
                                  {"base_url", base + "/snapchat/v1"}, {"token_url", base + "/oauth2/token"}}},
                    {"secrets", {{"client_id", "ACT_AUTH_CLIENT"}, {"client_secret", "ACT_AUTH_CLIENT"},
                                 {"refresh_token", "ACT_AUTH_REFRESH"}}}}},
      {"webhook", {{"type", "webhook"}, {"profile", "meta"},
                   {"settings", {{"url", base + "/webhook/a"}}},
                   {"secrets", {{"signing_secret", "ACT_AUTH_SIGNING"}}}}}};
  Json config = {{"store", "data/activation.db"},
                 {"engine", {{"parallelism", 6}, {"batch_retry_base_ms", 1}}},
                 {"audiences",
                  {{"people", {{"source", {{"type", "csv"}, {"path", "people.csv"}}},
                               {"mapping", {{"ID", "external_id"}, {"EMAIL", "email"}, {"PHONE", "phone"}}}}}}},
                 {"destinations", destinations}};
  write_file(dir.file("activation.json"), config.dump(2));
  ::setenv("ACT_AUTH_TOKEN", "rejected-token", 1);
  ::setenv("ACT_AUTH_CLIENT", "client", 1);
  ::setenv("ACT_AUTH_REFRESH", "revoked-refresh-token", 1);
  ::setenv("ACT_AUTH_SIGNING", "wrong-secret", 1);

  std::vector<std::string> args = {"distribute", "people"};
  for (const auto& [name, value] : destinations.items()) args.push_back(name);
  args.insert(args.end(), {"--wait", "--json"});
  auto run = run_activate(dir, args);
  INFO("stderr: ", run.err);
  CHECK(run.exit_code == 1);
  Json summary = Json::parse(run.out);
  CHECK(summary["status"] == "failed");
  CHECK(summary["last_error"].get<std::string>().rfind("unauthenticated: ", 0) == 0);
  for (const auto& [name, value] : destinations.items()) {
    INFO("destination ", name, ": ", summary["destinations"][name].dump());
    CHECK(summary["destinations"][name]["state"] == "failed");
    CHECK(summary["destinations"][name]["error_code"] == "unauthenticated");
  }
  CHECK(summary["destinations"]["meta"]["error"].get<std::string>().find(
            "Put a valid token in the environment variable ACT_AUTH_TOKEN (secret access_token)") !=
        std::string::npos);

  auto status = run_activate(dir, {"status", std::to_string(summary["job_id"].get<int>())});
  CHECK(status.out.find("    error (unauthenticated): destination 'meta': ") != std::string::npos);
}

TEST_CASE("settings errors found at load") {
  ScratchDir dir("cli-settings");
  write_file(dir.file("people.csv"), kPeople);
  const std::string head = R"({"store": "data/activation.db",
    "audiences": {"people": {"source": {"type": "csv", "path": "people.csv"}, "mapping": {"EMAIL": "email"}}},
    "destinations": {"out": {"type": "file", "settings": {"directory": "out"}},
                     "meta_ads": {"type": "meta", )";
  struct Case {
    const char* destination;
    const char* error;
  };
  const Case cases[] = {
      {R"("settings": {"ad_account_id": "act_1", "audience_name": 12}, "secrets": {"access_token": "T"}})",
       "activation.json: destinations.meta_ads.settings.audience_name: expected a string, got 12"},
      {R"("settings": {"ad_account_id": "act_1", "audience_name": "a", "colour": "blue"}, "secrets": {"access_token": "T"}})",
       "activation.json: destinations.meta_ads.settings.colour: unknown key; expected one of ad_account_id, "
       "audience_id, audience_name, audience_description, customer_file_source, api_version, base_url, "
       "timeout_seconds, max_rows_per_request, session_max_age_seconds, max_throttle_wait_seconds, rate_limit, "
       "circuit_breaker, ca_file, proxy, no_proxy"},
      {R"("settings": {"audience_name": "a"}, "secrets": {"access_token": "T"}})",
       "activation.json: destinations.meta_ads.settings.ad_account_id: missing; expected the ad account, such "
       "as \"act_1234567890\""},
      {R"("settings": {"ad_account_id": "act_1", "audience_name": "a"}})",
       "activation.json: destinations.meta_ads.secrets.access_token: missing; name the environment variable "
       "that contains the Meta access token, such as {\"access_token\": \"META_ACCESS_TOKEN\"}"},
  };
  for (const auto& test : cases) {
    INFO("destination: ", test.destination);
    write_file(dir.file("activation.json"), head + test.destination + "}}");
    auto dry_run = run_activate(dir, {"distribute", "people", "out", "--dry-run"});
    CHECK(dry_run.exit_code == 1);
    CHECK(dry_run.err == std::string("activate distribute: ") + test.error + "\n");
    auto worker = run_activate(dir, {"worker", "--until-idle"});
    CHECK(worker.exit_code == 1);
    CHECK(worker.err == std::string("activate worker: ") + test.error + "\n");
    CHECK_FALSE(fs::exists(dir.path() / "data"));
  }

  write_file(dir.file("activation.json"),
             R"({"store": "x.db", "audiences": {}, "destinations": {"out": {"type": "file", "settings": {"directory": 5}}}})");
  auto file = run_activate(dir, {"jobs"});
  CHECK(file.err ==
        "activate jobs: activation.json: destinations.out.settings.directory: expected the folder to write files "
        "to, got 5\n");
}

TEST_CASE("config syntax error names line") {
  ScratchDir dir("cli-syntax");
  write_file(dir.file("activation.json"), "{\n  \"store\": \"x.db\",\n  \"audiences\": {},,\n}\n");
  auto run = run_activate(dir, {"jobs"});
  CHECK(run.exit_code == 1);
  CHECK(run.err ==
        "activate jobs: activation.json: line 3, column 19: syntax error while parsing object key - unexpected "
        "','; expected string literal\n");
}

TEST_CASE("missing config names folder") {
  ScratchDir dir("cli-noconfig");
  ::unsetenv("ACTIVATION_CONFIG");
  auto run = run_activate(dir, {"jobs"});
  CHECK(run.exit_code == 1);
  const std::string folder = fs::canonical(dir.path()).string();
  CHECK(run.err.find("activate jobs: configuration file activation.json (the default, because neither --config nor "
                     "$ACTIVATION_CONFIG is set) not found in ") == 0);
  CHECK(run.err.find(folder) != std::string::npos);
  CHECK(run.err.find("Pass --config FILE") != std::string::npos);

  auto named = run_activate(dir, {"status", "1", "--config", "elsewhere/mine.json"});
  CHECK(named.exit_code == 1);
  CHECK(named.err.find("activate status: configuration file mine.json (named by --config) not found in " + folder +
                       "/elsewhere\n") == 0);
}

TEST_CASE("jobs table counts rows once") {
  ScratchDir dir("cli-jobs");
  write_file(dir.file("people.csv"), kPeople);
  write_file(dir.file("activation.json"), R"({"store": "data/activation.db",
    "audiences": {"people": {"source": {"type": "csv", "path": "people.csv"}, "mapping": {"EMAIL": "email"}}},
    "destinations": {
      "a": {"type": "file", "settings": {"directory": "out/a"}},
      "b": {"type": "file", "settings": {"directory": "out/b"}},
      "a_destination_with_a_name_much_wider_than_the_column": {"type": "file", "settings": {"directory": "out/c"}}}})");
  auto first = run_activate(dir, {"distribute", "people", "a", "b",
                                         "a_destination_with_a_name_much_wider_than_the_column", "--wait"});
  REQUIRE(first.exit_code == 0);

  // The progress line keeps rows without a usable identifier apart from rejected and deferred ones.
  CHECK(first.err.find("accepted            2  invalid          1  rejected         0  deferred         0") !=
        std::string::npos);

  auto second = run_activate(dir, {"distribute", "people", "a", "--wait"});
  REQUIRE(second.exit_code == 0);
  auto jobs = run_activate(dir, {"jobs"});
  REQUIRE(jobs.exit_code == 0);
  auto lines = lines_of(jobs.out);
  REQUIRE(lines.size() == 3);
  const std::string& header = lines[0];
  const std::size_t rows_end = header.find("ROWS") + 4;
  const std::size_t accepted_end = header.find("ACCEPTED") + 8;
  const std::size_t created = header.find("CREATED");
  for (std::size_t i = 1; i < lines.size(); ++i) {
    INFO("table:\n", jobs.out);
    // Three destinations read the same 3 rows: ROWS shows 3, and ACCEPTED the 2 valid rows that
    // each accepted, not their sum.
    CHECK(lines[i].substr(rows_end - 2, 2) == " 3");
    CHECK(lines[i].substr(accepted_end - 2, 2) == " 2");
    CHECK(lines[i].substr(created, 2) == "20");
  }
}

TEST_CASE("rejects of unknown job") {
  ScratchDir dir("cli-rejects");
  write_file(dir.file("activation.json"), R"({"store": "data/activation.db", "audiences": {}, "destinations": {}})");
  auto run = run_activate(dir, {"rejects", "42"});
  CHECK(run.exit_code == 1);
  CHECK(run.out.empty());
  CHECK(run.err == "activate rejects: job 42 does not exist\n");

  auto to_file = run_activate(dir, {"rejects", "42", "--out", "rejects.csv"});
  CHECK(to_file.exit_code == 1);
  CHECK_FALSE(fs::exists(dir.path() / "rejects.csv"));
}
