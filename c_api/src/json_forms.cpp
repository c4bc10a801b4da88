#include "json_forms.hpp"

#include <cmath>
#include <ctime>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

namespace activation::capi {
namespace {

using Json = nlohmann::json;

constexpr const char* kRequestKeys =
    "audience, destinations, mode, dry_run, priority, batch_size, parallelism, delay_seconds, "
    "expire_after_seconds, metadata, dedup_key";

// Formats a time as ISO 8601 in UTC with milliseconds, such as "2026-12-04T21:06:49.120Z".
std::string iso_time(Timestamp time) {
  auto millis = time.time_since_epoch().count();
  std::time_t seconds = static_cast<std::time_t>(millis / 1000);
  int rest = static_cast<int>(millis % 1000);
  if (rest < 0) {
    rest += 1000;
    --seconds;
  }
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  std::size_t length = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + length, sizeof text - length, ".%03dZ", rest);
  return text;
}

std::string quoted(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Status wrong_type(std::string_view key, std::string_view expected, const Json& value) {
  return invalid_argument("request." + std::string(key) + ": expected " + std::string(expected) + ", got " +
                          quoted(value));
}

// Reads a non-negative number of seconds no larger than ten years, the longest delay that makes sense.
Result<std::chrono::milliseconds> read_seconds(std::string_view key, const Json& value) {
  constexpr double kMaxSeconds = 10.0 * 366 * 24 * 3600;
  if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < 0 ||
      value.get<double>() > kMaxSeconds) {
    return wrong_type(key, "a number of seconds from 0 to 316224000", value);
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(value.get<double>() * 1000)));
}

Result<std::int64_t> read_integer(std::string_view key, const Json& value, std::int64_t min,
                                  std::int64_t max) {
  if (!value.is_number_integer() || value.get<std::int64_t>() < min || value.get<std::int64_t>() > max) {
    return wrong_type(key, "an integer from " + std::to_string(min) + " to " + std::to_string(max), value);
  }
  return value.get<std::int64_t>();
}

Status read_field(DistributeRequest& request, const std::string& key, const Json& value) {
  DistributeOptions& options = request.options;
  if (key == "audience") {
    if (!value.is_string() || value.get<std::string>().empty())
      return wrong_type(key, "an audience name", value);
    request.audience = value.get<std::string>();
  } else if (key == "destinations") {
    if (!value.is_array() || value.empty())
      return wrong_type(key, "a non-empty array of destination names", value);
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (!value[i].is_string() || value[i].get<std::string>().empty()) {
        return wrong_type(key + "[" + std::to_string(i) + "]", "a destination name", value[i]);
      }
      request.destinations.push_back(value[i].get<std::string>());
    }
  } else if (key == "mode") {
    auto mode = value.is_string() ? parse_sync_mode(value.get<std::string>()) : std::nullopt;
    if (!mode) return wrong_type(key, "add, remove, replace or mirror", value);
    options.mode = *mode;
  } else if (key == "dry_run") {
    if (!value.is_boolean()) return wrong_type(key, "true or false", value);
    options.dry_run = value.get<bool>();
  } else if (key == "priority") {
    std::optional<Priority> priority;
    if (value.is_string()) priority = parse_priority(value.get<std::string>());
    if (value.is_number_integer()) priority = parse_priority(std::to_string(value.get<std::int64_t>()));
    if (!priority) return wrong_type(key, "low, normal, high, critical, 1, 5, 10 or 20", value);
    options.priority = *priority;
  } else if (key == "batch_size") {
    ACT_ASSIGN_OR_RETURN(auto size, read_integer(key, value, 0, 1'000'000));
    options.batch_size = static_cast<std::size_t>(size);
  } else if (key == "parallelism") {
    ACT_ASSIGN_OR_RETURN(auto parallelism, read_integer(key, value, 0, 64));
    options.parallelism = static_cast<int>(parallelism);
  } else if (key == "delay_seconds") {
    ACT_ASSIGN_OR_RETURN(auto delay, read_seconds(key, value));
    if (delay.count() > 0) options.scheduled_at = std::chrono::system_clock::now() + delay;
  } else if (key == "expire_after_seconds") {
    ACT_ASSIGN_OR_RETURN(auto expiry, read_seconds(key, value));
    if (expiry.count() > 0) options.expires_at = std::chrono::system_clock::now() + expiry;
  } else if (key == "metadata") {
    if (!value.is_object()) return wrong_type(key, "an object of strings", value);
    for (const auto& [name, text] : value.items()) {
      if (!text.is_string()) return wrong_type(key + "." + name, "a string", text);
      options.metadata[name] = text.get<std::string>();
    }
  } else if (key == "dedup_key") {
    if (!value.is_string()) return wrong_type(key, "a string", value);
    options.dedup_key = value.get<std::string>();
  } else {
    return invalid_argument("request." + key + ": unknown key; expected one of " + kRequestKeys);
  }
  return Status::ok();
}

