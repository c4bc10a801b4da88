// Worker processes of the activate host on one PostgreSQL store share the rate limiter of a platform
// account. Three workers send to one Meta ad account of the platform test server, and the server's
// busiest window contains no more requests than the one configured rate allows.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "platform/meta_client.hpp"
#include "platform_support/platform_test_support.hpp"
#include "test_util.hpp"

using activation::testing::read_file;
using activation::testing::ScratchDir;
using activation::testing::ServerProcess;
using activation::testing::spawn_activate;
using activation::testing::wait_exit;
using activation::testing::write_file;
using Json = nlohmann::json;

namespace {

// The test needs a server. Without one it ends here with exit code 77, which ctest reports as
// skipped.
const bool kServerChecked = [] {
  const char* conninfo = std::getenv("ACTIVATION_TEST_POSTGRES");
  if (conninfo == nullptr || *conninfo == '\0') {
    std::fprintf(stderr,
                 "shared_limit_cli: SKIPPED: ACTIVATION_TEST_POSTGRES is not set; run the tests through "
                 "scripts/with-postgres.sh (scripts/test.sh does) or set it to a libpq conninfo\n");
    std::exit(77);
  }
  return true;
}();

// Runs one SQL command on the test server and fails the test on an error.
void postgres_exec(const std::string& sql) {
  PGconn* conn = PQconnectdb(std::getenv("ACTIVATION_TEST_POSTGRES"));
  REQUIRE_MESSAGE(PQstatus(conn) == CONNECTION_OK, PQerrorMessage(conn));
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  PGresult* result = PQexec(conn, sql.c_str());
  const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
  const std::string error = PQresultErrorMessage(result);
  PQclear(result);
  PQfinish(conn);
  REQUIRE_MESSAGE(ok, sql, ": ", error);
}

// A postgresql:// URL of the test server whose search path is `schema`, built from the key=value
// conninfo in ACTIVATION_TEST_POSTGRES (host, port, dbname, user).
std::string store_url(const std::string& schema) {
  std::map<std::string, std::string> fields;
  std::istringstream words(std::getenv("ACTIVATION_TEST_POSTGRES"));
  std::string word;
  while (words >> word) {
    const auto equals = word.find('=');
    if (equals != std::string::npos) fields[word.substr(0, equals)] = word.substr(equals + 1);
  }
  REQUIRE_MESSAGE(fields.count("host") == 1, "ACTIVATION_TEST_POSTGRES has no host=");
  return fmt::format("postgresql://{}@{}:{}/{}?options=-csearch_path%3D{}", fields["user"], fields["host"],
                     fields.count("port") ? fields["port"] : "5432", fields["dbname"], schema);
}

// Writes an audience of `rows` members with an email and an external id each.
void write_audience(const std::string& path, int rows, int first_id) {
  std::ofstream out(path);
  out << "CUSTOMERID,EMAIL\n";
  for (int i = 0; i < rows; ++i) out << (first_id + i) << ",member" << (first_id + i) << "@example.com\n";
}

TEST_CASE("worker processes share an account's rate") {
  constexpr int kWorkers = 3;
  constexpr int kJobs = 3;
  constexpr double kRate = 4.0;  // Requests per second of the ad account, burst 1.
  constexpr int kWindowMs = 2000;

  // The server only counts: its limit is far above the configured rate, so it never throttles, and
  // max_in_window reports the busiest 2 s window of the account.
  ServerProcess server({"--rate-limit", "100000", "--rate-window-ms", std::to_string(kWindowMs)});
  ScratchDir dir("cli-shared-limit");
  const std::string schema = fmt::format("shared_limit_{}", ::getpid());
  postgres_exec(fmt::format("DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}", schema));
  ::setenv("ACT_SHARED_LIMIT_TOKEN", "test-token", 1);

  // Three audiences of 60 members in batches of 5: 12 upload requests each, plus the look-up and
  // creation of each audience, all on ad account act_7007.
  Json audiences = Json::object();
  Json destinations = Json::object();
  for (int i = 0; i < kJobs; ++i) {
    const std::string name = fmt::format("part{}", i);
    write_audience(dir.file(name + ".csv"), 60, 1000 * (i + 1));
    audiences[name] = {{"source", {{"type", "csv"}, {"path", name + ".csv"}}},
                       {"mapping", {{"EMAIL", "email"}, {"CUSTOMERID", "external_id"}}}};
    destinations["fb" + std::to_string(i)] = {
        {"type", "meta"},
        {"settings",
         {{"ad_account_id", "act_7007"},
          {"audience_name", "shared-" + name},
          {"base_url", server.base_url() + "/meta"},
          {"rate_limit", {{"algorithm", "token_bucket"}, {"rate_per_second", kRate}, {"burst", 1}}}}},
        {"secrets", {{"access_token", "ACT_SHARED_LIMIT_TOKEN"}}}};
  }
  const Json config = {{"store", store_url(schema)},
                       {"engine", {{"workers", 1}, {"parallelism", 1}, {"batch_size", 5}}},
                       {"audiences", audiences},
                       {"destinations", destinations}};
  write_file(dir.file("activation.json"), config.dump(2));

  for (int i = 0; i < kJobs; ++i) {
    const std::string out = dir.file(fmt::format("queue{}.out", i));
    const std::string err = dir.file(fmt::format("queue{}.err", i));
    pid_t queued = spawn_activate({"distribute", fmt::format("part{}", i), fmt::format("fb{}", i), "--json"},
                                  dir.path().string(), out, err);
    REQUIRE(queued > 0);
    INFO("distribute stderr: ", read_file(err));
    REQUIRE(wait_exit(queued, std::chrono::seconds(60)) == 0);
  }

  std::vector<pid_t> workers;
  for (int i = 0; i < kWorkers; ++i) {
    workers.push_back(spawn_activate({"worker", "--until-idle"}, dir.path().string(),
                                     dir.file(fmt::format("worker{}.out", i)),
                                     dir.file(fmt::format("worker{}.err", i))));
    REQUIRE(workers.back() > 0);
  }
  for (int i = 0; i < kWorkers; ++i) {
    INFO("worker ", i, " stderr: ", read_file(dir.file(fmt::format("worker{}.err", i))));
    CHECK(wait_exit(workers[static_cast<std::size_t>(i)], std::chrono::seconds(180)) == 0);
  }

  activation::testing::MetaClient client(server);
  const Json stats = client.stats();
  CAPTURE(stats.dump());
  const Json& account = stats["accounts"]["meta:act_7007"];
  const auto requests = account["requests"].get<std::int64_t>();
  const auto busiest = account["max_in_window"].get<std::int64_t>();
  // Every upload went out: 3 audiences x 12 batches, besides the audience look-ups.
  CHECK(requests >= kJobs * 12);
  // The workers took part together: more than one of them logged that it shares the store's limiter.
  int sharing = 0;
  for (int i = 0; i < kWorkers; ++i) {
    const std::string err = read_file(dir.file(fmt::format("worker{}.err", i)));
    if (err.find("takes its tokens from store") != std::string::npos) ++sharing;
  }
  CHECK(sharing >= 2);
  // A bucket of rate r and burst 1 grants at most 1 + r x W in any window W. Two more allow for
  // requests that leave the client later than granted and reach the server together. Three
  // workers with limiters of their own would reach about three times the rate.
  const auto allowed = static_cast<std::int64_t>(1 + kRate * kWindowMs / 1000.0) + 2;
  MESSAGE("busiest " << kWindowMs << " ms window: " << busiest << " requests, allowed " << allowed << ", "
                     << requests << " requests in all");
  CHECK(busiest <= allowed);

  postgres_exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", schema));
}

}  // namespace
