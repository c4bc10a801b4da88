// The emulator of TikTok's Business API (v1.3) segment endpoints under /tiktok/open_api/v1.3.
// Every response is HTTP 200 with TikTok's envelope; errors are a non-zero `code` (40100 throttled,
// 40102 expired token, 40104 no token, 40105 invalid token, 40002 bad parameters, 40007 unknown
// audience, 40061 too many rows, 40062 an identifier that is not a hash).
#include <algorithm>
#include <atomic>

#include "emulator_base.hpp"
#include "social_emulators.hpp"

namespace platform_server {
namespace {

constexpr std::int64_t kFirstAudienceId = 7300000000000001;
const std::set<std::string> kSchemas = {"EMAIL_SHA256", "PHONE_SHA256", "IDFA_SHA256",
                                        "AAID_SHA256",  "IDFA_MD5",     "AAID_MD5"};

std::size_t hash_length(const std::string& schema) {
  return schema.size() > 4 && schema.compare(schema.size() - 4, 4, "_MD5") == 0 ? 32 : 64;
}

}  // namespace

TikTokEmulator::TikTokEmulator(ServerCore& core, const SocialOptions& options)
    : EmulatorBase(core), options_(options) {}

Reply TikTokEmulator::server_error(int status) {
  Reply reply;
  reply.status = status;
  reply.body = {
      {"code", 50000}, {"message", "System error"}, {"request_id", "fault"}, {"data", Json::object()}};
  return reply;
}

Reply TikTokEmulator::envelope(std::int64_t code, const std::string& message, Json data) {
  if (code != 0) count_error(std::to_string(code));
  std::int64_t number = ++request_counter_;
  Reply reply;
  reply.body = {{"code", code},
                {"message", message},
                {"request_id", "2026" + std::to_string(1000000 + number)},
                {"data", std::move(data)}};
  return reply;
}

std::optional<Reply> TikTokEmulator::authenticate(const httplib::Request& request) {
  std::string problem = check_token(request.get_header_value("Access-Token"));
  if (problem == "missing") return envelope(40104, "Access token is empty.");
  if (problem == "unknown") return envelope(40105, "Access token is incorrect or has been revoked.");
  if (problem == "expired") return envelope(40102, "Access token has expired.");
  return std::nullopt;
}

void TikTokEmulator::register_routes(httplib::Server& server) {
  const std::string base = "/tiktok/open_api/v1.3";
  route(server, "GET", base + "/dmp/custom_audience/list/", "custom_audience_list",
        [this](const httplib::Request& request, const std::string&) {
          if (auto failure = authenticate(request)) return *failure;
          std::string advertiser = request.get_param_value("advertiser_id");
          if (advertiser.empty()) return envelope(40002, "advertiser_id: Missing data for required field.");
          if (!core_.admit_request("tiktok:" + advertiser).allowed) {
            return envelope(40100, "Too many requests. Please retry in some time.");
          }
          std::size_t page = request.has_param("page") ? std::stoul(request.get_param_value("page")) : 1;
          std::size_t size =
              request.has_param("page_size") ? std::stoul(request.get_param_value("page_size")) : 10;
          if (page < 1 || size < 1 || size > 100)
            return envelope(40002, "page and page_size are out of range");
          std::lock_guard<std::mutex> lock(mutex_);
          std::vector<const Audience*> mine;
          for (const auto& id : order_) {
            if (audiences_.at(id).advertiser_id == advertiser) mine.push_back(&audiences_.at(id));
          }
          Json list = Json::array();
          for (std::size_t i = (page - 1) * size; i < mine.size() && i < page * size; ++i) {
            list.push_back({{"audience_id", mine[i]->id},
                            {"name", mine[i]->name},
                            {"cover_num", mine[i]->members.size()},
                            {"is_valid", true}});
          }
          std::size_t pages = std::max<std::size_t>(1, (mine.size() + size - 1) / size);
          Json data = {
              {"list", list},
              {"page_info",
               {{"page", page}, {"page_size", size}, {"total_number", mine.size()}, {"total_page", pages}}}};
          return envelope(0, "OK", std::move(data));
        });

  route(server, "POST", base + "/segment/audience/", "segment_audience",
        [this](const httplib::Request& request, const std::string& body) {
          if (auto failure = authenticate(request)) return *failure;
          Json parsed = Json::parse(body, nullptr, false);
          if (!parsed.is_object()) return envelope(40002, "The request body is not a JSON object.");
          std::string advertiser = parsed.value("advertiser_id", std::string());
          std::string name = parsed.value("custom_audience_name", std::string());
          if (advertiser.empty()) return envelope(40002, "advertiser_id: Missing data for required field.");
          if (parsed.value("action", std::string()) != "create")
            return envelope(40002, "action: must be create");
          if (name.empty() || name.size() > 128) {
            return envelope(40002, "custom_audience_name: Length must be between 1 and 128.");
          }
          if (!core_.admit_request("tiktok:" + advertiser).allowed) {
            return envelope(40100, "Too many requests. Please retry in some time.");
          }
          std::string id;
          {
            std::lock_guard<std::mutex> lock(mutex_);
            Audience audience;
            audience.id = std::to_string(kFirstAudienceId + static_cast<std::int64_t>(order_.size()));
            audience.advertiser_id = advertiser;
            audience.name = name;
            id = audience.id;
            audiences_[id] = audience;
            order_.push_back(id);
          }
          return envelope(0, "OK", {{"audience_id", id}});
        });

  route(server, "POST", base + "/segment/mapping/", "segment_mapping",
        [this](const httplib::Request& request, const std::string& body) {
          if (auto failure = authenticate(request)) return *failure;
          return mapping(body);
        });
}

Reply TikTokEmulator::mapping(const std::string& body) {
  Json parsed = Json::parse(body, nullptr, false);
  if (!parsed.is_object()) return envelope(40002, "The request body is not a JSON object.");
  const Json advertisers = parsed.value("advertiser_ids", Json());
  if (!advertisers.is_array() || advertisers.size() != 1 || !advertisers[0].is_string()) {
    return envelope(40002, "advertiser_ids: expected a list of one advertiser id.");
  }
  std::string advertiser = advertisers[0].get<std::string>();
  std::string action = parsed.value("action", std::string());
  if (action != "add" && action != "delete") return envelope(40002, "action: must be add or delete.");
  const Json schema = parsed.value("id_schema", Json());
  if (!schema.is_array() || schema.empty()) return envelope(40002, "id_schema: expected a non-empty list.");
  std::vector<std::string> types;
  for (const Json& item : schema) {
    if (!item.is_string() || kSchemas.count(item.get<std::string>()) == 0) {
      return envelope(40002, "id_schema: unknown id type " + item.dump() + ".");
    }
    if (std::find(types.begin(), types.end(), item.get<std::string>()) != types.end()) {
      return envelope(40002, "id_schema: " + item.get<std::string>() + " appears twice.");
    }
    types.push_back(item.get<std::string>());
  }
  const Json rows = parsed.value("batch_data", Json());
  if (!rows.is_array() || rows.empty()) return envelope(40002, "batch_data: expected a non-empty list.");
  if (rows.size() > options_.tiktok_max_rows) {
    return envelope(40061, "batch_data: at most " + std::to_string(options_.tiktok_max_rows) +
                               " rows per request, got " + std::to_string(rows.size()) + ".");
  }
  if (!core_.admit_request("tiktok:" + advertiser).allowed) {
    return envelope(40100, "Too many requests. Please retry in some time.");
  }

  // Every row is checked before any is applied: TikTok fails the whole request for one bad row.
  std::vector<std::pair<std::string, Json>> members;
  std::set<std::string> audience_ids;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const Json& row = rows[r];
    if (!row.is_array() || row.size() != types.size()) {
      return envelope(40002, "batch_data[" + std::to_string(r) + "]: expected " +
                                 std::to_string(types.size()) + " entries, one per id_schema position.");
    }
    std::string key;
    Json member = Json::object();
    for (std::size_t c = 0; c < types.size(); ++c) {
      const Json& cell = row[c];
      if (!cell.is_object())
        return envelope(40002, "batch_data[" + std::to_string(r) + "]: entries must be objects.");
      if (cell.empty()) continue;
      std::string value = cell.value("id", std::string());
      if (!is_lower_hex(value, hash_length(types[c]))) {
        return envelope(40062, "batch_data[" + std::to_string(r) + "][" + std::to_string(c) + "]: the " +
                                   types[c] + " value is not hashed.");
      }
      for (const Json& audience : cell.value("audience_ids", Json::array())) {
        audience_ids.insert(audience.is_string() ? audience.get<std::string>() : audience.dump());
      }
      key += (key.empty() ? "" : "|") + types[c] + ":" + value;
      member[types[c]] = value;
    }
    if (key.empty()) return envelope(40002, "batch_data[" + std::to_string(r) + "]: the row has no id.");
    members.emplace_back(key, member);
  }

