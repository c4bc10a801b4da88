// The emulator of Meta's customer-file Custom Audiences API (Graph API), under the path prefix
// /meta: /meta/v24.0/act_<id>/customaudiences, /meta/v24.0/<audience id>/users, and so on.
// docs/platform-server.md lists the endpoints, the rules it enforces and the errors it returns.
#ifndef ACTIVATION_PLATFORM_SERVER_META_EMULATOR_HPP_
#define ACTIVATION_PLATFORM_SERVER_META_EMULATOR_HPP_

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "server_core.hpp"

namespace platform_server {

// Thread safety: one mutex serializes all audience and session state.
class MetaEmulator final : public PlatformEmulator {
 public:
  explicit MetaEmulator(ServerCore& core);

  std::string name() const override { return "meta"; }
  void register_routes(httplib::Server& server) override;
  Json inspect_audiences() const override;
  Json inspect_audience(const std::string& id, bool include_members) const override;
  Json stats() const override;
  void reset() override;

  enum class Endpoint { kAccountAudiences, kUsersOfAnyAudience, kUsers, kUsersReplace, kSessions, kAudience };

  // A response before the usage headers are added.
  struct Reply {
    int status = 200;
    Json body;
    std::string account;  // The ad account ("act_<id>") whose usage headers go on the response.
    std::optional<WindowCheck> throttle;  // Set when the response is a throttling error.
  };

  // A member of an audience, keyed by its canonical key: its non-empty schema fields in name
  // order, "field=value" each, separated by U+001F.
  struct Member {
    std::int64_t times_added = 0;
    std::int64_t first_batch = 0;  // Index into the audience's batch log.
  };

  struct BatchRecord {
    std::int64_t index = 0;
    std::string operation;  // "add", "remove" or "replace".
    std::optional<std::int64_t> session_id;
    std::optional<std::int64_t> batch_seq;
    bool last_batch_flag = false;
    std::int64_t rows = 0;
    std::int64_t invalid = 0;
    std::string digest;  // SHA-256 of the rows as received, to spot batches sent twice.
    std::optional<std::int64_t> duplicate_of;
    std::string body_encoding;
    std::string token_via;
    std::string api_version;
  };

  struct Session {
    std::string account;
    std::int64_t session_id = 0;
    std::string audience_id;
    std::string operation;
    std::vector<std::string> schema;
    SteadyTime first_batch_at{};
    std::int64_t start_unix = 0;
    std::int64_t end_unix = 0;
    std::int64_t num_received = 0;
    std::int64_t num_invalid = 0;
    std::vector<std::int64_t> batch_seqs;  // In arrival order.
    bool finished = false;
    bool expired = false;
  };

  struct ReplaceState {
    std::int64_t session_id = 0;
    std::map<std::string, Member> pending;
    SteadyTime started{};
  };

  struct Audience {
    std::string id;
    std::string account;
    std::string name;
    std::string description;
    std::string subtype = "CUSTOM";
    std::string customer_file_source;
    bool is_value_based = false;
    std::int64_t retention_days = 0;
    std::string
        data_source;  // Set by the first upload: "FILE_IMPORTED.MULTI_HASHES" or ".HASHES_OR_USER_IDS".
    std::int64_t time_created = 0;
    std::int64_t time_content_updated = 0;
    bool deleted = false;
    bool alias_error_pending = false;

    std::map<std::string, Member> members;  // Keyed by the canonical member key.
    std::vector<BatchRecord> batches;
    std::optional<ReplaceState> replace;
    std::int64_t rows_received = 0;
    std::int64_t invalid_entries = 0;
    std::int64_t duplicate_adds = 0;
    std::int64_t removed = 0;
    std::int64_t unmatched_removes = 0;
    std::int64_t replace_restarts = 0;
    std::int64_t replaces_completed = 0;
    std::int64_t duplicate_batches = 0;
  };

  // A request after parsing and authentication.
  struct Call {
    const httplib::Request* http = nullptr;
    RequestData data;
    std::string method;  // After the "method=DELETE" override.
    std::string api_version;
    std::string token_via;  // "bearer", "query", "form", "multipart" or "json".
  };

 private:
  void serve(const httplib::Request& request, httplib::Response& response,
             const httplib::ContentReader* reader, Endpoint endpoint);
  Reply dispatch(const httplib::Request& request, Call& call, Endpoint endpoint);
  std::optional<Reply> authenticate(Call& call);
  void inject_fault(const FaultPlan& plan, const httplib::Request& request, httplib::Response& response,
                    const std::string& account);
  void send(httplib::Response& response, const Reply& reply);
  void add_usage_headers(httplib::Response& response, const std::string& account,
                         const WindowCheck* throttled);

  Reply error(int status, int code, std::optional<std::int64_t> subcode, const std::string& type,
              const std::string& message, bool transient = false);
  Reply throttle_error(const std::string& account, const WindowCheck& check);

  // Endpoint handlers; the state mutex is held.
  Reply create_audience(const std::string& account, Call& call);
  Reply list_audiences(const std::string& account, Call& call);
  Reply read_audience(Audience& audience, Call& call);
  Reply delete_audience(Audience& audience);
  Reply upload_users(Audience& audience, Call& call, const std::string& operation);
  Reply replace_users(Audience& audience, Call& call);
  Reply remove_from_all(const std::string& account, Call& call);
  Reply list_sessions(Audience& audience, Call& call);

  void expire_replace_if_due(Audience& audience);
  void apply_replace(Audience& audience);
  Json audience_field(const Audience& audience, const std::string& field) const;
  Json session_json(const Session& session) const;

  ServerCore& core_;
  mutable std::mutex mutex_;
  std::map<std::string, Audience> audiences_;                         // Keyed by id.
  std::vector<std::string> audience_order_;                           // Ids in creation order.
  std::map<std::pair<std::string, std::int64_t>, Session> sessions_;  // (account, session_id).
  std::int64_t next_audience_ = 1;
  std::int64_t next_auto_session_ = 1;
  std::map<std::string, std::int64_t> requests_by_endpoint_;
  std::map<std::string, std::int64_t> errors_by_code_;
};

}  // namespace platform_server

#endif  // ACTIVATION_PLATFORM_SERVER_META_EMULATOR_HPP_
