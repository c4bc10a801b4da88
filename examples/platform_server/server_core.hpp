// The platform-independent part of the test server: options, fault injection, per-account request
// windows for throttling, token counting, request parsing, and the inspection endpoints.
//
// Each platform emulator (meta_emulator.cpp now; Google, LinkedIn, TikTok and Snapchat later) is
// one PlatformEmulator that registers its routes under its own path prefix ("/meta/...") and
// draws the faults of each request from the ServerCore.
#ifndef ACTIVATION_PLATFORM_SERVER_SERVER_CORE_HPP_
#define ACTIVATION_PLATFORM_SERVER_SERVER_CORE_HPP_

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <simdjson.h>

namespace platform_server {

using Json = nlohmann::json;
using SteadyTime = std::chrono::steady_clock::time_point;

struct FaultOptions {
  double error_rate = 0.0;         // Share of requests that get a 5xx response.
  double html_error_share = 0.25;  // Share of those 5xx responses that are an HTML page, not JSON.
  double drop_rate = 0.0;          // Share of requests whose connection is closed without a response.
  // Share of injected 5xx responses and dropped connections that happen after the request changed
  // the server's state, so that the client's retry sends a batch that was already applied.
  double after_apply_share = 0.5;
  std::chrono::milliseconds latency{0};         // Added to every platform request.
  std::chrono::milliseconds latency_jitter{0};  // Plus a uniform draw from [0, jitter].
  std::uint64_t seed = 1;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  int threads = 32;
  FaultOptions faults;

  // Throttling: more than `rate_limit` requests per account in any `rate_window` get an error
  // with `throttle_code`. Zero disables it.
  std::int64_t rate_limit = 0;
  std::chrono::milliseconds rate_window{60'000};
  int throttle_code = 80003;

  // After this many requests with one token, the token is expired. Zero disables it.
  std::int64_t token_expire_after = 0;
  std::vector<std::string> tokens;  // Accepted access tokens.
  std::string app_secret;           // When set, appsecret_proof is required and verified.

  std::chrono::seconds session_lifetime{90 * 60};
  int min_api_version = 0;                // Versions below it get "deprecated API version".
  bool new_audience_alias_error = false;  // First /users call after creating an audience fails with #803.
};

enum class FaultKind { kNone, kJson5xx, kHtml5xx, kDrop };

struct FaultPlan {
  FaultKind kind = FaultKind::kNone;
  bool after_apply = false;
  int status = 0;  // For the 5xx kinds: 500, 502 or 503.
  std::chrono::milliseconds latency{0};
};

// The result of counting one request against its account's window.
struct WindowCheck {
  bool allowed = true;
  std::int64_t in_window = 0;           // Requests in the window, this one included when allowed.
  double usage_percent = 0.0;           // in_window relative to the limit; 0 when throttling is off.
  std::chrono::milliseconds regain{0};  // When throttled: until the oldest request leaves the window.
};

// A request's parameters from the query string and the body, whatever the body's encoding.
struct RequestData {
  std::map<std::string, Json> params;  // Query and form values are strings; JSON body values keep their type.
  std::string body_encoding;           // "none", "form", "multipart" or "json".
  std::map<std::string, std::string> sources;  // Parameter name -> "query" or the body encoding.
  // The "payload" object of a JSON body, which is not copied into `params`: an upload's payload
  // holds up to 120,000 strings. It points into the body parser of the thread that read the
  // request, so it is valid only while that thread handles this request.
  std::optional<simdjson::dom::element> json_payload;
};

// Reads the body through `reader` (when given) and merges it with the query parameters; body
// values win over query values of the same name. Returns an empty string on success, else a
// message describing what is malformed.
std::string read_request(const httplib::Request& request, const httplib::ContentReader* reader,
                         RequestData& out);

// Converts a value parsed by simdjson into a nlohmann value.
Json to_json(simdjson::dom::element element);

// Parses a parameter's JSON text into `out`. It uses a parser of the calling thread kept apart
// from the body's, so `out` is valid until this thread parses another parameter. Returns false
// when the text is not JSON.
bool parse_json_param(std::string_view text, simdjson::dom::element& out);

// Decodes application/x-www-form-urlencoded text into `out`.
void parse_form(std::string_view text, std::map<std::string, std::string>& out);

// Returns lowercase hex of HMAC-SHA256(key, message).
std::string hmac_sha256_hex(std::string_view key, std::string_view message);
// Returns lowercase hex of SHA-256(data).
std::string sha256_hex(std::string_view data);

class PlatformEmulator;

// Thread safety: every method may be called from the server's worker threads at once.
class ServerCore {
 public:
  explicit ServerCore(ServerOptions options);

  const ServerOptions& options() const { return options_; }

  // Draws the faults of one platform request from the seeded generator. The same number of
  // draws happens for every request, so a sequential client sees the same faults on every run.
  FaultPlan draw_faults(const std::string& platform);

  // Counts a request against the window of `key` (an ad account) and decides if it is throttled.
  WindowCheck admit_request(const std::string& key);
  // Returns the window of `key` as it is now, without counting a request.
  WindowCheck peek_window(const std::string& key);

  // Records the client connection of a platform request, to count connections in stats().
  void note_connection(const httplib::Request& request);

  // Counts one use of `token`; returns how many uses it has had, this one included.
  std::int64_t count_token_use(const std::string& token);

  // Closes the client's connection of `request` without a response (see server_core.cpp).
  void drop_connection(const httplib::Request& request);

  void count_fault(const std::string& platform, FaultPlan plan);

  std::string next_trace_id();
  Json stats() const;
  void reset();

  void add_emulator(std::shared_ptr<PlatformEmulator> emulator);
  // Registers the /__inspect endpoints and every emulator's routes.
  void register_routes(httplib::Server& server);

 private:
  struct AccountWindow {
    std::deque<SteadyTime> accepted;
    std::int64_t requests = 0;
    std::int64_t throttled = 0;
    std::int64_t max_in_window = 0;
  };

  WindowCheck check_locked(AccountWindow& window, SteadyTime now, bool count);

  const ServerOptions options_;
  mutable std::mutex mutex_;
  std::mt19937_64 random_;
  std::map<std::string, AccountWindow> windows_;
  std::map<std::string, std::int64_t> token_uses_;
  std::set<std::string> connections_;  // "address:port" of each client connection seen.
  std::map<std::string, std::map<std::string, std::int64_t>> faults_;  // platform -> kind -> count
  std::int64_t requests_ = 0;
  std::uint64_t trace_counter_ = 0;
  std::vector<std::shared_ptr<PlatformEmulator>> emulators_;
};

// One emulated platform.
//
// Thread safety: implementations serialize their own state; every method may be called from the
// server's worker threads at once.
class PlatformEmulator {
 public:
  virtual ~PlatformEmulator() = default;

  virtual std::string name() const = 0;  // Path prefix and inspection name, such as "meta".
  virtual void register_routes(httplib::Server& server) = 0;

  // GET /__inspect/<name>/audiences and /__inspect/<name>/audiences/<id>. Returns null for an
  // unknown id. With `include_members` false the members list is left out.
  virtual Json inspect_audiences() const = 0;
  virtual Json inspect_audience(const std::string& id, bool include_members) const = 0;

  virtual Json stats() const = 0;
  virtual void reset() = 0;
};

// Sends a plain-text HTML error page, as some platforms do from their load balancers.
void send_html_error(httplib::Response& response, int status);

}  // namespace platform_server

#endif  // ACTIVATION_PLATFORM_SERVER_SERVER_CORE_HPP_