  std::lock_guard<std::mutex> lock(mutex_);
  if (audience_ids.empty()) return envelope(40002, "audience_ids: missing in batch_data.");
  for (const std::string& id : audience_ids) {
    auto found = audiences_.find(id);
    if (found == audiences_.end() || found->second.advertiser_id != advertiser) {
      return envelope(40007, "Audience " + id + " does not exist.");
    }
  }
  for (const std::string& id : audience_ids) {
    Audience& audience = audiences_.at(id);
    ++audience.requests;
    for (const auto& [key, member] : members) {
      if (action == "add") {
        if (!audience.members.emplace(key, member).second) ++audience.duplicate_adds;
        ++audience.adds;
      } else {
        if (audience.members.erase(key) == 0) ++audience.unmatched_removes;
        ++audience.removes;
      }
    }
  }
  return envelope(0, "OK");
}

Json TikTokEmulator::inspect_audiences() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Json list = Json::array();
  for (const auto& id : order_) {
    const Audience& audience = audiences_.at(id);
    list.push_back({{"id", id},
                    {"name", audience.name},
                    {"advertiser_id", audience.advertiser_id},
                    {"member_count", audience.members.size()}});
  }
  return Json{{"audiences", list}};
}

Json TikTokEmulator::inspect_audience(const std::string& id, bool include_members) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = audiences_.find(id);
  if (found == audiences_.end()) return nullptr;
  const Audience& audience = found->second;
  Json out = {{"id", id},
              {"name", audience.name},
              {"advertiser_id", audience.advertiser_id},
              {"member_count", audience.members.size()},
              {"counters",
               {{"requests", audience.requests},
                {"adds", audience.adds},
                {"removes", audience.removes},
                {"duplicate_adds", audience.duplicate_adds},
                {"unmatched_removes", audience.unmatched_removes}}}};
  if (include_members) {
    Json members = Json::array();
    for (const auto& [key, member] : audience.members) members.push_back(member);
    out["members"] = members;
  }
  return out;
}

void TikTokEmulator::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  audiences_.clear();
  order_.clear();
  request_counter_ = 0;
  reset_counts();
}

}  // namespace platform_server
