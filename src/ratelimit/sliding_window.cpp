// The sliding window limiter: an exact log of grants, kept as expiry times.
//
// Each grant is stored under the time at which it stops counting (its expiry). The tokens counting
// at time t are those whose expiry is later than t, so the earliest time a new grant fits is found
// by walking the expiries in order. Expiries are rounded up to 1/1000 of the window, which merges
// grants into at most about a thousand buckets per window and only ever makes a grant count a
// little longer, never shorter, so the limit still holds.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include <fmt/format.h>

#include "activation/rate_limiter.hpp"
#include "ratelimit/limiters.hpp"

namespace activation::ratelimit {

namespace {

using std::chrono::nanoseconds;
using TimePoint = Clock::TimePoint;

constexpr double kEpsilon = 1e-9;

std::atomic<std::uint64_t> next_window_grant_id{1};

struct WindowState {
  std::map<TimePoint, double> expiries;  // Expiry time -> tokens that count until then.
  double total = 0.0;
  std::unordered_map<std::uint64_t, TimePoint> unreleased;  // Grant id -> its expiry bucket.
};

class SlidingWindowLimiter final : public RateLimiter {
 public:
  SlidingWindowLimiter(const RateLimitPolicy& policy, std::shared_ptr<Clock> clock)
      : policy_(policy),
        clock_(std::move(clock)),
        resolution_(std::max(nanoseconds(1000), policy.window / 1000)) {}

  Result<RateGrant> reserve(std::string_view key, double tokens, nanoseconds max_wait) override {
    ACT_RETURN_IF_ERROR(check_tokens(tokens));
    std::lock_guard<std::mutex> lock(mutex_);
    TimePoint now = clock_->now();
    WindowState& state = state_for(key);
    purge(state, now);

    TimePoint at = earliest_fit(state, tokens, now);
    nanoseconds wait = at - now;
    if (wait > max_wait) {
      return Status(
          StatusCode::kResourceExhausted,
          fmt::format("rate limit for '{}': {} token(s) available in {} ms, more than the {} ms allowed", key,
                      tokens, wait.count() / 1'000'000, max_wait.count() / 1'000'000));
    }

    return record_grant(state, tokens, at, wait);
  }

  // Re-checks at least every 1/50 of the window (1 ms to 1 s) while grants are in flight, since
  // their releases can make room before the expiry that a reservation would assume.
  Result<RateGrant> acquire(std::string_view key, double tokens, nanoseconds max_wait) override {
    if (!policy_.count_until_release) return RateLimiter::acquire(key, tokens, max_wait);
    ACT_RETURN_IF_ERROR(check_tokens(tokens));
    const nanoseconds recheck =
        std::clamp<nanoseconds>(policy_.window / 50, std::chrono::milliseconds(1), std::chrono::seconds(1));
    TimePoint start = clock_->now();
    while (true) {
      TimePoint wake;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        TimePoint now = clock_->now();
        WindowState& state = state_for(key);
        purge(state, now);
        TimePoint at = earliest_fit(state, tokens, now);
        if (at <= now) return record_grant(state, tokens, now, now - start);

        bool releases_pending = !state.unreleased.empty();
        nanoseconds waited = now - start;
        if (waited >= max_wait || (!releases_pending && at - now > max_wait - waited)) {
          return Status(StatusCode::kResourceExhausted,
                        fmt::format("rate limit for '{}': {} token(s) not available within the {} ms allowed",
                                    key, tokens, max_wait.count() / 1'000'000));
        }
        wake = releases_pending ? std::min(at, now + recheck) : at;
      }
      clock_->sleep_until(wake);
    }
  }

  nanoseconds time_until_available(std::string_view key, double tokens) override {
    std::lock_guard<std::mutex> lock(mutex_);
    TimePoint now = clock_->now();
    WindowState& state = state_for(key);
    purge(state, now);
    return earliest_fit(state, tokens, now) - now;
  }

