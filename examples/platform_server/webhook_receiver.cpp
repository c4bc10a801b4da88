// The webhook receiver under /webhook/<name>: it verifies the HMAC-SHA256 signature and the
// timestamp of each delivery, drops a delivery it received already, applies the adds and removes
// to the member set of <name>, and keeps every delivery for inspection.
#include <chrono>

#include "emulator_base.hpp"
#include "social_emulators.hpp"

namespace platform_server {
namespace {

bool constant_time_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char difference = 0;
  for (std::size_t i = 0; i < a.size(); ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i]);
  return difference == 0;
}

Reply failure(int status, const std::string& message) {
  Reply reply;
  reply.status = status;
  reply.body = {{"error", message}};
  return reply;
}

}  // namespace

WebhookReceiver::WebhookReceiver(ServerCore& core, const SocialOptions& options)
    : EmulatorBase(core), options_(options) {}

Reply WebhookReceiver::server_error(int status) {
  return failure(status, "the receiver failed; try again later");
}

void WebhookReceiver::register_routes(httplib::Server& server) {
  route(server, "POST", R"(/webhook/([A-Za-z0-9_.-]+))", "deliveries",
        [this](const httplib::Request& request, const std::string& body) {
          return receive(request.matches[1], request, body);
        });
}

Reply WebhookReceiver::receive(const std::string& name, const httplib::Request& request,
                               const std::string& body) {
  std::string timestamp = request.get_header_value("X-Activation-Timestamp");
  std::string signature = request.get_header_value("X-Activation-Signature");
  std::string delivery = request.get_header_value("X-Activation-Delivery");

  // Signature and timestamp first, as a real receiver does before it reads the body.
  if (!options_.webhook_secret.empty()) {
    std::string expected = "v1=" + hmac_sha256_hex(options_.webhook_secret, timestamp + "." + body);
    bool digits = !timestamp.empty() && timestamp.size() < 19 &&
                  std::all_of(timestamp.begin(), timestamp.end(), ::isdigit);
    std::int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    if (!digits || !constant_time_equal(signature, expected)) {
      std::lock_guard<std::mutex> lock(mutex_);
      ++endpoints_[name].bad_signatures;
      count_error("bad_signature");
      return failure(401, "the signature does not match the body and timestamp");
    }
    if (std::llabs(now - std::stoll(timestamp)) > options_.webhook_max_skew.count()) {
      count_error("stale_timestamp");
      return failure(401, "the timestamp is more than " + std::to_string(options_.webhook_max_skew.count()) +
                              " s away from the receiver's clock");
    }
  }
  if (!core_.admit_request("webhook:" + name).allowed) {
    count_error("429");
    Reply reply = failure(429, "too many deliveries; slow down");
    reply.headers.push_back({"Retry-After", "1"});
    return reply;
  }

  Json parsed = Json::parse(body, nullptr, false);
  if (!parsed.is_object() || !parsed.value("operations", Json()).is_array()) {
    count_error("400");
    return failure(400, "the body must be a JSON object with an operations array");
  }

  std::lock_guard<std::mutex> lock(mutex_);
  Endpoint& endpoint = endpoints_[name];
  ++endpoint.deliveries_received;
  if (delivery.empty()) delivery = parsed.value("delivery_id", std::string());
  bool duplicate = !delivery.empty() && !endpoint.deliveries.insert(delivery).second;
  Json rejected = Json::array();
  const Json& operations = parsed["operations"];
  for (std::size_t i = 0; i < operations.size(); ++i) {
    const Json& operation = operations[i];
    std::string type = operation.value("type", std::string());
    std::string key = operation.value("member_key", std::string());
    Json identifiers = operation.value("identifiers", Json::object());
    if ((type != "add" && type != "remove") || key.empty()) {
      rejected.push_back(
          {{"index", i}, {"reason", "an operation needs type add or remove and a member_key"}});
      continue;
    }
    if (type == "add" && !options_.webhook_require_field.empty() &&
        !identifiers.contains(options_.webhook_require_field)) {
      rejected.push_back(
          {{"index", i}, {"reason", "the receiver requires a " + options_.webhook_require_field}});
      continue;
    }
    if (duplicate) continue;
    if (type == "add") {
      endpoint.members[key] = identifiers;
      ++endpoint.adds;
    } else {
      if (endpoint.members.erase(key) == 0) ++endpoint.unmatched_removes;
      ++endpoint.removes;
    }
  }
  if (duplicate) {
    ++endpoint.duplicate_deliveries;
  } else {
    endpoint.rejected += static_cast<std::int64_t>(rejected.size());
  }
  endpoint.log.push_back({{"delivery_id", delivery},
                          {"batch", parsed.value("batch", 0)},
                          {"mode", parsed.value("mode", std::string())},
                          {"operations", operations.size()},
                          {"rejected", rejected.size()},
                          {"duplicate", duplicate},
                          {"signature_verified", !options_.webhook_secret.empty()}});
  Reply reply;
  reply.body = {{"received", operations.size()}, {"rejected", rejected}, {"duplicate", duplicate}};
  return reply;
}

Json WebhookReceiver::inspect_audiences() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Json list = Json::array();
  for (const auto& [name, endpoint] : endpoints_) {
    list.push_back({{"id", name}, {"name", name}, {"member_count", endpoint.members.size()}});
  }
  return Json{{"audiences", list}};
}

Json WebhookReceiver::inspect_audience(const std::string& id, bool include_members) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = endpoints_.find(id);
  if (found == endpoints_.end()) return nullptr;
  const Endpoint& endpoint = found->second;
  Json out = {{"id", id},
              {"name", id},
              {"member_count", endpoint.members.size()},
              {"deliveries", endpoint.log},
              {"counters",
               {{"deliveries", endpoint.deliveries_received},
                {"duplicate_deliveries", endpoint.duplicate_deliveries},
                {"bad_signatures", endpoint.bad_signatures},
                {"adds", endpoint.adds},
                {"removes", endpoint.removes},
                {"unmatched_removes", endpoint.unmatched_removes},
                {"rejected", endpoint.rejected}}}};
  if (include_members) {
    Json members = Json::object();
    for (const auto& [key, identifiers] : endpoint.members) members[key] = identifiers;
    out["members"] = members;
  }
  return out;
}

void WebhookReceiver::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  endpoints_.clear();
  reset_counts();
}

}  // namespace platform_server
