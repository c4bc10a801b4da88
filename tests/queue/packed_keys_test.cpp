// The SQLite store's packed form of hashed_keys: exact round trips of the engine's JSON text, text
// of other shapes left alone, and entries written before packing still read.
#include <doctest/doctest.h>

#include <sqlite3.h>

#include "queue_test_support.hpp"
#include "storage/sqlite/packed_keys.hpp"

namespace activation {
namespace {

using internal::pack_keys;
using internal::unpack_keys;
using testing::open_store;
using testing::ScratchDir;

const std::string kDigest = "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514";

std::string round_trip(const std::string& text) {
  std::string packed;
  REQUIRE_MESSAGE(pack_keys(text, packed), text);
  std::string back;
  REQUIRE(unpack_keys(packed, back));
  CHECK(back == text);
  return packed;
}

TEST_CASE("packed keys read back unchanged") {
  SUBCASE("digests take 32 bytes and known names one") {
    const std::string text = "[[\"email\",\"" + kDigest + "\"],[\"phone\",\"" + kDigest + "\"]]";
    std::string packed = round_trip(text);
    CHECK(packed.size() == 1 + 2 * (1 + 1 + 32));
  }
  SUBCASE("plain values, date parts and names the table lacks") {
    round_trip(R"([["external_id","C000000001"],["dob_year","1990"],["dob_month","05"],["dob_day","07"]])");
    round_trip("[[\"loyalty_tier\",\"" + kDigest + "\"]]");
    round_trip(R"([["first_name","Zo\u00eb \"Z\" \\ x"]])");
    round_trip(R"([["city","s\u00e3o paulo"],["zip","01310-100"]])");
  }
  SUBCASE("an empty array, and a value of 64 characters that are not all hex") {
    round_trip("[]");
    std::string upper = kDigest;
    upper[0] = 'B';
    std::string packed = round_trip("[[\"email\",\"" + upper + "\"]]");
    CHECK(packed.size() > 64);  // Stored as literal text, because an unpacked digest is lowercase.
    round_trip("[[\"email\",\"" + std::string(64, 'z') + "\"]]");
  }
  SUBCASE("a value longer than 127 bytes needs a two-byte length") {
    round_trip("[[\"city\",\"" + std::string(300, 'a') + "\"]]");
  }
}

TEST_CASE("a digest with one byte out of range stays text") {
  // Digests are decoded sixteen digits at a time: a byte just outside '0'-'9' or 'a'-'f', or a byte
  // from 0x80, must keep the value as text wherever it sits, and the text must come back.
  for (const char bad : {'/', ':', '`', 'g', 'A', 'F', '\x80', '\xff'}) {
    for (std::size_t at = 0; at < 64; ++at) {
      CAPTURE(at);
      std::string value = kDigest;
      value[at] = bad;
      std::string packed = round_trip("[[\"email\",\"" + value + "\"]]");
      CHECK(packed.size() > 64);
    }
  }
  // Every digit and letter in every place decodes to its byte.
  std::string all;
  for (int i = 0; i < 4; ++i) all += "0123456789abcdef";
  std::string packed = round_trip("[[\"email\",\"" + all + "\"]]");
  REQUIRE(packed.size() == 1 + 1 + 1 + 32);
  CHECK(static_cast<unsigned char>(packed[3]) == 0x01);
  CHECK(static_cast<unsigned char>(packed[10]) == 0xef);
}

TEST_CASE("text of another shape is not packed") {
  std::string packed;
  for (const std::string text : {R"(["3b"])", R"({"email":["x"]})", R"([["email", "x"]])", R"([["email","x"]] )",
                                 R"([["email","x"])", R"([["email","x"],])", R"([["email","x","y"]])",
                                 R"([["email",1]])", "", "[", R"(["email","x"])", R"([["email","x]])"}) {
    CHECK_MESSAGE(!pack_keys(text, packed), text);
  }
}

