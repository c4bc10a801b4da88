// The checkpointer and the membership ledger on a real SQLite file.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include "queue_test_support.hpp"

namespace activation {
namespace {

using namespace std::chrono_literals;
using testing::claim_ok;
using testing::enqueue_ok;
using testing::job_spec;
using testing::make_queue;
using testing::open_store;
using testing::ScratchDir;

struct Fixture {
  ScratchDir dir;
  std::shared_ptr<Store> store = open_store(dir.file("q.db"));
  std::shared_ptr<JobQueue> queue = make_queue(store);
  std::shared_ptr<Checkpointer> checkpointer = Checkpointer::create(store).value();
  std::shared_ptr<Ledger> ledger = Ledger::create(store).value();
};

std::string member(int i) { return fmt::format("m{:06d}", i); }

LedgerUpdate added(const std::string& key, LedgerOutcome outcome = LedgerOutcome::kAccepted) {
  return {key, fmt::format(R"({{"email":["{}-hash"]}})", key), LedgerOperation::kAdd, outcome,
          outcome == LedgerOutcome::kAccepted ? "" : "invalid email hash"};
}

Checkpoint checkpoint_for(JobId job, std::int64_t batch, std::string position) {
  Checkpoint checkpoint;
  checkpoint.job_id = job;
  checkpoint.destination = "meta";
  checkpoint.batch_number = batch;
  checkpoint.source_position = std::move(position);
  checkpoint.counters = fmt::format(R"({{"accepted":{}}})", batch * 10);
  checkpoint.session_state = R"({"session_id":"s-1"})";
  return checkpoint;
}

TEST_CASE("checkpoint save, load and clear") {
  Fixture f;
  const JobId job = enqueue_ok(*f.queue, job_spec("distribute"));
  auto none = f.checkpointer->load(job, "meta");
  REQUIRE(none.is_ok());
  CHECK_FALSE(none->has_value());

  REQUIRE(f.checkpointer->save(checkpoint_for(job, 3, "byte:4096")).is_ok());
  auto loaded = f.checkpointer->load(job, "meta");
  REQUIRE(loaded.is_ok());
  REQUIRE(loaded->has_value());
  CHECK((*loaded)->batch_number == 3);
  CHECK((*loaded)->source_position == "byte:4096");
  CHECK((*loaded)->counters == R"({"accepted":30})");
  CHECK((*loaded)->session_state == R"({"session_id":"s-1"})");

  Checkpoint google = checkpoint_for(job, 1, "byte:100");
  google.destination = "google";
  REQUIRE(f.checkpointer->save(google).is_ok());
  auto all = f.checkpointer->load_all(job);
  REQUIRE(all.is_ok());
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].destination == "google");
  CHECK((*all)[1].destination == "meta");

  REQUIRE(f.checkpointer->clear(job, "meta").is_ok());
  REQUIRE(f.checkpointer->clear(job, "meta").is_ok());
  auto cleared = f.checkpointer->load(job, "meta");
  REQUIRE(cleared.is_ok());
  CHECK_FALSE(cleared->has_value());
}

TEST_CASE("checkpoint rejects bad JSON and a batch number that moves back") {
  Fixture f;
  Checkpoint bad = checkpoint_for(7, 1, "0");
  bad.counters = "{accepted: 1}";
  Status status = f.checkpointer->save(bad);
  CHECK(status.code() == StatusCode::kInvalidArgument);
  CHECK(status.message().rfind("checkpoint of job 7 destination 'meta': counters are not valid JSON: ", 0) == 0);

  REQUIRE(f.checkpointer->save(checkpoint_for(7, 5, "500")).is_ok());
  // Replaying the same batch is allowed; an older one is a late writer.
  CHECK(f.checkpointer->save(checkpoint_for(7, 5, "500")).is_ok());
  status = f.checkpointer->save(checkpoint_for(7, 4, "400"));
  CHECK(status.code() == StatusCode::kConflict);
  CHECK(status.message() == "checkpoint of job 7 destination 'meta' is at batch 5; saving batch 4 would move it back");
}

