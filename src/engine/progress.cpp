#include "activation/progress.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace activation {
namespace {

using Json = nlohmann::json;

Json outcomes_json(const std::array<std::uint64_t, kRowOutcomeCount>& counts) {
  Json out = Json::object();
  for (int i = 0; i < kRowOutcomeCount; ++i)
    out[std::string(row_outcome_name(static_cast<RowOutcome>(i)))] = counts[i];
  return out;
}

void read_outcomes(const Json& in, std::array<std::uint64_t, kRowOutcomeCount>& counts) {
  if (!in.is_object()) return;
  for (int i = 0; i < kRowOutcomeCount; ++i) {
    counts[i] = in.value(std::string(row_outcome_name(static_cast<RowOutcome>(i))), std::uint64_t{0});
  }
}

Json progress_json(const DestinationProgress& progress) {
  Json out = {{"state", std::string(run_state_name(progress.state))},
              {"dry_run", progress.dry_run},
              {"counters", Json::parse(progress.counters.to_json())},
              {"rows_per_second", progress.rows_per_second}};
  if (progress.percent) out["percent"] = *progress.percent;
  if (progress.seconds_remaining) out["seconds_remaining"] = *progress.seconds_remaining;
  if (!progress.error.empty()) out["error"] = progress.error;
  if (!progress.error_code.empty()) out["error_code"] = progress.error_code;
  if (!progress.circuit.empty()) out["circuit"] = progress.circuit;
  if (!progress.waiting.empty()) out["waiting"] = progress.waiting;
  return out;
}

}  // namespace

