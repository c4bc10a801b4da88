#include "google_emulator.hpp"

#include <algorithm>
#include <cctype>
#include <regex>
#include <thread>

namespace platform_server {

namespace {

bool is_sha256_hex(const Json& value) {
  if (!value.is_string()) return false;
  const std::string& text = value.get_ref<const std::string&>();
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool is_region_code(const Json& value) {
  if (!value.is_string()) return false;
  const std::string& text = value.get_ref<const std::string&>();
  return text.size() == 2 && std::isupper(static_cast<unsigned char>(text[0])) &&
         std::isupper(static_cast<unsigned char>(text[1]));
}

std::string text_of(const Json& object, const char* camel, const char* snake) {
  if (!object.is_object()) return {};
  for (const char* key : {camel, snake}) {
    auto it = object.find(key);
    if (it != object.end() && it->is_string()) return it->get<std::string>();
    if (it != object.end() && it->is_number_integer()) return it->dump();
  }
  return {};
}

const Json* field(const Json& object, const char* camel, const char* snake) {
  if (!object.is_object()) return nullptr;
  for (const char* key : {camel, snake}) {
    auto it = object.find(key);
    if (it != object.end()) return &*it;
  }
  return nullptr;
}

Json violation(const std::string& path, const std::string& reason, const std::string& description) {
  return Json{{"field", path}, {"reason", reason}, {"description", description}};
}

Json ads_error(const std::string& kind, const std::string& code, const std::string& message,
               std::optional<std::int64_t> index = std::nullopt) {
  Json error = {{"errorCode", {{kind, code}}}, {"message", message}};
  if (index) {
    error["location"] = {
        {"fieldPathElements", Json::array({{{"fieldName", "operations"}, {"index", *index}}})}};
  }
  return error;
}

Json ads_failure(const Json& errors) {
  return Json{{"@type", "type.googleapis.com/google.ads.googleads.v22.errors.GoogleAdsFailure"},
              {"errors", errors},
              {"requestId", "req-ads"}};
}

}  // namespace

GoogleEmulator::GoogleEmulator(ServerCore& core, OAuthEmulator& oauth, GoogleOptions options)
    : core_(core), oauth_(oauth), options_(options) {}

GoogleEmulator::Reply GoogleEmulator::error(int status, const std::string& code, const std::string& message,
                                            Json details) {
  Reply reply;
  reply.status = status;
  reply.body =
      Json{{"error", {{"code", status}, {"message", message}, {"status", code}, {"details", details}}}};
  return reply;
}

void GoogleEmulator::serve(const httplib::Request& request, httplib::Response& response,
                           const std::string& api, const std::function<Reply(const Json& body)>& handler) {
  core_.note_connection(request);
  FaultPlan plan = core_.draw_faults("google");
  if (plan.latency.count() > 0) std::this_thread::sleep_for(plan.latency);

  auto send = [&](const Reply& reply) {
    response.status = reply.status;
    if (reply.retry_seconds) response.set_header("Retry-After", std::to_string(*reply.retry_seconds));
    response.set_header("request-id", core_.next_trace_id());
    response.set_content(reply.body.dump(), "application/json; charset=UTF-8");
  };
  auto inject = [&]() {
    core_.count_fault("google", plan);
    if (plan.kind == FaultKind::kDrop) {
      core_.drop_connection(request);
      response.status = 500;
      response.set_content("", "text/plain");
    } else if (plan.kind == FaultKind::kHtml5xx) {
      send_html_error(response, plan.status);
    } else {
      send(plan.status == 503 ? error(503, "UNAVAILABLE", "The service is currently unavailable.")
                              : error(plan.status, "INTERNAL", "Internal error encountered."));
    }
  };
  if (plan.kind != FaultKind::kNone && !plan.after_apply) {
    inject();
    return;
  }

  Reply reply;
  TokenCheck token = oauth_.check_access_token(request.get_header_value("Authorization"));
  Json body = request.body.empty() ? Json::object() : Json::parse(request.body, nullptr, false);
  if (token != TokenCheck::kValid) {
    const char* why = token == TokenCheck::kMissing ? "Request is missing required authentication credential."
                      : token == TokenCheck::kExpired
                          ? "Request had invalid authentication credentials: the access "
                            "token expired."
                          : "Request had invalid authentication credentials.";
    Json details = Json::array();
    if (api == "ads") {
      const char* code = token == TokenCheck::kExpired   ? "OAUTH_TOKEN_EXPIRED"
                         : token == TokenCheck::kRevoked ? "OAUTH_TOKEN_REVOKED"
                                                         : "OAUTH_TOKEN_INVALID";
      details.push_back(ads_failure(Json::array({ads_error("authenticationError", code, why)})));
    }
    reply = error(401, "UNAUTHENTICATED", why, details);
  } else if (!body.is_object()) {
    reply = error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
  } else {
    WindowCheck check = core_.admit_request("google:" + api);
    if (!check.allowed) {
      std::int64_t seconds = std::max<std::int64_t>(1, (check.regain.count() + 999) / 1000);
      std::string delay = std::to_string(seconds) + "s";
      Json details = Json::array();
      if (api == "ads") {
        Json error = ads_error("quotaError", "RESOURCE_TEMPORARILY_EXHAUSTED",
                               "Too many requests. Retry in " + std::to_string(seconds) + " seconds.");
        error["details"] = {{"quotaErrorDetails",
                             {{"rateScope", "ACCOUNT"}, {"rateName", "Requests"}, {"retryDelay", delay}}}};
        details.push_back(ads_failure(Json::array({error})));
      } else {
        details.push_back({{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
                           {"reason", "RATE_LIMIT_EXCEEDED"},
                           {"domain", "datamanager.googleapis.com"},
                           {"metadata", {{"quota_limit", "IngestRequestsPerMinutePerProject"}}}});
        details.push_back({{"@type", "type.googleapis.com/google.rpc.RetryInfo"}, {"retryDelay", delay}});
      }
      reply = error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Requests'.", details);
      reply.retry_seconds = seconds;
    } else {
      reply = handler(body);
    }
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++requests_by_endpoint_[api + ":" + request.path.substr(request.path.rfind('/') + 1)];
    if (reply.status >= 400) ++errors_by_code_[reply.body["error"].value("status", std::string("UNKNOWN"))];
  }
  if (plan.kind != FaultKind::kNone) {
    inject();
    return;
  }
  send(reply);
}

void GoogleEmulator::register_routes(httplib::Server& server) {
  const std::string dm = "/google/datamanager/v1";
  server.Post(dm + "/audienceMembers:ingest",
              [this](const httplib::Request& request, httplib::Response& response) {
                serve(request, response, "datamanager", [this](const Json& body) {
                  std::lock_guard<std::mutex> lock(mutex_);
                  return ingest(body, false);
                });
              });
  server.Post(dm + "/audienceMembers:remove",
              [this](const httplib::Request& request, httplib::Response& response) {
                serve(request, response, "datamanager", [this](const Json& body) {
                  std::lock_guard<std::mutex> lock(mutex_);
                  return ingest(body, true);
                });
              });
  server.Get(dm + "/requestStatus:retrieve",
             [this](const httplib::Request& request, httplib::Response& response) {
               std::string id = request.get_param_value("requestId");
               serve(request, response, "datamanager", [this, id](const Json&) {
                 std::lock_guard<std::mutex> lock(mutex_);
                 return request_status(id);
               });
             });

  const std::string ads = R"(/google/ads/v\d+/customers/(\d+))";
  auto route = [&](const std::string& pattern,
                   std::function<Reply(const std::string&, const std::string&, const Json&)> handler) {
    server.Post(ads + pattern, [this, handler](const httplib::Request& request, httplib::Response& response) {
      std::string customer = request.matches[1];
      std::string id = request.matches.size() > 2 ? std::string(request.matches[2]) : std::string();
      serve(request, response, "ads", [&](const Json& body) { return handler(customer, id, body); });
    });
  };
  route("/userLists:mutate", [this](const std::string& customer, const std::string&, const Json& body) {
    std::lock_guard<std::mutex> lock(mutex_);
    return mutate_user_lists(customer, body);
  });
  route("/googleAds:search", [this](const std::string& customer, const std::string&, const Json& body) {
    std::lock_guard<std::mutex> lock(mutex_);
    return search(customer, body);
  });
  route("/offlineUserDataJobs:create",
        [this](const std::string& customer, const std::string&, const Json& body) {
          std::lock_guard<std::mutex> lock(mutex_);
          return create_job(customer, body);
        });
  route(R"(/offlineUserDataJobs/(\d+):addOperations)",
        [this](const std::string& customer, const std::string& id, const Json& body) {
          std::lock_guard<std::mutex> lock(mutex_);
          return add_operations(customer, id, body);
        });
  route(R"(/offlineUserDataJobs/(\d+):run)",
        [this](const std::string& customer, const std::string& id, const Json&) {
          std::lock_guard<std::mutex> lock(mutex_);
          return run_job(customer, id);
        });

  server.Post("/__inspect/google/user_lists", [this](const httplib::Request& request,
                                                     httplib::Response& response) {
    Json body = Json::parse(request.body, nullptr, false);
    if (!body.is_object() || !body.contains("customer_id")) {
      response.status = 400;
      response.set_content(Json{{"error", "expected {\"customer_id\": \"...\", \"name\": \"...\"}"}}.dump(),
                           "application/json");
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    UserList list;
    list.id = std::to_string(++next_id_);
    list.customer_id =
        body["customer_id"].is_string() ? body["customer_id"].get<std::string>() : body["customer_id"].dump();
    list.name = body.value("name", "list " + list.id);
    list.upload_key_type = body.value("upload_key_type", std::string("CONTACT_INFO"));
    lists_[list.id] = list;
    response.set_content(Json{{"id", list.id}}.dump(), "application/json");
  });
  server.Post("/__inspect/google/faults",
              [this](const httplib::Request& request, httplib::Response& response) {
                Json body = Json::parse(request.body, nullptr, false);
                if (!body.is_object()) {
                  response.status = 400;
                  response.set_content(Json{{"error", "expected a JSON object"}}.dump(), "application/json");
                  return;
                }
                std::lock_guard<std::mutex> lock(mutex_);
                fail_requests_ = body.value("fail_requests", fail_requests_);
                concurrent_modifications_ = body.value("concurrent_modifications", concurrent_modifications_);
                if (body.contains("reject_identifiers")) {
                  for (const Json& value : body["reject_identifiers"]) {
                    if (value.is_string()) reject_identifiers_.insert(value.get<std::string>());
                  }
                }
                response.set_content(Json{{"fail_requests", fail_requests_},
                                          {"concurrent_modifications", concurrent_modifications_},
                                          {"reject_identifiers", reject_identifiers_.size()}}
                                         .dump(),
                                     "application/json");
              });
}

// ---- Data Manager ----

GoogleEmulator::Reply GoogleEmulator::ingest(const Json& body, bool remove) {
  Json violations = Json::array();
  const Json* destinations = field(body, "destinations", "destinations");
  std::vector<UserList*> targets;
  if (destinations == nullptr || !destinations->is_array() || destinations->empty() ||
      destinations->size() > 10) {
    violations.push_back(
        violation("destinations", "INVALID_DESTINATIONS", "Between 1 and 10 destinations are required."));
  } else {
    for (std::size_t k = 0; k < destinations->size(); ++k) {
      const Json& destination = (*destinations)[k];
      std::string list_id = text_of(destination, "productDestinationId", "product_destination_id");
      std::string account = text_of(*field(destination, "operatingAccount", "operating_account") != nullptr
                                        ? *field(destination, "operatingAccount", "operating_account")
                                        : Json::object(),
                                    "accountId", "account_id");
      auto found = lists_.find(list_id);
      if (found == lists_.end() || found->second.customer_id != account) {
        violations.push_back(violation(
            "destinations[" + std::to_string(k) + "].product_destination_id", "INVALID_USER_LIST_ID",
            "User list " + list_id + " does not exist in account " + account + "."));
      } else {
        targets.push_back(&found->second);
      }
    }
  }
  if (!remove) {
    const Json* terms = field(body, "termsOfService", "terms_of_service");
    if (terms == nullptr || text_of(*terms, "customerMatchTermsOfServiceStatus",
                                    "customer_match_terms_of_service_status") != "ACCEPTED") {
      violations.push_back(violation("terms_of_service", "TERMS_OF_SERVICE_NOT_ACCEPTED",
                                     "The Customer Match terms of service must be accepted."));
    }
  }
  std::string consent_text;
  if (const Json* consent = field(body, "consent", "consent")) {
    for (const char* key : {"adUserData", "adPersonalization"}) {
      if (!consent->contains(key)) continue;
      std::string value = (*consent)[key].is_string() ? (*consent)[key].get<std::string>() : "";
      if (value != "CONSENT_GRANTED" && value != "CONSENT_DENIED" && value != "CONSENT_STATUS_UNSPECIFIED") {
        violations.push_back(violation(std::string("consent.") + key, "INVALID_ENUM_VALUE",
                                       "Invalid consent status '" + value + "'."));
      }
    }
    consent_text = consent->dump();
  }
  std::string encoding = text_of(body, "encoding", "encoding");
  if (encoding != "HEX" && encoding != "BASE64") {
    violations.push_back(violation("encoding", "INVALID_ENCODING", "encoding must be HEX or BASE64."));
  }

  const Json* members = field(body, "audienceMembers", "audience_members");
  std::vector<std::set<std::string>> parsed;
  std::string key_type = targets.empty() ? std::string() : targets.front()->upload_key_type;
  if (members == nullptr || !members->is_array() || members->empty() || members->size() > 10'000) {
    violations.push_back(violation("audience_members", "INVALID_AUDIENCE_MEMBERS",
                                   "Between 1 and 10000 audience members are required."));
  } else {
    for (std::size_t i = 0; i < members->size(); ++i) {
      const Json& member = (*members)[i];
      std::string at = "audience_members[" + std::to_string(i) + "]";
      std::set<std::string> identifiers;
      std::string kind;
      if (const Json* user = field(member, "userData", "user_data")) {
        kind = "CONTACT_INFO";
        const Json* list = field(*user, "userIdentifiers", "user_identifiers");
        if (list == nullptr || !list->is_array() || list->empty() || list->size() > 10) {
          violations.push_back(violation(at + ".user_data.user_identifiers", "INVALID_USER_IDENTIFIER_COUNT",
                                         "A member needs 1 to 10 user identifiers."));
          continue;
        }
        for (std::size_t j = 0; j < list->size(); ++j) {
          const Json& identifier = (*list)[j];
          std::string path = at + ".user_data.user_identifiers[" + std::to_string(j) + "]";
          if (const Json* email = field(identifier, "emailAddress", "email_address")) {
            if (!is_sha256_hex(*email))
              violations.push_back(
                  violation(path + ".email_address", "INVALID_HASH_FORMAT", "Not a hex SHA-256 digest."));
            else
              identifiers.insert("email:" + email->get<std::string>());
          } else if (const Json* phone = field(identifier, "phoneNumber", "phone_number")) {
            if (!is_sha256_hex(*phone))
              violations.push_back(
                  violation(path + ".phone_number", "INVALID_HASH_FORMAT", "Not a hex SHA-256 digest."));
            else
              identifiers.insert("phone:" + phone->get<std::string>());
          } else if (const Json* address = field(identifier, "addressInfo", "address")) {
            const Json* given = field(*address, "givenName", "given_name");
            const Json* family = field(*address, "familyName", "family_name");
            const Json* region = field(*address, "regionCode", "region_code");
            std::string postal = text_of(*address, "postalCode", "postal_code");
            if (given == nullptr || family == nullptr || !is_sha256_hex(*given) || !is_sha256_hex(*family)) {
              violations.push_back(
                  violation(path + ".address", "INVALID_HASH_FORMAT", "Names must be hex SHA-256 digests."));
            } else if (region == nullptr || !is_region_code(*region)) {
              violations.push_back(violation(path + ".address.region_code", "INVALID_COUNTRY_CODE",
                                             "Not an ISO 3166-1 alpha-2 code."));
            } else if (postal.empty()) {
              violations.push_back(violation(path + ".address.postal_code", "MISSING_POSTAL_CODE",
                                             "A postal code is required."));
            } else {
              identifiers.insert("address:" + given->get<std::string>() + "|" + family->get<std::string>() +
                                 "|" + region->get<std::string>() + "|" + postal);
            }
          } else {
            violations.push_back(violation(path, "MISSING_USER_IDENTIFIER", "The identifier is empty."));
          }
        }
      } else if (const Json* mobile = field(member, "mobileData", "mobile_data")) {
        kind = "MOBILE_ADVERTISING_ID";
        const Json* ids = field(*mobile, "mobileIds", "mobile_ids");
        if (ids == nullptr || !ids->is_array() || ids->empty() || ids->size() > 10) {
          violations.push_back(violation(at + ".mobile_data.mobile_ids", "INVALID_USER_IDENTIFIER_COUNT",
                                         "A member needs 1 to 10 mobile ids."));
          continue;
        }
        for (const Json& id : *ids)
          identifiers.insert("maid:" + (id.is_string() ? id.get<std::string>() : id.dump()));
      } else if (const Json* user_id = field(member, "userIdData", "user_id_data")) {
        kind = "CRM_ID";
        identifiers.insert("crm:" + text_of(*user_id, "userId", "user_id"));
      } else {
        violations.push_back(violation(at, "MISSING_USER_IDENTIFIER", "The member carries no data."));
        continue;
      }
      if (!key_type.empty() && kind != key_type) {
        violations.push_back(violation(at, "INCOMPATIBLE_UPLOAD_KEY_TYPE",
                                       "A " + kind + " member cannot go into a " + key_type + " list."));
        continue;
      }
      for (const std::string& identifier : identifiers) {
        if (reject_identifiers_.count(identifier.substr(identifier.find(':') + 1)) != 0) {
          violations.push_back(
              violation(at, "INVALID_FORMAT", "The test server was told to reject this identifier."));
          break;
        }
      }
      parsed.push_back(std::move(identifiers));
    }
  }
  if (!violations.empty()) {
    Json details = Json::array(
        {{{"@type", "type.googleapis.com/google.rpc.BadRequest"}, {"fieldViolations", violations}},
         {{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
          {"reason", "INVALID_ARGUMENT"},
          {"domain", "datamanager.googleapis.com"}}});
    return error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.", details);
  }

  Request request;
  request.id = "dm-" + std::to_string(++next_id_);
  request.list_id = targets.front()->id;
  request.operation = remove ? "remove" : "ingest";
  request.members = static_cast<std::int64_t>(parsed.size());
  request.polls_left = options_.processing_polls;
  if (fail_requests_ > 0) {
    --fail_requests_;
    request.fails = true;
  }
  // A request that will fail changes nothing.
  if (!request.fails) {
    for (UserList* list : targets) {
      ++list->uploads;
      if (!consent_text.empty()) list->consents.push_back(consent_text);
      for (const auto& identifiers : parsed) {
        if (remove) {
          remove_member(*list, identifiers);
        } else {
          add_member(*list, identifiers);
        }
      }
    }
  }
  requests_[request.id] = request;
  Reply reply;
  reply.body = Json{{"requestId", request.id}};
  return reply;
}

GoogleEmulator::Reply GoogleEmulator::request_status(const std::string& id) {
  auto found = requests_.find(id);
  if (found == requests_.end()) return error(404, "NOT_FOUND", "Request " + id + " was not found.");
  Request& request = found->second;
  std::string status = "PROCESSING";
  if (request.polls_left > 0) {
    --request.polls_left;
  } else {
    status = request.fails ? "FAILURE" : "SUCCESS";
  }
  Json entry = {{"destination", {{"productDestinationId", request.list_id}}}, {"requestStatus", status}};
  if (status == "FAILURE") {
    entry["errorInfo"] = {{"errorCounts", Json::array({{{"recordCount", std::to_string(request.members)},
                                                        {"reason", "INTERNAL_ERROR"}}})}};
  } else if (status == "SUCCESS") {
    entry["audienceMembersIngestionStatus"] = {{"userDataIngestionStatus",
                                                {{"recordCount", std::to_string(request.members)},
                                                 {"uploadMatchRateRange", "MATCH_RANGE_51_TO_60"}}}};
  }
  Reply reply;
  reply.body = Json{{"requestStatusPerDestination", Json::array({entry})}};
  return reply;
}

void GoogleEmulator::add_member(UserList& list, const std::set<std::string>& identifiers) {
  // A member who shares an identifier with a stored one is the same person.
  std::int64_t number = 0;
  for (const std::string& identifier : identifiers) {
    auto known = list.by_identifier.find(identifier);
    if (known != list.by_identifier.end()) number = known->second;
  }
  if (number == 0) number = list.next_member++;
  Member& member = list.members[number];
  ++member.times_added;
  for (const std::string& identifier : identifiers) {
    member.identifiers.insert(identifier);
    list.by_identifier[identifier] = number;
  }
  ++list.added;
}

void GoogleEmulator::remove_member(UserList& list, const std::set<std::string>& identifiers) {
  std::set<std::int64_t> numbers;
  for (const std::string& identifier : identifiers) {
    auto known = list.by_identifier.find(identifier);
    if (known != list.by_identifier.end()) numbers.insert(known->second);
  }
  if (numbers.empty()) ++list.unmatched_removes;
  for (std::int64_t number : numbers) {
    for (const std::string& identifier : list.members[number].identifiers)
      list.by_identifier.erase(identifier);
    list.members.erase(number);
    ++list.removed;
  }
}

// ---- Google Ads ----

GoogleEmulator::Reply GoogleEmulator::mutate_user_lists(const std::string& customer, const Json& body) {
  const Json* operations = field(body, "operations", "operations");
  if (operations == nullptr || !operations->is_array() || operations->size() != 1 ||
      !(*operations)[0].contains("create")) {
    return error(400, "INVALID_ARGUMENT", "The test server takes exactly one create operation.");
  }
  const Json& create = (*operations)[0]["create"];
  std::string name = create.value("name", std::string());
  for (const auto& [id, list] : lists_) {
    if (list.customer_id == customer && list.name == name) {
      return error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                   Json::array({ads_failure(
                       Json::array({ads_error("userListError", "NAME_ALREADY_USED",
                                              "Name is already being used for another user list.", 0)}))}));
    }
  }
  const Json* crm = field(create, "crmBasedUserList", "crm_based_user_list");
  if (name.empty() || crm == nullptr) {
    return error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                 Json::array({ads_failure(Json::array(
                     {ads_error("fieldError", "REQUIRED", "name and crmBasedUserList are required.", 0)}))}));
  }
  UserList list;
  list.id = std::to_string(++next_id_);
  list.customer_id = customer;
  list.name = name;
  list.description = create.value("description", std::string());
  list.upload_key_type = text_of(*crm, "uploadKeyType", "upload_key_type");
  std::string life_span = text_of(create, "membershipLifeSpan", "membership_life_span");
  list.life_span_days = life_span.empty() ? 540 : std::stoll(life_span);
  lists_[list.id] = list;
  Reply reply;
  reply.body =
      Json{{"results", Json::array({{{"resourceName", "customers/" + customer + "/userLists/" + list.id}}})}};
  return reply;
}

GoogleEmulator::Reply GoogleEmulator::search(const std::string& customer, const Json& body) {
  std::string query = text_of(body, "query", "query");
  std::smatch match;
  Reply reply;
  reply.body = Json{{"results", Json::array()}};
  if (std::regex_search(query, match,
                        std::regex(R"(FROM\s+user_list\s+WHERE\s+user_list\.name\s*=\s*'([^']*)')"))) {
    for (const auto& [id, list] : lists_) {
      if (list.customer_id != customer || list.name != match[1].str()) continue;
      reply.body["results"].push_back({{"userList",
                                        {{"resourceName", "customers/" + customer + "/userLists/" + id},
                                         {"id", id},
                                         {"name", list.name},
                                         {"sizeForSearch", std::to_string(list.members.size())}}}});
    }
    return reply;
  }
  if (std::regex_search(
          query, match,
          std::regex(R"(FROM\s+offline_user_data_job\s+WHERE\s+offline_user_data_job\.id\s*=\s*(\d+))"))) {
    auto found = jobs_.find(match[1].str());
    if (found == jobs_.end() || found->second.customer_id != customer) return reply;
    Job& job = found->second;
    if (job.status == "RUNNING") {
      if (job.polls_left > 0) {
        --job.polls_left;
      } else {
        job.status = "SUCCESS";
      }
    }
    reply.body["results"].push_back(
        {{"offlineUserDataJob",
          {{"resourceName", "customers/" + customer + "/offlineUserDataJobs/" + job.id},
           {"id", job.id},
           {"status", job.status},
           {"operationMetadata", {{"matchRateRange", "MATCH_RANGE_51_TO_60"}}}}}});
    return reply;
  }
  return error(400, "INVALID_ARGUMENT",
               "The test server answers only the user_list by name and offline_user_data_job by id queries.");
}

GoogleEmulator::Reply GoogleEmulator::create_job(const std::string& customer, const Json& body) {
  if (options_.not_allowlisted) {
    return error(403, "PERMISSION_DENIED", "The caller does not have permission.",
                 Json::array({ads_failure(Json::array(
                     {ads_error("notAllowlistedError", "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE",
                                "Customer is not allowlisted for accessing this feature.")}))}));
  }
  const Json* job_json = field(body, "job", "job");
  const Json* metadata = job_json == nullptr ? nullptr
                                             : field(*job_json, "customerMatchUserListMetadata",
                                                     "customer_match_user_list_metadata");
  std::string list_resource =
      metadata == nullptr ? std::string() : text_of(*metadata, "userList", "user_list");
  std::string list_id = list_resource.substr(list_resource.rfind('/') + 1);
  auto list = lists_.find(list_id);
  if (list == lists_.end() || list->second.customer_id != customer ||
      text_of(*job_json, "type", "type") != "CUSTOMER_MATCH_USER_LIST") {
    return error(
        400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
        Json::array({ads_failure(Json::array({ads_error(
            "offlineUserDataJobError", "INVALID_USER_LIST_ID",
            "The user list " + list_resource + " is not a Customer Match list of this customer.")}))}));
  }
  std::string external_id = text_of(*job_json, "externalId", "external_id");
  if (!external_id.empty()) {
    for (const auto& [id, job] : jobs_) {
      if (job.customer_id == customer && job.external_id == external_id) {
        return error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                     Json::array({ads_failure(Json::array(
                         {ads_error("offlineUserDataJobError", "EXTERNAL_UPDATE_ID_ALREADY_EXISTS",
                                    "The external update id is already used by job " + id + ".")}))}));
      }
    }
  }
  if (const Json* consent = field(*metadata, "consent", "consent"))
    list->second.consents.push_back(consent->dump());
  Job job;
  job.id = std::to_string(++next_id_);
  job.customer_id = customer;
  job.list_id = list_id;
  job.external_id = external_id;
  jobs_[job.id] = job;
  Reply reply;
  reply.body = Json{{"resourceName", "customers/" + customer + "/offlineUserDataJobs/" + job.id}};
  return reply;
}

GoogleEmulator::Reply GoogleEmulator::add_operations(const std::string& customer, const std::string& job_id,
                                                     const Json& body) {
  auto found = jobs_.find(job_id);
  if (found == jobs_.end() || found->second.customer_id != customer)
    return error(404, "NOT_FOUND", "Job " + job_id + " was not found.");
  Job& job = found->second;
  ++job.add_operations_calls;
  if (concurrent_modifications_ > 0) {
    --concurrent_modifications_;
    return error(
        400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
        Json::array({ads_failure(Json::array({ads_error("databaseError", "CONCURRENT_MODIFICATION",
                                                        "Multiple requests were attempting to modify the "
                                                        "same resource at once. Retry the request.")}))}));
  }
  if (job.status != "PENDING") {
    return error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                 Json::array({ads_failure(Json::array(
                     {ads_error("offlineUserDataJobError", "JOB_ALREADY_STARTED",
                                "The job was started already; it takes no more operations.")}))}));
  }
  const Json* operations = field(body, "operations", "operations");
  if (operations == nullptr || !operations->is_array() || operations->empty()) {
    return error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                 Json::array({ads_failure(Json::array(
                     {ads_error("collectionSizeError", "TOO_FEW", "operations must not be empty.")}))}));
  }
  bool partial = false;
  for (const char* key :
       {"enablePartialFailure", "enable_partial_failure", "partialFailure", "partial_failure"}) {
    if (body.contains(key) && body[key].is_boolean()) partial = partial || body[key].get<bool>();
  }
  const std::string key_type = lists_[job.list_id].upload_key_type;

