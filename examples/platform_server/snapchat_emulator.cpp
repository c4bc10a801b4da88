// The emulator of Snapchat's Marketing API audience segments under /snapchat/v1: segments of an ad
// account, and adds and removes of hashed identifiers with Snapchat's schema rules (one schema
// per entry, each EMAIL_SHA256, PHONE_SHA256 or MOBILE_AD_ID_SHA256, and 100,000 identifiers per
// request). Errors use Snapchat's envelope {"request_status": "ERROR", "error_code", ...}. Bearer
// tokens must come from the OAuth emulator's /oauth2/token; a rejected one is HTTP 401 with a
// plain-text body, as Snapchat sends it.
#include <algorithm>

#include "emulator_base.hpp"
#include "social_emulators.hpp"

namespace platform_server {
namespace {

constexpr std::size_t kMaxIdentifiers = 100'000;
const std::set<std::string> kSchemas = {"EMAIL_SHA256", "PHONE_SHA256", "MOBILE_AD_ID_SHA256"};

std::string segment_id_of(std::size_t index) {
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "5e6f0000-0000-4000-8000-%012zu", index + 1);
  return buffer;
}

}  // namespace

SnapchatEmulator::SnapchatEmulator(ServerCore& core, OAuthEmulator& oauth, const SocialOptions& options)
    : EmulatorBase(core), oauth_(oauth), options_(options) {}

Reply SnapchatEmulator::server_error(int status) {
  return error(status, "E1000", "Internal server error");
}

Reply SnapchatEmulator::error(int status, const std::string& code, const std::string& message) {
  count_error(code);
  Reply reply;
  reply.status = status;
  reply.body = {{"request_status", "ERROR"},
                {"request_id", "req-" + std::to_string(++request_counter_)},
                {"debug_message", message},
                {"display_message", message},
                {"error_code", code}};
  return reply;
}

std::optional<Reply> SnapchatEmulator::authenticate(const httplib::Request& request) {
  if (oauth_.check_access_token(request.get_header_value("Authorization")) == TokenCheck::kValid) {
    return std::nullopt;
  }
  count_error("401");
  Reply reply;
  reply.status = 401;
  reply.text = "unauthorized";
  reply.content_type = "text/plain";
  return reply;
}

void SnapchatEmulator::register_routes(httplib::Server& server) {
  const std::string base = "/snapchat/v1";
  route(server, "GET", base + R"(/adaccounts/([A-Za-z0-9-]+)/segments)", "segments_list",
        [this](const httplib::Request& request, const std::string&) {
          if (auto failure = authenticate(request)) return *failure;
          std::string account = request.matches[1];
          if (!core_.admit_request("snapchat:" + account).allowed)
            return error(429, "E1005", "Too many requests");
          std::lock_guard<std::mutex> lock(mutex_);
          Json segments = Json::array();
          for (const auto& id : order_) {
            const Segment& segment = segments_.at(id);
            if (segment.ad_account_id == account) {
              segments.push_back({{"sub_request_status", "SUCCESS"}, {"segment", segment_json(segment)}});
            }
          }
          Reply reply;
          reply.body = {{"request_status", "SUCCESS"}, {"request_id", "list"}, {"segments", segments}};
          return reply;
        });

  route(server, "POST", base + R"(/adaccounts/([A-Za-z0-9-]+)/segments)", "segments_create",
        [this](const httplib::Request& request, const std::string& body) {
          if (auto failure = authenticate(request)) return *failure;
          std::string account = request.matches[1];
          Json parsed = Json::parse(body, nullptr, false);
          const Json list = parsed.is_object() ? parsed.value("segments", Json()) : Json();
          if (!list.is_array() || list.size() != 1 || !list[0].is_object()) {
            return error(400, "E1001", "segments: expected a list of one segment");
          }
          const Json& wanted = list[0];
          std::string name = wanted.value("name", std::string());
          if (name.empty() || name.size() > 375)
            return error(400, "E1001", "name: 1 to 375 characters are required");
          if (wanted.value("source_type", std::string()) != "FIRST_PARTY") {
            return error(400, "E1001", "source_type: must be FIRST_PARTY for a customer list");
          }
          if (!core_.admit_request("snapchat:" + account).allowed)
            return error(429, "E1005", "Too many requests");
          std::lock_guard<std::mutex> lock(mutex_);
          Segment segment;
          segment.id = segment_id_of(order_.size());
          segment.ad_account_id = account;
          segment.name = name;
          segment.description = wanted.value("description", std::string());
          segment.retention_in_days = wanted.value("retention_in_days", 9999);
          segments_[segment.id] = segment;
          order_.push_back(segment.id);
          Reply reply;
          reply.body = {
              {"request_status", "SUCCESS"},
              {"request_id", "create"},
              {"segments",
               Json::array({{{"sub_request_status", "SUCCESS"}, {"segment", segment_json(segment)}}})}};
          return reply;
        });

  route(server, "GET", base + R"(/segments/([A-Za-z0-9-]+))", "segment_get",
        [this](const httplib::Request& request, const std::string&) {
          if (auto failure = authenticate(request)) return *failure;
          std::lock_guard<std::mutex> lock(mutex_);
          auto found = segments_.find(request.matches[1]);
          if (found == segments_.end()) return error(404, "E1004", "Segment not found");
          Reply reply;
          reply.body = {
              {"request_status", "SUCCESS"},
              {"segments",
               Json::array({{{"sub_request_status", "SUCCESS"}, {"segment", segment_json(found->second)}}})}};
          return reply;
        });

  for (const char* method : {"POST", "DELETE"}) {
    bool remove = std::string(method) == "DELETE";
    route(server, method, base + R"(/segments/([A-Za-z0-9-]+)/users)", remove ? "users_remove" : "users_add",
          [this, remove](const httplib::Request& request, const std::string& body) {
            if (auto failure = authenticate(request)) return *failure;
            return users(request.matches[1], body, remove);
          });
  }
}