std::string_view run_state_name(RunState state) noexcept {
  switch (state) {
    case RunState::kPending: return "pending";
    case RunState::kRunning: return "running";
    case RunState::kDone: return "done";
    case RunState::kFailed: return "failed";
    case RunState::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::string DestinationCounters::to_json() const {
  Json fields_out = Json::object();
  for (int i = 0; i < kFieldCount; ++i) {
    const FieldCounts& counts = fields[i];
    bool any = counts.valid != 0 || counts.dropped != 0;
    for (auto count : counts.rows) any = any || count != 0;
    if (!any) continue;
    fields_out[std::string(field_name(static_cast<Field>(i)))] = {
        {"valid", counts.valid}, {"dropped", counts.dropped}, {"rows", outcomes_json(counts.rows)}};
  }
  Json out = {{"rows_read", rows_read}, {"outcomes", outcomes_json(outcomes)},
              {"adds_sent", adds_sent}, {"removes_sent", removes_sent},
              {"unchanged", unchanged}, {"members_left", members_left},
              {"batches", batches},     {"batch_retries", batch_retries},
              {"fields", fields_out},   {"reasons", reasons}};
  return out.dump();
}

Result<DestinationCounters> DestinationCounters::from_json(std::string_view json_text) {
  Json in = Json::parse(json_text, nullptr, false);
  if (in.is_discarded() || !in.is_object()) return invalid_argument("counters are not a JSON object");
  DestinationCounters counters;
  try {
    counters.rows_read = in.value("rows_read", std::uint64_t{0});
    if (auto found = in.find("outcomes"); found != in.end()) read_outcomes(*found, counters.outcomes);
    counters.adds_sent = in.value("adds_sent", std::uint64_t{0});
    counters.removes_sent = in.value("removes_sent", std::uint64_t{0});
    counters.unchanged = in.value("unchanged", std::uint64_t{0});
    counters.members_left = in.value("members_left", std::uint64_t{0});
    counters.batches = in.value("batches", std::uint64_t{0});
    counters.batch_retries = in.value("batch_retries", std::uint64_t{0});
    if (auto found = in.find("fields"); found != in.end() && found->is_object()) {
      for (const auto& [name, value] : found->items()) {
        auto field = parse_field(name);
        if (!field || !value.is_object()) continue;
        FieldCounts& counts = counters.fields[static_cast<int>(*field)];
        counts.valid = value.value("valid", std::uint64_t{0});
        counts.dropped = value.value("dropped", std::uint64_t{0});
        if (auto rows = value.find("rows"); rows != value.end()) read_outcomes(*rows, counts.rows);
      }
    }
    if (auto found = in.find("reasons"); found != in.end() && found->is_object()) {
      for (const auto& [code, count] : found->items()) {
        if (count.is_number_unsigned()) counters.reasons[code] = count.get<std::uint64_t>();
      }
    }
  } catch (const Json::exception& error) {
    return invalid_argument(std::string("counters hold a value of the wrong type: ") + error.what());
  }
  return counters;
}

std::string JobProgress::to_json() const {
  Json destinations_out = Json::object();
  for (const auto& destination : destinations)
    destinations_out[destination.destination] = progress_json(destination);
  return Json{{"destinations", destinations_out}}.dump();
}

ProgressTracker::ProgressTracker(std::shared_ptr<EventBus> events) : events_(std::move(events)) {}

SubscriptionId ProgressTracker::subscribe(ProgressHandler handler, std::int64_t job_id) {
  std::lock_guard lock(mutex_);
  SubscriptionId id = next_id_++;
  subscribers_.push_back(Subscriber{id, job_id, std::make_shared<ProgressHandler>(std::move(handler))});
  return id;
}

void ProgressTracker::unsubscribe(SubscriptionId id) {
  std::lock_guard lock(mutex_);
  std::erase_if(subscribers_, [id](const Subscriber& subscriber) { return subscriber.id == id; });
}

void ProgressTracker::update(const DestinationProgress& progress) {
  std::vector<int> crossed;
  std::vector<std::shared_ptr<ProgressHandler>> handlers;
  {
    std::lock_guard lock(mutex_);
    Entry& entry = entries_[{progress.job_id, progress.destination}];
    entry.progress = progress;

    // 100 is reached only when the run is done, not when the last byte of the source is read,
    // because a mirror run still removes the members who left after that.
    double percent =
        progress.state == RunState::kDone ? 100.0 : std::min(progress.percent.value_or(0.0), 99.999);
    while (entry.milestones_sent < static_cast<int>(kMilestones.size()) &&
           percent >= kMilestones[entry.milestones_sent]) {
      crossed.push_back(kMilestones[entry.milestones_sent]);
      ++entry.milestones_sent;
    }
    for (const auto& subscriber : subscribers_) {
      if (subscriber.job_id == 0 || subscriber.job_id == progress.job_id)
        handlers.push_back(subscriber.handler);
    }
  }

  for (const auto& handler : handlers) {
    try {
      (*handler)(progress);
    } catch (...) {
      // A subscriber's failure must not stop the distribution.
    }
  }
  if (events_) {
    for (int milestone : crossed) {
      Event event;
      event.type = "distribution.milestone";
      event.job_id = progress.job_id;
      event.destination = progress.destination;
      event.time = std::chrono::system_clock::now();
      event.data = Json{{"percent", milestone},
                        {"rows_read", progress.counters.rows_read},
                        {"accepted", progress.counters.outcome(RowOutcome::kAccepted)}}
                       .dump();
      events_->publish(event);
    }
  }
}

std::optional<JobProgress> ProgressTracker::job(std::int64_t job_id) const {
  std::lock_guard lock(mutex_);
  JobProgress out;
  out.job_id = job_id;
  for (auto it = entries_.lower_bound({job_id, std::string()});
       it != entries_.end() && it->first.first == job_id; ++it) {
    out.destinations.push_back(it->second.progress);
  }
  if (out.destinations.empty()) return std::nullopt;
  return out;
}

std::vector<DestinationProgress> ProgressTracker::all() const {
  std::lock_guard lock(mutex_);
  std::vector<DestinationProgress> out;
  for (const auto& [key, entry] : entries_) out.push_back(entry.progress);
  return out;
}

void ProgressTracker::forget(std::int64_t job_id) {
  std::lock_guard lock(mutex_);
  for (auto it = entries_.lower_bound({job_id, std::string()});
       it != entries_.end() && it->first.first == job_id;) {
    it = entries_.erase(it);
  }
}

}  // namespace activation
