// The emulator of LinkedIn's DMP segment API under /linkedin/rest: segment search, create and
// read, and BATCH_CREATE of users with one status per element. It requires the LinkedIn-Version
// and X-Restli-Protocol-Version headers, refuses users for a while after a segment is created,
// and throttles per ad account with HTTP 429. docs/platform-server.md lists the rules.
#include <algorithm>
#include <chrono>
#include <set>

#include "emulator_base.hpp"
#include "social_emulators.hpp"

namespace platform_server {
namespace {

constexpr std::size_t kMaxElements = 5'000;
constexpr std::int64_t kFirstSegmentId = 7100001;
const std::set<std::string> kIdTypes = {"SHA256_EMAIL", "SHA512_EMAIL", "GOOGLE_AID", "APPLE_IDFA"};

Json error_body(int status, int service_code, const std::string& code, const std::string& message) {
  return Json{{"status", status}, {"serviceErrorCode", service_code}, {"code", code}, {"message", message}};
}

Reply error(int status, int service_code, const std::string& code, const std::string& message) {
  Reply reply;
  reply.status = status;
  reply.body = error_body(status, service_code, code, message);
  return reply;
}

std::string url_decode_component(const std::string& text) {
  std::map<std::string, std::string> fields;
  parse_form("v=" + text, fields);
  return fields["v"];
}

}  // namespace

LinkedInEmulator::LinkedInEmulator(ServerCore& core, const SocialOptions& options)
    : EmulatorBase(core), options_(options) {}

Reply LinkedInEmulator::server_error(int status) {
  return error(status, 0, "INTERNAL_SERVER_ERROR", "Internal Server Error");
}

std::optional<Reply> LinkedInEmulator::check_request(const httplib::Request& request, bool batch_create) {
  std::string version = request.get_header_value("LinkedIn-Version");
  if (version.empty()) {
    count_error("VERSION_MISSING");
    return error(400, 0, "VERSION_MISSING",
                 "A version must be present. Please specify a version by adding the "
                 "LinkedIn-Version header.");
  }
  bool digits = version.size() == 6 && std::all_of(version.begin(), version.end(), ::isdigit);
  if (!digits) {
    count_error("INVALID_VERSION");
    return error(400, 0, "INVALID_VERSION", "LinkedIn-Version must be YYYYMM, got '" + version + "'");
  }
  if (options_.linkedin_min_version > 0 && std::stoi(version) < options_.linkedin_min_version) {
    count_error("NONEXISTENT_VERSION");
    return error(426, 0, "NONEXISTENT_VERSION",
                 "Requested version " + version + " is not active; the oldest active version is " +
                     std::to_string(options_.linkedin_min_version));
  }
  if (request.get_header_value("X-Restli-Protocol-Version") != "2.0.0") {
    count_error("RESTLI_PROTOCOL");
    return error(400, 0, "RESTLI_PROTOCOL", "X-Restli-Protocol-Version: 2.0.0 is required");
  }
  if (batch_create && request.get_header_value("X-RestLi-Method") != "BATCH_CREATE") {
    count_error("RESTLI_METHOD");
    return error(400, 0, "RESTLI_METHOD", "X-RestLi-Method: BATCH_CREATE is required for batch writes");
  }

  std::string authorization = request.get_header_value("Authorization");
  std::string token = authorization.rfind("Bearer ", 0) == 0 ? authorization.substr(7) : std::string();
  std::string problem = check_token(token);
  if (problem == "expired") {
    count_error("65600");
    return error(401, 65600, "INVALID_ACCESS_TOKEN", "The token used in the request has expired");
  }
  if (!problem.empty()) {
    count_error("65600");
    return error(401, 65600, "INVALID_ACCESS_TOKEN", "Invalid access token");
  }
  return std::nullopt;
}

std::optional<Reply> LinkedInEmulator::admit(const std::string& account) {
  WindowCheck check = core_.admit_request("linkedin:" + account);
  if (check.allowed) return std::nullopt;
  count_error("429");
  Reply reply = error(429, 0, "TOO_MANY_REQUESTS",
                      "Resource level throttle limit for calls to this resource is reached");
  reply.headers.push_back(
      {"Retry-After", std::to_string(std::max<std::int64_t>(1, (check.regain.count() + 999) / 1000))});
  return reply;
}

void LinkedInEmulator::register_routes(httplib::Server& server) {
  const std::string base = "/linkedin/rest/dmpSegments";
  route(server, "GET", base, "dmpSegments_search",
        [this](const httplib::Request& request, const std::string&) {
          if (auto failure = check_request(request, false)) return *failure;
          if (request.get_param_value("q") != "account") {
            return error(400, 0, "ILLEGAL_ARGUMENT", "Only the finder q=account is supported");
          }
          std::string account = url_decode_component(request.get_param_value("account"));
          if (auto throttled = admit(account)) return *throttled;
          std::size_t start = request.has_param("start") ? std::stoul(request.get_param_value("start")) : 0;
          std::size_t count = request.has_param("count") ? std::stoul(request.get_param_value("count")) : 10;
          std::lock_guard<std::mutex> lock(mutex_);
          Json elements = Json::array();
          std::size_t total = 0;
          for (const auto& id : order_) {
            const Segment& segment = segments_.at(id);
            if (segment.account != account) continue;
            if (total >= start && elements.size() < count) elements.push_back(segment_json(segment));
            ++total;
          }
          Reply reply;
          reply.body = {{"elements", elements},
                        {"paging", {{"start", start}, {"count", count}, {"total", total}}}};
          return reply;
        });

  route(server, "POST", base, "dmpSegments_create",
        [this](const httplib::Request& request, const std::string& body) {
          if (auto failure = check_request(request, false)) return *failure;
          Json parsed = Json::parse(body, nullptr, false);
          if (!parsed.is_object()) return error(400, 0, "ILLEGAL_ARGUMENT", "The body is not a JSON object");
          std::string account = parsed.value("account", std::string());
          if (account.rfind("urn:li:sponsoredAccount:", 0) != 0) {
            return error(422, 0, "FIELD_VALUE_INVALID", "/account must be a urn:li:sponsoredAccount URN");
          }
          for (const char* field : {"name", "sourcePlatform", "type"}) {
            if (!parsed.value(field, Json()).is_string() || parsed[field].get<std::string>().empty()) {
              return error(422, 0, "FIELD_MISSING", std::string("/") + field + " is required");
            }
          }
          if (auto throttled = admit(account)) return *throttled;
          std::lock_guard<std::mutex> lock(mutex_);
          Segment segment;
          segment.id = std::to_string(kFirstSegmentId + static_cast<std::int64_t>(order_.size()));
          segment.account = account;
          segment.name = parsed["name"].get<std::string>();
          segment.source_platform = parsed["sourcePlatform"].get<std::string>();
          segment.created = std::chrono::steady_clock::now();
          segments_[segment.id] = segment;
          order_.push_back(segment.id);
          Reply reply;
          reply.status = 201;
          reply.body = nullptr;
          reply.headers = {{"x-restli-id", segment.id}, {"Location", "/dmpSegments/" + segment.id}};
          return reply;
        });

  route(server, "GET", base + R"(/(\d+))", "dmpSegments_get",
        [this](const httplib::Request& request, const std::string&) {
          if (auto failure = check_request(request, false)) return *failure;
          std::lock_guard<std::mutex> lock(mutex_);
          auto found = segments_.find(request.matches[1]);
          if (found == segments_.end())
            return error(404, 0, "NOT_FOUND", "No DMP segment " + std::string(request.matches[1]));
          Reply reply;
          reply.body = segment_json(found->second);
          return reply;
        });

  route(server, "POST", base + R"(/(\d+)/users)", "users",
        [this](const httplib::Request& request, const std::string& body) { return upload(request, body); });
}

Reply LinkedInEmulator::upload(const httplib::Request& request, const std::string& body) {
  if (auto failure = check_request(request, true)) return *failure;
  std::string id = request.matches[1];
  std::string account;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = segments_.find(id);
    if (found == segments_.end()) return error(404, 0, "NOT_FOUND", "No DMP segment " + id);
    account = found->second.account;
    if (std::chrono::steady_clock::now() - found->second.created < options_.linkedin_ready_delay) {
      ++found->second.not_ready;
      count_error("SEGMENT_NOT_READY");
      return error(409, 0, "SEGMENT_NOT_READY",
                   "DMP segment " + id + " is still being created; retry in a few seconds");
    }
  }
  if (auto throttled = admit(account)) return *throttled;

