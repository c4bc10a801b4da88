// Helpers for the queue suite: a scratch directory per test and a store opened in it.
#ifndef ACTIVATION_TESTS_QUEUE_QUEUE_TEST_SUPPORT_HPP_
#define ACTIVATION_TESTS_QUEUE_QUEUE_TEST_SUPPORT_HPP_

#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "activation/backend/store.hpp"
#include "activation/checkpointer.hpp"
#include "activation/job_queue.hpp"
#include "activation/ledger.hpp"
#include "activation/worker_pool.hpp"

namespace activation::testing {

// A directory under the system temp directory, removed with its contents at scope exit.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "act-queue-XXXXXX").string();
    char* made = ::mkdtemp(pattern.data());
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ignored);
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::shared_ptr<Store> open_store(const std::string& path, SqliteStoreOptions options = {}) {
  auto store = open_sqlite_store(path, options);
  REQUIRE_MESSAGE(store.is_ok(), store.status().to_string());
  return std::move(store).value();
}

inline std::shared_ptr<JobQueue> make_queue(std::shared_ptr<Store> store, JobQueueOptions options = {}) {
  if (options.jitter_seed == 0) options.jitter_seed = 42;
  auto queue = JobQueue::create(std::move(store), options);
  REQUIRE_MESSAGE(queue.is_ok(), queue.status().to_string());
  return std::move(queue).value();
}

inline JobSpec job_spec(std::string type, std::string payload = "{}", Priority priority = Priority::kNormal) {
  JobSpec spec;
  spec.type = std::move(type);
  spec.payload = std::move(payload);
  spec.priority = priority;
  return spec;
}

inline JobId enqueue_ok(JobQueue& queue, const JobSpec& spec) {
  auto result = queue.enqueue(spec);
  REQUIRE_MESSAGE(result.is_ok(), result.status().to_string());
  return result->id;
}

inline ClaimedJob claim_ok(JobQueue& queue, std::string_view worker = "test-worker",
                           std::chrono::milliseconds lease = std::chrono::seconds(30)) {
  auto claimed = queue.claim_one(worker, lease);
  REQUIRE_MESSAGE(claimed.is_ok(), claimed.status().to_string());
  REQUIRE(claimed->has_value());
  return std::move(**claimed);
}

inline JobState state_of(JobQueue& queue, JobId id) {
  auto job = queue.get(id);
  REQUIRE_MESSAGE(job.is_ok(), job.status().to_string());
  return job->state;
}

// Polls `condition` every 5 ms until it is true or `limit` passes, and returns its last value.
template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace activation::testing

#endif  // ACTIVATION_TESTS_QUEUE_QUEUE_TEST_SUPPORT_HPP_
