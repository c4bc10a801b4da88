// The token bucket shared through the store, on either store: one process, then four worker
// processes taking tokens from one bucket.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "activation/store_rate_limiter.hpp"
#include "queue_test_support.hpp"
#include "worker_process.hpp"

namespace activation {
namespace {

using namespace std::chrono_literals;
using testing::open_store;
using testing::ScratchDir;

RateLimitPolicy bucket(double rate, double burst) {
  RateLimitPolicy policy;
  policy.rate_per_second = rate;
  policy.burst = burst;
  return policy;
}

std::shared_ptr<RateLimiter> make_limiter(std::shared_ptr<Store> store, const RateLimitPolicy& policy) {
  auto limiter = make_store_rate_limiter(std::move(store), policy, "test:");
  REQUIRE_MESSAGE(limiter.is_ok(), limiter.status().to_string());
  return std::move(limiter).value();
}

TEST_CASE("store limiter grants the burst, then refuses past max_wait") {
  ScratchDir dir;
  auto limiter = make_limiter(open_store(dir.file("q.db")), bucket(1.0, 3.0));

  for (int i = 0; i < 3; ++i) {
    auto grant = limiter->try_acquire("acct");
    REQUIRE_MESSAGE(grant.is_ok(), grant.status().to_string());
    CHECK(grant->wait == 0ns);
  }
  auto refused = limiter->try_acquire("acct");
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().code() == StatusCode::kResourceExhausted);
  CHECK(refused.status().message().rfind("rate limit for 'acct': 1 token(s) available in ", 0) == 0);

  // The next token is about one interval (1 s) away; reading that reserves nothing.
  const auto until = limiter->time_until_available("acct");
  CHECK(until > 500ms);
  CHECK(until <= 1s);
  CHECK(limiter->time_until_available("acct") <= until);