  void release(std::string_view key, const RateGrant& grant) override {
    if (!policy_.count_until_release) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto state_it = states_.find(key);
    if (state_it == states_.end()) return;
    WindowState& state = state_it->second;
    auto grant_it = state.unreleased.find(grant.id);
    if (grant_it == state.unreleased.end()) return;  // Released twice, or counted past max_in_flight.

    TimePoint old_expiry = grant_it->second;
    state.unreleased.erase(grant_it);
    TimePoint new_expiry = round_up(clock_->now() + policy_.window);
    if (new_expiry >= old_expiry) return;
    remove(state, old_expiry, grant.tokens);
    add(state, new_expiry, grant.tokens);
  }

  double current_rate(std::string_view) const override { return window_rate(policy_); }

  const RateLimitPolicy& policy() const noexcept override { return policy_; }
  Clock& clock() const noexcept override { return *clock_; }

 private:
  Status check_tokens(double tokens) const { return check_window_tokens(policy_, tokens); }

  RateGrant record_grant(WindowState& state, double tokens, TimePoint at, nanoseconds wait) {
    std::uint64_t id = next_window_grant_id.fetch_add(1);
    nanoseconds counted_for =
        policy_.count_until_release ? policy_.max_in_flight + policy_.window : policy_.window;
    TimePoint expiry = round_up(at + counted_for);
    add(state, expiry, tokens);
    if (policy_.count_until_release) state.unreleased.emplace(id, expiry);
    return RateGrant{at, wait, tokens, id};
  }

  WindowState& state_for(std::string_view key) {
    auto it = states_.find(key);
    if (it != states_.end()) return it->second;
    return states_.emplace(std::string(key), WindowState{}).first->second;
  }

  TimePoint round_up(TimePoint t) const {
    auto ticks = t.time_since_epoch().count();
    auto step = resolution_.count();
    auto rounded = ((ticks + step - 1) / step) * step;
    return TimePoint(nanoseconds(rounded));
  }

  static void add(WindowState& state, TimePoint expiry, double tokens) {
    state.expiries[expiry] += tokens;
    state.total += tokens;
  }

  static void remove(WindowState& state, TimePoint expiry, double tokens) {
    auto it = state.expiries.find(expiry);
    if (it == state.expiries.end()) return;
    double taken = std::min(tokens, it->second);
    it->second -= taken;
    state.total -= taken;
    if (it->second <= kEpsilon) state.expiries.erase(it);
  }

  static void purge(WindowState& state, TimePoint now) {
    while (!state.expiries.empty() && state.expiries.begin()->first <= now) {
      state.total -= state.expiries.begin()->second;
      state.expiries.erase(state.expiries.begin());
    }
    if (state.expiries.empty()) state.total = 0.0;
    for (auto it = state.unreleased.begin(); it != state.unreleased.end();) {
      it = it->second <= now ? state.unreleased.erase(it) : std::next(it);
    }
  }

  // Returns the earliest time from `now` on at which `tokens` more fit under the limit.
  TimePoint earliest_fit(const WindowState& state, double tokens, TimePoint now) const {
    double counting = state.total;
    if (counting + tokens <= policy_.window_limit + kEpsilon) return now;
    for (const auto& [expiry, amount] : state.expiries) {
      counting -= amount;
      if (counting + tokens <= policy_.window_limit + kEpsilon) return std::max(expiry, now);
    }
    return now;  // Unreachable while tokens <= window_limit: every expiry gone leaves room.
  }

  RateLimitPolicy policy_;
  std::shared_ptr<Clock> clock_;
  nanoseconds resolution_;
  mutable std::mutex mutex_;
  std::map<std::string, WindowState, std::less<>> states_;
};

}  // namespace

std::shared_ptr<RateLimiter> make_sliding_window(const RateLimitPolicy& policy,
                                                 std::shared_ptr<Clock> clock) {
  return std::make_shared<SlidingWindowLimiter>(policy, std::move(clock));
}

Status check_window_tokens(const RateLimitPolicy& policy, double tokens) {
  if (std::isfinite(tokens) && tokens > 0.0 && tokens <= policy.window_limit) return Status::ok();
  return invalid_argument(
      fmt::format("rate limiter: tokens must be greater than 0 and at most the window limit ({}), got {}",
                  policy.window_limit, tokens));
}

double window_rate(const RateLimitPolicy& policy) {
  return policy.window_limit / std::chrono::duration<double>(policy.window).count();
}

}  // namespace activation::ratelimit
