// The main job on real input: the 10,000 customers of ../shared/data/customers-10000.csv (messy
// phones, free-text countries) distributed to the file destination.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "activation/audience.hpp"
#include "activation/engine.hpp"
#include "activation/identifiers.hpp"
#include "engine_test_util.hpp"

using namespace activation;
using activation::testing::ScratchDir;

namespace {

std::string customers_path() {
  return (std::filesystem::path(ACT_SOURCE_DIR) / ".." / "shared" / "data" / "customers-10000.csv")
      .lexically_normal()
      .string();
}

const std::vector<ColumnMapping> kMapping = {
    {"CUSTOMERID", Field::kExternalId}, {"FIRSNAME", Field::kFirstName},
    {"LASTNAME", Field::kLastName},     {"CITY", Field::kCity},
    {"COUNTRY", Field::kCountry},       {"PHONE1", Field::kPhone},
    {"PHONE2", Field::kPhone},          {"EMAIL", Field::kEmail}};

// The email of each data row of a CSV, by line number, read with the library's own CSV source.
std::map<std::uint64_t, std::string> emails_by_line(const std::string& path) {
  SourceSpec spec;
  spec.path = path;
  spec.mapping = {{"EMAIL", Field::kEmail}};
  auto source = open_source(spec);
  REQUIRE(source.is_ok());
  std::map<std::uint64_t, std::string> emails;
  SourceRow row;
  while (*(*source)->next(row)) {
    if (!row.values.empty()) emails[row.line] = std::string(row.values[0].value);
  }
  return emails;
}

std::set<std::string> email_column(const std::multiset<std::string>& rows) {
  // meta_csv columns follow the mapping's field order: email comes first.
  std::set<std::string> emails;
  for (const auto& row : rows) emails.insert(row.substr(0, row.find(',')));
  return emails;
}

}  // namespace

TEST_CASE("customers file main job") {
  if (!std::filesystem::exists(customers_path())) {
    MESSAGE("skipped: " << customers_path() << " is absent");
    return;
  }
  ScratchDir dir("customers");
  Config config = activation::testing::make_config(dir);
  config.engine.batch_size = 1000;
  config.audiences.push_back(activation::testing::csv_audience("customers", customers_path(), kMapping));
  config.destinations.push_back(
      activation::testing::file_destination("meta_files", dir.file("meta"), "meta_csv"));
  auto opened = DistributionEngine::open(config);
  REQUIRE(opened.is_ok());
  DistributionEngine& engine = **opened;
  std::vector<std::string> destinations = {"meta_files"};

  auto run = [&](SyncMode mode) {
    DistributeOptions options;
    options.mode = mode;
    auto queued = engine.distribute("customers", destinations, options);
    REQUIRE(queued.is_ok());
    auto job = activation::testing::run_job(engine, queued->id);
    INFO("last error: ", job.last_error);
    REQUIRE(job.status == DistributionStatus::kCompleted);
    return job;
  };
  auto counters_of = [](const DistributionJob& job) {
    const DestinationProgress* progress = activation::testing::find_destination(job, "meta_files");
    REQUIRE(progress != nullptr);
    return progress->counters;
  };
  auto job_dir = [&](const DistributionJob& job) {
    return std::filesystem::path(dir.file("meta")) / ("job-" + std::to_string(job.id));
  };

  // First run: every row ends in exactly one outcome, and the files hold exactly the accepted rows.
  auto first = run(SyncMode::kAdd);
  auto counters = counters_of(first);
  std::uint64_t outcome_sum = 0;
  for (auto count : counters.outcomes) outcome_sum += count;
  CHECK(counters.rows_read == 10001);
  CHECK(outcome_sum == counters.rows_read);
  CHECK(counters.outcome(RowOutcome::kAccepted) > 9000);

  std::set<std::uint64_t> not_accepted;
  REQUIRE(engine
              .export_row_outcomes(first.id,
                                   [&](const RowOutcomeRecord& record) {
                                     not_accepted.insert(record.line);
                                     return Status::ok();
                                   })
              .is_ok());
  CHECK(not_accepted.size() == counters.rows_read - counters.outcome(RowOutcome::kAccepted));

  auto rows = activation::testing::csv_rows(job_dir(first), "add");
  CHECK(rows.size() == counters.outcome(RowOutcome::kAccepted));
  auto normalizer = Normalizer::create(Platform::kMeta);
  REQUIRE(normalizer.is_ok());
  std::set<std::string> expected_emails;
  for (const auto& [line, email] : emails_by_line(customers_path())) {
    if (not_accepted.count(line)) continue;
    auto normalized = normalizer->normalize(Field::kEmail, email);
    if (normalized.ok()) expected_emails.insert(normalized.sha256);
  }
  auto file_emails = email_column(rows);
  file_emails.erase("");
  CHECK(file_emails == expected_emails);

  // Second run in mirror mode: the destination has every member already.
  auto second = run(SyncMode::kMirror);
  CHECK(counters_of(second).adds_sent == 0);
  CHECK(counters_of(second).removes_sent == 0);
  CHECK(activation::testing::batch_files(job_dir(second)).empty());

  // 100 customers change their email: exactly their removes and adds are sent.
  std::ifstream in(customers_path());
  std::string header;
  std::getline(in, header);
  std::string text = header + "\n";
  std::string line;
  int changed = 0;
  std::set<std::string> old_hashes;
  std::set<std::string> new_hashes;
  std::uint64_t line_number = 1;
  auto emails = emails_by_line(customers_path());
  while (std::getline(in, line)) {
    ++line_number;
    if (changed < 100 && line_number % 97 == 0 && !not_accepted.count(line_number)) {
      const std::string& email = emails.at(line_number);
      auto at = line.find(email);
      REQUIRE(at != std::string::npos);
      std::string replacement = "changed" + std::to_string(changed) + "@example.org";
      line.replace(at, email.size(), replacement);
      old_hashes.insert(normalizer->normalize(Field::kEmail, email).sha256);
      new_hashes.insert(normalizer->normalize(Field::kEmail, replacement).sha256);
      ++changed;
    }
    text += line + "\n";
  }
  REQUIRE(changed == 100);
  std::string changed_path = dir.file("customers-changed.csv");
  activation::testing::write_file(changed_path, text);
  REQUIRE(engine.register_audience(activation::testing::csv_audience("customers", changed_path, kMapping))
              .is_ok());

  auto third = run(SyncMode::kMirror);
  CHECK(counters_of(third).adds_sent == 100);
  CHECK(counters_of(third).removes_sent == 100);
  CHECK(counters_of(third).members_left == 0);
  CHECK(email_column(activation::testing::csv_rows(job_dir(third), "remove")) == old_hashes);
  CHECK(email_column(activation::testing::csv_rows(job_dir(third), "add")) == new_hashes);
}