  Json parsed = Json::parse(body, nullptr, false);
  if (!parsed.is_object() || !parsed.value("elements", Json()).is_array()) {
    return error(400, 0, "ILLEGAL_ARGUMENT", "The body must be an object with an elements array");
  }
  const Json& elements = parsed["elements"];
  if (elements.size() > kMaxElements) {
    count_error("TOO_MANY_ELEMENTS");
    return error(400, 0, "ILLEGAL_ARGUMENT",
                 "A batch may contain at most 5000 elements, got " + std::to_string(elements.size()));
  }

  std::lock_guard<std::mutex> lock(mutex_);
  Segment& segment = segments_.at(id);
  Json statuses = Json::array();
  ++segment.batches;
  for (const Json& element : elements) {
    std::string problem;
    std::string key;
    Json member = Json::object();
    std::string action = element.is_object() ? element.value("action", std::string()) : std::string();
    if (action != "ADD" && action != "REMOVE") problem = "/action must be ADD or REMOVE";
    std::vector<std::string> ids;
    if (problem.empty()) {
      for (const Json& user_id : element.value("userIds", Json::array())) {
        std::string type = user_id.value("idType", std::string());
        std::string value = user_id.value("idValue", std::string());
        if (kIdTypes.count(type) == 0) {
          problem = "/userIds: unknown idType '" + type + "'";
        } else if (type == "SHA256_EMAIL" && !is_lower_hex(value, 64)) {
          problem = "/userIds: SHA256_EMAIL must be 64 lowercase hexadecimal characters";
        } else if (type == "SHA512_EMAIL" && !is_lower_hex(value, 128)) {
          problem = "/userIds: SHA512_EMAIL must be 128 lowercase hexadecimal characters";
        } else if (value.empty()) {
          problem = "/userIds: idValue must not be empty";
        }
        if (!problem.empty()) break;
        ids.push_back(type + ":" + value);
      }
    }
    std::string first = element.is_object() ? element.value("firstName", std::string()) : std::string();
    std::string last = element.is_object() ? element.value("lastName", std::string()) : std::string();
    if (problem.empty() && ids.empty() && (first.empty() || last.empty())) {
      problem = "an element needs userIds, or both firstName and lastName";
    }
    if (problem.empty() && (first.size() > 35 * 4 || last.size() > 35 * 4))
      problem = "names are limited to 35 characters";
    if (!problem.empty()) {
      ++segment.rejected_elements;
      statuses.push_back({{"status", 400}, {"error", {{"status", 400}, {"message", problem}}}});
      continue;
    }

    std::sort(ids.begin(), ids.end());
    for (const auto& part : ids) key += (key.empty() ? "" : "|") + part;
    if (ids.empty()) key = "name:" + first + "|" + last + "|" + element.value("country", std::string());
    member["userIds"] = ids;
    if (!first.empty()) member["firstName"] = first;
    if (!last.empty()) member["lastName"] = last;
    if (element.contains("country")) member["country"] = element["country"];
    if (action == "ADD") {
      auto [it, inserted] = segment.members.emplace(key, member);
      if (!inserted) ++segment.duplicate_adds;
      ++segment.adds;
    } else {
      if (segment.members.erase(key) == 0) ++segment.unmatched_removes;
      ++segment.removes;
    }
    // LinkedIn returns 201 for an ADD of a present member and a REMOVE of an absent one.
    statuses.push_back({{"status", 201}});
  }
  Reply reply;
  reply.body = {{"elements", statuses}};
  return reply;
}

