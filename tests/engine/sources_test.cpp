#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <sqlite3.h>

#include "activation/audience.hpp"
#include "test_util.hpp"

using activation::ColumnMapping;
using activation::Field;
using activation::SourceRow;
using activation::SourceSpec;
using activation::SourceType;
using activation::testing::ScratchDir;
using activation::testing::write_file;

namespace {

struct ReadRow {
  std::uint64_t line = 0;
  std::vector<std::pair<Field, std::string>> values;
  std::string error_code;
};

std::vector<ReadRow> read_all(activation::AudienceSource& source) {
  std::vector<ReadRow> rows;
  SourceRow row;
  while (true) {
    auto more = source.next(row);
    REQUIRE(more.is_ok());
    if (!*more) break;
    ReadRow copy;
    copy.line = row.line;
    for (const auto& value : row.values) copy.values.emplace_back(value.field, std::string(value.value));
    if (row.error) copy.error_code = row.error->code;
    rows.push_back(std::move(copy));
  }
  return rows;
}

SourceSpec csv_spec(const std::string& path) {
  SourceSpec spec;
  spec.type = SourceType::kCsv;
  spec.path = path;
  spec.mapping = {{"EMAIL", Field::kEmail}, {"PHONE1", Field::kPhone}, {"PHONE2", Field::kPhone}};
  return spec;
}

}  // namespace

TEST_CASE("csv source reads quoted fields") {
  ScratchDir dir("csv");
  std::string path = dir.file("a.csv");
  write_file(path,
             "EMAIL,PHONE1,PHONE2,NOTE\r\n"
             "a@example.com,555-0100,\"555-0101\",plain\r\n"
             "\"b,c@example.com\",\"say \"\"hi\"\"\",,\"two\nlines\"\r\n"
             "\n"
             "d@example.com,,555-0102,x\n");
  auto source = activation::open_source(csv_spec(path));
  REQUIRE(source.is_ok());
  auto rows = read_all(**source);
  REQUIRE(rows.size() == 3);

  CHECK(rows[0].line == 2);
  REQUIRE(rows[0].values.size() == 3);
  CHECK(rows[0].values[0] == std::pair{Field::kEmail, std::string("a@example.com")});
  CHECK(rows[0].values[1] == std::pair{Field::kPhone, std::string("555-0100")});
  CHECK(rows[0].values[2] == std::pair{Field::kPhone, std::string("555-0101")});

  CHECK(rows[1].line == 3);
  REQUIRE(rows[1].values.size() == 2);
  CHECK(rows[1].values[0].second == "b,c@example.com");
  CHECK(rows[1].values[1].second == "say \"hi\"");

  CHECK(rows[2].line == 6);
  REQUIRE(rows[2].values.size() == 2);
  CHECK(rows[2].values[0].second == "d@example.com");
  CHECK(rows[2].values[1] == std::pair{Field::kPhone, std::string("555-0102")});
}

TEST_CASE("csv source marks malformed rows and goes on") {
  ScratchDir dir("csv-bad");
  std::string path = dir.file("bad.csv");
  write_file(path,
             "EMAIL,PHONE1,PHONE2\n"
             "ok1@example.com,1,2\n"
             "too,few\n"
             "\"closed\"junk,1,2\n"
             "un\"quoted,1,2\n"
             "bad\xff\xfeutf8@example.com,1,2\n"
             "ok2@example.com,3,4\n"
             "\"never closed,1,2\n"
             "ok3@example.com,5,6\n");
  auto source = activation::open_source(csv_spec(path));
  REQUIRE(source.is_ok());
  auto rows = read_all(**source);
  REQUIRE(rows.size() == 8);

  CHECK(rows[0].error_code.empty());
  CHECK(rows[1].line == 3);
  CHECK(rows[1].error_code == "wrong_column_count");
  CHECK(rows[2].line == 4);
  CHECK(rows[2].error_code == "bad_quoting");
  CHECK(rows[3].line == 5);
  CHECK(rows[3].error_code == "bad_quoting");
  CHECK(rows[4].line == 6);
  CHECK(rows[4].error_code == "invalid_utf8");
  CHECK(rows[5].line == 7);
  CHECK(rows[5].values[0].second == "ok2@example.com");
  // The unclosed quote swallows the rest of the file; reading resumes on the line after it.
  CHECK(rows[6].line == 8);
  CHECK(rows[6].error_code == "bad_quoting");
  CHECK(rows[7].line == 9);
  CHECK(rows[7].values[0].second == "ok3@example.com");
}

