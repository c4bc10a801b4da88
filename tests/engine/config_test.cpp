#include <doctest/doctest.h>

#include <string>

#include "activation/config.hpp"
#include "test_util.hpp"

using activation::Field;
using activation::parse_config;
using activation::StatusCode;

namespace {

const char* kValid = R"({
  "store": "data/activation.db",
  "engine": {"workers": 3, "parallelism": 2, "batch_size": 500, "lease_seconds": 20, "heartbeat_seconds": 5,
             "alerts": {"queue_backlog": 50, "error_rate": 0.1}},
  "audiences": {
    "customers": {
      "source": {"type": "csv", "path": "customers.csv", "delimiter": ";"},
      "mapping": {"CUSTOMERID": "external_id", "EMAIL": "email", "PHONE1": "phone", "PHONE2": "phone"},
      "default_region": "GB"
    },
    "crm": {
      "source": {"type": "sqlite", "path": "/abs/crm.db", "query": "SELECT id, email FROM people ORDER BY id"},
      "mapping": [{"column": "id", "field": "external_id"}, {"column": "email", "field": "email"}]
    }
  },
  "destinations": {
    "meta_files": {"type": "file", "settings": {"directory": "out/meta", "format": "meta_csv"}, "batch_size": 1000},
    "meta": {"type": "meta", "profile": "meta", "settings": {"ad_account_id": "act_1", "audience_name": "Newsletter"},
             "secrets": {"access_token": "META_ACCESS_TOKEN"}, "expected_rows_per_second": 5000}
  }
})";

std::string error_of(const std::string& text) {
  auto config = parse_config(text, "activation.json", "/base");
  REQUIRE_FALSE(config.is_ok());
  CHECK(config.status().code() == StatusCode::kInvalidArgument);
  return config.status().message();
}

std::string with(const std::string& from, const std::string& to) {
  std::string text = kValid;
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  return text;
}

}  // namespace

TEST_CASE("config parses complete example") {
  auto config = parse_config(kValid, "activation.json", "/base");
  REQUIRE(config.is_ok());
  CHECK(config->store_path == "/base/data/activation.db");
  CHECK(config->engine.workers == 3);
  CHECK(config->engine.batch_size == 500);
  CHECK(config->engine.lease_duration == std::chrono::seconds(20));
  CHECK(config->engine.alerts.queue_backlog == 50);
  REQUIRE(config->audiences.size() == 2);

  const auto* customers = config->find_audience("customers");
  REQUIRE(customers != nullptr);
  CHECK(customers->source.path == "/base/customers.csv");
  CHECK(customers->source.delimiter == ';');
  CHECK(customers->default_region == "GB");
  REQUIRE(customers->source.mapping.size() == 4);
  CHECK(customers->source.mapping[0].column == "CUSTOMERID");
  CHECK(customers->source.mapping[2].field == Field::kPhone);
  CHECK(customers->source.mapping[3].field == Field::kPhone);

  const auto* crm = config->find_audience("crm");
  REQUIRE(crm != nullptr);
  CHECK(crm->source.path == "/abs/crm.db");
  CHECK(crm->source.type == activation::SourceType::kSqlite);

  const auto* files = config->find_destination("meta_files");
  REQUIRE(files != nullptr);
  CHECK(files->batch_size == 1000);
  CHECK(files->settings.find("/base/out/meta") != std::string::npos);
  const auto* meta = config->find_destination("meta");
  REQUIRE(meta != nullptr);
  CHECK(meta->secret_env.at("access_token") == "META_ACCESS_TOKEN");
  CHECK(meta->profile == activation::Platform::kMeta);
  CHECK(meta->expected_rows_per_second == 5000);
}

