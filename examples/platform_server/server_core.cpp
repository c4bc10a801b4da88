#include "server_core.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <simdjson.h>

namespace platform_server {

namespace {

std::string to_hex(const unsigned char* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0x0f]);
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
               hex_value(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool starts_with_ignore_case(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

// The port of a socket address, or -1.
int port_of(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  if (address.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  return -1;
}

}  // namespace

Json to_json(simdjson::dom::element element) {
  switch (element.type()) {
    case simdjson::dom::element_type::ARRAY: {
      Json out = Json::array();
      auto& items = out.get_ref<Json::array_t&>();
      for (simdjson::dom::element item : simdjson::dom::array(element)) items.push_back(to_json(item));
      return out;
    }
    case simdjson::dom::element_type::OBJECT: {
      Json out = Json::object();
      auto& fields = out.get_ref<Json::object_t&>();
      // A name given twice keeps its last value, as nlohmann's own parser does.
      for (simdjson::dom::key_value_pair field : simdjson::dom::object(element)) {
        fields[std::string(field.key)] = to_json(field.value);
      }
      return out;
    }
    case simdjson::dom::element_type::STRING: return Json(std::string(std::string_view(element)));
    case simdjson::dom::element_type::INT64: return Json(static_cast<std::int64_t>(element));
    case simdjson::dom::element_type::UINT64: return Json(static_cast<std::uint64_t>(element));
    case simdjson::dom::element_type::DOUBLE: return Json(static_cast<double>(element));
    case simdjson::dom::element_type::BOOL: return Json(static_cast<bool>(element));
    case simdjson::dom::element_type::NULL_VALUE: break;
  }
  return Json(nullptr);
}

bool parse_json_param(std::string_view text, simdjson::dom::element& out) {
  thread_local simdjson::dom::parser parser;
  return parser.parse(text.data(), text.size()).get(out) == simdjson::SUCCESS;
}

void parse_form(std::string_view text, std::map<std::string, std::string>& out) {
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('&', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view pair = text.substr(start, end - start);
    if (!pair.empty()) {
      std::size_t equals = pair.find('=');
      std::string name = url_decode(pair.substr(0, equals));
      std::string value =
          equals == std::string_view::npos ? std::string() : url_decode(pair.substr(equals + 1));
      out[name] = std::move(value);
    }
    start = end + 1;
  }
}

std::string read_request(const httplib::Request& request, const httplib::ContentReader* reader,
                         RequestData& out) {
  out.body_encoding = "none";
  for (const auto& [name, value] : request.params) {
    out.params[name] = value;
    out.sources[name] = "query";
  }
  if (reader == nullptr) return {};

  std::string content_type = request.get_header_value("Content-Type");
  if (request.is_multipart_form_data()) {
    std::map<std::string, std::string> fields;
    std::string current;
    bool ok = (*reader)(
        [&](const httplib::MultipartFormData& part) {
          current = part.name;
          fields[current].clear();
          return true;
        },
        [&](const char* data, std::size_t size) {
          fields[current].append(data, size);
          return true;
        });
    if (!ok) return "the multipart body could not be read";
    out.body_encoding = "multipart";
    for (auto& [name, value] : fields) {
      out.params[name] = std::move(value);
      out.sources[name] = "multipart";
    }
    return {};
  }

  std::string body;
  if (request.has_header("Content-Length")) {
    // Uploads carry megabytes of JSON; growing the buffer once saves the copies of doubling it.
    std::size_t announced = std::strtoull(request.get_header_value("Content-Length").c_str(), nullptr, 10);
    body.reserve(std::min<std::size_t>(announced, std::size_t{64} << 20) + simdjson::SIMDJSON_PADDING);
  }
  bool ok = (*reader)([&](const char* data, std::size_t size) {
    body.append(data, size);
    return true;
  });
  // A POST or DELETE without Content-Length and without chunked encoding has no body, which
  // cpp-httplib reports as a failed read.
  bool bodiless = !request.has_header("Content-Length") && !request.has_header("Transfer-Encoding");
  if (!ok && !(bodiless && body.empty())) return "the request body could not be read";
  if (body.empty()) return {};

  if (starts_with_ignore_case(content_type, "application/json")) {
    // simdjson parses upload bodies (megabytes of JSON) several times faster than nlohmann, whose
    // parser took most of the server's CPU, on the client's critical path. The body keeps
    // SIMDJSON_PADDING bytes of spare capacity so that simdjson need not copy it.
    thread_local simdjson::dom::parser parser;
    body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
    simdjson::dom::element root;
    const simdjson::padded_string_view text(body.data(), body.size(), body.capacity());
    if (parser.parse(text).get(root) != simdjson::SUCCESS) {
      // simdjson rejects some JSON that nlohmann reads, such as integers beyond 64 bits.
      Json parsed = Json::parse(body, nullptr, false);
      if (!parsed.is_object()) return "the JSON body is not a JSON object";
      out.body_encoding = "json";
      for (auto& [name, value] : parsed.items()) {
        out.params[name] = std::move(value);
        out.sources[name] = "json";
      }
      return {};
    }
    if (!root.is_object()) return "the JSON body is not a JSON object";
    out.body_encoding = "json";
    for (simdjson::dom::key_value_pair field : simdjson::dom::object(root)) {
      const std::string name(field.key);
      out.sources[name] = "json";
      if (name == "payload" && field.value.is_object()) {
        out.params.erase(name);
        out.json_payload = field.value;
      } else {
        if (name == "payload") out.json_payload.reset();
        out.params[name] = to_json(field.value);
      }
    }
    return {};
  }
  if (starts_with_ignore_case(content_type, "application/x-www-form-urlencoded") || content_type.empty()) {
    std::map<std::string, std::string> fields;
    parse_form(body, fields);
    out.body_encoding = "form";
    for (auto& [name, value] : fields) {
      out.params[name] = std::move(value);
      out.sources[name] = "form";
    }
    return {};
  }
  return "unsupported Content-Type '" + content_type +
         "'; expected application/x-www-form-urlencoded, multipart/form-data or application/json";
}

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  return to_hex(digest, length);
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return to_hex(digest, sizeof digest);
}

void send_html_error(httplib::Response& response, int status) {
  response.status = status;
  std::string page =
      "<!DOCTYPE html>\n<html><head><title>Error | Platform test server</title></head>\n"
      "<body><h1>Sorry, something went wrong.</h1><p>The server could not complete your request (status " +
      std::to_string(status) + ").</p></body></html>\n";
  response.set_content(page, "text/html; charset=utf-8");
}

ServerCore::ServerCore(ServerOptions options) : options_(std::move(options)), random_(options_.faults.seed) {}

FaultPlan ServerCore::draw_faults(const std::string& platform) {
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  FaultPlan plan;
  double error_draw, html_draw, drop_draw, phase_draw, status_draw, latency_draw;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++requests_;
    error_draw = uniform(random_);
    html_draw = uniform(random_);
    drop_draw = uniform(random_);
    phase_draw = uniform(random_);
    status_draw = uniform(random_);
    latency_draw = uniform(random_);
  }

  const FaultOptions& faults = options_.faults;
  if (drop_draw < faults.drop_rate) {
    plan.kind = FaultKind::kDrop;
  } else if (error_draw < faults.error_rate) {
    plan.kind = html_draw < faults.html_error_share ? FaultKind::kHtml5xx : FaultKind::kJson5xx;
    plan.status = status_draw < 0.5 ? 500 : (status_draw < 0.75 ? 502 : 503);
  }
  plan.after_apply = plan.kind != FaultKind::kNone && phase_draw < faults.after_apply_share;
  plan.latency = faults.latency + std::chrono::milliseconds(static_cast<std::int64_t>(std::floor(
                                      latency_draw * static_cast<double>(faults.latency_jitter.count()))));
  return plan;
}

WindowCheck ServerCore::check_locked(AccountWindow& window, SteadyTime now, bool count) {
  WindowCheck check;
  if (options_.rate_limit <= 0) {
    if (count) ++window.requests;
    return check;
  }

  // A request at time t counts in every window (t - rate_window, t].
  while (!window.accepted.empty() && window.accepted.front() <= now - options_.rate_window) {
    window.accepted.pop_front();
  }
  auto in_window = static_cast<std::int64_t>(window.accepted.size());
  if (count && in_window >= options_.rate_limit) {
    check.allowed = false;
    check.in_window = in_window;
    check.usage_percent = 100.0 * static_cast<double>(in_window) / static_cast<double>(options_.rate_limit);
    check.regain = std::chrono::duration_cast<std::chrono::milliseconds>(window.accepted.front() +
                                                                         options_.rate_window - now);
    return check;
  }
  if (count) {
    window.accepted.push_back(now);
    ++window.requests;
    ++in_window;
    window.max_in_window = std::max(window.max_in_window, in_window);
  }
  check.in_window = in_window;
  check.usage_percent = 100.0 * static_cast<double>(in_window) / static_cast<double>(options_.rate_limit);
  return check;
}

WindowCheck ServerCore::admit_request(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  WindowCheck check = check_locked(windows_[key], std::chrono::steady_clock::now(), true);
  if (!check.allowed) ++windows_[key].throttled;
  return check;
}

WindowCheck ServerCore::peek_window(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  return check_locked(windows_[key], std::chrono::steady_clock::now(), false);
}

void ServerCore::note_connection(const httplib::Request& request) {
  std::lock_guard<std::mutex> lock(mutex_);
  connections_.insert(request.remote_addr + ":" + std::to_string(request.remote_port));
}

std::int64_t ServerCore::count_token_use(const std::string& token) {
  std::lock_guard<std::mutex> lock(mutex_);
  return ++token_uses_[token];
}

// cpp-httplib gives a handler no access to its socket, so the socket is found among the
// process's open descriptors by its two port numbers, and shut down. The library then fails to
// write the response and closes the descriptor itself, and the client sees the connection end
// without a response.
void ServerCore::drop_connection(const httplib::Request& request) {
  DIR* directory = opendir("/proc/self/fd");
  if (directory == nullptr) return;
  while (dirent* entry = readdir(directory)) {
    int fd = std::atoi(entry->d_name);
    if (fd <= 2 || fd == dirfd(directory)) continue;
    struct stat info {};
    if (fstat(fd, &info) != 0 || !S_ISSOCK(info.st_mode)) continue;

    sockaddr_storage local{};
    sockaddr_storage peer{};
    socklen_t local_size = sizeof local;
    socklen_t peer_size = sizeof peer;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_size) != 0) continue;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0) continue;
    if (port_of(local) == request.local_port && port_of(peer) == request.remote_port) {
      shutdown(fd, SHUT_RDWR);
      break;
    }
  }
  closedir(directory);
}

