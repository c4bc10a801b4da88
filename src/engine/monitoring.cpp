// Metrics in the Prometheus text format and the alert conditions of the engine.
#include <cmath>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/engine_impl.hpp"
#include "engine/outcome_log.hpp"

namespace activation {
namespace {

using Json = nlohmann::json;

// How often the monitor of a running worker pool evaluates the alerts.
constexpr auto kMonitorInterval = std::chrono::seconds(5);
// A destination is judged slow only after it ran this long, so start-up costs do not count.
constexpr double kSlowJobGraceSeconds = 10.0;

std::string escape_label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

class MetricWriter {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << ' ' << help << '\n' << "# TYPE " << name << ' ' << type << '\n';
  }
  void sample(const char* name, std::initializer_list<std::pair<const char*, std::string>> labels,
              double value) {
    out_ << name;
    if (labels.size() > 0) {
      out_ << '{';
      bool first = true;
      for (const auto& [key, label] : labels) {
        if (!first) out_ << ',';
        first = false;
        out_ << key << "=\"" << escape_label(label) << '"';
      }
      out_ << '}';
    }
    if (std::floor(value) == value && std::fabs(value) < 1e15) {
      out_ << ' ' << static_cast<std::int64_t>(value) << '\n';
    } else {
      out_ << ' ' << value << '\n';
    }
  }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

}  // namespace

Result<std::string> DistributionEngine::metrics_text() {
  ACT_ASSIGN_OR_RETURN(auto queue_metrics, impl_->queue->metrics());
  MetricWriter writer;

  writer.family("activation_queue_jobs", "gauge", "Jobs in the queue by state.");
  const std::pair<const char*, std::int64_t> states[] = {
      {"waiting", queue_metrics.waiting},    {"delayed", queue_metrics.delayed},
      {"active", queue_metrics.active},      {"completed", queue_metrics.completed},
      {"failed", queue_metrics.failed},      {"dead", queue_metrics.dead},
      {"cancelled", queue_metrics.cancelled}};
  for (const auto& [state, count] : states) writer.sample("activation_queue_jobs", {{"state", state}}, count);
  writer.family("activation_queue_stalled_jobs", "gauge",
                "Active jobs whose lease expired without a heartbeat.");
  writer.sample("activation_queue_stalled_jobs", {}, queue_metrics.stalled);

  // Totals per destination over every run recorded in the outcome log (dry runs left out).
  ACT_ASSIGN_OR_RETURN(auto log, engine::OutcomeLog::open(impl_->outcome_path));
  ACT_ASSIGN_OR_RETURN(auto runs, log->runs());
  std::map<std::string, DestinationCounters> totals;
  std::map<std::pair<std::string, std::string>, std::int64_t> run_states;
  for (const auto& run : runs) {
    if (run.dry_run) continue;
    ++run_states[{run.destination, run.state}];
    auto counters = DestinationCounters::from_json(run.counters);
    if (!counters.is_ok()) continue;
    DestinationCounters& total = totals[run.destination];
    total.rows_read += counters->rows_read;
    for (int i = 0; i < kRowOutcomeCount; ++i) total.outcomes[i] += counters->outcomes[i];
    total.adds_sent += counters->adds_sent;
    total.removes_sent += counters->removes_sent;
    total.members_left += counters->members_left;
    total.batches += counters->batches;
    total.batch_retries += counters->batch_retries;
    for (int f = 0; f < kFieldCount; ++f) {
      total.fields[f].valid += counters->fields[f].valid;
      total.fields[f].dropped += counters->fields[f].dropped;
    }
  }

  writer.family("activation_destination_runs", "gauge", "Destination runs by their last state.");
  for (const auto& [key, count] : run_states) {
    writer.sample("activation_destination_runs", {{"destination", key.first}, {"state", key.second}},
                  static_cast<double>(count));
  }
  writer.family("activation_destination_rows_total", "counter", "Rows read per destination by outcome.");
  for (const auto& [destination, total] : totals) {
    for (int i = 0; i < kRowOutcomeCount; ++i) {
      writer.sample("activation_destination_rows_total",
                    {{"destination", destination},
                     {"outcome", std::string(row_outcome_name(static_cast<RowOutcome>(i)))}},
                    static_cast<double>(total.outcomes[i]));
    }
  }
  writer.family("activation_destination_operations_total", "counter", "Operations sent per destination.");
  for (const auto& [destination, total] : totals) {
    writer.sample("activation_destination_operations_total",
                  {{"destination", destination}, {"operation", "add"}}, static_cast<double>(total.adds_sent));
    writer.sample("activation_destination_operations_total",
                  {{"destination", destination}, {"operation", "remove"}},
                  static_cast<double>(total.removes_sent));
  }
  writer.family("activation_destination_batches_total", "counter", "Batches sent per destination.");
  for (const auto& [destination, total] : totals) {
    writer.sample("activation_destination_batches_total", {{"destination", destination}},
                  static_cast<double>(total.batches));
  }
  writer.family("activation_destination_batch_retries_total", "counter",
                "Batch sends retried after a transport error, per destination.");
  for (const auto& [destination, total] : totals) {
    writer.sample("activation_destination_batch_retries_total", {{"destination", destination}},
                  static_cast<double>(total.batch_retries));
  }
  writer.family("activation_identifiers_total", "counter",
                "Identifier values per destination, field and status.");
  for (const auto& [destination, total] : totals) {
    for (int f = 0; f < kFieldCount; ++f) {
      const auto& counts = total.fields[f];
      if (counts.valid == 0 && counts.dropped == 0) continue;
      std::string field(field_name(static_cast<Field>(f)));
      writer.sample("activation_identifiers_total",
                    {{"destination", destination}, {"field", field}, {"status", "valid"}},
                    static_cast<double>(counts.valid));
      writer.sample("activation_identifiers_total",
                    {{"destination", destination}, {"field", field}, {"status", "dropped"}},
                    static_cast<double>(counts.dropped));
    }
  }

  // Runs of this process, live.
  writer.family("activation_destination_rows_per_second", "gauge",
                "Rows read per second by running destinations.");
  for (const auto& progress : impl_->progress->all()) {
    if (progress.state != RunState::kRunning) continue;
    writer.sample("activation_destination_rows_per_second",
                  {{"job", std::to_string(progress.job_id)}, {"destination", progress.destination}},
                  progress.rows_per_second);
  }
  return writer.text();
}

Status DistributionEngine::check_alerts() {
  Impl& impl = *impl_;
  ACT_ASSIGN_OR_RETURN(auto queue_metrics, impl.queue->metrics());
  Config config = this->config();
  const AlertThresholds& thresholds = config.engine.alerts;

  // The alerts whose condition is true now, by key, with their event details.
  std::map<std::string, Event> holding;
  auto hold = [&](const std::string& type, std::int64_t job, const std::string& destination, Json data) {
    Event event;
    event.type = type;
    event.job_id = job;
    event.destination = destination;
    event.time = std::chrono::system_clock::now();
    event.data = data.dump();
    holding.emplace(type + "|" + std::to_string(job) + "|" + destination, std::move(event));
  };

  std::int64_t backlog = queue_metrics.waiting + queue_metrics.delayed;
  if (backlog > thresholds.queue_backlog) {
    hold("alert.queue_backlog", 0, "", {{"backlog", backlog}, {"threshold", thresholds.queue_backlog}});
  }
  if (queue_metrics.stalled >= thresholds.stalled_jobs) {
    hold("alert.stalled_jobs", 0, "",
         {{"stalled", queue_metrics.stalled}, {"threshold", thresholds.stalled_jobs}});
  }
  for (const auto& progress : impl.progress->all()) {
    if (progress.state != RunState::kRunning) continue;
    const DestinationConfig* destination = config.find_destination(progress.destination);
    const auto& counters = progress.counters;
    double expected = destination ? destination->expected_rows_per_second : 0;
    double seconds = progress.rows_per_second > 0 && counters.rows_read > 0
                         ? static_cast<double>(counters.rows_read) / progress.rows_per_second
                         : 0;
    if (expected > 0 && seconds >= kSlowJobGraceSeconds && progress.rows_per_second < expected / 2) {
      hold("alert.slow_job", progress.job_id, progress.destination,
           {{"rows_per_second", progress.rows_per_second}, {"expected_rows_per_second", expected}});
    }
    std::uint64_t failed = counters.outcome(RowOutcome::kRejected) + counters.outcome(RowOutcome::kDeferred);
    std::uint64_t sent = failed + counters.outcome(RowOutcome::kAccepted);
    if (sent >= thresholds.error_rate_min_rows && sent > 0) {
      double rate = static_cast<double>(failed) / static_cast<double>(sent);
      if (rate > thresholds.error_rate) {
        hold("alert.error_rate", progress.job_id, progress.destination,
             {{"error_rate", rate}, {"threshold", thresholds.error_rate}, {"rows_sent", sent}});
      }
    }
  }

  // Publish only changes: an alert that starts holding, and ".resolved" for one that stopped.
  std::vector<Event> to_publish;
  {
    std::lock_guard lock(impl.alerts_mutex);
    for (auto& [key, event] : holding) {
      if (impl.active_alerts.insert(key).second) to_publish.push_back(event);
    }
    for (auto it = impl.active_alerts.begin(); it != impl.active_alerts.end();) {
      if (holding.count(*it) == 0) {
        Event resolved;
        auto first = it->find('|');
        auto second = it->find('|', first + 1);
        resolved.type = it->substr(0, first) + ".resolved";
        resolved.job_id = std::stoll(it->substr(first + 1, second - first - 1));
        resolved.destination = it->substr(second + 1);
        resolved.time = std::chrono::system_clock::now();
        to_publish.push_back(std::move(resolved));
        it = impl.active_alerts.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& event : to_publish) {
    impl.logger.log(LogLevel::kWarn, "engine", "{} job {} destination {}: {}", event.type, event.job_id,
                    event.destination.empty() ? "-" : event.destination, event.data);
    impl.events->publish(event);
  }
  return Status::ok();
}

void DistributionEngine::Impl::start_monitor() {
  std::lock_guard lock(monitor_mutex);
  if (monitor.joinable()) return;
  monitor_stop = false;
  DistributionEngine::Impl* self = this;
  monitor = std::thread([self] {
    std::unique_lock lock(self->monitor_mutex);
    while (!self->monitor_stop) {
      self->monitor_wake.wait_for(lock, kMonitorInterval, [self] { return self->monitor_stop; });
      if (self->monitor_stop) break;
      lock.unlock();
      if (self->owner) {
        Status checked = self->owner->check_alerts();
        if (!checked.is_ok()) {
          self->logger.log(LogLevel::kWarn, "engine", "checking alerts failed: {}", checked.to_string());
        }
      }
      lock.lock();
    }
  });
}

void DistributionEngine::Impl::stop_monitor() {
  {
    std::lock_guard lock(monitor_mutex);
    monitor_stop = true;
  }
  monitor_wake.notify_all();
  if (monitor.joinable()) monitor.join();
}

}  // namespace activation