TEST_CASE("commit_batch saves the checkpoint and the ledger together or not at all") {
  Fixture f;
  const JobId job = enqueue_ok(*f.queue, job_spec("distribute"));
  ClaimedJob claimed = claim_ok(*f.queue, "w", 30ms);

  LedgerBatch batch;
  batch.audience = "vip";
  batch.destination = "meta";
  batch.seen_by_job = job;
  for (int i = 0; i < 10; ++i) batch.updates.push_back(added(member(i)));
  batch.seen_member_keys = {member(0), member(1)};
  REQUIRE(f.checkpointer->commit_batch(checkpoint_for(job, 1, "row:10"), batch, &claimed.lease).is_ok());
  CHECK(f.ledger->count("vip", "meta").value() == 10);

  SUBCASE("a bad update fails both") {
    LedgerBatch broken = batch;
    broken.updates = {added(member(20)), {member(21), "not json", LedgerOperation::kAdd, LedgerOutcome::kAccepted, ""}};
    Status status = f.checkpointer->commit_batch(checkpoint_for(job, 2, "row:20"), broken, &claimed.lease);
    CHECK(status.code() == StatusCode::kInvalidArgument);
    CHECK(status.message().rfind("ledger update 1 (member m000021): hashed_keys is not valid JSON: ", 0) == 0);
    CHECK(f.checkpointer->load(job, "meta").value()->batch_number == 1);
    CHECK(f.ledger->count("vip", "meta").value() == 10);
  }
  SUBCASE("a lost lease fails both") {
    std::this_thread::sleep_for(60ms);
    REQUIRE(f.queue->run_maintenance().is_ok());
    LedgerBatch next;
    next.audience = "vip";
    next.destination = "meta";
    next.updates = {added(member(30))};
    Status status = f.checkpointer->commit_batch(checkpoint_for(job, 2, "row:20"), next, &claimed.lease);
    CHECK(status.code() == StatusCode::kConflict);
    CHECK(status.message() == fmt::format("cannot commit a batch of job {}: lease epoch {} was lost; the job is now "
                                          "waiting with lease epoch {}",
                                          job, claimed.lease.epoch, claimed.lease.epoch));
    CHECK(f.checkpointer->load(job, "meta").value()->batch_number == 1);
    CHECK(f.ledger->count("vip", "meta").value() == 10);
  }
  SUBCASE("an older batch fails both") {
    LedgerBatch next;
    next.audience = "vip";
    next.destination = "meta";
    next.updates = {added(member(40))};
    REQUIRE(f.checkpointer->commit_batch(checkpoint_for(job, 3, "row:30"), next, &claimed.lease).is_ok());
    next.updates = {added(member(41))};
    Status status = f.checkpointer->commit_batch(checkpoint_for(job, 2, "row:20"), next, &claimed.lease);
    CHECK(status.code() == StatusCode::kConflict);
    CHECK(f.ledger->count("vip", "meta").value() == 11);
  }
}

TEST_CASE("ledger lookup finds many members at once") {
  Fixture f;
  LedgerBatch batch;
  batch.audience = "vip";
  batch.destination = "meta";
  for (int i = 0; i < 1000; i += 2) batch.updates.push_back(added(member(i), i % 10 == 0 ? LedgerOutcome::kRejected
                                                                                         : LedgerOutcome::kAccepted));
  REQUIRE(f.ledger->apply(batch).is_ok());

  std::vector<std::string> keys;
  for (int i = 0; i < 1000; ++i) keys.push_back(member(i));
  auto found = f.ledger->lookup("vip", "meta", keys);
  REQUIRE(found.is_ok());
  REQUIRE(found->size() == 1000);
  for (int i = 0; i < 1000; ++i) {
    CAPTURE(i);
    const auto& entry = (*found)[static_cast<std::size_t>(i)];
    REQUIRE(entry.has_value() == (i % 2 == 0));
    if (!entry) continue;
    CHECK(entry->member_key == member(i));
    CHECK(entry->hashed_keys == fmt::format(R"({{"email":["{}-hash"]}})", member(i)));
    CHECK(entry->operation == LedgerOperation::kAdd);
    CHECK(entry->outcome == (i % 10 == 0 ? LedgerOutcome::kRejected : LedgerOutcome::kAccepted));
    CHECK(entry->reason == (i % 10 == 0 ? "invalid email hash" : ""));
  }

  // Another destination of the same audience is a different ledger.
  auto other = f.ledger->lookup("vip", "google", keys);
  REQUIRE(other.is_ok());
  for (const auto& entry : *other) CHECK_FALSE(entry.has_value());
}