Json LinkedInEmulator::segment_json(const Segment& segment) const {
  bool ready = std::chrono::steady_clock::now() - segment.created >= options_.linkedin_ready_delay;
  return Json{
      {"id", std::stoll(segment.id)},
      {"name", segment.name},
      {"account", segment.account},
      {"type", "USER"},
      {"sourcePlatform", segment.source_platform},
      {"destinations",
       Json::array({{{"destination", "LINKEDIN"},
                     {"status", ready ? (segment.members.empty() ? "BUILDING" : "READY") : "BUILDING"},
                     {"audienceSize", segment.members.size()},
                     {"matchedCount", segment.members.size()}}})}};
}

Json LinkedInEmulator::inspect_audiences() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Json list = Json::array();
  for (const auto& id : order_) {
    const Segment& segment = segments_.at(id);
    list.push_back({{"id", id},
                    {"name", segment.name},
                    {"account", segment.account},
                    {"member_count", segment.members.size()}});
  }
  return Json{{"audiences", list}};
}

Json LinkedInEmulator::inspect_audience(const std::string& id, bool include_members) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = segments_.find(id);
  if (found == segments_.end()) return nullptr;
  const Segment& segment = found->second;
  Json out = {{"id", id},
              {"name", segment.name},
              {"account", segment.account},
              {"member_count", segment.members.size()},
              {"counters",
               {{"batches", segment.batches},
                {"adds", segment.adds},
                {"removes", segment.removes},
                {"duplicate_adds", segment.duplicate_adds},
                {"unmatched_removes", segment.unmatched_removes},
                {"rejected_elements", segment.rejected_elements},
                {"not_ready", segment.not_ready}}}};
  if (include_members) {
    Json members = Json::array();
    for (const auto& [key, member] : segment.members) members.push_back(member);
    out["members"] = members;
  }
  return out;
}

void LinkedInEmulator::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  segments_.clear();
  order_.clear();
  reset_counts();
}

}  // namespace platform_server
