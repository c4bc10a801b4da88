// Progress of distributions per job and destination: counters, percentage, rate and time left,
// with subscriptions by callback and milestone events at 25, 50, 75, 90, 95 and 100 percent.
#ifndef ACTIVATION_PROGRESS_HPP_
#define ACTIVATION_PROGRESS_HPP_

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "activation/backend/destination.hpp"
#include "activation/events.hpp"
#include "activation/export.hpp"
#include "activation/identifiers.hpp"
#include "activation/status.hpp"

namespace activation {

// Counts of one identifier type within one destination run.
struct FieldCounts {
  std::uint64_t valid = 0;    // Values that normalized to a usable identifier.
  std::uint64_t dropped = 0;  // Values dropped with a reason.
  // Rows by outcome that held this type: usable for accepted, rejected and deferred rows; present
  // but unusable for invalid rows.
  std::array<std::uint64_t, kRowOutcomeCount> rows{};
};

// The counters of one (job, destination) run. They survive a resume: they are saved with every
// checkpoint.
struct DestinationCounters {
  std::uint64_t rows_read = 0;
  std::array<std::uint64_t, kRowOutcomeCount> outcomes{};  // Indexed by RowOutcome; sums to rows_read.
  std::uint64_t adds_sent = 0;     // Add operations sent (in a dry run: that would be sent).
  std::uint64_t removes_sent = 0;  // Remove operations sent, including those of members who left.
  std::uint64_t unchanged = 0;     // Mirror: accepted rows whose keys the destination holds already.
  std::uint64_t members_left = 0;  // Mirror: members removed because they left the source.
  std::uint64_t batches = 0;
  std::uint64_t batch_retries = 0;
  std::array<FieldCounts, kFieldCount> fields{};
  std::map<std::string, std::uint64_t> reasons;  // Reason code -> count, for drops and non-accepted rows.

  std::uint64_t outcome(RowOutcome outcome) const noexcept { return outcomes[static_cast<int>(outcome)]; }
  // Returns the counters as a JSON object, and parses that form back.
  std::string to_json() const;
  static Result<DestinationCounters> from_json(std::string_view json_text);
};

enum class RunState : int { kPending = 0, kRunning, kDone, kFailed, kCancelled };

ACT_EXPORT std::string_view run_state_name(RunState state) noexcept;

// A snapshot of one destination of one job.
struct DestinationProgress {
  std::int64_t job_id = 0;
  std::string destination;
  RunState state = RunState::kPending;
  bool dry_run = false;
  DestinationCounters counters;
  std::optional<double> percent;            // Of the source read; unknown when its size is unknown.
  double rows_per_second = 0;               // Rows read per second during this process's run.
  std::optional<double> seconds_remaining;  // Estimated from the percent and the rate.
  std::string error;                        // Why the run failed.
  // The status code name of that failure, such as "unauthenticated" (docs/errors.md); empty
  // while the run has not failed.
  std::string error_code;
  // The destination's circuit breaker: "closed", "open" or "half_open"; empty for a destination
  // without one (a file destination).
  std::string circuit;
  // The cause and length of the engine's wait before it sends a batch again, such as
  // "throttled; batch 4 again in 30 s". Empty while the destination is not waiting.
  std::string waiting;
};

struct JobProgress {
  std::int64_t job_id = 0;
  std::vector<DestinationProgress> destinations;

  // Returns {"destinations": {name: {...}}} as JSON text, the form stored on the job.
  std::string to_json() const;
};

using ProgressHandler = std::function<void(const DestinationProgress& progress)>;

// Collects the progress of running destinations and publishes milestone events.
//
// Thread safety: all methods may be called from any thread. Handlers run on the updating thread and
// must not call back into the tracker.
class ACT_EXPORT ProgressTracker {
 public:
  explicit ProgressTracker(std::shared_ptr<EventBus> events);

  // Calls `handler` with each update of any destination (job_id 0) or of one job.
  SubscriptionId subscribe(ProgressHandler handler, std::int64_t job_id = 0);
  void unsubscribe(SubscriptionId id);

  // Records a snapshot and notifies subscribers. Publishes distribution.milestone once per
  // destination and threshold crossed (25, 50, 75, 90, 95 percent, and 100 when the run is done).
  void update(const DestinationProgress& progress);

  std::optional<JobProgress> job(std::int64_t job_id) const;
  std::vector<DestinationProgress> all() const;
  // Forgets a finished job's snapshots.
  void forget(std::int64_t job_id);

  static constexpr std::array<int, 6> kMilestones = {25, 50, 75, 90, 95, 100};

 private:
  struct Entry {
    DestinationProgress progress;
    int milestones_sent = 0;  // How many of kMilestones were published.
  };
  struct Subscriber {
    SubscriptionId id;
    std::int64_t job_id;
    std::shared_ptr<ProgressHandler> handler;
  };

  std::shared_ptr<EventBus> events_;
  mutable std::mutex mutex_;
  std::map<std::pair<std::int64_t, std::string>, Entry> entries_;
  std::vector<Subscriber> subscribers_;
  SubscriptionId next_id_ = 1;
};

}  // namespace activation

#endif  // ACTIVATION_PROGRESS_HPP_
