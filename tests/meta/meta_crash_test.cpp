// A worker process killed with SIGKILL in the middle of a Meta replace session: the next worker
// resumes the same session without sending its first batch again.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "meta/meta_test_support.hpp"

#ifdef ACT_ACTIVATE_PATH

namespace activation::testing {
namespace {

using Json = nlohmann::json;

int replace_batches(MetaClient& client, const std::string& audience_id) {
  int count = 0;
  Json audience = client.inspect(audience_id);
  for (const auto& batch : audience["batches"]) count += batch["operation"] == "replace" ? 1 : 0;
  return count;
}

}  // namespace

TEST_CASE("worker killed in a replace session resumes it") {
  set_test_token();
  // Latency keeps the replace running long enough to kill the worker in the middle of it.
  ServerProcess server({"--latency-ms", "40"});
  MetaClient client(server);
  ScratchDir dir("meta-crash");
  Json config = {{"store", "data/activation.db"},
                 {"engine", killable_engine_json(50)},
                 {"audiences",
                  {{"people",
                    {{"source", {{"type", "csv"}, {"path", "people.csv"}}},
                     {"mapping",
                      {{"ID", "external_id"},
                       {"EMAIL", "email"},
                       {"PHONE1", "phone"},
                       {"PHONE2", "phone"},
                       {"FIRST", "first_name"},
                       {"LAST", "last_name"}}}}}}},
                 {"destinations",
                  {{"fb",
                    {{"type", "meta"},
                     {"settings",
                      {{"ad_account_id", kAdAccount},
                       {"audience_name", "crash"},
                       {"base_url", server.base_url() + "/meta"}}},
                     {"secrets", {{"access_token", kTokenVariable}}}}}}}};
  write_file(dir.file("activation.json"), config.dump(2));

  // Members that the replace must drop.
  write_people(dir.file("people.csv"), make_people(5000, 40));
  ActivateRun added = run_activate(dir, {"distribute", "people", "fb", "--wait", "--json"});
  INFO("distribute stderr: ", added.err);
  REQUIRE(added.exit_code == 0);
  std::string audience_id = audience_id_by_name(client, "crash");
  REQUIRE_FALSE(audience_id.empty());

  std::vector<Person> people = make_people(1, 3000);
  write_people(dir.file("people.csv"), people);
  std::int64_t job = queue_with_activate(dir, {"people", "fb", "--mode", "replace"});

  pid_t worker = start_activate_worker(dir);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (replace_batches(client, audience_id) < 15 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill_and_reap(worker);
  int before = replace_batches(client, audience_id);
  MESSAGE("killed the worker after " << before << " replace batches");
  REQUIRE(before < 60);
  CHECK_FALSE(client.inspect(audience_id)["replace_in_progress"].is_null());

  Json done = resume_with_activate(dir, job);
  REQUIRE(done["status"] == "completed");

  Json audience = client.inspect(audience_id);
  std::map<std::string, int> expected;
  for (const auto& person : people) expected[std::to_string(person.id)] = static_cast<int>(meta_rows(person));
  CHECK(extern_ids(audience) == expected);
  CHECK(audience["counters"]["replace_restarts"] == 0);
  CHECK(audience["counters"]["replaces_completed"] == 1);
  // At most the batch in flight when the worker died went twice.
  CHECK(audience["counters"]["duplicate_batches"].get<int>() <= 1);

  // One replace session took every batch: batch_seq 1 once, then on without a gap, closed by its
  // last batch.
  int replace_sessions = 0;
  for (const auto& session : audience["sessions"]) {
    if (session["operation"] != "replace") continue;
    ++replace_sessions;
    CHECK(session["stage"] == "finished");
    std::vector<int> seqs = session["batch_seqs"].get<std::vector<int>>();
    REQUIRE(seqs.size() >= 61);
    CHECK(std::count(seqs.begin(), seqs.end(), 1) == 1);
    for (std::size_t i = 1; i < seqs.size(); ++i) {
      CHECK(seqs[i] >= seqs[i - 1]);
      CHECK(seqs[i] <= seqs[i - 1] + 1);
    }
  }
  CHECK(replace_sessions == 1);
}

}  // namespace activation::testing

#endif  // ACT_ACTIVATE_PATH
