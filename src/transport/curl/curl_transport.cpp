// The libcurl transport.
//
// Connection reuse: every easy handle is attached to one share object that holds the connection
// cache, the DNS cache and the TLS session cache, so a keep-alive connection opened by one thread
// serves the next request of any thread. Easy handles themselves are pooled: a request takes an
// idle handle (or creates one) and gives it back when done, so at most one handle per concurrent
// sender exists beyond the idle limit.
#include <curl/curl.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "activation/backend/transport.hpp"
#include "activation/version.h"

namespace activation {

namespace {

Status initialize_curl_once() {
  static std::once_flag once;
  static CURLcode code = CURLE_OK;
  std::call_once(once, [] { code = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (code != CURLE_OK) {
    return internal_error(std::string("curl_global_init failed: ") + curl_easy_strerror(code));
  }
  return Status::ok();
}

// The locks libcurl asks for when a share object is used from several threads.
class ShareLocks {
 public:
  void lock(curl_lock_data data) { mutexes_[index(data)].lock(); }
  void unlock(curl_lock_data data) { mutexes_[index(data)].unlock(); }

 private:
  static std::size_t index(curl_lock_data data) {
    auto value = static_cast<std::size_t>(data);
    return value < kCount ? value : 0;
  }
  static constexpr std::size_t kCount = CURL_LOCK_DATA_LAST;
  std::array<std::mutex, kCount> mutexes_;
};

extern "C" void share_lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
  static_cast<ShareLocks*>(user)->lock(data);
}

extern "C" void share_unlock(CURL*, curl_lock_data data, void* user) {
  static_cast<ShareLocks*>(user)->unlock(data);
}

struct ResponseSink {
  HttpResponse response;
  std::size_t max_bytes = 0;
  bool too_large = false;
};

extern "C" size_t write_body(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<ResponseSink*>(user);
  std::size_t bytes = size * count;
  if (sink->response.body.size() + bytes > sink->max_bytes) {
    sink->too_large = true;
    return 0;  // Makes libcurl stop with CURLE_WRITE_ERROR.
  }
  sink->response.body.append(data, bytes);
  return bytes;
}

std::string trim(std::string_view text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return std::string(text.substr(begin, end - begin));
}

extern "C" size_t write_header(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<ResponseSink*>(user);
  std::size_t bytes = size * count;
  std::string_view line(data, bytes);

  // A status line starts a new response: interim responses such as "100 Continue" and proxy
  // CONNECT replies come before the final one, and only the final one's headers are kept.
  if (line.substr(0, 5) == "HTTP/") {
    sink->response.headers.clear();
    return bytes;
  }
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return bytes;
  sink->response.headers.push_back({trim(line.substr(0, colon)), trim(line.substr(colon + 1))});
  return bytes;
}

TransportErrorKind classify_curl_code(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT: return TransportErrorKind::kConnectFailed;
    case CURLE_OPERATION_TIMEDOUT: return TransportErrorKind::kTimedOut;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return TransportErrorKind::kConnectionDropped;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED: return TransportErrorKind::kTls;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: return TransportErrorKind::kInvalidRequest;
    default: return TransportErrorKind::kOther;
  }
}

struct EasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;

struct HeaderListDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using HeaderList = std::unique_ptr<curl_slist, HeaderListDeleter>;

class CurlTransport final : public Transport {
 public:
  explicit CurlTransport(CurlTransportOptions options) : options_(std::move(options)) {
    if (options_.user_agent.empty()) options_.user_agent = std::string("activation/") + ACT_VERSION_STRING;
  }

  ~CurlTransport() override {
    // Handles first: each one refers to the share object until it is cleaned up.
    idle_.clear();
    if (share_ != nullptr) curl_share_cleanup(share_);
  }

  Status initialize() {
    share_ = curl_share_init();
    if (share_ == nullptr) return internal_error("curl_share_init failed");
    curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(share_, CURLSHOPT_USERDATA, &locks_);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    return Status::ok();
  }