  // A reservation that may wait is granted with that wait, and moves the next one further out.
  auto queued = limiter->reserve("acct", 1.0, 5s);
  REQUIRE(queued.is_ok());
  CHECK(queued->wait > 500ms);
  CHECK(limiter->time_until_available("acct") > 1500ms);
}

TEST_CASE("store limiter keys are independent and shared by store objects") {
  ScratchDir dir;
  auto first = make_limiter(open_store(dir.file("q.db")), bucket(1.0, 1.0));
  auto second = make_limiter(open_store(dir.file("q.db")), bucket(1.0, 1.0));

  REQUIRE(first->try_acquire("a").is_ok());
  // The other store object sees the token taken through the first one.
  CHECK_FALSE(second->try_acquire("a").is_ok());
  CHECK(second->try_acquire("b").is_ok());
}

TEST_CASE("store limiter rejects bad policies and token counts") {
  ScratchDir dir;
  auto store = open_store(dir.file("q.db"));

  RateLimitPolicy adaptive = bucket(1.0, 1.0);
  adaptive.algorithm = RateLimitAlgorithm::kAdaptive;
  auto rejected = make_store_rate_limiter(store, adaptive);
  REQUIRE_FALSE(rejected.is_ok());
  CHECK(rejected.status().message() ==
        "a rate limiter shared through the store supports the token_bucket algorithm only; got 'adaptive'");

  auto no_store = make_store_rate_limiter(nullptr, bucket(1.0, 1.0));
  REQUIRE_FALSE(no_store.is_ok());
  CHECK(no_store.status().code() == StatusCode::kInvalidArgument);

  auto limiter = make_limiter(store, bucket(1.0, 2.0));
  auto too_many = limiter->try_acquire("acct", 3.0);
  REQUIRE_FALSE(too_many.is_ok());
  CHECK(too_many.status().code() == StatusCode::kInvalidArgument);
}

RateLimitPolicy window(double limit, std::chrono::milliseconds length) {
  RateLimitPolicy policy;
  policy.algorithm = RateLimitAlgorithm::kSlidingWindow;
  policy.window_limit = limit;
  policy.window = length;
  return policy;
}

std::shared_ptr<RateLimiter> make_window(std::shared_ptr<Store> store, const RateLimitPolicy& policy) {
  auto limiter = make_store_window_limiter(std::move(store), policy, "window:");
  REQUIRE_MESSAGE(limiter.is_ok(), limiter.status().to_string());
  return std::move(limiter).value();
}

TEST_CASE("store window grants its limit, then waits for room") {
  ScratchDir dir;
  auto limiter = make_window(open_store(dir.file("q.db")), window(3.0, 1000ms));
  auto other = make_window(open_store(dir.file("q.db")), window(3.0, 1000ms));

  REQUIRE(limiter->try_acquire("acct", 2.0).is_ok());
  // The other store object counts the tokens granted through the first one.
  REQUIRE(other->try_acquire("acct").is_ok());
  auto rejected = other->try_acquire("acct");
  REQUIRE_FALSE(rejected.is_ok());
  CHECK(rejected.status().code() == StatusCode::kResourceExhausted);
  CHECK(other->try_acquire("another").is_ok());

  const auto until = limiter->time_until_available("acct");
  CHECK(until > 0ms);
  CHECK(until <= 1000ms);
  // A reservation cannot wait for room in a shared window, but acquire() can.
  auto reserved = limiter->reserve("acct", 1.0, 5s);
  REQUIRE_FALSE(reserved.is_ok());
  CHECK(reserved.status().message().find("acquire() waits for them") != std::string::npos);
  auto waited = limiter->acquire("acct", 1.0, 5s);
  REQUIRE_MESSAGE(waited.is_ok(), waited.status().to_string());
  CHECK(waited->wait > 0ms);
  CHECK_FALSE(limiter->try_acquire("acct", 3.0).is_ok());

  auto too_many = limiter->try_acquire("acct", 4.0);
  REQUIRE_FALSE(too_many.is_ok());
  CHECK(too_many.status().code() == StatusCode::kInvalidArgument);
  auto bucket_policy = make_store_window_limiter(open_store(dir.file("q.db")), bucket(1.0, 1.0));
  REQUIRE_FALSE(bucket_policy.is_ok());
  CHECK(bucket_policy.status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("four store objects together stay within the window") {
  ScratchDir dir;
  constexpr double kLimit = 5.0;
  const auto start = std::chrono::system_clock::now();
  std::mutex mutex;
  std::vector<std::chrono::system_clock::time_point> granted;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      auto limiter = make_window(open_store(dir.file("q.db")), window(kLimit, 1000ms));
      for (int i = 0; i < 40; ++i) {
        if (limiter->try_acquire("acct").is_ok()) {
          std::lock_guard lock(mutex);
          granted.push_back(std::chrono::system_clock::now());
        }
        std::this_thread::sleep_for(50ms);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const auto elapsed = std::chrono::system_clock::now() - start;

  // A grant is recorded between `start` and the moment the thread saw it, so the grants seen in
  // the first 900 ms all lie in one window.
  int early = 0;
  for (const auto& at : granted) early += at - start < 900ms ? 1 : 0;
  CHECK(early <= 5);
  const auto windows = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() / 1000 + 1;
  CAPTURE(granted.size());
  CHECK(granted.size() >= 5);
  CHECK(static_cast<double>(granted.size()) <= kLimit * static_cast<double>(windows));
}

TEST_CASE("four processes together stay within the shared rate") {
  ScratchDir dir;
  const std::string store = dir.file("q.db");
  const std::string log = dir.file("tokens.log");
  { open_store(store); }  // Creates the store (or schema) before the workers race to.

  constexpr double kRate = 50.0;
  constexpr double kBurst = 5.0;
  constexpr int kPerWorker = 40;
  {
    std::vector<std::unique_ptr<testing::WorkerProcess>> workers;
    for (int i = 0; i < 4; ++i) {
      workers.push_back(std::make_unique<testing::WorkerProcess>(
          std::vector<std::string>{"limit", store, log, fmt::format("{}", kRate), fmt::format("{}", kBurst),
                                   std::to_string(kPerWorker)},
          dir.file(fmt::format("limit{}.out", i))));
    }
    for (auto& worker : workers) CHECK(worker->wait_exit(120s) == 0);
  }

  // Each line is the system clock, in microseconds, from which a worker's token was usable.
  std::vector<std::int64_t> used;
  std::map<long, int> per_worker;
  for (const auto& line : testing::read_lines(log)) {
    std::istringstream fields(line);
    std::string word;
    std::int64_t at = 0;
    long pid = 0;
    fields >> word >> at >> pid;
    used.push_back(at);
    ++per_worker[pid];
  }
  REQUIRE(used.size() == 4 * kPerWorker);
  CHECK(per_worker.size() == 4);
  std::sort(used.begin(), used.end());

  // GCRA allows at most burst + rate * window tokens in any window. One extra token is allowed
  // because each worker converts the store's result to its own clock, and the round trip to the
  // store varies by a fraction of a millisecond between reservations.
  int worst_excess = -1000;
  for (const double window_seconds : {0.1, 0.5, 1.0, 2.0}) {
    const auto window = static_cast<std::int64_t>(window_seconds * 1e6);
    const double allowed = kBurst + kRate * window_seconds + 1.0;
    std::size_t end = 0;
    for (std::size_t begin = 0; begin < used.size(); ++begin) {
      while (end < used.size() && used[end] < used[begin] + window) ++end;
      const auto in_window = static_cast<double>(end - begin);
      worst_excess = std::max(worst_excess, static_cast<int>(in_window - allowed));
      CHECK_MESSAGE(in_window <= allowed, in_window, " tokens in a window of ", window_seconds,
                    " s starting at token ", begin, "; allowed ", allowed);
    }
  }
  MESSAGE("largest excess over the allowed count in any window: ", worst_excess);
}

}  // namespace
}  // namespace activation
