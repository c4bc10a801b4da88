#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <random>
#include <vector>

#include "activation/rate_limiter.hpp"
#include "platform/fake_clock.hpp"

using activation::RateFeedback;
using activation::RateGrant;
using activation::RateLimitAlgorithm;
using activation::RateLimiter;
using activation::RateLimiterRegistry;
using activation::RateLimitPolicy;
using activation::StatusCode;
using activation::testing::FakeClock;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

namespace {

std::shared_ptr<RateLimiter> make_limiter(const RateLimitPolicy& policy,
                                          const std::shared_ptr<FakeClock>& clock) {
  auto limiter = activation::make_rate_limiter(policy, clock);
  REQUIRE(limiter.is_ok());
  return *limiter;
}

RateLimitPolicy token_bucket(double rate, double burst) {
  RateLimitPolicy policy;
  policy.algorithm = RateLimitAlgorithm::kTokenBucket;
  policy.rate_per_second = rate;
  policy.burst = burst;
  return policy;
}

RateLimitPolicy sliding_window(double limit, nanoseconds window, bool until_release = false) {
  RateLimitPolicy policy;
  policy.algorithm = RateLimitAlgorithm::kSlidingWindow;
  policy.window_limit = limit;
  policy.window = window;
  policy.count_until_release = until_release;
  return policy;
}

RateLimitPolicy adaptive(double rate) {
  RateLimitPolicy policy;
  policy.algorithm = RateLimitAlgorithm::kAdaptive;
  policy.rate_per_second = rate;
  policy.min_rate_per_second = 1.0;
  return policy;
}

}  // namespace

TEST_CASE("gcra spaces requests at the configured rate") {
  auto clock = std::make_shared<FakeClock>();
  auto limiter = make_limiter(token_bucket(10.0, 1.0), clock);

  CHECK(limiter->try_acquire("act_1").is_ok());
  auto second = limiter->try_acquire("act_1");
  REQUIRE_FALSE(second.is_ok());
  CHECK(second.status().code() == StatusCode::kResourceExhausted);
  CHECK(limiter->time_until_available("act_1") == milliseconds(100));

  clock->advance(milliseconds(99));
  CHECK_FALSE(limiter->try_acquire("act_1").is_ok());
  clock->advance(milliseconds(1));
  CHECK(limiter->try_acquire("act_1").is_ok());
}

TEST_CASE("gcra allows a burst after idle time") {
  auto clock = std::make_shared<FakeClock>();
  auto limiter = make_limiter(token_bucket(10.0, 5.0), clock);

  for (int i = 0; i < 5; ++i) CHECK(limiter->try_acquire("act_1").is_ok());
  CHECK_FALSE(limiter->try_acquire("act_1").is_ok());
  CHECK(limiter->time_until_available("act_1") == milliseconds(100));

  // A long idle period refills the bucket only up to the burst.
  clock->advance(seconds(60));
  for (int i = 0; i < 5; ++i) CHECK(limiter->try_acquire("act_1").is_ok());
  CHECK_FALSE(limiter->try_acquire("act_1").is_ok());
}

TEST_CASE("gcra reservations queue in order") {
  auto clock = std::make_shared<FakeClock>();
  auto limiter = make_limiter(token_bucket(10.0, 1.0), clock);

  std::vector<nanoseconds> waits;
  for (int i = 0; i < 4; ++i) {
    auto grant = limiter->reserve("act_1");
    REQUIRE(grant.is_ok());
    waits.push_back(grant->wait);
  }
  CHECK(waits[0] == milliseconds(0));
  CHECK(waits[1] == milliseconds(100));
  CHECK(waits[2] == milliseconds(200));
  CHECK(waits[3] == milliseconds(300));
}

TEST_CASE("gcra refuses a reservation beyond max_wait without taking it") {
  auto clock = std::make_shared<FakeClock>();
  auto limiter = make_limiter(token_bucket(10.0, 1.0), clock);
  REQUIRE(limiter->try_acquire("act_1").is_ok());

  auto refused = limiter->reserve("act_1", 1.0, milliseconds(50));
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().code() == StatusCode::kResourceExhausted);
  CHECK(refused.status().message() ==
        "rate limit for 'act_1': 1 token(s) available in 100 ms, more than the 50 ms allowed");
  CHECK(limiter->time_until_available("act_1") == milliseconds(100));
}