TEST_CASE("csv source uses the configured delimiter") {
  ScratchDir dir("csv-semicolon");
  std::string path = dir.file("semi.csv");
  write_file(path, "EMAIL;PHONE1;PHONE2\na@example.com;\"1;2\";3\n");
  auto spec = csv_spec(path);
  spec.delimiter = ';';
  auto source = activation::open_source(spec);
  REQUIRE(source.is_ok());
  auto rows = read_all(**source);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].values[1].second == "1;2");
}

TEST_CASE("csv source rejects unknown mapped column") {
  ScratchDir dir("csv-column");
  std::string path = dir.file("a.csv");
  write_file(path, "EMAIL,PHONE1\nx@example.com,1\n");
  auto source = activation::open_source(csv_spec(path));
  REQUIRE_FALSE(source.is_ok());
  CHECK(source.status().code() == activation::StatusCode::kInvalidArgument);
  CHECK(source.status().message() ==
        "audience file '" + path +
            "': column 'PHONE2' of the mapping is not in the header (columns: EMAIL, PHONE1)");
}

TEST_CASE("csv source reports missing file") {
  auto source = activation::open_source(csv_spec("/nonexistent/audience.csv"));
  REQUIRE_FALSE(source.is_ok());
  CHECK(source.status().code() == activation::StatusCode::kNotFound);
  CHECK(source.status().message() == "audience file '/nonexistent/audience.csv' does not exist");
}

TEST_CASE("csv source resumes from position") {
  ScratchDir dir("csv-seek");
  std::string path = dir.file("a.csv");
  std::string text = "EMAIL,PHONE1,PHONE2\n";
  for (int i = 0; i < 50; ++i) text += "u" + std::to_string(i) + "@example.com,\"1\n2\",3\n";
  write_file(path, text);

  auto first = activation::open_source(csv_spec(path));
  REQUIRE(first.is_ok());
  SourceRow row;
  for (int i = 0; i < 20; ++i) REQUIRE(*(*first)->next(row));
  std::string position = (*first)->position();
  auto rest_expected = read_all(**first);

  auto second = activation::open_source(csv_spec(path));
  REQUIRE(second.is_ok());
  REQUIRE((*second)->seek(position).is_ok());
  auto rest = read_all(**second);
  REQUIRE(rest.size() == 30);
  REQUIRE(rest.size() == rest_expected.size());
  for (std::size_t i = 0; i < rest.size(); ++i) {
    CHECK(rest[i].line == rest_expected[i].line);
    CHECK(rest[i].values == rest_expected[i].values);
  }
  CHECK(rest[0].line == 2 + 20 * 2);
  CHECK(rest[0].values[0].second == "u20@example.com");

  CHECK((*second)->seek("garbage").code() == activation::StatusCode::kInvalidArgument);
}

TEST_CASE("csv extent tracks bytes") {
  ScratchDir dir("csv-extent");
  std::string path = dir.file("a.csv");
  write_file(path, "EMAIL,PHONE1,PHONE2\na@example.com,1,2\n");
  auto source = activation::open_source(csv_spec(path));
  REQUIRE(source.is_ok());
  read_all(**source);
  auto extent = (*source)->extent();
  REQUIRE(extent.total.has_value());
  CHECK(extent.done == *extent.total);
}

