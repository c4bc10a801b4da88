// The SQLite store's schema and its migrations.
#ifndef ACTIVATION_SRC_STORAGE_SQLITE_SQLITE_SCHEMA_HPP_
#define ACTIVATION_SRC_STORAGE_SQLITE_SQLITE_SCHEMA_HPP_

#include <cstdint>

#include "activation/status.hpp"
#include "storage/sqlite/sqlite_connection.hpp"

namespace activation::internal {

// PRAGMA application_id of every activation store: "ACTV" in ASCII.
inline constexpr std::int64_t kStoreApplicationId = 0x41435456;
// PRAGMA user_version written by the newest migration of this library.
inline constexpr std::int64_t kStoreSchemaVersion = 5;

// Job states as stored: the numeric values of JobState.
inline constexpr int kStateWaiting = 0;
inline constexpr int kStateDelayed = 1;
inline constexpr int kStateActive = 2;
inline constexpr int kStateCompleted = 3;
inline constexpr int kStateFailed = 4;
inline constexpr int kStateDead = 5;
inline constexpr int kStateCancelled = 6;

// Applies every migration newer than the store's user_version in one IMMEDIATE transaction, and
// stamps the application id. REQUIRES: the caller checked that the file is empty or an activation
// store no newer than kStoreSchemaVersion.
Status migrate_schema(SqliteConnection& connection);

}  // namespace activation::internal

#endif  // ACTIVATION_SRC_STORAGE_SQLITE_SQLITE_SCHEMA_HPP_