TEST_CASE("gcra keys are independent") {
  auto clock = std::make_shared<FakeClock>();
  auto limiter = make_limiter(token_bucket(1.0, 1.0), clock);
  CHECK(limiter->try_acquire("act_1").is_ok());
  CHECK(limiter->try_acquire("act_2").is_ok());
  CHECK_FALSE(limiter->try_acquire("act_1").is_ok());
}

TEST_CASE("gcra rejects more tokens than the burst") {
  auto clock = std::make_shared<FakeClock>();
  auto limiter = make_limiter(token_bucket(10.0, 2.0), clock);
  auto result = limiter->reserve("act_1", 3.0);
  REQUIRE_FALSE(result.is_ok());
  CHECK(result.status().code() == StatusCode::kInvalidArgument);
  CHECK(result.status().message() ==
        "rate limiter: tokens must be greater than 0 and at most the burst (2), got 3");
}

TEST_CASE("gcra acquire over a long run keeps the exact rate") {
  auto clock = std::make_shared<FakeClock>();
  auto limiter = make_limiter(token_bucket(50.0, 1.0), clock);
  auto start = clock->now();
  for (int i = 0; i < 10'000; ++i) REQUIRE(limiter->acquire("act_1").is_ok());

  // 10,000 requests at 50 per second: the first at once, the last 9,999 intervals of 20 ms later.
  CHECK(clock->now() - start == milliseconds(20) * 9'999);
}

TEST_CASE("sliding window grants at most the limit per window") {
  auto clock = std::make_shared<FakeClock>();
  auto limiter = make_limiter(sliding_window(3.0, seconds(1)), clock);

  REQUIRE(limiter->try_acquire("act_1").is_ok());
  clock->advance(milliseconds(200));
  REQUIRE(limiter->try_acquire("act_1").is_ok());
  clock->advance(milliseconds(200));
  REQUIRE(limiter->try_acquire("act_1").is_ok());
  CHECK_FALSE(limiter->try_acquire("act_1").is_ok());

  // The first grant (at 0) stops counting at 1 s, the second at 1.2 s.
  auto fourth = limiter->reserve("act_1");
  REQUIRE(fourth.is_ok());
  CHECK(fourth->wait == milliseconds(600));
  auto fifth = limiter->reserve("act_1");
  REQUIRE(fifth.is_ok());
  CHECK(fifth->wait == milliseconds(800));
}

TEST_CASE("sliding window never exceeds its limit in any window") {
  auto clock = std::make_shared<FakeClock>();
  const double limit = 7.0;
  const nanoseconds window = milliseconds(500);
  auto limiter = make_limiter(sliding_window(limit, window), clock);

  // Irregular arrivals, each acquiring as soon as allowed.
  std::mt19937_64 random(42);
  std::uniform_int_distribution<int> gap_ms(0, 120);
  std::vector<activation::Clock::TimePoint> grants;
  for (int i = 0; i < 2'000; ++i) {
    clock->advance(milliseconds(gap_ms(random)));
    auto grant = limiter->acquire("act_1");
    REQUIRE(grant.is_ok());
    grants.push_back(grant->at);
  }

  // Every window (t - window, t] that ends at a grant contains at most `limit` grants.
  std::size_t first = 0;
  int worst = 0;
  for (std::size_t i = 0; i < grants.size(); ++i) {
    while (grants[first] <= grants[i] - window) ++first;
    worst = std::max(worst, static_cast<int>(i - first + 1));
  }
  CHECK(worst <= static_cast<int>(limit));
  CHECK(worst == static_cast<int>(limit));
}

TEST_CASE("sliding window counts an unreleased grant until it is released") {
  auto clock = std::make_shared<FakeClock>();
  RateLimitPolicy policy = sliding_window(1.0, seconds(1), true);
  policy.max_in_flight = seconds(30);
  auto limiter = make_limiter(policy, clock);

  auto grant = limiter->try_acquire("act_1");
  REQUIRE(grant.is_ok());
  // In flight: it counts for max_in_flight plus the window.
  CHECK(limiter->time_until_available("act_1") >= seconds(31));

  clock->advance(milliseconds(500));
  limiter->release("act_1", *grant);
  // Released at 0.5 s: it counts one more window, until 1.5 s.
  CHECK(limiter->time_until_available("act_1") == seconds(1));
  clock->advance(seconds(1));
  CHECK(limiter->try_acquire("act_1").is_ok());
}

TEST_CASE("sliding window acquire sees releases") {
  auto clock = std::make_shared<FakeClock>();
  RateLimitPolicy policy = sliding_window(2.0, seconds(1), true);
  auto limiter = make_limiter(policy, clock);
  auto first = limiter->acquire("act_1");
  auto second = limiter->acquire("act_1");
  REQUIRE(first.is_ok());
  REQUIRE(second.is_ok());

  // Both grants are in flight; a release 100 ms later frees a slot one window after it.
  clock->advance(milliseconds(100));
  limiter->release("act_1", *first);
  auto third = limiter->acquire("act_1");
  REQUIRE(third.is_ok());
  CHECK(third->wait >= seconds(1));
  CHECK(third->wait <= seconds(1) + milliseconds(20));

  auto refused = limiter->acquire("act_1", 1.0, milliseconds(300));
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().message() ==
        "rate limit for 'act_1': 1 token(s) not available within the 300 ms allowed");
}

TEST_CASE("sliding window counts from the grant without release") {
  auto clock = std::make_shared<FakeClock>();
  auto limiter = make_limiter(sliding_window(1.0, seconds(1)), clock);
  auto grant = limiter->try_acquire("act_1");
  REQUIRE(grant.is_ok());
  clock->advance(milliseconds(500));
  limiter->release("act_1", *grant);  // Ignored without count_until_release.
  CHECK(limiter->time_until_available("act_1") == milliseconds(500));
}

TEST_CASE("adaptive limiter halves its rate when throttled") {
  auto clock = std::make_shared<FakeClock>();
  auto limiter = make_limiter(adaptive(40.0), clock);
  CHECK(limiter->current_rate("act_1") == doctest::Approx(40.0));

  RateFeedback throttled;
  throttled.throttled = true;
  limiter->on_feedback("act_1", throttled);
  CHECK(limiter->current_rate("act_1") == doctest::Approx(20.0));

  // A second throttled response within the cooldown reports the same overload.
  limiter->on_feedback("act_1", throttled);
  CHECK(limiter->current_rate("act_1") == doctest::Approx(20.0));

  clock->advance(seconds(1));
  limiter->on_feedback("act_1", throttled);
  CHECK(limiter->current_rate("act_1") == doctest::Approx(10.0));

  for (int i = 0; i < 10; ++i) {
    clock->advance(seconds(1));
    limiter->on_feedback("act_1", throttled);
  }
  CHECK(limiter->current_rate("act_1") == doctest::Approx(1.0));  // The floor.
}

TEST_CASE("adaptive limiter slows down on high usage headers") {
  auto clock = std::make_shared<FakeClock>();
  auto limiter = make_limiter(adaptive(40.0), clock);
  RateFeedback busy;
  busy.usage_percent = 95.0;
  limiter->on_feedback("act_1", busy);
  CHECK(limiter->current_rate("act_1") == doctest::Approx(32.0));

  RateFeedback calm;
  calm.usage_percent = 40.0;
  clock->advance(seconds(1));
  limiter->on_feedback("act_1", calm);
  CHECK(limiter->current_rate("act_1") == doctest::Approx(32.0));  // Too soon to climb.
}

TEST_CASE("adaptive limiter climbs back slowly") {
  auto clock = std::make_shared<FakeClock>();
  auto limiter = make_limiter(adaptive(40.0), clock);
  RateFeedback throttled;
  throttled.throttled = true;
  limiter->on_feedback("act_1", throttled);
  REQUIRE(limiter->current_rate("act_1") == doctest::Approx(20.0));

  RateFeedback clean;
  clock->advance(seconds(9));
  limiter->on_feedback("act_1", clean);
  CHECK(limiter->current_rate("act_1") == doctest::Approx(20.0));
  clock->advance(seconds(1));
  limiter->on_feedback("act_1", clean);
  CHECK(limiter->current_rate("act_1") == doctest::Approx(22.0));  // 5% of the maximum per 10 s.

  for (int i = 0; i < 100; ++i) {
    clock->advance(seconds(10));
    limiter->on_feedback("act_1", clean);
  }
  CHECK(limiter->current_rate("act_1") == doctest::Approx(40.0));  // Never above the maximum.
}

TEST_CASE("adaptive limiter waits out retry_after") {
  auto clock = std::make_shared<FakeClock>();
  auto limiter = make_limiter(adaptive(40.0), clock);
  RateFeedback throttled;
  throttled.throttled = true;
  throttled.retry_after = seconds(300);
  limiter->on_feedback("act_1", throttled);

  auto grant = limiter->reserve("act_1");
  REQUIRE(grant.is_ok());
  CHECK(grant->wait == seconds(300));
  // The spacing after the block follows the lowered rate of 20 per second.
  auto next = limiter->reserve("act_1");
  REQUIRE(next.is_ok());
  CHECK(next->wait == seconds(300) + milliseconds(50));
}

TEST_CASE("rate limit policy validation names the field") {
  RateLimitPolicy policy = token_bucket(-1.0, 1.0);
  auto status = activation::validate_rate_limit_policy(policy);
  CHECK(status.code() == StatusCode::kInvalidArgument);
  CHECK(status.message() == "rate limit policy: rate_per_second must be a positive number, got -1");

  RateLimitPolicy window = sliding_window(0.0, seconds(1));
  CHECK(activation::validate_rate_limit_policy(window).message() ==
        "rate limit policy: window_limit must be a positive number, got 0");

  RateLimitPolicy adapt = adaptive(10.0);
  adapt.min_rate_per_second = 20.0;
  CHECK(activation::validate_rate_limit_policy(adapt).message() ==
        "rate limit policy: min_rate_per_second (20) must not exceed rate_per_second (10)");
}

TEST_CASE("registry shares one limiter per platform account") {
  auto clock = std::make_shared<FakeClock>();
  RateLimiterRegistry registry(clock);
  auto first = registry.limiter("meta", "act_1");
  auto again = registry.limiter("meta", "act_1");
  auto other = registry.limiter("meta", "act_2");
  REQUIRE(first.is_ok());
  REQUIRE(again.is_ok());
  REQUIRE(other.is_ok());
  CHECK(first->get() == again->get());
  CHECK(first->get() != other->get());
}

TEST_CASE("registry defaults follow the platforms") {
  RateLimiterRegistry registry(std::make_shared<FakeClock>());
  auto meta = registry.policy_for("meta", "act_1");
  REQUIRE(meta.is_ok());
  CHECK(meta->algorithm == RateLimitAlgorithm::kAdaptive);
  CHECK(meta->rate_per_second == doctest::Approx(190'000.0 / 3600.0));

  auto linkedin = registry.policy_for("linkedin", "member_1");
  REQUIRE(linkedin.is_ok());
  CHECK(linkedin->algorithm == RateLimitAlgorithm::kSlidingWindow);
  CHECK(linkedin->window_limit == 500.0);
  CHECK(linkedin->window == seconds(60));

  auto google = registry.policy_for("google_data_manager", "project");
  REQUIRE(google.is_ok());
  CHECK(google->window_limit == 300.0);

  auto file = registry.limiter("file", "out");
  REQUIRE_FALSE(file.is_ok());
  CHECK(file.status().code() == StatusCode::kNotFound);
}

TEST_CASE("registry overrides apply before first use only") {
  RateLimiterRegistry registry(std::make_shared<FakeClock>());
  REQUIRE(registry.set_platform_policy("meta", token_bucket(5.0, 1.0)).is_ok());
  REQUIRE(registry.set_account_policy("meta", "act_dev", token_bucket(1.0, 1.0)).is_ok());

  auto standard = registry.limiter("meta", "act_1");
  auto dev = registry.limiter("meta", "act_dev");
  REQUIRE(standard.is_ok());
  REQUIRE(dev.is_ok());
  CHECK((*standard)->current_rate("act_1") == doctest::Approx(5.0));
  CHECK((*dev)->current_rate("act_dev") == doctest::Approx(1.0));

  auto late = registry.set_platform_policy("meta", token_bucket(9.0, 1.0));
  CHECK(late.code() == StatusCode::kFailedPrecondition);
  auto late_account = registry.set_account_policy("meta", "act_dev", token_bucket(9.0, 1.0));
  CHECK(late_account.code() == StatusCode::kFailedPrecondition);
}
