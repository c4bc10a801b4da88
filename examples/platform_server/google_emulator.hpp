// The emulator of Google Customer Match: the Data Manager API under /google/datamanager/v1 and
// the Google Ads API (user lists, OfflineUserDataJob, GAQL search) under /google/ads/v<N>. Both
// share one set of user lists, so a list that the Ads API created can take Data Manager uploads.
// docs/platform-server.md lists the endpoints, the rules it enforces and the errors it returns.
//
// Control endpoints: POST /__inspect/google/user_lists {"customer_id", "name", "upload_key_type"}
// creates a list; POST /__inspect/google/faults {"fail_requests": N, "concurrent_modifications": N}
// makes the next N Data Manager requests end in FAILURE and the next N addOperations calls fail
// with CONCURRENT_MODIFICATION; {"reject_identifiers": [value, ...]} makes every member that carries
// one of those identifier values fail validation, to test how clients handle per-member errors.
#ifndef ACTIVATION_PLATFORM_SERVER_GOOGLE_EMULATOR_HPP_
#define ACTIVATION_PLATFORM_SERVER_GOOGLE_EMULATOR_HPP_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "oauth_emulator.hpp"
#include "server_core.hpp"

namespace platform_server {

struct GoogleOptions {
  // Status reads that report PROCESSING (Data Manager) or RUNNING (Ads job) before the final state.
  std::int64_t processing_polls = 1;
  bool not_allowlisted = false;  // Ads API job creation fails with CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE.
};

// Thread safety: one mutex serializes all list, request and job state.
class GoogleEmulator final : public PlatformEmulator {
 public:
  GoogleEmulator(ServerCore& core, OAuthEmulator& oauth, GoogleOptions options);

  std::string name() const override { return "google"; }
  void register_routes(httplib::Server& server) override;
  Json inspect_audiences() const override;
  Json inspect_audience(const std::string& id, bool include_members) const override;
  Json stats() const override;
  void reset() override;

  struct Reply {
    int status = 200;
    Json body;
    std::optional<std::int64_t> retry_seconds;  // Sent as RetryInfo and Retry-After on throttling.
  };

  struct Member {
    std::set<std::string> identifiers;  // "kind:value", such as "email:<hash>".
    std::int64_t times_added = 0;
  };

  struct UserList {
    std::string id;
    std::string customer_id;
    std::string name;
    std::string description;
    std::string upload_key_type = "CONTACT_INFO";
    std::int64_t life_span_days = 540;
    std::int64_t next_member = 1;
    std::map<std::int64_t, Member> members;
    std::map<std::string, std::int64_t> by_identifier;  // Identifier -> member number.
    std::int64_t added = 0;
    std::int64_t removed = 0;
    std::int64_t unmatched_removes = 0;
    std::int64_t uploads = 0;
    std::vector<std::string> consents;  // The consent of each upload, as received.
  };

  struct Request {  // A Data Manager request.
    std::string id;
    std::string list_id;
    std::string operation;
    std::int64_t members = 0;
    std::int64_t polls_left = 0;
    bool fails = false;
  };

  struct Job {  // An OfflineUserDataJob.
    std::string id;
    std::string customer_id;
    std::string list_id;
    std::string status = "PENDING";
    std::string external_id;
    std::string operation;  // "create" or "remove" once the first operation arrived.
    bool remove_all = false;
    std::vector<std::set<std::string>> staged;
    std::int64_t polls_left = 0;
    std::int64_t add_operations_calls = 0;
  };

 private:
  void serve(const httplib::Request& request, httplib::Response& response, const std::string& api,
             const std::function<Reply(const Json& body)>& handler);
  Reply error(int status, const std::string& code, const std::string& message, Json details = Json::array());

  // Data Manager handlers; the mutex is held.
  Reply ingest(const Json& body, bool remove);
  Reply request_status(const std::string& id);
  // Google Ads handlers; the mutex is held except in add_operations.
  Reply mutate_user_lists(const std::string& customer, const Json& body);
  Reply search(const std::string& customer, const Json& body);
  Reply create_job(const std::string& customer, const Json& body);
  Reply add_operations(const std::string& customer, const std::string& job_id, const Json& body);
  Reply run_job(const std::string& customer, const std::string& job_id);

  void add_member(UserList& list, const std::set<std::string>& identifiers);
  void remove_member(UserList& list, const std::set<std::string>& identifiers);
  Json list_json(const UserList& list, bool include_members) const;

  ServerCore& core_;
  OAuthEmulator& oauth_;
  const GoogleOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, UserList> lists_;
  std::map<std::string, Request> requests_;
  std::map<std::string, Job> jobs_;
  std::int64_t next_id_ = 1000;
  std::int64_t fail_requests_ = 0;
  std::int64_t concurrent_modifications_ = 0;
  std::set<std::string> reject_identifiers_;
  std::map<std::string, std::int64_t> requests_by_endpoint_;
  std::map<std::string, std::int64_t> errors_by_code_;
};

}  // namespace platform_server

#endif  // ACTIVATION_PLATFORM_SERVER_GOOGLE_EMULATOR_HPP_
