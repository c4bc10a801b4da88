// The rate limits shared through the SQLite store: the GCRA state of each key in one row, and the
// grants of each sliding window.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "storage/sqlite/sqlite_store.hpp"

namespace activation::internal {

Result<Store::RateReservation> SqliteStore::reserve_rate(std::string_view key, const RateRequest& request) {
  const auto interval_us = [&](double tokens) {
    return static_cast<std::int64_t>(std::ceil(tokens * 1e6 / request.rate_per_second));
  };
  const std::int64_t interval = interval_us(request.tokens);
  const std::int64_t burst = interval_us(request.burst);
  RateReservation reservation;

  // The write transaction holds the file's write lock, so reservations of all processes that share
  // the file are applied one after the other. Every process runs on the file's host, so the system
  // clock is the store's clock.
  ACT_RETURN_IF_ERROR(write("reserve rate", [&](SqliteConnection& connection) -> Status {
    const std::int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    std::int64_t tat = now;
    {
      ACT_ASSIGN_OR_RETURN(auto select, connection.prepare("SELECT tat_us FROM rate_limits WHERE key = ?1"));
      select.bind(1, key);
      ACT_ASSIGN_OR_RETURN(const bool row, select.step());
      if (row) tat = std::max(tat, select.column_int64(0));
    }
    const std::int64_t new_tat = tat + interval;
    const std::int64_t wait = std::max<std::int64_t>(0, new_tat - burst - now);
    reservation.wait = std::chrono::microseconds(wait);
    reservation.granted = wait <= request.max_wait.count();
    if (!reservation.granted) return Status();

    ACT_ASSIGN_OR_RETURN(
        auto upsert,
        connection.prepare(
            "INSERT INTO rate_limits (key, tat_us, updated_at) VALUES (?1, ?2, ?3) "
            "ON CONFLICT (key) DO UPDATE SET tat_us = excluded.tat_us, updated_at = excluded.updated_at"));
    upsert.bind(1, key).bind(2, new_tat).bind(3, now / 1000);
    return upsert.run();
  }));
  return reservation;
}

Result<Store::RateReservation> SqliteStore::reserve_window(std::string_view key, const WindowRequest& request) {
  RateReservation reservation;
  ACT_RETURN_IF_ERROR(write("reserve window", [&](SqliteConnection& connection) -> Status {
    const std::int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    const std::int64_t start = now - request.window.count();
    {
      ACT_ASSIGN_OR_RETURN(auto expired,
                           connection.prepare("DELETE FROM rate_window_grants WHERE key = ?1 AND at_us <= ?2"));
      expired.bind(1, key).bind(2, start);
      ACT_RETURN_IF_ERROR(expired.run());
    }
    // The grants still in the window, oldest first: their total decides, and when it is too high
    // the grant whose expiry brings it low enough gives the wait.
    ACT_ASSIGN_OR_RETURN(auto grants, connection.prepare(
        "SELECT at_us, tokens FROM rate_window_grants WHERE key = ?1 ORDER BY at_us"));
    grants.bind(1, key);
    std::vector<std::pair<std::int64_t, double>> in_window;
    double used = 0;
    while (true) {
      ACT_ASSIGN_OR_RETURN(const bool row, grants.step());
      if (!row) break;
      in_window.emplace_back(grants.column_int64(0), grants.column_double(1));
      used += in_window.back().second;
    }
    if (used + request.tokens <= request.limit) {
      reservation.granted = request.take;
      if (!request.take) return Status();
      ACT_ASSIGN_OR_RETURN(auto insert, connection.prepare(
          "INSERT INTO rate_window_grants (key, at_us, tokens) VALUES (?1, ?2, ?3)"));
      insert.bind(1, key).bind(2, now).bind_double(3, request.tokens);
      return insert.run();
    }
    for (const auto& [at, tokens] : in_window) {
      used -= tokens;
      if (used + request.tokens <= request.limit) {
        reservation.wait = std::chrono::microseconds(std::max<std::int64_t>(0, at + request.window.count() - now));
        break;
      }
    }
    return Status();
  }));
  return reservation;
}

}  // namespace activation::internal
