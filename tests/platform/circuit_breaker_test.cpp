#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "activation/circuit_breaker.hpp"
#include "platform/fake_clock.hpp"

using activation::CircuitBreaker;
using activation::CircuitBreakerOptions;
using activation::CircuitState;
using activation::CircuitTransition;
using activation::testing::FakeClock;
using std::chrono::seconds;

namespace {

struct Recorder {
  std::vector<CircuitTransition> transitions;

  activation::CircuitListener listener() {
    return [this](const CircuitTransition& transition) { transitions.push_back(transition); };
  }
};

CircuitBreakerOptions options() {
  CircuitBreakerOptions result;
  result.failure_threshold = 3;
  result.open_duration = seconds(10);
  result.max_open_duration = seconds(25);
  result.probe_timeout = seconds(60);
  return result;
}

std::unique_ptr<CircuitBreaker> make_breaker(const std::shared_ptr<FakeClock>& clock, Recorder& recorder) {
  auto breaker = CircuitBreaker::create("meta:audience-1", options(), clock, recorder.listener());
  REQUIRE(breaker.is_ok());
  return std::move(*breaker);
}

}  // namespace

TEST_CASE("circuit opens after consecutive failures") {
  auto clock = std::make_shared<FakeClock>();
  Recorder recorder;
  auto breaker = make_breaker(clock, recorder);

  CHECK(breaker->admit().allowed);
  breaker->record_failure("HTTP 503");
  breaker->record_failure("HTTP 503");
  CHECK(breaker->state() == CircuitState::kClosed);
  CHECK(recorder.transitions.empty());

  breaker->record_failure("connection dropped");
  CHECK(breaker->state() == CircuitState::kOpen);
  REQUIRE(recorder.transitions.size() == 1);
  CHECK(recorder.transitions[0].destination == "meta:audience-1");
  CHECK(recorder.transitions[0].from == CircuitState::kClosed);
  CHECK(recorder.transitions[0].to == CircuitState::kOpen);
  CHECK(recorder.transitions[0].reason == "3 consecutive failures, the last: connection dropped");

  // A late failure of a request admitted earlier does not replace the one that opened the circuit.
  breaker->record_failure("HTTP 502");
  auto rejected = breaker->admit();
  CHECK_FALSE(rejected.allowed);
  CHECK(rejected.last_failure == "connection dropped");
}

TEST_CASE("circuit success resets the failure count") {
  auto clock = std::make_shared<FakeClock>();
  Recorder recorder;
  auto breaker = make_breaker(clock, recorder);
  breaker->record_failure("HTTP 500");
  breaker->record_failure("HTTP 500");
  breaker->record_success();
  breaker->record_failure("HTTP 500");
  breaker->record_failure("HTTP 500");
  CHECK(breaker->state() == CircuitState::kClosed);
}

TEST_CASE("open circuit refuses until its period ends") {
  auto clock = std::make_shared<FakeClock>();
  Recorder recorder;
  auto breaker = make_breaker(clock, recorder);
  for (int i = 0; i < 3; ++i) breaker->record_failure("HTTP 500");

  clock->advance(seconds(4));
  auto refused = breaker->admit();
  CHECK_FALSE(refused.allowed);
  CHECK(refused.retry_after == seconds(6));
}

TEST_CASE("half-open circuit admits exactly one probe") {
  auto clock = std::make_shared<FakeClock>();
  Recorder recorder;
  auto breaker = make_breaker(clock, recorder);
  for (int i = 0; i < 3; ++i) breaker->record_failure("HTTP 500");

  clock->advance(seconds(10));
  auto probe = breaker->admit();
  CHECK(probe.allowed);
  CHECK(probe.probe);
  CHECK(breaker->state() == CircuitState::kHalfOpen);
  CHECK_FALSE(breaker->admit().allowed);

  breaker->record_success();
  CHECK(breaker->state() == CircuitState::kClosed);
  CHECK(breaker->admit().allowed);

  REQUIRE(recorder.transitions.size() == 3);
  CHECK(recorder.transitions[1].to == CircuitState::kHalfOpen);
  CHECK(recorder.transitions[1].reason == "open period ended");
  CHECK(recorder.transitions[2].from == CircuitState::kHalfOpen);
  CHECK(recorder.transitions[2].to == CircuitState::kClosed);
  CHECK(recorder.transitions[2].reason == "probe succeeded");
}

TEST_CASE("failed probe reopens for a doubled period up to the maximum") {
  auto clock = std::make_shared<FakeClock>();
  Recorder recorder;
  auto breaker = make_breaker(clock, recorder);
  for (int i = 0; i < 3; ++i) breaker->record_failure("HTTP 500");

  clock->advance(seconds(10));
  REQUIRE(breaker->admit().probe);
  breaker->record_failure("HTTP 502");
  CHECK(breaker->state() == CircuitState::kOpen);
  CHECK(recorder.transitions.back().reason == "probe failed: HTTP 502");
  CHECK(breaker->admit().retry_after == seconds(20));

  clock->advance(seconds(20));
  REQUIRE(breaker->admit().probe);
  breaker->record_failure("HTTP 502");
  CHECK(breaker->admit().retry_after == seconds(25));  // 40 s capped at max_open_duration.
}

TEST_CASE("lost probe is replaced after the probe timeout") {
  auto clock = std::make_shared<FakeClock>();
  Recorder recorder;
  auto breaker = make_breaker(clock, recorder);
  for (int i = 0; i < 3; ++i) breaker->record_failure("HTTP 500");
  clock->advance(seconds(10));
  REQUIRE(breaker->admit().probe);

  clock->advance(seconds(59));
  CHECK_FALSE(breaker->admit().allowed);
  clock->advance(seconds(1));
  auto second_probe = breaker->admit();
  CHECK(second_probe.allowed);
  CHECK(second_probe.probe);
}

TEST_CASE("circuit options are validated") {
  CircuitBreakerOptions bad = options();
  bad.failure_threshold = 0;
  auto result = CircuitBreaker::create("x", bad);
  REQUIRE_FALSE(result.is_ok());
  CHECK(result.status().message() == "circuit breaker: failure_threshold must be at least 1, got 0");
}
