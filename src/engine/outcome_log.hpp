// The outcome log: the non-accepted rows of each job with their reasons, and the totals of each
// (job, destination) run. It lives in a SQLite file beside the store (activation.db ->
// activation.outcomes.db) because the rows are the engine's report, not queue state, and can be
// pruned or deleted without touching jobs or the ledger. It contains line numbers, reason codes
// and member keys (hashes), never raw values.
#ifndef ACTIVATION_ENGINE_OUTCOME_LOG_HPP_
#define ACTIVATION_ENGINE_OUTCOME_LOG_HPP_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "activation/engine.hpp"

struct sqlite3;

namespace activation::engine {

// Returns the outcome log path for a store path: the extension, if any, becomes ".outcomes.db".
std::string outcome_log_path(const std::string& store_path);

struct RunRecord {
  std::int64_t job_id = 0;
  std::string destination;
  std::string audience;
  std::string mode;
  bool dry_run = false;
  std::string state;     // run_state_name()
  std::string counters;  // DestinationCounters::to_json()
  std::string error;
};

// Thread safety: one OutcomeLog per thread; several may share one file across threads and processes.
class OutcomeLog {
 public:
  static Result<std::unique_ptr<OutcomeLog>> open(const std::string& path);
  ~OutcomeLog();
  OutcomeLog(const OutcomeLog&) = delete;
  OutcomeLog& operator=(const OutcomeLog&) = delete;

  // Records rows in one transaction. Recording the same (job, destination, line, operation,
  // member) again replaces it, so a re-sent batch does not count its rows twice.
  Status record(std::int64_t job_id, std::string_view destination, const std::vector<RowOutcomeRecord>& rows);
  Status save_run(const RunRecord& run);
  Result<std::vector<RunRecord>> runs(std::int64_t job_id = 0);
  Status visit(std::int64_t job_id, const std::function<Status(const RowOutcomeRecord&)>& visitor);

 private:
  explicit OutcomeLog(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

}  // namespace activation::engine

#endif  // ACTIVATION_ENGINE_OUTCOME_LOG_HPP_
