// The Meta adapter's pure parts: schema, rows, request bodies, invalid samples, session state,
// request plans and settings.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "meta/meta_test_support.hpp"
#include "platforms/meta/meta_payload.hpp"
#include "platforms/meta/meta_plan.hpp"
#include "platforms/meta/meta_session.hpp"
#include "platforms/meta/meta_settings.hpp"

namespace activation::platforms::meta {
namespace {

using Json = nlohmann::json;

MemberOperation operation(OperationType type, std::vector<WireIdentifier> identifiers) {
  MemberOperation out;
  out.type = type;
  out.member_key = "key";
  out.identifiers = std::move(identifiers);
  return out;
}

std::string hash_of(const std::string& text) {
  return sha256_hex(text);
}

std::vector<std::string> row_text(const RowCells& row) {
  std::vector<std::string> out;
  for (const auto* cell : row) out.push_back(cell == nullptr ? "" : *cell);
  return out;
}

}  // namespace

TEST_CASE("schema has one column per Meta key") {
  auto columns =
      schema_columns({{Field::kEmail, 1}, {Field::kPhone, 2}, {Field::kDob, 1}, {Field::kExternalId, 1}});
  CHECK(column_keys(columns) ==
        std::vector<std::string>{"EMAIL", "PHONE", "DOBY", "DOBM", "DOBD", "EXTERN_ID"});
  CHECK(columns[0].hashed);
  CHECK_FALSE(columns[5].hashed);
}

TEST_CASE("member with two phones becomes two rows") {
  auto columns = schema_columns({{Field::kEmail, 1}, {Field::kPhone, 2}, {Field::kExternalId, 1}});
  std::string email = hash_of("a@example.com");
  std::string phone1 = hash_of("14155550001");
  std::string phone2 = hash_of("442079460001");
  auto member = operation(
      OperationType::kAdd,
      {{Field::kEmail, email}, {Field::kPhone, phone1}, {Field::kPhone, phone2}, {Field::kExternalId, "7"}});
  std::vector<RowCells> rows;
  REQUIRE(expand_rows(member, columns, rows));
  REQUIRE(rows.size() == 2);
  CHECK(row_text(rows[0]) == std::vector<std::string>{email, phone1, "7"});
  CHECK(row_text(rows[1]) == std::vector<std::string>{email, phone2, "7"});

  SUBCASE("a key outside the schema makes no row") {
    auto other =
        operation(OperationType::kRemove, {{Field::kEmail, email}, {Field::kCity, hash_of("paris")}});
    std::vector<RowCells> none;
    CHECK_FALSE(expand_rows(other, columns, none));
    CHECK(none.empty());
  }
  SUBCASE("a whole date of birth has no Meta key and is left out") {
    auto dob =
        operation(OperationType::kAdd, {{Field::kEmail, email}, {Field::kDob, "19900102", DatePart::kWhole}});
    std::vector<RowCells> one;
    CHECK(expand_rows(dob, columns, one));
    CHECK(one.size() == 1);
  }
}

TEST_CASE("upload body carries schema, rows and session") {
  auto columns = schema_columns({{Field::kEmail, 1}, {Field::kMaid, 1}});
  std::string email = hash_of("a@example.com");
  std::string maid = "6d92078a-8246-4ba4-ae5b-76104861e7dc";
  RowCells row = {&email, nullptr};
  RowCells other = {nullptr, &maid};
  Json body = Json::parse(render_upload_body(columns, {row, other}, SessionParams{42, 3, true}));
  CHECK(body["payload"]["schema"] == Json::array({"EMAIL", "MADID"}));
  CHECK(body["payload"]["is_raw"] == true);
  CHECK(body["payload"]["data"] == Json::array({Json::array({email, ""}), Json::array({"", maid})}));
  CHECK(body["session"] == Json{{"session_id", 42}, {"batch_seq", 3}, {"last_batch_flag", true}});

  Json without = Json::parse(render_upload_body(columns, {row}, std::nullopt));
  CHECK_FALSE(without.contains("session"));
}

TEST_CASE("invalid entry samples map back to rows") {
  auto columns = schema_columns({{Field::kEmail, 1}, {Field::kExternalId, 1}});
  std::string good = hash_of("a@example.com");
  std::string bad = "NOT-A-HASH";
  std::string id = "12";
  RowCells good_row = {&good, &id};
  RowCells bad_row = {&bad, &id};

  SUBCASE("object of value to reason") {
    auto entries = read_invalid_entries(Json{{"invalid_entry_samples", {{bad, "Invalid EMAIL"}}}});
    CHECK_FALSE(invalid_row_reason(entries, columns, good_row).has_value());
    CHECK(invalid_row_reason(entries, columns, bad_row) == std::optional<std::string>("Invalid EMAIL"));
  }
  SUBCASE("list of values") {
    auto entries = read_invalid_entries(Json{{"invalid_entry_samples", Json::array({bad})}});
    CHECK(invalid_row_reason(entries, columns, bad_row).has_value());
  }
  SUBCASE("a full list of 100 samples is checked locally beyond them") {
    Json samples = Json::object();
    for (int i = 0; i < 100; ++i) samples["other-" + std::to_string(i)] = "Invalid EMAIL";
    auto entries = read_invalid_entries(Json{{"invalid_entry_samples", samples}});
    CHECK(entries.maybe_truncated);
    auto reason = invalid_row_reason(entries, columns, bad_row);
    REQUIRE(reason.has_value());
    CHECK(reason->find("Invalid EMAIL") == 0);
    CHECK_FALSE(invalid_row_reason(entries, columns, good_row).has_value());
  }
}

TEST_CASE("session state survives its JSON form") {
  SessionState state;
  state.audience_id = "23850000000000001";
  state.schema = {"EMAIL", "PHONE"};
  state.slot(SessionKind::kAdd) = SessionSlot{2, 77, 5, 1700000000, {"a", ""}};
  state.replace_applied = true;
  auto parsed = SessionState::from_json(state.to_json());
  REQUIRE(parsed.is_ok());
  CHECK(parsed->audience_id == state.audience_id);
  CHECK(parsed->schema == state.schema);
  CHECK(parsed->slot(SessionKind::kAdd).session_id == 77);
  CHECK(parsed->slot(SessionKind::kAdd).batch_seq == 5);
  CHECK(parsed->slot(SessionKind::kAdd).generation == 2);
  CHECK(parsed->slot(SessionKind::kAdd).closing_row == std::vector<std::string>{"a", ""});
  CHECK_FALSE(parsed->slot(SessionKind::kRemove).started());
  CHECK(parsed->replace_applied);

  CHECK(SessionState::from_json("{}").is_ok());
  auto broken = SessionState::from_json("[1,2]");
  CHECK(broken.status().code() == StatusCode::kDataLoss);
}

TEST_CASE("session ids are stable and distinct") {
  auto id = derive_session_id(5, "meta", "238", SessionKind::kReplace, 0);
  CHECK(id > 0);
  CHECK(id == derive_session_id(5, "meta", "238", SessionKind::kReplace, 0));
  CHECK(id != derive_session_id(5, "meta", "238", SessionKind::kReplace, 1));
  CHECK(id != derive_session_id(5, "meta", "238", SessionKind::kAdd, 0));
  CHECK(id != derive_session_id(6, "meta", "238", SessionKind::kReplace, 0));
}

TEST_CASE("plan sends removes first and keeps a member's rows together") {
  auto columns = schema_columns({{Field::kEmail, 1}, {Field::kPhone, 2}});
  Batch batch;
  batch.number = 1;
  for (int i = 0; i < 3; ++i) {
    batch.operations.push_back(
        operation(OperationType::kAdd, {{Field::kEmail, hash_of("a" + std::to_string(i))},
                                        {Field::kPhone, hash_of("1" + std::to_string(i))},
                                        {Field::kPhone, hash_of("2" + std::to_string(i))}}));
  }
  batch.operations.push_back(operation(OperationType::kRemove, {{Field::kEmail, hash_of("gone")}}));
  batch.operations.push_back(
      operation(OperationType::kRemove, {{Field::kEmail, hash_of("old")}, {Field::kCity, hash_of("paris")}}));

  BatchPlan plan = plan_batch(batch, columns, 3);
  REQUIRE(plan.requests.size() == 5);
  CHECK(plan.requests[0].type == OperationType::kRemove);
  CHECK(plan.requests[0].in_session);
  CHECK(plan.requests[0].row_operation == std::vector<std::size_t>{3});
  CHECK(plan.requests[1].type == OperationType::kRemove);
  CHECK_FALSE(plan.requests[1].in_session);
  CHECK(column_keys(plan.requests[1].columns) == std::vector<std::string>{"EMAIL", "CT"});
  // Three rows fit a request, so each two-row member starts a new one.
  for (std::size_t i = 2; i < 5; ++i) {
    CHECK(plan.requests[i].type == OperationType::kAdd);
    CHECK(plan.requests[i].rows.size() == 2);
    CHECK(plan.requests[i].row_operation == std::vector<std::size_t>{i - 2, i - 2});
  }
  CHECK(plan.unsendable.empty());
}

TEST_CASE("settings errors name the key") {
  testing::set_test_token();
  auto secret = [](std::string_view name) -> Result<std::string> {
    if (name == "access_token") return std::string("token");
    return not_found("no secret " + std::string(name));
  };
  DestinationConfig config;
  config.name = "fb";
  config.type = "meta";
  config.secret_env = {{"access_token", "TOKEN_VARIABLE"}};

  struct Case {
    std::string settings;
    std::string message;
  };
  const Case cases[] = {
      {R"({"audience_name": "x"})",
       "destination 'fb': settings.ad_account_id: missing; expected the ad account, such as "
       "\"act_1234567890\""},
      {R"({"ad_account_id": "act_x1", "audience_name": "x"})",
       "destination 'fb': settings.ad_account_id: expected an ad account such as \"act_1234567890\", got "
       "\"act_x1\""},
      {R"({"ad_account_id": "act_1"})",
       "destination 'fb': settings: expected audience_id (an existing customer-file audience) or "
       "audience_name (the "
       "audience to find or create by name)"},
      {R"({"ad_account_id": "act_1", "audience_id": "1", "audience_name": "x"})",
       "destination 'fb': settings: set audience_id or audience_name, not both"},
      {R"({"ad_account_id": "act_1", "audience_name": "x", "api_version": "24"})",
       "destination 'fb': settings.api_version: expected a Graph API version such as \"v24.0\", got \"24\""},
      {R"({"ad_account_id": "act_1", "audience_name": "x", "colour": 1})",
       "destination 'fb': settings.colour: unknown key; expected one of ad_account_id, audience_id, "
       "audience_name, "
       "audience_description, customer_file_source, api_version, base_url, timeout_seconds, "
       "max_rows_per_request, "
       "session_max_age_seconds, max_throttle_wait_seconds, rate_limit, circuit_breaker, ca_file, proxy, "
       "no_proxy"},
      {R"({"ad_account_id": "act_1", "audience_name": "x", "max_rows_per_request": 20000})",
       "destination 'fb': settings.max_rows_per_request: expected an integer from 1 to 10000, got 20000"},
      {R"({"ad_account_id": "act_1", "audience_name": "x", "rate_limit": {"algorithm": "sliding_window"}})",
       "destination 'fb': settings.rate_limit.window_limit: missing; the sliding window needs the requests "
       "allowed "
       "per window"},
      {R"({"ad_account_id": "act_1", "audience_name": "x", "base_url": "ftp://example.com"})",
       "destination 'fb': settings.base_url: expected an http:// or https:// URL without a query, such as "
       "\"https://graph.facebook.com\", got \"ftp://example.com\""},
  };
  for (const auto& test : cases) {
    CAPTURE(test.settings);
    config.settings = test.settings;
    auto parsed = parse_meta_settings(config, secret);
    REQUIRE_FALSE(parsed.is_ok());
    CHECK(parsed.status().code() == StatusCode::kInvalidArgument);
    CHECK(parsed.status().message() == test.message);
  }

  SUBCASE("a destination without the token's variable") {
    config.settings = R"({"ad_account_id": "1", "audience_name": "x"})";
    config.secret_env.clear();
    auto parsed = parse_meta_settings(config, secret);
    CHECK(parsed.status().message().find("secrets.access_token: missing") != std::string::npos);
  }
  SUBCASE("another profile") {
    config.settings = R"({"ad_account_id": "1", "audience_name": "x"})";
    config.profile = Platform::kGoogle;
    auto parsed = parse_meta_settings(config, secret);
    CHECK(parsed.status().message() ==
          "destination 'fb': profile: the meta destination needs the meta profile, got google");
  }
  SUBCASE("defaults") {
    config.settings = R"({"ad_account_id": "1", "audience_name": "x"})";
    auto parsed = parse_meta_settings(config, secret);
    REQUIRE(parsed.is_ok());
    CHECK(parsed->ad_account_id == "act_1");
    CHECK(parsed->base_url == "https://graph.facebook.com");
    CHECK(parsed->api_version == "v24.0");
    CHECK(parsed->max_rows_per_request == 10000);
    CHECK_FALSE(parsed->rate_limit.has_value());
    CHECK(parsed->access_token == "token");
    CHECK(parsed->access_token_variable == "TOKEN_VARIABLE");
    CHECK(parsed->app_secret.empty());
  }
}

}  // namespace activation::platforms::meta