TEST_CASE("mirror scan returns accepted adds not seen by the job, in pages") {
  Fixture f;
  const JobId first_run = 1;
  const JobId second_run = 2;

  LedgerBatch initial;
  initial.audience = "vip";
  initial.destination = "meta";
  initial.seen_by_job = first_run;
  for (int i = 0; i < 2500; ++i) initial.updates.push_back(added(member(i)));
  initial.updates[5].outcome = LedgerOutcome::kRejected;  // Never on the platform: nothing to remove.
  REQUIRE(f.ledger->apply(initial).is_ok());
  LedgerBatch removed;
  removed.audience = "vip";
  removed.destination = "meta";
  removed.updates = {{member(7), R"({"email":["m000007-hash"]})", LedgerOperation::kRemove, LedgerOutcome::kAccepted, ""}};
  REQUIRE(f.ledger->apply(removed).is_ok());

  // The second run's source contains every member except those divisible by 3.
  LedgerBatch seen;
  seen.audience = "vip";
  seen.destination = "meta";
  seen.seen_by_job = second_run;
  for (int i = 0; i < 2500; ++i) {
    if (i % 3 != 0) seen.seen_member_keys.push_back(member(i));
  }
  REQUIRE(f.ledger->apply(seen).is_ok());

  std::vector<std::string> to_remove;
  int out_of_order = 0;
  std::string last;
  REQUIRE(f.ledger
              ->scan("vip", "meta", MemberScan::kAcceptedNotSeenBy, second_run,
                     [&](const LedgerEntry& entry) {
                       if (entry.member_key <= last) ++out_of_order;
                       last = entry.member_key;
                       to_remove.push_back(entry.member_key);
                       return Status();
                     },
                     /*page_size=*/100)
              .is_ok());
  CHECK(out_of_order == 0);
  std::vector<std::string> expected;
  for (int i = 0; i < 2500; i += 3) {
    if (i != 5 && i != 7) expected.push_back(member(i));
  }
  CHECK(to_remove == expected);

  int all = 0;
  REQUIRE(f.ledger->scan("vip", "meta", MemberScan::kAll, 0, [&](const LedgerEntry&) {
    ++all;
    return Status();
  }).is_ok());
  CHECK(all == 2500);

  // A visitor's error stops the scan and is returned.
  int visited = 0;
  Status stopped = f.ledger->scan("vip", "meta", MemberScan::kAll, 0, [&](const LedgerEntry&) {
    return ++visited == 3 ? Status(StatusCode::kCancelled, "enough") : Status();
  });
  CHECK(stopped.code() == StatusCode::kCancelled);
  CHECK(visited == 3);
}

TEST_CASE("ledger update replaces the row and keeps last_seen_job when the batch has none") {
  Fixture f;
  LedgerBatch batch;
  batch.audience = "a";
  batch.destination = "d";
  batch.seen_by_job = 9;
  batch.updates = {added("k")};
  REQUIRE(f.ledger->apply(batch).is_ok());
  batch.seen_by_job = 0;
  batch.updates = {{"k", R"({"phone":["p"]})", LedgerOperation::kRemove, LedgerOutcome::kDeferred, "throttled"}};
  REQUIRE(f.ledger->apply(batch).is_ok());
  auto found = f.ledger->lookup("a", "d", std::vector<std::string>{"k"});
  REQUIRE(found.is_ok());
  REQUIRE(found->front().has_value());
  const LedgerEntry& entry = *found->front();
  CHECK(entry.hashed_keys == R"({"phone":["p"]})");
  CHECK(entry.operation == LedgerOperation::kRemove);
  CHECK(entry.outcome == LedgerOutcome::kDeferred);
  CHECK(entry.reason == "throttled");
  CHECK(entry.last_seen_job == 9);
}

}  // namespace
}  // namespace activation
