// The `activate` worker killed with SIGKILL in the middle of a run of each newer adapter (Google
// Data Manager, Google Ads, LinkedIn, TikTok, Snapchat, webhook), then a second worker that
// resumes the job. The job ends completed, the platform contains every member, and at most the
// batch in flight at the kill reaches the platform twice. For Google Ads the run is a replace,
// whose removeAll must go out once.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "google/google_test_support.hpp"
#include "social/social_test_support.hpp"

#ifdef ACT_ACTIVATE_PATH

namespace activation::testing {
namespace {

using Json = nlohmann::json;

constexpr int kPeople = 1000;
constexpr int kBatchSize = 20;
constexpr int kBatches = kPeople / kBatchSize;
// The worker is killed once the platform has received this many batches.
constexpr std::int64_t kBatchesBeforeKill = 8;

// The platform's count of the requests that carried members, from the audience's inspection JSON.
// Each batch of this test is one such request.
std::int64_t received_batches(const std::string& type, const Json& audience) {
  if (type == "google") return audience["uploads"].get<std::int64_t>();
  if (type == "google_ads") {
    std::int64_t calls = 0;
    for (const auto& job : audience["jobs"]) calls += job["add_operations_calls"].get<std::int64_t>();
    return calls;
  }
  if (type == "linkedin") return audience["counters"]["batches"].get<std::int64_t>();
  if (type == "webhook") return audience["counters"]["deliveries"].get<std::int64_t>();
  return audience["counters"]["requests"].get<std::int64_t>();  // TikTok and Snapchat.
}

std::string inspection_platform(const std::string& type) {
  return type == "google_ads" ? "google" : type;
}

// The destination "dest" of `type` on `server`, writing to an audience named "crash".
DestinationConfig crash_destination(const std::string& type, const ServerProcess& server,
                                    GoogleInspector& google) {
  if (type == "google") {
    return google_destination(server, "dest", "google", {{"user_list_id", google.create_list("crash")}});
  }
  if (type == "google_ads")
    return google_destination(server, "dest", "google_ads", {{"user_list_name", "crash"}});
  if (type == "linkedin")
    return linkedin_destination(server, "dest", "crash", {{"segment_ready_delay_seconds", 0}});
  if (type == "tiktok") return tiktok_destination(server, "dest", "crash");
  if (type == "snapchat") return snapchat_destination(server, "dest", "crash");
  REQUIRE(type == "webhook");
  return webhook_destination(server, "dest", "crash");
}

// The audience "crash" on the server, or null before the adapter created it (the webhook
// receiver: before its first delivery).
Json crash_audience(InspectionClient& client, const std::string& type) {
  std::string platform = inspection_platform(type);
  std::string id = inspected_id(client, platform, "crash");
  if (id.empty()) return nullptr;
  return inspect_audience(client, platform, id);
}

std::int64_t batches_now(InspectionClient& client, const std::string& type) {
  Json audience = crash_audience(client, type);
  return audience.is_null() ? 0 : received_batches(type, audience);
}

void crash_and_resume(const std::string& type) {
  CAPTURE(type);
  set_env(kSocialTokenVariable, "crash-token");
  set_env(kWebhookSecretVariable, kWebhookSecret);
  set_google_secrets("crash-" + type);
  set_snapchat_secrets("crash-" + type);
  // Latency keeps the run going long enough to kill the worker in the middle of it.
  ServerProcess server(
      {"--latency-ms", "30", "--linkedin-ready-delay-ms", "0", "--webhook-secret", kWebhookSecret});
  InspectionClient client(server);
  GoogleInspector google(server);
  ScratchDir dir("crash-" + type);

  Json config = {{"store", "data/activation.db"},
                 {"engine", killable_engine_json(kBatchSize)},
                 {"audiences",
                  {{"people",
                    {{"source", {{"type", "csv"}, {"path", "people.csv"}}},
                     {"mapping", {{"EMAIL", "email"}, {"PHONE1", "phone"}}}}}}},
                 {"destinations", {{"dest", destination_json(crash_destination(type, server, google))}}}};
  write_file(dir.file("activation.json"), config.dump(2));

  // A replace must drop these earlier members.
  const bool replace = type == "google_ads";
  std::int64_t batches_before_job = 0;
  if (replace) {
    write_people(dir.file("people.csv"), make_people(5001, 40));
    ActivateRun earlier = run_activate(dir, {"distribute", "people", "dest", "--wait", "--json"});
    INFO("distribute stderr: ", earlier.err);
    REQUIRE(earlier.exit_code == 0);
    batches_before_job = batches_now(client, type);
  }

  std::vector<Person> people = make_people(1, kPeople);
  write_people(dir.file("people.csv"), people);
  std::vector<std::string> distribute = {"people", "dest"};
  if (replace) {
    distribute.push_back("--mode");
    distribute.push_back("replace");
  }
  std::int64_t job = queue_with_activate(dir, distribute);

  pid_t worker = start_activate_worker(dir);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (batches_now(client, type) - batches_before_job < kBatchesBeforeKill &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill_and_reap(worker);
  std::int64_t at_kill = batches_now(client, type) - batches_before_job;
  MESSAGE(type << ": killed the worker after " << at_kill << " of " << kBatches << " batches");
  REQUIRE(at_kill >= kBatchesBeforeKill);
  REQUIRE(at_kill < kBatches);

  Json summary = resume_with_activate(dir, job);
  INFO("status: ", summary.dump());
  REQUIRE(summary["status"] == "completed");
  const Json& counters = summary["destinations"]["dest"];
  CHECK(counters["accepted"] == kPeople);
  CHECK(counters["rejected"] == 0);
  CHECK(counters["batches"] == kBatches);

  // No member is lost, and a replace dropped the earlier members.
  Json audience = crash_audience(client, type);
  REQUIRE_FALSE(audience.is_null());
  CHECK(received_emails(inspection_platform(type), audience) == email_hashes(people));

  // Every batch arrived, and only the one in flight at the kill may have arrived twice.
  std::int64_t received = received_batches(type, audience) - batches_before_job;
  CHECK(received >= kBatches);
  CHECK(received <= kBatches + 1);
  if (type == "webhook") CHECK(audience["counters"]["duplicate_deliveries"].get<int>() <= 1);

  if (replace) {
    // One add job carried the removeAll: the resumed worker went on with the job in the
    // checkpoint instead of starting the replace again.
    int remove_all_jobs = 0;
    for (const auto& google_job : audience["jobs"]) {
      CAPTURE(google_job.dump());
      CHECK(google_job["status"] == "SUCCESS");
      if (google_job["remove_all"] == true) ++remove_all_jobs;
    }
    CHECK(remove_all_jobs == 1);
    // The earlier add job and the replace job.
    CHECK(audience["jobs"].size() == 2);
  }
}

}  // namespace

TEST_CASE("killed worker resumes each newer adapter") {
  SUBCASE("google data manager") {
    crash_and_resume("google");
  }
  SUBCASE("google ads replace") {
    crash_and_resume("google_ads");
  }
  SUBCASE("linkedin") {
    crash_and_resume("linkedin");
  }
  SUBCASE("tiktok") {
    crash_and_resume("tiktok");
  }
  SUBCASE("snapchat") {
    crash_and_resume("snapchat");
  }
  SUBCASE("webhook") {
    crash_and_resume("webhook");
  }
}

}  // namespace activation::testing

#endif  // ACT_ACTIVATE_PATH