void ServerCore::count_fault(const std::string& platform, FaultPlan plan) {
  std::string kind;
  switch (plan.kind) {
    case FaultKind::kNone: return;
    case FaultKind::kJson5xx: kind = "json_5xx"; break;
    case FaultKind::kHtml5xx: kind = "html_5xx"; break;
    case FaultKind::kDrop: kind = "dropped_connection"; break;
  }
  kind += plan.after_apply ? "_after_apply" : "_before_apply";
  std::lock_guard<std::mutex> lock(mutex_);
  ++faults_[platform][kind];
}

std::string ServerCore::next_trace_id() {
  std::lock_guard<std::mutex> lock(mutex_);
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "T%011llx", static_cast<unsigned long long>(++trace_counter_));
  return buffer;
}

Json ServerCore::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Json out;
  out["requests"] = requests_;
  out["client_connections"] = connections_.size();
  out["faults"] = Json::object();
  for (const auto& [platform, kinds] : faults_) {
    for (const auto& [kind, count] : kinds) out["faults"][platform][kind] = count;
  }
  out["accounts"] = Json::object();
  for (const auto& [key, window] : windows_) {
    out["accounts"][key] = {{"requests", window.requests},
                            {"throttled", window.throttled},
                            {"max_in_window", window.max_in_window}};
  }
  out["tokens_used"] = Json::object();
  std::int64_t index = 0;
  for (const auto& [token, uses] : token_uses_) {
    // Tokens are secrets of the client under test; only their count of uses is shown.
    out["tokens_used"]["token_" + std::to_string(++index)] = uses;
  }
  out["rate_limit"] = {{"limit", options_.rate_limit},
                       {"window_ms", options_.rate_window.count()},
                       {"throttle_code", options_.throttle_code}};
  return out;
}

