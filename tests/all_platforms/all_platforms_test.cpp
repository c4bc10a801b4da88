// One job that distributes one audience to every destination type at once (Meta, Google Data
// Manager, Google Ads, LinkedIn, TikTok, Snapchat, a webhook and a file folder), against one test
// server process. Every destination's counters and the members that each platform contains are
// checked exactly, after an add and after a mirror that drops some rows.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "google/google_test_support.hpp"
#include "meta/meta_test_support.hpp"
#include "social/social_test_support.hpp"

namespace activation::testing {
namespace {

using Json = nlohmann::json;

constexpr int kRows = 3000;

// The kinds of row in the generated audience.
enum class RowKind { kEmailAndPhone, kPhoneOnly, kInvalid };

// Every 100th row has neither a usable email nor a usable phone, so it is invalid for every
// profile. Every other 25th row has a phone and no email: the LinkedIn profile has no use for a
// phone, so those rows are invalid there, and the webhook receiver is started to require an
// email, so it rejects them.
RowKind row_kind(int id) {
  if (id % 100 == 0) return RowKind::kInvalid;
  if (id % 25 == 0) return RowKind::kPhoneOnly;
  return RowKind::kEmailAndPhone;
}

std::string email_of(int id) {
  return "member" + std::to_string(id) + "@example.com";
}

// Writes the rows `first_id` to kRows as ID,EMAIL,PHONE.
void write_audience(const std::string& path, int first_id) {
  std::string text = "ID,EMAIL,PHONE\n";
  for (int id = first_id; id <= kRows; ++id) {
    char phone[32];
    std::snprintf(phone, sizeof phone, "+1 212 555 %04d", id);
    switch (row_kind(id)) {
      case RowKind::kInvalid:
        text += std::to_string(id) + ",not-an-email-" + std::to_string(id) + ",123\n";
        break;
      case RowKind::kPhoneOnly: text += std::to_string(id) + ",," + phone + "\n"; break;
      case RowKind::kEmailAndPhone:
        text += std::to_string(id) + "," + email_of(id) + "," + phone + "\n";
        break;
    }
  }
  write_file(path, text);
}

// The SHA-256 of the emails of the rows `first_id` to kRows that have one.
std::set<std::string> expected_emails(int first_id) {
  std::set<std::string> hashes;
  for (int id = first_id; id <= kRows; ++id) {
    if (row_kind(id) == RowKind::kEmailAndPhone) hashes.insert(sha256_hex(email_of(id)));
  }
  return hashes;
}

std::int64_t count_rows(int first_id, RowKind kind) {
  std::int64_t count = 0;
  for (int id = first_id; id <= kRows; ++id) count += row_kind(id) == kind ? 1 : 0;
  return count;
}

// What one destination's counters of a job should be.
struct ExpectedCounts {
  std::uint64_t accepted = 0;
  std::uint64_t rejected = 0;
  std::uint64_t invalid = 0;
  std::uint64_t members_left = 0;
};

void check_counts(const DistributionJob& job, const std::string& destination,
                  const ExpectedCounts& expected) {
  CAPTURE(destination);
  const DestinationProgress* progress = progress_of(job, destination);
  REQUIRE(progress != nullptr);
  CHECK(progress->state == RunState::kDone);
  CHECK(progress->counters.outcome(RowOutcome::kAccepted) == expected.accepted);
  CHECK(progress->counters.outcome(RowOutcome::kRejected) == expected.rejected);
  CHECK(progress->counters.outcome(RowOutcome::kInvalid) == expected.invalid);
  CHECK(progress->counters.outcome(RowOutcome::kDeferred) == 0);
  CHECK(progress->counters.members_left == expected.members_left);
}

// The email column of the file destination's add files and of its remove files in one job folder.
struct FileEmails {
  std::set<std::string> added;
  std::set<std::string> removed;
};

std::vector<std::string> split_csv_line(const std::string& line) {
  // hashed_csv cells are hex digests or empty, so they never need quoting.
  std::vector<std::string> cells;
  std::stringstream stream(line);
  for (std::string cell; std::getline(stream, cell, ',');) cells.push_back(cell);
  return cells;
}

FileEmails file_emails(const std::filesystem::path& job_dir) {
  FileEmails emails;
  REQUIRE_MESSAGE(std::filesystem::is_directory(job_dir), job_dir.string());
  for (const auto& entry : std::filesystem::directory_iterator(job_dir)) {
    std::string name = entry.path().filename().string();
    bool add = name.find("-add.csv") != std::string::npos;
    bool remove = name.find("-remove.csv") != std::string::npos;
    if (!add && !remove) continue;
    std::ifstream in(entry.path());
    std::string line;
    REQUIRE(std::getline(in, line));
    // hashed_csv names each column after its field.
    std::vector<std::string> header = split_csv_line(line);
    auto column = std::find(header.begin(), header.end(), "email");
    REQUIRE_MESSAGE(column != header.end(), name << ": " << line);
    std::size_t index = static_cast<std::size_t>(column - header.begin());
    while (std::getline(in, line)) {
      std::vector<std::string> cells = split_csv_line(line);
      if (index < cells.size() && !cells[index].empty())
        (add ? emails.added : emails.removed).insert(cells[index]);
    }
  }
  return emails;
}

// The members of each platform's audience: their number and their email hashes.
struct Received {
  std::map<std::string, std::size_t> members;
  std::map<std::string, std::set<std::string>> emails;
};

Received read_platforms(InspectionClient& client, const std::string& dm_list_id) {
  Received received;
  auto read = [&](const std::string& destination, const std::string& platform, const std::string& id) {
    REQUIRE_MESSAGE(!id.empty(), "no audience of " << destination << " on the server");
    Json audience = inspect_audience(client, platform, id);
    received.emails[destination] = received_emails(platform, audience);
    if (platform == "snapchat") {
      received.members[destination] = audience["identifiers"].value("PHONE_SHA256", Json::array()).size();
    } else if (platform == "google") {
      received.members[destination] = audience["size"].get<std::size_t>();
    } else {
      received.members[destination] = audience["members"].size();
    }
  };
  read("fb", "meta", inspected_id(client, "meta", "everyone"));
  read("gdm", "google", dm_list_id);
  read("gads", "google", inspected_id(client, "google", "everyone-ads"));
  read("li", "linkedin", inspected_id(client, "linkedin", "everyone"));
  read("tt", "tiktok", inspected_id(client, "tiktok", "everyone"));
  read("snap", "snapchat", inspected_id(client, "snapchat", "everyone"));
  read("hook", "webhook", "everyone");
  return received;
}

}  // namespace

TEST_CASE("one job reaches every platform exactly") {
  set_test_token();
  set_env(kSocialTokenVariable, "all-token");
  set_env(kWebhookSecretVariable, kWebhookSecret);
  set_google_secrets("all-platforms");
  set_snapchat_secrets("all-platforms");
  ServerProcess server({"--linkedin-ready-delay-ms", "0", "--webhook-secret", kWebhookSecret,
                        "--webhook-require-field", "email"});
  InspectionClient client(server);
  GoogleInspector google(server);
  std::string dm_list_id = google.create_list("everyone");

  ScratchDir dir("all-platforms");
  std::string csv = dir.file("audience.csv");
  write_audience(csv, 1);
  Config config = test_engine_config(dir);
  config.engine.batch_size = 250;
  config.engine.parallelism = 8;
  config.audiences.push_back(
      csv_audience("everyone", csv, {{"EMAIL", Field::kEmail}, {"PHONE", Field::kPhone}}));
  config.destinations.push_back(meta_destination(server, "fb", "everyone"));
  config.destinations.push_back(google_destination(server, "gdm", "google", {{"user_list_id", dm_list_id}}));
  config.destinations.push_back(
      google_destination(server, "gads", "google_ads", {{"user_list_name", "everyone-ads"}}));
  config.destinations.push_back(linkedin_destination(server, "li", "everyone"));
  config.destinations.push_back(tiktok_destination(server, "tt", "everyone"));
  config.destinations.push_back(snapchat_destination(server, "snap", "everyone"));
  config.destinations.push_back(webhook_destination(server, "hook", "everyone"));
  DestinationConfig files;
  files.name = "files";
  files.type = "file";
  files.settings = Json{{"directory", dir.file("out")}, {"format", "hashed_csv"}, {"fsync", false}}.dump();
  config.destinations.push_back(files);
  auto engine = open_engine(config);

  const std::vector<std::string> destinations = {"fb", "gdm", "gads", "li", "tt", "snap", "hook", "files"};
  const std::vector<std::string> platforms = {"fb", "gdm", "gads", "li", "tt", "snap", "hook"};
  // LinkedIn and the webhook receiver take no member without an email.
  auto takes_phone_only = [](const std::string& destination) {
    return destination != "li" && destination != "hook";
  };
  // The phone-only rows that a destination rejects, and those that its profile makes invalid.
  auto rejects_phone_only = [](const std::string& destination) { return destination == "hook"; };
  auto invalid_phone_only = [](const std::string& destination) { return destination == "li"; };

  DistributeOptions options;
  options.mode = SyncMode::kAdd;
  auto queued = engine->distribute("everyone", destinations, options);
  REQUIRE_MESSAGE(queued.is_ok(), queued.status().to_string());
  DistributionJob added = run_to_end(*engine, queued->id);
  REQUIRE_MESSAGE(added.status == DistributionStatus::kCompleted, added.last_error);

  const std::int64_t invalid = count_rows(1, RowKind::kInvalid);
  const std::int64_t phone_only = count_rows(1, RowKind::kPhoneOnly);
  const std::int64_t with_email = count_rows(1, RowKind::kEmailAndPhone);
  REQUIRE(invalid == 30);
  REQUIRE(phone_only == 90);
  for (const auto& destination : destinations) {
    ExpectedCounts expected;
    expected.invalid = invalid + (invalid_phone_only(destination) ? phone_only : 0);
    expected.accepted = with_email + (takes_phone_only(destination) ? phone_only : 0);
    expected.rejected = rejects_phone_only(destination) ? phone_only : 0;
    check_counts(added, destination, expected);
  }

  Received after_add = read_platforms(client, dm_list_id);
  for (const auto& destination : platforms) {
    CAPTURE(destination);
    CHECK(after_add.emails[destination] == expected_emails(1));
    CHECK(after_add.members[destination] ==
          static_cast<std::size_t>(with_email + (takes_phone_only(destination) ? phone_only : 0)));
  }
  std::filesystem::path out = dir.file("out");
  FileEmails written = file_emails(out / ("job-" + std::to_string(added.id)));
  CHECK(written.added == expected_emails(1));
  CHECK(written.removed.empty());
  Json hook = inspect_audience(client, "webhook", "everyone");
  CHECK(hook["counters"]["rejected"] == phone_only);
  CHECK(hook["counters"]["bad_signatures"] == 0);

  // The first 300 rows leave the source; the mirror removes exactly the members they made.
  constexpr int kFirstKept = 301;
  write_audience(csv, kFirstKept);
  options.mode = SyncMode::kMirror;
  queued = engine->distribute("everyone", destinations, options);
  REQUIRE_MESSAGE(queued.is_ok(), queued.status().to_string());
  DistributionJob mirrored = run_to_end(*engine, queued->id);
  REQUIRE_MESSAGE(mirrored.status == DistributionStatus::kCompleted, mirrored.last_error);

  const std::int64_t kept_email = count_rows(kFirstKept, RowKind::kEmailAndPhone);
  const std::int64_t kept_phone_only = count_rows(kFirstKept, RowKind::kPhoneOnly);
  for (const auto& destination : destinations) {
    ExpectedCounts expected;
    expected.invalid =
        count_rows(kFirstKept, RowKind::kInvalid) + (invalid_phone_only(destination) ? kept_phone_only : 0);
    // A mirror sends rejected members again, and the receiver rejects them again.
    expected.accepted = kept_email + (takes_phone_only(destination) ? kept_phone_only : 0);
    expected.rejected = rejects_phone_only(destination) ? kept_phone_only : 0;
    expected.members_left =
        (with_email - kept_email) + (takes_phone_only(destination) ? phone_only - kept_phone_only : 0);
    check_counts(mirrored, destination, expected);
  }

  Received after_mirror = read_platforms(client, dm_list_id);
  for (const auto& destination : platforms) {
    CAPTURE(destination);
    CHECK(after_mirror.emails[destination] == expected_emails(kFirstKept));
    CHECK(after_mirror.members[destination] ==
          static_cast<std::size_t>(kept_email + (takes_phone_only(destination) ? kept_phone_only : 0)));
  }
  const std::set<std::string> kept_emails = expected_emails(kFirstKept);
  std::set<std::string> left;
  for (const auto& email : expected_emails(1)) {
    if (kept_emails.count(email) == 0) left.insert(email);
  }
  written = file_emails(out / ("job-" + std::to_string(mirrored.id)));
  CHECK(written.added.empty());
  CHECK(written.removed == left);
  hook = inspect_audience(client, "webhook", "everyone");
  CHECK(hook["counters"]["unmatched_removes"] == 0);
  CHECK(inspect_audience(client, "meta",
                         inspected_id(client, "meta", "everyone"))["counters"]["unmatched_removes"] == 0);
  CHECK(inspect_audience(client, "linkedin",
                         inspected_id(client, "linkedin", "everyone"))["counters"]["unmatched_removes"] == 0);
  CHECK(inspect_audience(client, "tiktok",
                         inspected_id(client, "tiktok", "everyone"))["counters"]["unmatched_removes"] == 0);
  CHECK(google.list(dm_list_id)["unmatched_removes"] == 0);
}

}  // namespace activation::testing
