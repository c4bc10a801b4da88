// The transport backend: moves one HTTP request to a destination and brings back its response.
//
// A transport never interprets a platform's response: any HTTP status, 200 or 503, is a response.
// Only a failure to exchange a request and a response at all is a TransportError, classified by
// kind so that the caller can decide whether a retry is safe.
//
// Secrets: the transport never logs a request body, and it logs URLs and headers only after
// redact_url() and is_secret_header() have removed access tokens, proofs and Authorization values.
#ifndef ACTIVATION_BACKEND_TRANSPORT_HPP_
#define ACTIVATION_BACKEND_TRANSPORT_HPP_

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "activation/export.hpp"
#include "activation/log.hpp"
#include "activation/status.hpp"

namespace activation {

struct HttpHeader {
  std::string name;
  std::string value;
};
using HttpHeaders = std::vector<HttpHeader>;

// Returns the value of the first header called `name`, compared ASCII case-insensitively, or
// nullopt. The view points into `headers`.
ACT_EXPORT std::optional<std::string_view> find_header(const HttpHeaders& headers, std::string_view name);

enum class HttpMethod : int { kGet = 0, kPost, kPut, kPatch, kDelete };

// Returns the method as sent on the wire ("GET", "DELETE").
ACT_EXPORT std::string_view http_method_name(HttpMethod method) noexcept;

struct HttpRequest {
  HttpMethod method = HttpMethod::kGet;
  std::string url;  // Absolute http:// or https:// URL with its query string.
  HttpHeaders headers;
  std::string body;  // Sent as is; the caller sets Content-Type in `headers`.
  // Limit for the whole exchange; zero uses the transport's default.
  std::chrono::milliseconds timeout{0};
};

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;  // Of the final response, in the order received.
  std::string body;     // Decoded when the server compressed it.

  std::optional<std::string_view> header(std::string_view name) const { return find_header(headers, name); }
};

// Why no response came back.
enum class TransportErrorKind : int {
  kConnectFailed = 0,  // DNS lookup or TCP connect failed: the request was never sent.
  kTimedOut,           // The connect or the total timeout expired; the request may have arrived.
  kConnectionDropped,  // The peer closed or reset the connection before a complete response.
  kTls,                // TLS handshake or certificate verification failed.
  kInvalidRequest,     // The request itself is unusable (bad URL, unsupported scheme).
  kResponseTooLarge,   // The response exceeded CurlTransportOptions::max_response_bytes.
  kOther,
};

// Returns the snake_case name ("connect_failed", "timed_out", "connection_dropped", ...).
ACT_EXPORT std::string_view transport_error_kind_name(TransportErrorKind kind) noexcept;

struct TransportError {
  TransportErrorKind kind = TransportErrorKind::kOther;
  std::string message;  // Free of secrets: URLs in it are redacted.
};

// Either a response (of any HTTP status) or a transport error, never both.
//
// Thread safety: a plain value.
class [[nodiscard]] ACT_EXPORT HttpResult {
 public:
  HttpResult(HttpResponse response) : data_(std::move(response)) {}  // NOLINT(google-explicit-constructor)
  HttpResult(TransportError error) : data_(std::move(error)) {}      // NOLINT(google-explicit-constructor)

  bool has_response() const noexcept { return std::holds_alternative<HttpResponse>(data_); }

  // REQUIRES: has_response().
  const HttpResponse& response() const& { return std::get<HttpResponse>(data_); }
  HttpResponse&& response() && { return std::get<HttpResponse>(std::move(data_)); }

  // REQUIRES: !has_response().
  const TransportError& error() const { return std::get<TransportError>(data_); }

  // Returns OK when a response came back; otherwise kDeadlineExceeded for a timeout,
  // kInvalidArgument for an unusable request, and kUnavailable for every other kind.
  Status status() const;

 private:
  std::variant<HttpResponse, TransportError> data_;
};

// Thread safety: send() may be called from many threads at once.
class ACT_EXPORT Transport {
 public:
  virtual ~Transport() = default;

  // Sends `request` and waits for the complete response or a transport error.
  virtual HttpResult send(const HttpRequest& request) = 0;
};

struct CurlTransportOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds total_timeout{60'000};  // Per request, unless HttpRequest::timeout is set.
  // A PEM bundle of trusted certificate authorities; empty uses the system's store. Peer and
  // host name verification are always on.
  std::string ca_file;
  // A proxy URL for every request. Empty leaves libcurl's default, which reads http_proxy,
  // https_proxy, all_proxy and no_proxy from the environment.
  std::string proxy;
  // Hosts that bypass the proxy, comma-separated ("127.0.0.1,localhost"). Empty leaves libcurl's
  // default, the no_proxy environment variable.
  std::string no_proxy;
  std::string user_agent;  // Empty sends "activation/<version>".
  std::size_t max_response_bytes = 64u << 20;
  // Idle libcurl handles kept for reuse; each keeps its own connections to a host alive.
  std::size_t max_idle_handles = 16;
  Logger logger;  // Receives one debug line per request and a warning per transport error.
};

// Creates the libcurl transport. Fails with kInvalidArgument when an option is out of range
// (a non-positive timeout, say), and with kInternal when libcurl cannot be initialized.
ACT_EXPORT Result<std::unique_ptr<Transport>> make_curl_transport(CurlTransportOptions options = {});

// Returns `url` with the values of query parameters that carry secrets (access_token,
// appsecret_proof, client_secret, refresh_token, and similar) replaced by "REDACTED".
ACT_EXPORT std::string redact_url(std::string_view url);

// Returns true for headers whose values are secrets (Authorization, Proxy-Authorization, Cookie,
// and names that contain "token", "secret" or "api-key"), compared case-insensitively.
ACT_EXPORT bool is_secret_header(std::string_view name) noexcept;

}  // namespace activation

#endif  // ACTIVATION_BACKEND_TRANSPORT_HPP_