Json progress_object(const DestinationProgress& progress) {
  JobProgress wrapper;
  wrapper.job_id = progress.job_id;
  wrapper.destinations.push_back(progress);
  Json out = Json::parse(wrapper.to_json())["destinations"][progress.destination];
  out["job_id"] = progress.job_id;
  out["destination"] = progress.destination;
  return out;
}

Json job_object(const DistributionJob& job) {
  Json progress = Json::object();
  for (const auto& destination : job.progress.destinations) {
    Json entry = progress_object(destination);
    entry.erase("job_id");
    entry.erase("destination");
    progress[destination.destination] = std::move(entry);
  }
  Json out = {{"id", job.id},
              {"audience", job.audience},
              {"destinations", job.destinations},
              {"mode", std::string(sync_mode_name(job.mode))},
              {"dry_run", job.dry_run},
              {"priority", std::string(priority_name(job.priority))},
              {"status", std::string(distribution_status_name(job.status))},
              {"queue_state", std::string(job_state_name(job.queue_state))},
              {"finished", is_terminal(job.queue_state)},
              {"attempts", job.attempts},
              {"max_attempts", job.max_attempts},
              {"last_error", job.last_error},
              {"reason", job.reason},
              {"metadata", job.metadata},
              {"created_at", iso_time(job.created_at)},
              {"finished_at", job.finished_at ? Json(iso_time(*job.finished_at)) : Json(nullptr)},
              {"progress", std::move(progress)}};
  return out;
}

std::string dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

Result<DistributeRequest> parse_distribute_request(std::string_view json_text) {
  Json in = Json::parse(json_text, nullptr, false);
  if (in.is_discarded())
    return invalid_argument(
        "request: invalid JSON; expected an object such as "
        "{\"audience\": \"customers\", \"destinations\": [\"files\"]}");
  if (!in.is_object()) return invalid_argument("request: expected a JSON object, got " + quoted(in));

  DistributeRequest request;
  for (const auto& [key, value] : in.items()) ACT_RETURN_IF_ERROR(read_field(request, key, value));
  if (request.audience.empty())
    return invalid_argument("request.audience: missing; name the audience to distribute");
  if (request.destinations.empty()) {
    return invalid_argument("request.destinations: missing; name at least one destination");
  }
  return request;
}

std::string job_to_json(const DistributionJob& job) {
  return dump(job_object(job));
}

std::string jobs_to_json(const std::vector<DistributionJob>& jobs) {
  Json out = Json::array();
  for (const auto& job : jobs) out.push_back(job_object(job));
  return dump(out);
}

std::string progress_to_json(const DestinationProgress& progress) {
  return dump(progress_object(progress));
}

std::string queue_metrics_to_json(const QueueMetrics& metrics) {
  Json out = {{"waiting", metrics.waiting},     {"delayed", metrics.delayed}, {"active", metrics.active},
              {"completed", metrics.completed}, {"failed", metrics.failed},   {"dead", metrics.dead},
              {"cancelled", metrics.cancelled}, {"stalled", metrics.stalled}};
  return dump(out);
}

std::string pool_stats_to_json(const WorkerPoolStats& stats) {
  Json out = {{"claimed", stats.claimed},   {"completed", stats.completed}, {"retried", stats.retried},
              {"dead", stats.dead},         {"failed", stats.failed},       {"cancelled", stats.cancelled},
              {"released", stats.released}, {"conflicts", stats.conflicts}};
  return dump(out);
}

}  // namespace activation::capi
