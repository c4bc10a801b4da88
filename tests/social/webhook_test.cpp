// The webhook destination against the test server's receiver: signatures the receiver verifies,
// a wrong secret, rows the receiver rejects, exact adds, removes and mirrors, and throttling and
// 5xx responses.
#include <doctest/doctest.h>

#include "destinations/webhook/webhook_destination.hpp"
#include "social/social_test_support.hpp"

namespace activation::testing {

using Json = nlohmann::json;

TEST_CASE("webhook signature covers timestamp and body") {
  // The expected value is HMAC-SHA256("key", "1700000000.{}") computed independently with OpenSSL.
  CHECK(destinations::webhook_signature("key", 1700000000, "{}") ==
        "v1=" + hmac_sha256_of("key", "1700000000.{}"));
  CHECK(destinations::webhook_signature("key", 1700000000, "{}") !=
        destinations::webhook_signature("key", 1700000001, "{}"));
}

TEST_CASE("webhook add, mirror and remove land exactly") {
  set_env(kWebhookSecretVariable, kWebhookSecret);
  ServerProcess server({"--webhook-secret", kWebhookSecret});
  InspectionClient client(server);
  ScratchDir dir("webhook-mirror");
  std::string csv = dir.file("people.csv");
  auto engine = open_engine(people_config(dir, csv, webhook_destination(server, "hook", "crm")));

  std::vector<Person> first = make_people(1, 300);
  write_people(csv, first);
  DistributionJob added = run_to_end(*engine, queue_job(*engine, "people", "hook"));
  REQUIRE_MESSAGE(added.status == DistributionStatus::kCompleted, added.last_error);
  Json receiver = inspect_audience(client, "webhook", "crm");
  CHECK(received_emails("webhook", receiver) == email_hashes(first));
  CHECK(receiver["counters"]["bad_signatures"] == 0);
  for (const auto& delivery : receiver["deliveries"]) CHECK(delivery["signature_verified"] == true);

  std::vector<Person> second(first.begin() + 50, first.end());
  for (int i = 0; i < 30; ++i) second[i].email = "changed" + std::to_string(second[i].id) + "@example.com";
  for (const auto& person : make_people(1001, 40)) second.push_back(person);
  write_people(csv, second);
  DistributionJob mirrored = run_to_end(*engine, queue_job(*engine, "people", "hook", SyncMode::kMirror));
  REQUIRE_MESSAGE(mirrored.status == DistributionStatus::kCompleted, mirrored.last_error);
  Json after_mirror = inspect_audience(client, "webhook", "crm");
  CHECK(received_emails("webhook", after_mirror) == email_hashes(second));
  CHECK(after_mirror["counters"]["unmatched_removes"] == 0);

  std::vector<Person> leaving(second.begin() + 30, second.begin() + 50);
  write_people(csv, leaving);
  DistributionJob removal = run_to_end(*engine, queue_job(*engine, "people", "hook", SyncMode::kRemove));
  REQUIRE_MESSAGE(removal.status == DistributionStatus::kCompleted, removal.last_error);
  std::vector<Person> staying(second.begin(), second.begin() + 30);
  staying.insert(staying.end(), second.begin() + 50, second.end());
  CHECK(received_emails("webhook", inspect_audience(client, "webhook", "crm")) == email_hashes(staying));
}

TEST_CASE("webhook wrong secret pauses the destination") {
  set_env(kWebhookSecretVariable, "not-the-receivers-secret");
  ServerProcess server({"--webhook-secret", kWebhookSecret});
  InspectionClient client(server);
  ScratchDir dir("webhook-secret");
  std::string csv = dir.file("people.csv");
  write_people(csv, make_people(1, 200));
  auto engine = open_engine(people_config(dir, csv, webhook_destination(server, "hook", "crm")));

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "hook"));
  CHECK(job.status == DistributionStatus::kFailed);
  CHECK(job.attempts == 1);
  CHECK(job.last_error.find("the webhook receiver rejected the signing secret in the environment variable " +
                            std::string(kWebhookSecretVariable) + " (secret signing_secret)") !=
        std::string::npos);
  Json receiver = inspect_audience(client, "webhook", "crm");
  CHECK(receiver["counters"]["bad_signatures"] == 1);
  CHECK(receiver["member_count"] == 0);
}

TEST_CASE("webhook receiver rejections become rejected rows") {
  set_env(kWebhookSecretVariable, kWebhookSecret);
  ServerProcess server({"--webhook-secret", kWebhookSecret, "--webhook-require-field", "email"});
  InspectionClient client(server);
  ScratchDir dir("webhook-rejects");
  std::string csv = dir.file("people.csv");
  std::vector<Person> people = make_people(1, 100);
  for (int i = 0; i < 100; i += 10) people[i].email = "";  // Ten members known by phone only.
  write_people(csv, people);
  auto engine = open_engine(people_config(dir, csv, webhook_destination(server, "hook", "crm")));

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "hook"));
  REQUIRE_MESSAGE(job.status == DistributionStatus::kCompleted, job.last_error);
  const DestinationProgress* progress = progress_of(job, "hook");
  REQUIRE(progress != nullptr);
  CHECK(progress->counters.outcome(RowOutcome::kAccepted) == 90);
  CHECK(progress->counters.outcome(RowOutcome::kRejected) == 10);
  CHECK(progress->counters.reasons.at("webhook_rejected") == 10);
  CHECK(inspect_audience(client, "webhook", "crm")["member_count"] == 90);
}

TEST_CASE("webhook job survives throttling and 5xx") {
  set_env(kWebhookSecretVariable, kWebhookSecret);
  ServerProcess server({"--webhook-secret", kWebhookSecret, "--error-rate", "0.15", "--drop-rate", "0.03",
                        "--rate-limit", "10", "--rate-window-ms", "1000", "--seed", "3"});
  InspectionClient client(server);
  ScratchDir dir("webhook-faults");
  std::string csv = dir.file("people.csv");
  std::vector<Person> people = make_people(1, 2000);
  write_people(csv, people);
  Config config = people_config(
      dir, csv,
      webhook_destination(
          server, "hook", "busy",
          Json{{"rate_limit", {{"algorithm", "token_bucket"}, {"rate_per_second", 40}, {"burst", 4}}}}));
  config.engine.batch_size = 50;
  auto engine = open_engine(config);

  DistributionJob job = run_to_end(*engine, queue_job(*engine, "people", "hook"));
  REQUIRE_MESSAGE(job.status == DistributionStatus::kCompleted, job.last_error);
  Json stats = client.stats();
  CAPTURE(stats.dump());
  CHECK(platform_faults(stats, "webhook") >= 3);
  CHECK(stats["accounts"]["webhook:busy"]["throttled"].get<int>() > 0);
  Json receiver = inspect_audience(client, "webhook", "busy");
  CHECK(received_emails("webhook", receiver) == email_hashes(people));
  // A delivery repeated after a fault carries the same delivery id, and the receiver counts it.
  CHECK(receiver["counters"]["duplicate_deliveries"].get<std::int64_t>() <=
        platform_faults(stats, "webhook"));
}

}  // namespace activation::testing
