#include "engine/job_payload.hpp"

#include <nlohmann/json.hpp>

namespace activation::engine {

using Json = nlohmann::json;

std::string encode_payload(const JobPayload& payload) {
  Json destinations = Json::array();
  for (const auto& destination : payload.destinations) {
    destinations.push_back(
        {{"name", destination.name}, {"config", Json::parse(destination_to_json(destination))}});
  }
  Json out = {{"audience", payload.audience.name},
              {"audience_config", Json::parse(audience_to_json(payload.audience))},
              {"destinations", destinations},
              {"mode", std::string(sync_mode_name(payload.mode))},
              {"dry_run", payload.dry_run},
              {"batch_size", payload.batch_size},
              {"parallelism", payload.parallelism},
              {"metadata", payload.metadata}};
  return out.dump();
}

Result<JobPayload> decode_payload(std::string_view json_text) {
  Json in = Json::parse(json_text, nullptr, false);
  if (in.is_discarded() || !in.is_object()) return invalid_argument("job payload is not a JSON object");
  JobPayload payload;
  try {
    std::string audience = in.at("audience").get<std::string>();
    ACT_ASSIGN_OR_RETURN(payload.audience, audience_from_json(audience, in.at("audience_config").dump()));
    for (const auto& destination : in.at("destinations")) {
      std::string name = destination.at("name").get<std::string>();
      ACT_ASSIGN_OR_RETURN(auto config, destination_from_json(name, destination.at("config").dump()));
      payload.destinations.push_back(std::move(config));
    }
    auto mode = parse_sync_mode(in.at("mode").get<std::string>());
    if (!mode) return invalid_argument("job payload has an unknown sync mode");
    payload.mode = *mode;
    payload.dry_run = in.value("dry_run", false);
    payload.batch_size = in.value("batch_size", std::size_t{0});
    payload.parallelism = in.value("parallelism", 0);
    if (auto metadata = in.find("metadata"); metadata != in.end() && metadata->is_object()) {
      for (const auto& [key, value] : metadata->items()) {
        if (value.is_string()) payload.metadata[key] = value.get<std::string>();
      }
    }
  } catch (const Json::exception& error) {
    return invalid_argument(std::string("job payload is malformed: ") + error.what());
  }
  return payload;
}

JobProgress decode_job_progress(std::int64_t job_id, std::string_view json_text, std::string* status) {
  JobProgress progress;
  progress.job_id = job_id;
  Json in = Json::parse(json_text, nullptr, false);
  if (in.is_discarded() || !in.is_object()) return progress;
  if (status) *status = in.value("status", std::string());
  auto destinations = in.find("destinations");
  if (destinations == in.end() || !destinations->is_object()) return progress;
  for (const auto& [name, value] : destinations->items()) {
    if (!value.is_object()) continue;
    DestinationProgress destination;
    destination.job_id = job_id;
    destination.destination = name;
    std::string state = value.value("state", std::string("pending"));
    for (int i = 0; i <= static_cast<int>(RunState::kCancelled); ++i) {
      if (run_state_name(static_cast<RunState>(i)) == state) destination.state = static_cast<RunState>(i);
    }
    destination.dry_run = value.value("dry_run", false);
    if (auto counters = value.find("counters"); counters != value.end()) {
      auto parsed = DestinationCounters::from_json(counters->dump());
      if (parsed.is_ok()) destination.counters = std::move(*parsed);
    }
    if (value.contains("percent")) destination.percent = value["percent"].get<double>();
    destination.rows_per_second = value.value("rows_per_second", 0.0);
    if (value.contains("seconds_remaining"))
      destination.seconds_remaining = value["seconds_remaining"].get<double>();
    destination.error = value.value("error", std::string());
    destination.error_code = value.value("error_code", std::string());
    destination.circuit = value.value("circuit", std::string());
    destination.waiting = value.value("waiting", std::string());
    progress.destinations.push_back(std::move(destination));
  }
  return progress;
}

}  // namespace activation::engine