  HttpResult send(const HttpRequest& request) override {
    auto started = std::chrono::steady_clock::now();
    std::string method(http_method_name(request.method));
    std::string redacted_url = redact_url(request.url);

    EasyHandle handle = take_handle();
    if (!handle) return TransportError{TransportErrorKind::kOther, "curl_easy_init failed"};

    ResponseSink sink;
    sink.max_bytes = options_.max_response_bytes;
    std::array<char, CURL_ERROR_SIZE> error_buffer{};
    HeaderList headers = build_headers(request);
    configure(handle.get(), request, headers.get(), &sink, error_buffer.data());

    CURLcode code = curl_easy_perform(handle.get());
    auto elapsed_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
            .count();

    if (code != CURLE_OK) {
      TransportError failure;
      failure.kind = sink.too_large ? TransportErrorKind::kResponseTooLarge : classify_curl_code(code);
      std::string detail =
          error_buffer[0] != '\0' ? std::string(error_buffer.data()) : curl_easy_strerror(code);
      if (sink.too_large) {
        detail = "the response exceeded " + std::to_string(options_.max_response_bytes) + " bytes";
      }
      failure.message =
          redact_url(method + " " + redacted_url + " failed after " + std::to_string(elapsed_ms) + " ms (" +
                     std::string(transport_error_kind_name(failure.kind)) + "): " + detail);
      options_.logger.log(LogLevel::kWarn, "transport", "{}", failure.message);
      give_back(std::move(handle));
      return failure;
    }

    long status = 0;
    curl_easy_getinfo(handle.get(), CURLINFO_RESPONSE_CODE, &status);
    sink.response.status = static_cast<int>(status);
    options_.logger.log(LogLevel::kDebug, "transport", "{} {} -> {} in {} ms, {} bytes", method, redacted_url,
                        status, elapsed_ms, sink.response.body.size());
    give_back(std::move(handle));
    return std::move(sink.response);
  }

 private:
  HeaderList build_headers(const HttpRequest& request) const {
    curl_slist* list = nullptr;
    for (const HttpHeader& header : request.headers) {
      std::string line = header.name + ": " + header.value;
      list = curl_slist_append(list, line.c_str());
    }
    // Without this libcurl waits for "100 Continue" before sending large bodies, which costs
    // a round trip or a one-second stall on servers that do not send it.
    list = curl_slist_append(list, "Expect:");
    return HeaderList(list);
  }

  void configure(CURL* curl, const HttpRequest& request, curl_slist* headers, ResponseSink* sink,
                 char* error_buffer) const {
    // curl_easy_reset clears the options of the previous request but keeps the handle's live
    // connections, so reuse survives it.
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_SHARE, share_);
    curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    auto timeout = request.timeout.count() > 0 ? request.timeout : options_.total_timeout;
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
    if (!options_.proxy.empty()) curl_easy_setopt(curl, CURLOPT_PROXY, options_.proxy.c_str());
    if (!options_.no_proxy.empty()) curl_easy_setopt(curl, CURLOPT_NOPROXY, options_.no_proxy.c_str());
    // Accept gzip only. The platforms' APIs all serve it, and a server that prefers Brotli at its
    // highest quality (cpp-httplib, which the test server uses) spends far more CPU per response.
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "gzip");
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, write_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, sink);

    switch (request.method) {
      case HttpMethod::kGet: curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L); break;
      case HttpMethod::kPost: set_body(curl, request); break;
      case HttpMethod::kPut:
      case HttpMethod::kPatch:
      case HttpMethod::kDelete:
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, std::string(http_method_name(request.method)).c_str());
        if (!request.body.empty() || request.method != HttpMethod::kDelete) set_body(curl, request);
        break;
    }
  }

  static void set_body(CURL* curl, const HttpRequest& request) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
  }

  EasyHandle take_handle() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!idle_.empty()) {
        EasyHandle handle = std::move(idle_.back());
        idle_.pop_back();
        return handle;
      }
    }
    return EasyHandle(curl_easy_init());
  }

  void give_back(EasyHandle handle) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (idle_.size() < options_.max_idle_handles) idle_.push_back(std::move(handle));
  }

  CurlTransportOptions options_;
  ShareLocks locks_;
  CURLSH* share_ = nullptr;
  std::mutex mutex_;
  std::vector<EasyHandle> idle_;
};

}  // namespace

Result<std::unique_ptr<Transport>> make_curl_transport(CurlTransportOptions options) {
  if (options.connect_timeout.count() <= 0) {
    return invalid_argument("connect_timeout must be positive, got " +
                            std::to_string(options.connect_timeout.count()) + " ms");
  }
  if (options.total_timeout.count() <= 0) {
    return invalid_argument("total_timeout must be positive, got " +
                            std::to_string(options.total_timeout.count()) + " ms");
  }
  if (options.max_response_bytes == 0) return invalid_argument("max_response_bytes must be positive, got 0");
  ACT_RETURN_IF_ERROR(initialize_curl_once());

  auto transport = std::make_unique<CurlTransport>(std::move(options));
  ACT_RETURN_IF_ERROR(transport->initialize());
  return std::unique_ptr<Transport>(std::move(transport));
}

}  // namespace activation