void ServerCore::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  random_.seed(options_.faults.seed);
  windows_.clear();
  token_uses_.clear();
  connections_.clear();
  faults_.clear();
  requests_ = 0;
  trace_counter_ = 0;
}

void ServerCore::add_emulator(std::shared_ptr<PlatformEmulator> emulator) {
  emulators_.push_back(std::move(emulator));
}

void ServerCore::register_routes(httplib::Server& server) {
  server.Get("/__inspect/health", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("{\"status\":\"ok\"}", "application/json");
  });

  server.Get("/__inspect/stats", [this](const httplib::Request&, httplib::Response& response) {
    Json out = stats();
    for (const auto& emulator : emulators_) out["platforms"][emulator->name()] = emulator->stats();
    response.set_content(out.dump(), "application/json");
  });

  server.Post("/__inspect/reset", [this](const httplib::Request&, httplib::Response& response) {
    reset();
    for (const auto& emulator : emulators_) emulator->reset();
    response.set_content("{\"reset\":true}", "application/json");
  });

  for (const auto& emulator : emulators_) {
    std::string prefix = "/__inspect/" + emulator->name() + "/audiences";
    PlatformEmulator* raw = emulator.get();
    server.Get(prefix, [raw](const httplib::Request&, httplib::Response& response) {
      response.set_content(raw->inspect_audiences().dump(), "application/json");
    });
    server.Get(prefix + R"(/([^/]+))", [raw](const httplib::Request& request, httplib::Response& response) {
      bool include_members = request.get_param_value("members") != "0";
      Json audience = raw->inspect_audience(request.matches[1], include_members);
      if (audience.is_null()) {
        response.status = 404;
        response.set_content(Json{{"error", "no audience with id " + std::string(request.matches[1])}}.dump(),
                             "application/json");
        return;
      }
      response.set_content(audience.dump(), "application/json");
    });
    emulator->register_routes(server);
  }
}

}  // namespace platform_server
