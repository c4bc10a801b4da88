// The PostgreSQL store's schema and its migrations.
#ifndef ACTIVATION_SRC_STORAGE_POSTGRESQL_PG_SCHEMA_HPP_
#define ACTIVATION_SRC_STORAGE_POSTGRESQL_PG_SCHEMA_HPP_

#include <cstdint>
#include <string>

#include "activation/status.hpp"
#include "storage/postgresql/pg_connection.hpp"

namespace activation::internal {

// The version written by the newest migration of this library into activation_schema.
inline constexpr std::int64_t kPostgresSchemaVersion = 2;

// The server's clock in milliseconds since the Unix epoch: the unit of every time column. now() is
// the start of the current transaction, so all rows a transaction changes get the same time.
#define ACT_PG_NOW_MS "(floor(extract(epoch FROM now()) * 1000))::bigint"

// Creates `schema` when it is not empty and missing, then applies every migration newer than the
// stored version in one transaction under an advisory lock, so that processes opening the store at
// the same time migrate it once. Fails with kDataLoss for a newer schema version and with
// kFailedPrecondition when the schema holds tables but no activation_schema table.
Status migrate_postgres_schema(PgConnection& connection, const std::string& schema);

}  // namespace activation::internal

#endif  // ACTIVATION_SRC_STORAGE_POSTGRESQL_PG_SCHEMA_HPP_