TEST_CASE("ndjson source reads objects and arrays") {
  ScratchDir dir("ndjson");
  std::string path = dir.file("a.ndjson");
  write_file(path,
             "{\"email\":\"a@example.com\",\"phones\":[\"1\",\"2\"],\"id\":42}\n"
             "\n"
             "not json\n"
             "[1,2]\n"
             "{\"email\":{\"nested\":true}}\n"
             "{\"email\":null,\"phones\":\"3\"}\n"
             "{\"email\":\"\xff\"}\n"
             "{\"email\":\"last@example.com\"}");
  SourceSpec spec;
  spec.type = SourceType::kNdjson;
  spec.path = path;
  spec.mapping = {{"email", Field::kEmail}, {"phones", Field::kPhone}, {"id", Field::kExternalId}};
  auto source = activation::open_source(spec);
  REQUIRE(source.is_ok());
  auto rows = read_all(**source);
  REQUIRE(rows.size() == 7);
  CHECK(rows[0].line == 1);
  REQUIRE(rows[0].values.size() == 4);
  CHECK(rows[0].values[2] == std::pair{Field::kPhone, std::string("2")});
  CHECK(rows[0].values[3] == std::pair{Field::kExternalId, std::string("42")});
  CHECK(rows[1].line == 3);
  CHECK(rows[1].error_code == "invalid_json");
  CHECK(rows[2].line == 4);
  CHECK(rows[2].error_code == "invalid_json");
  CHECK(rows[3].error_code == "invalid_value");
  CHECK(rows[4].values.size() == 1);
  CHECK(rows[5].error_code == "invalid_utf8");
  CHECK(rows[6].line == 8);
  CHECK(rows[6].values[0].second == "last@example.com");

  auto reopened = activation::open_source(spec);
  REQUIRE(reopened.is_ok());
  SourceRow row;
  for (int i = 0; i < 3; ++i) REQUIRE(*(*reopened)->next(row));
  std::string position = (*reopened)->position();
  REQUIRE((*reopened)->seek(position).is_ok());
  auto rest = read_all(**reopened);
  REQUIRE(rest.size() == 4);
  CHECK(rest[0].line == 5);
}

TEST_CASE("ndjson source rejects key absent from file") {
  ScratchDir dir("ndjson-key");
  std::string path = dir.file("a.ndjson");
  write_file(path, "{\"email\":\"a@example.com\"}\n");
  SourceSpec spec;
  spec.type = SourceType::kNdjson;
  spec.path = path;
  spec.mapping = {{"emial", Field::kEmail}};
  auto source = activation::open_source(spec);
  REQUIRE_FALSE(source.is_ok());
  CHECK(source.status().message() ==
        "audience file '" + path + "': key 'emial' of the mapping appears in none of its rows");
}

TEST_CASE("sqlite source runs query read-only") {
  ScratchDir dir("sqlite");
  std::string path = dir.file("crm.db");
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(
              db,
              "CREATE TABLE people(id INTEGER PRIMARY KEY, email TEXT, phone TEXT);"
              "INSERT INTO people VALUES (1,'a@example.com','555'),(2,NULL,'556'),(3,'c@example.com',NULL);",
              nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);

  SourceSpec spec;
  spec.type = SourceType::kSqlite;
  spec.path = path;
  spec.query = "SELECT id, email, phone FROM people ORDER BY id";
  spec.mapping = {{"id", Field::kExternalId}, {"email", Field::kEmail}, {"phone", Field::kPhone}};
  auto source = activation::open_source(spec);
  REQUIRE(source.is_ok());
  CHECK((*source)->extent().total == std::optional<std::uint64_t>(3));
  auto rows = read_all(**source);
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].values.size() == 3);
  CHECK(rows[1].values.size() == 2);
  CHECK(rows[1].values[0] == std::pair{Field::kExternalId, std::string("2")});
  CHECK(rows[2].line == 3);

  REQUIRE((*source)->seek("2").is_ok());
  auto rest = read_all(**source);
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].values[1].second == "c@example.com");

  SUBCASE("unknown column") {
    spec.mapping.push_back({"maid", Field::kMaid});
    auto bad = activation::open_source(spec);
    REQUIRE_FALSE(bad.is_ok());
    CHECK(bad.status().message() ==
          "audience database '" + path +
              "': column 'maid' of the mapping is not in the query's result (columns: id, email, phone)");
  }
  SUBCASE("write statement") {
    spec.query = "DELETE FROM people";
    auto bad = activation::open_source(spec);
    REQUIRE_FALSE(bad.is_ok());
    CHECK(bad.status().code() == activation::StatusCode::kInvalidArgument);
  }
}