TEST_CASE("config errors name key path") {
  CHECK(
      error_of(with("\"PHONE2\": \"phone\"", "\"PHONE2\": \"fone\"")) ==
      "activation.json: audiences.customers.mapping.PHONE2: expected a field name (email, phone, first_name, "
      "last_name, first_initial, city, state, zip, country, dob, gender, maid, external_id), got \"fone\"");
  CHECK(error_of(with("\"type\": \"csv\"", "\"type\": \"xlsx\"")) ==
        "activation.json: audiences.customers.source.type: expected csv, ndjson or sqlite, got \"xlsx\"");
  CHECK(error_of(with("\"workers\": 3", "\"workers\": 0")) ==
        "activation.json: engine.workers: expected an integer from 1 to 256, got 0");
  CHECK(error_of(with("\"batch_size\": 1000", "\"batch_size\": \"big\"")) ==
        "activation.json: destinations.meta_files.batch_size: expected an integer, got \"big\"");
  CHECK(error_of(with("\"store\"", "\"stor\"")) ==
        "activation.json: stor: unknown key; expected one of store, engine, audiences, destinations");
  CHECK(error_of(with("\"profile\": \"meta\"", "\"profile\": \"myspace\"")) ==
        "activation.json: destinations.meta.profile: expected one of meta, google, linkedin, tiktok, "
        "snapchat, got "
        "\"myspace\"");
  CHECK(error_of(with("\"access_token\": \"META_ACCESS_TOKEN\"", "\"access_token\": 7")) ==
        "activation.json: destinations.meta.secrets.access_token: expected the name of the environment "
        "variable that "
        "holds the secret, got 7");
  CHECK(error_of(with("\"default_region\": \"GB\"", "\"default_region\": \"Narnia\"")) ==
        "activation.json: audiences.customers: audience 'customers': default_region \"Narnia\" is not an ISO "
        "3166-1 "
        "alpha-2 region code");
  CHECK(error_of(with("\"heartbeat_seconds\": 5", "\"heartbeat_seconds\": 30")) ==
        "activation.json: engine.heartbeat_seconds: must be below lease_seconds (20.000000)");
  CHECK(error_of("{\"store\": \"x\",") ==
        "activation.json: line 1, column 15: syntax error while parsing object key - unexpected end of input; "
        "expected string literal");
}

TEST_CASE("config checks destination settings") {
  CHECK(error_of(with("\"audience_name\": \"Newsletter\"", "\"audience_name\": 12")) ==
        "activation.json: destinations.meta.settings.audience_name: expected a string, got 12");
  CHECK(error_of(with("\"audience_name\": \"Newsletter\"", "\"audience_name\": \"n\", \"colour\": 1"))
            .rfind("activation.json: destinations.meta.settings.colour: unknown key; expected one of ad_account_id, ",
                   0) == 0);
  CHECK(error_of(with("\"ad_account_id\": \"act_1\", ", "")) ==
        "activation.json: destinations.meta.settings.ad_account_id: missing; expected the ad account, such as "
        "\"act_1234567890\"");
  CHECK(error_of(with("\"format\": \"meta_csv\"", "\"format\": 3")) ==
        "activation.json: destinations.meta_files.settings.format: expected meta_csv, meta_json, google_json or "
        "hashed_csv, got 3");
  CHECK(error_of(with("\"type\": \"file\",", "\"type\": \"file\", \"profile\": \"google\",")) ==
        "activation.json: destinations.meta_files: format meta_csv needs the meta profile, got google");
  CHECK(error_of(with("\"profile\": \"meta\",", "\"profile\": \"google\",")) ==
        "activation.json: destinations.meta.profile: the meta destination needs the meta profile, got google");

  // Secret values are read only when a job runs, and a type the host registers later is checked
  // when a distribution is queued.
  auto config = parse_config(with("\"type\": \"meta\"", "\"type\": \"host_defined\""), "activation.json", "/base");
  CHECK(config.is_ok());
}

TEST_CASE("config file not found") {
  auto config = activation::load_config("/nonexistent/activation.json");
  REQUIRE_FALSE(config.is_ok());
  CHECK(config.status().code() == StatusCode::kNotFound);
  CHECK(config.status().message() == "configuration file '/nonexistent/activation.json' does not exist");
}

TEST_CASE("config resolves paths against its folder") {
  activation::testing::ScratchDir dir("config");
  std::string path = dir.file("activation.json");
  activation::testing::write_file(path, kValid);
  auto config = activation::load_config(path);
  REQUIRE(config.is_ok());
  CHECK(config->store_path == dir.file("data/activation.db"));
}

TEST_CASE("config round trips through payload json") {
  auto config = parse_config(kValid, "activation.json", "/base");
  REQUIRE(config.is_ok());
  for (const auto& audience : config->audiences) {
    auto copy = activation::audience_from_json(audience.name, activation::audience_to_json(audience));
    REQUIRE(copy.is_ok());
    CHECK(copy->source.mapping == audience.source.mapping);
    CHECK(copy->source.path == audience.source.path);
    CHECK(copy->source.query == audience.source.query);
    CHECK(copy->default_region == audience.default_region);
  }
  for (const auto& destination : config->destinations) {
    auto copy =
        activation::destination_from_json(destination.name, activation::destination_to_json(destination));
    REQUIRE(copy.is_ok());
    CHECK(copy->settings == destination.settings);
    CHECK(copy->secret_env == destination.secret_env);
    CHECK(copy->batch_size == destination.batch_size);
  }
}