TEST_CASE("unpacking rejects damaged bytes") {
  std::string out;
  const std::string digest_bytes(32, '\x11');
  CHECK(!unpack_keys("", out));
  CHECK(!unpack_keys(std::string("\x02", 1), out));                              // Unknown format.
  CHECK(!unpack_keys(std::string("\x01\x00\x00", 3) + digest_bytes.substr(0, 31), out));  // Short digest.
  CHECK(!unpack_keys(std::string("\x01\x00\x01\x05" "abc", 7), out));           // Length past the end.
  CHECK(!unpack_keys(std::string("\x01\x40\x00", 3) + digest_bytes, out));       // Unknown name index.
  CHECK(!unpack_keys(std::string("\x01\x00\x07", 3), out));                      // Unknown value kind.
  CHECK(!unpack_keys(std::string("\x01\x00", 2), out));                          // Name without value.
  CHECK(!unpack_keys(std::string("\x01\x00\x01\xff\xff\xff\xff\xff", 8), out));  // Endless length.
  CHECK(unpack_keys(std::string("\x01\x00\x00", 3) + digest_bytes, out));
  CHECK(out == "[[\"email\",\"" + std::string(64, '1') + "\"]]");
}

// Runs `sql` on the store file at `path`, outside the store.
void run_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  std::string message = error != nullptr ? error : "";
  sqlite3_free(error);
  sqlite3_close_v2(db);
  REQUIRE_MESSAGE(rc == SQLITE_OK, message);
}

std::string query_text(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK);
  std::string value;
  if (sqlite3_step(statement) == SQLITE_ROW) {
    const auto* text = sqlite3_column_text(statement, 0);
    if (text != nullptr) value = reinterpret_cast<const char*>(text);
  }
  sqlite3_finalize(statement);
  sqlite3_close_v2(db);
  return value;
}

TEST_SUITE("sqlite") {
TEST_CASE("SQLite ledger packs keys and reads text") {
  ScratchDir dir;
  const std::string path = dir.file("packed.db");
  const std::string engine_keys = "[[\"email\",\"" + kDigest + "\"],[\"external_id\",\"C1\"]]";
  const std::string other_keys = R"({"email":["x"]})";
  {
    auto store = open_store(path);
    auto ledger = Ledger::create(store).value();
    LedgerBatch batch;
    batch.audience = "vip";
    batch.destination = "meta";
    batch.updates = {{"m1", engine_keys, LedgerOperation::kAdd, LedgerOutcome::kAccepted, ""},
                     {"m2", other_keys, LedgerOperation::kAdd, LedgerOutcome::kAccepted, ""}};
    REQUIRE(ledger->apply(batch).is_ok());
    REQUIRE(ledger->flush("vip", "meta").is_ok());
  }
  CHECK(query_text(path, "SELECT typeof(hashed_keys) FROM ledger WHERE member_key = 'm1'") == "blob");
  CHECK(query_text(path, "SELECT typeof(hashed_keys) FROM ledger WHERE member_key = 'm2'") == "text");

  // A row as an older store wrote it (TEXT), and later the same row with a damaged BLOB.
  run_sql(path, "INSERT INTO ledger (scope_id, member_key, hashed_keys, operation, outcome, updated_at) "
                "SELECT scope_id, 'm3', '" + engine_keys + "', 0, 0, 1 FROM ledger WHERE member_key = 'm1'");
  auto store = open_store(path);
  auto ledger = Ledger::create(store).value();
  auto found = ledger->lookup("vip", "meta", std::vector<std::string>{"m1", "m2", "m3"});
  REQUIRE_MESSAGE(found.is_ok(), found.status().to_string());
  REQUIRE(found->size() == 3);
  CHECK((*found)[0]->hashed_keys == engine_keys);
  CHECK((*found)[1]->hashed_keys == other_keys);
  CHECK((*found)[2]->hashed_keys == engine_keys);

  run_sql(path, "UPDATE ledger SET hashed_keys = x'0900' WHERE member_key = 'm3'");
  auto damaged = ledger->lookup("vip", "meta", std::vector<std::string>{"m3"});
  REQUIRE(!damaged.is_ok());
  CHECK(damaged.status().code() == StatusCode::kDataLoss);
  CHECK(damaged.status().message().find("member m3") != std::string::npos);
}
}

}  // namespace
}  // namespace activation
