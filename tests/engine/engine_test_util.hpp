// Helpers for the engine tests: an engine over a scratch folder, and readers of the files the
// file destination writes.
#ifndef ACTIVATION_TESTS_ENGINE_ENGINE_TEST_UTIL_HPP_
#define ACTIVATION_TESTS_ENGINE_ENGINE_TEST_UTIL_HPP_

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "activation/engine.hpp"
#include "test_util.hpp"

namespace activation::testing {

inline Config make_config(const ScratchDir& dir) {
  Config config;
  config.store_path = dir.file("store/activation.db");
  config.engine.workers = 2;
  config.engine.batch_size = 100;
  config.engine.lease_duration = std::chrono::seconds(10);
  config.engine.heartbeat_interval = std::chrono::seconds(2);
  config.engine.batch_retry_base = std::chrono::milliseconds(1);
  return config;
}

inline AudienceConfig csv_audience(const std::string& name, const std::string& path,
                                   std::vector<ColumnMapping> mapping) {
  AudienceConfig audience;
  audience.name = name;
  audience.source.type = SourceType::kCsv;
  audience.source.path = path;
  audience.source.mapping = std::move(mapping);
  return audience;
}

inline DestinationConfig file_destination(const std::string& name, const std::string& directory,
                                          const std::string& format) {
  DestinationConfig destination;
  destination.name = name;
  destination.type = "file";
  nlohmann::json settings = {{"directory", directory}, {"format", format}, {"fsync", false}};
  destination.settings = settings.dump();
  return destination;
}

// Runs the queue until idle and returns the job.
inline DistributionJob run_job(DistributionEngine& engine, JobId id) {
  auto stats = engine.run_until_idle(std::chrono::minutes(5));
  REQUIRE(stats.is_ok());
  auto job = engine.job(id);
  REQUIRE(job.is_ok());
  return *job;
}

inline const DestinationProgress* find_destination(const DistributionJob& job, const std::string& name) {
  for (const auto& destination : job.progress.destinations) {
    if (destination.destination == name) return &destination;
  }
  return nullptr;
}

// The rows of every batch file of one operation in a job folder of a CSV format, header excluded,
// as a multiset (a re-sent batch shows up twice).
inline std::multiset<std::string> csv_rows(const std::filesystem::path& job_dir,
                                           const std::string& operation) {
  std::multiset<std::string> rows;
  if (!std::filesystem::exists(job_dir)) return rows;
  for (const auto& entry : std::filesystem::directory_iterator(job_dir)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("batch-", 0) != 0 || name.find("-" + operation + ".csv") == std::string::npos) continue;
    std::string text = read_file(entry.path().string());
    std::size_t start = text.find('\n') + 1;
    while (start < text.size()) {
      std::size_t end = text.find('\n', start);
      rows.insert(text.substr(start, end - start));
      start = end + 1;
    }
  }
  return rows;
}

inline std::vector<std::string> batch_files(const std::filesystem::path& job_dir) {
  std::vector<std::string> files;
  if (!std::filesystem::exists(job_dir)) return files;
  for (const auto& entry : std::filesystem::directory_iterator(job_dir)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("batch-", 0) == 0) files.push_back(name);
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace activation::testing

#endif  // ACTIVATION_TESTS_ENGINE_ENGINE_TEST_UTIL_HPP_
