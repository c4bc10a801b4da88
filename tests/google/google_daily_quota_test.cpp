// The daily quota of a Google project when the process shares its store's rate limits. The quota
// is a sliding window counted in the store, so all processes of the project share one count.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "activation/backend/store.hpp"
#include "activation/store_rate_limiter.hpp"
#include "platforms/platform_services.hpp"
#include "platform_support/platform_test_support.hpp"

namespace activation::testing {
namespace {

using namespace std::chrono_literals;

RateLimitPolicy daily_window(double limit) {
  RateLimitPolicy policy;
  policy.algorithm = RateLimitAlgorithm::kSlidingWindow;
  policy.window_limit = limit;
  policy.window = std::chrono::hours(24);
  return policy;
}

std::shared_ptr<Store> open_scratch_store(const std::string& path) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  auto store = open_sqlite_store(path);
  REQUIRE_MESSAGE(store.is_ok(), store.status().to_string());
  return std::move(store).value();
}

}  // namespace

TEST_CASE("shared daily quota is counted in the store") {
  ScratchDir dir("google-daily");
  const std::string path = dir.file("store/activation.db");
  auto store = open_scratch_store(path);
  platforms::share_rate_limits_through(store);
  auto daily = platforms::account_limiter("google_ads_daily", "project-daily", daily_window(2.0), Logger());
  platforms::stop_sharing_rate_limits(store.get());
  REQUIRE_MESSAGE(daily.is_ok(), daily.status().to_string());

  REQUIRE((*daily)->try_acquire("project-daily").is_ok());
  REQUIRE((*daily)->try_acquire("project-daily").is_ok());
  CHECK_FALSE((*daily)->try_acquire("project-daily").is_ok());

  // Another process reads the same rows of the store: its count of the project is full too.
  auto elsewhere =
      make_store_window_limiter(open_scratch_store(path), daily_window(2.0), "window:google_ads_daily:");
  REQUIRE(elsewhere.is_ok());
  CHECK_FALSE((*elsewhere)->try_acquire("project-daily").is_ok());
  CHECK((*elsewhere)->time_until_available("project-daily") > 23h);
  CHECK((*elsewhere)->try_acquire("another-project").is_ok());
}

}  // namespace activation::testing