  std::size_t total_identifiers = 0;
  Json errors = Json::array();
  std::vector<std::pair<std::string, std::set<std::string>>> accepted;
  for (std::size_t i = 0; i < operations->size(); ++i) {
    const Json& operation = (*operations)[i];
    auto fail = [&](const std::string& code, const std::string& message) {
      errors.push_back(ads_error("offlineUserDataJobError", code, message, static_cast<std::int64_t>(i)));
    };
    std::string kind = operation.contains("create") ? "create" : operation.contains("remove") ? "remove" : "";
    if (operation.value("removeAll", false) || operation.value("remove_all", false)) {
      if (i != 0 || !job.operation.empty()) {
        fail("INVALID_OPERATION_ORDER", "removeAll must be the first operation of a job.");
      } else {
        job.remove_all = true;
      }
      continue;
    }
    if (kind.empty()) {
      fail("MISSING_USER_IDENTIFIER", "The operation has no create or remove.");
      continue;
    }
    std::string settled = job.operation;
    for (const auto& [other, ids] : accepted) settled = settled.empty() ? other : settled;
    if (!settled.empty() && settled != kind) {
      fail("CONFLICTING_OPERATION", "Create and remove operations cannot be mixed in one job.");
      continue;
    }
    const Json* identifiers = field(operation[kind], "userIdentifiers", "user_identifiers");
    if (identifiers == nullptr || !identifiers->is_array() || identifiers->empty()) {
      fail("MISSING_USER_IDENTIFIER", "The UserData has no user identifier.");
      continue;
    }
    if (identifiers->size() > 20) {
      fail("TOO_MANY_USER_IDENTIFIERS", "A UserData takes at most 20 user identifiers.");
      continue;
    }
    total_identifiers += identifiers->size();
    std::set<std::string> keys;
    std::string problem;
    std::string code;
    for (const Json& identifier : *identifiers) {
      std::string type;
      if (const Json* email = field(identifier, "hashedEmail", "hashed_email")) {
        type = "CONTACT_INFO";
        if (!is_sha256_hex(*email))
          code = "INVALID_SHA256_FORMAT";
        else
          keys.insert("email:" + email->get<std::string>());
      } else if (const Json* phone = field(identifier, "hashedPhoneNumber", "hashed_phone_number")) {
        type = "CONTACT_INFO";
        if (!is_sha256_hex(*phone))
          code = "INVALID_SHA256_FORMAT";
        else
          keys.insert("phone:" + phone->get<std::string>());
      } else if (const Json* address = field(identifier, "addressInfo", "address_info")) {
        type = "CONTACT_INFO";
        const Json* given = field(*address, "hashedFirstName", "hashed_first_name");
        const Json* family = field(*address, "hashedLastName", "hashed_last_name");
        const Json* country = field(*address, "countryCode", "country_code");
        std::string postal = text_of(*address, "postalCode", "postal_code");
        if (given == nullptr || family == nullptr || !is_sha256_hex(*given) || !is_sha256_hex(*family)) {
          code = "INVALID_SHA256_FORMAT";
        } else if (country == nullptr || !is_region_code(*country)) {
          code = "INVALID_COUNTRY_CODE";
        } else {
          keys.insert("address:" + given->get<std::string>() + "|" + family->get<std::string>() + "|" +
                      country->get<std::string>() + "|" + postal);
        }
      } else if (const Json* mobile = field(identifier, "mobileId", "mobile_id")) {
        type = "MOBILE_ADVERTISING_ID";
        keys.insert("maid:" + (mobile->is_string() ? mobile->get<std::string>() : mobile->dump()));
      } else if (const Json* crm = field(identifier, "thirdPartyUserId", "third_party_user_id")) {
        type = "CRM_ID";
        keys.insert("crm:" + (crm->is_string() ? crm->get<std::string>() : crm->dump()));
      } else {
        code = "MISSING_USER_IDENTIFIER";
      }
      if (code.empty() && type != key_type) code = "INCOMPATIBLE_UPLOAD_KEY_TYPE";
      if (!code.empty()) break;
    }
    for (const std::string& key : keys) {
      if (code.empty() && reject_identifiers_.count(key.substr(key.find(':') + 1)) != 0)
        code = "INVALID_SHA256_FORMAT";
    }
    if (!code.empty()) {
      fail(code, code == "INVALID_SHA256_FORMAT" ? "The SHA256 encoded value is malformed."
                                                 : "The user identifier is not valid: " + code + ".");
      continue;
    }
    accepted.emplace_back(kind, std::move(keys));
  }
  if (total_identifiers > 100'000) {
    return error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                 Json::array({ads_failure(
                     Json::array({ads_error("offlineUserDataJobError", "TOO_MANY_USER_IDENTIFIERS",
                                            "A request takes at most 100,000 user identifiers.")}))}));
  }
  if (!errors.empty() && !partial) {
    return error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                 Json::array({ads_failure(errors)}));
  }
  for (auto& [kind, keys] : accepted) {
    job.operation = kind;
    job.staged.push_back(std::move(keys));
  }
  Reply reply;
  reply.body = Json::object();
  if (!errors.empty()) {
    reply.body["partialFailureError"] = {{"code", 3},
                                         {"message", "Multiple errors in the operations; see details."},
                                         {"details", Json::array({ads_failure(errors)})}};
  }
  return reply;
}

