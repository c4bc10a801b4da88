// The rate limits shared through the SQLite store: the GCRA state of each key in one row.
#include <algorithm>
#include <cmath>

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

}  // namespace activation::internal
