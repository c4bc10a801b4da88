// The request pipeline shared by the LinkedIn, TikTok, Snapchat and webhook emulators. It notes the
// connection, draws the request's faults from the ServerCore and reads the raw body. Then it
// injects a fault before or after the handler runs, or sends the handler's reply.
#ifndef ACTIVATION_PLATFORM_SERVER_EMULATOR_BASE_HPP_
#define ACTIVATION_PLATFORM_SERVER_EMULATOR_BASE_HPP_

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "server_core.hpp"

namespace platform_server {

// A response before it is sent: JSON `body`, or `text` with `content_type` when text is set.
struct Reply {
  int status = 200;
  Json body;
  std::string text;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Options of the emulators after Meta, set from the command line.
struct SocialOptions {
  // LinkedIn: versions (YYYYMM) below this get HTTP 426; 0 accepts every version.
  int linkedin_min_version = 0;
  // LinkedIn: a new DMP segment refuses users (HTTP 409) for this long after its creation.
  std::chrono::milliseconds linkedin_ready_delay{5'000};
  // TikTok: the most batch_data rows one mapping request may carry.
  std::size_t tiktok_max_rows = 10'000;
  // Webhook: the key that signatures are verified with; empty skips the verification.
  std::string webhook_secret;
  // Webhook: timestamps further than this from the server's clock are refused.
  std::chrono::seconds webhook_max_skew{300};
  // Webhook: an operation without an identifier of this field is rejected; empty rejects none.
  std::string webhook_require_field;
};

// Thread safety: handlers run on the server's worker threads; each emulator serializes its own
// state with mutex_.
class EmulatorBase : public PlatformEmulator {
 public:
  Json stats() const override;

 protected:
  explicit EmulatorBase(ServerCore& core) : core_(core) {}

  // Handles one request; `body` is the raw request body. The state mutex is not held.
  using Handler = std::function<Reply(const httplib::Request& request, const std::string& body)>;

  // Registers `handler` for `method` ("GET", "POST", "DELETE") on `pattern`, counted in the
  // stats under `endpoint`.
  void route(httplib::Server& server, const std::string& method, const std::string& pattern,
             const std::string& endpoint, Handler handler);

  // The platform's response to an injected 5xx fault (JSON), for `status` 500, 502 or 503.
  virtual Reply server_error(int status) = 0;

  // Checks the token against --token and --token-expire-after. Returns "" when it is accepted,
  // "missing", "unknown" or "expired" otherwise.
  std::string check_token(const std::string& token);

  void count_error(const std::string& code);
  void reset_counts();

  ServerCore& core_;
  mutable std::mutex mutex_;

 private:
  void serve(const httplib::Request& request, httplib::Response& response,
             const httplib::ContentReader* reader, const std::string& endpoint, const Handler& handler);
  void send(httplib::Response& response, const Reply& reply);

  mutable std::mutex counts_mutex_;
  std::map<std::string, std::int64_t> requests_by_endpoint_;
  std::map<std::string, std::int64_t> errors_by_code_;
};

// Returns true for `length` lowercase hexadecimal characters.
bool is_lower_hex(const std::string& value, std::size_t length);

}  // namespace platform_server

#endif  // ACTIVATION_PLATFORM_SERVER_EMULATOR_BASE_HPP_