GoogleEmulator::Reply GoogleEmulator::run_job(const std::string& customer, const std::string& job_id) {
  auto found = jobs_.find(job_id);
  if (found == jobs_.end() || found->second.customer_id != customer)
    return error(404, "NOT_FOUND", "Job " + job_id + " was not found.");
  Job& job = found->second;
  if (job.status != "PENDING") {
    return error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                 Json::array({ads_failure(Json::array({ads_error(
                     "offlineUserDataJobError", "JOB_ALREADY_STARTED", "The job was started already.")}))}));
  }
  // The job's operations take effect when it runs; its status moves to SUCCESS over later reads.
  UserList& list = lists_[job.list_id];
  if (job.remove_all) {
    list.removed += static_cast<std::int64_t>(list.members.size());
    list.members.clear();
    list.by_identifier.clear();
  }
  for (const auto& keys : job.staged) {
    if (job.operation == "remove") {
      remove_member(list, keys);
    } else {
      add_member(list, keys);
    }
  }
  ++list.uploads;
  job.status = "RUNNING";
  job.polls_left = options_.processing_polls;
  Reply reply;
  reply.body = Json{{"name", "customers/" + customer + "/operations/" + job.id}};
  return reply;
}

// ---- inspection ----

Json GoogleEmulator::list_json(const UserList& list, bool include_members) const {
  Json out = {{"id", list.id},
              {"customer_id", list.customer_id},
              {"name", list.name},
              {"upload_key_type", list.upload_key_type},
              {"membership_life_span_days", list.life_span_days},
              {"size", list.members.size()},
              {"added", list.added},
              {"removed", list.removed},
              {"unmatched_removes", list.unmatched_removes},
              {"uploads", list.uploads},
              {"consents", list.consents}};
  Json jobs = Json::array();
  for (const auto& [id, job] : jobs_) {
    if (job.list_id != list.id) continue;
    jobs.push_back({{"id", id},
                    {"status", job.status},
                    {"operation", job.operation},
                    {"remove_all", job.remove_all},
                    {"operations", job.staged.size()},
                    {"add_operations_calls", job.add_operations_calls},
                    {"external_id", job.external_id}});
  }
  out["jobs"] = jobs;
  if (include_members) {
    Json members = Json::array();
    for (const auto& [number, member] : list.members) {
      members.push_back({{"identifiers", member.identifiers}, {"times_added", member.times_added}});
    }
    out["members"] = members;
  }
  return out;
}

Json GoogleEmulator::inspect_audiences() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Json lists = Json::array();
  for (const auto& [id, list] : lists_) lists.push_back(list_json(list, false));
  return Json{{"audiences", lists}};
}

Json GoogleEmulator::inspect_audience(const std::string& id, bool include_members) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = lists_.find(id);
  if (found == lists_.end()) return nullptr;
  return list_json(found->second, include_members);
}

Json GoogleEmulator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return Json{{"user_lists", lists_.size()},
              {"data_manager_requests", requests_.size()},
              {"jobs", jobs_.size()},
              {"requests_by_endpoint", requests_by_endpoint_},
              {"errors_by_status", errors_by_code_}};
}

void GoogleEmulator::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  lists_.clear();
  requests_.clear();
  jobs_.clear();
  next_id_ = 1000;
  fail_requests_ = 0;
  concurrent_modifications_ = 0;
  reject_identifiers_.clear();
  requests_by_endpoint_.clear();
  errors_by_code_.clear();
}

}  // namespace platform_server