Reply SnapchatEmulator::users(const std::string& id, const std::string& body, bool remove) {
  std::string account;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = segments_.find(id);
    if (found == segments_.end()) return error(404, "E1004", "Segment not found");
    account = found->second.ad_account_id;
  }
  if (!core_.admit_request("snapchat:" + account).allowed) return error(429, "E1005", "Too many requests");

  Json parsed = Json::parse(body, nullptr, false);
  const Json entries = parsed.is_object() ? parsed.value("users", Json()) : Json();
  if (!entries.is_array() || entries.empty()) return error(400, "E1001", "users: expected a non-empty list");

  // The whole request is checked first: Snapchat fails all of its identifiers for one bad one.
  std::vector<std::pair<std::string, std::string>> identifiers;
  for (std::size_t e = 0; e < entries.size(); ++e) {
    const Json& entry = entries[e];
    const Json schema = entry.is_object() ? entry.value("schema", Json()) : Json();
    if (!schema.is_array() || schema.size() != 1 || !schema[0].is_string() ||
        kSchemas.count(schema[0].get<std::string>()) == 0) {
      return error(400, "E1001",
                   "users[" + std::to_string(e) +
                       "].schema: exactly one of EMAIL_SHA256, PHONE_SHA256 or MOBILE_AD_ID_SHA256 "
                       "is allowed per entry");
    }
    std::string type = schema[0].get<std::string>();
    const Json data = entry.value("data", Json());
    if (!data.is_array())
      return error(400, "E1001", "users[" + std::to_string(e) + "].data: expected a list");
    for (std::size_t r = 0; r < data.size(); ++r) {
      const Json& row = data[r];
      if (!row.is_array() || row.size() != 1 || !row[0].is_string()) {
        return error(400, "E1001",
                     "users[" + std::to_string(e) + "].data[" + std::to_string(r) +
                         "]: each row holds one value for the entry's one schema");
      }
      std::string value = row[0].get<std::string>();
      if (!is_lower_hex(value, 64)) {
        return error(400, "E2002",
                     "users[" + std::to_string(e) + "].data[" + std::to_string(r) + "]: " + type +
                         " must be a SHA-256 hash of 64 lowercase hexadecimal characters");
      }
      identifiers.emplace_back(type, value);
    }
  }
  if (identifiers.size() > kMaxIdentifiers) {
    return error(400, "E1001",
                 "at most 100000 identifiers per request, got " + std::to_string(identifiers.size()));
  }

  std::lock_guard<std::mutex> lock(mutex_);
  Segment& segment = segments_.at(id);
  ++segment.requests;
  std::int64_t changed = 0;
  for (const auto& [type, value] : identifiers) {
    if (remove) {
      if (segment.identifiers[type].erase(value) == 0) {
        ++segment.unmatched_removes;
      } else {
        ++segment.removed;
        ++changed;
      }
    } else {
      segment.identifiers[type].insert(value);
      ++segment.uploaded;
      ++changed;
    }
  }
  Reply reply;
  reply.body = {{"request_status", "SUCCESS"},
                {"request_id", "users-" + std::to_string(++request_counter_)},
                {"users", Json::array({{{"sub_request_status", "SUCCESS"},
                                        {"user", {{"number_uploaded_users", identifiers.size()}}}}})}};
  return reply;
}

Json SnapchatEmulator::segment_json(const Segment& segment) const {
  std::size_t users = 0;
  for (const auto& [type, values] : segment.identifiers) users += values.size();
  return Json{{"id", segment.id},
              {"name", segment.name},
              {"description", segment.description},
              {"ad_account_id", segment.ad_account_id},
              {"source_type", "FIRST_PARTY"},
              {"retention_in_days", segment.retention_in_days},
              {"status", "ACTIVE"},
              {"upload_status", users == 0 ? "NO_UPLOAD" : "COMPLETE"},
              {"targetable_status", users >= 1000 ? "READY" : "TOO_FEW_USERS"},
              {"approximate_number_users", users}};
}

Json SnapchatEmulator::inspect_audiences() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Json list = Json::array();
  for (const auto& id : order_) {
    const Segment& segment = segments_.at(id);
    std::size_t users = 0;
    for (const auto& [type, values] : segment.identifiers) users += values.size();
    list.push_back({{"id", id},
                    {"name", segment.name},
                    {"ad_account_id", segment.ad_account_id},
                    {"identifier_count", users}});
  }
  return Json{{"audiences", list}};
}

Json SnapchatEmulator::inspect_audience(const std::string& id, bool include_members) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = segments_.find(id);
  if (found == segments_.end()) return nullptr;
  const Segment& segment = found->second;
  std::size_t users = 0;
  for (const auto& [type, values] : segment.identifiers) users += values.size();
  Json out = {{"id", id},
              {"name", segment.name},
              {"ad_account_id", segment.ad_account_id},
              {"identifier_count", users},
              {"counters",
               {{"requests", segment.requests},
                {"uploaded", segment.uploaded},
                {"removed", segment.removed},
                {"unmatched_removes", segment.unmatched_removes}}}};
  if (include_members) {
    Json identifiers = Json::object();
    for (const auto& [type, values] : segment.identifiers) identifiers[type] = values;
    out["identifiers"] = identifiers;
  }
  return out;
}

void SnapchatEmulator::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  segments_.clear();
  order_.clear();
  reset_counts();
}

}  // namespace platform_server
