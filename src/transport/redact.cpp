#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <string_view>

#include "activation/backend/transport.hpp"

namespace activation {

namespace {

// Query parameter names whose values are credentials in the platforms' APIs.
constexpr std::array<std::string_view, 12> kSecretParameters = {
    "access_token", "appsecret_proof", "client_secret", "refresh_token", "id_token", "token",
    "api_key",      "apikey",          "key",           "password",      "secret",   "signature",
};

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool contains_ignore_case(std::string_view haystack, std::string_view needle) {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
  return it != haystack.end();
}

bool is_secret_parameter(std::string_view name) {
  return std::any_of(kSecretParameters.begin(), kSecretParameters.end(),
                     [&](std::string_view secret) { return equals_ignore_case(name, secret); });
}

bool is_parameter_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}

bool ends_value(char c) {
  return c == '&' || c == '#' || std::isspace(static_cast<unsigned char>(c));
}

}  // namespace

// The scan works on free text as well as on URLs, because libcurl error messages and logged
// lines may quote a URL anywhere inside them: every "name=value" whose name is a secret
// parameter and which starts the text or follows '?', '&' or a space has its value replaced.
std::string redact_url(std::string_view url) {
  std::string out;
  out.reserve(url.size());
  std::size_t i = 0;
  while (i < url.size()) {
    bool at_parameter_start = i == 0 || url[i - 1] == '?' || url[i - 1] == '&' ||
                              std::isspace(static_cast<unsigned char>(url[i - 1]));
    if (!at_parameter_start || !is_parameter_name_char(url[i])) {
      out.push_back(url[i]);
      ++i;
      continue;
    }

    std::size_t name_end = i;
    while (name_end < url.size() && is_parameter_name_char(url[name_end])) ++name_end;
    std::string_view name = url.substr(i, name_end - i);
    out.append(name);
    i = name_end;
    if (i >= url.size() || url[i] != '=' || !is_secret_parameter(name)) continue;

    out.append("=REDACTED");
    ++i;
    while (i < url.size() && !ends_value(url[i])) ++i;
  }
  return out;
}

bool is_secret_header(std::string_view name) noexcept {
  if (equals_ignore_case(name, "authorization") || equals_ignore_case(name, "proxy-authorization") ||
      equals_ignore_case(name, "cookie") || equals_ignore_case(name, "set-cookie")) {
    return true;
  }
  return contains_ignore_case(name, "token") || contains_ignore_case(name, "secret") ||
         contains_ignore_case(name, "api-key") || contains_ignore_case(name, "apikey");
}

std::optional<std::string_view> find_header(const HttpHeaders& headers, std::string_view name) {
  for (const HttpHeader& header : headers) {
    if (equals_ignore_case(header.name, name)) return std::string_view(header.value);
  }
  return std::nullopt;
}

std::string_view http_method_name(HttpMethod method) noexcept {
  switch (method) {
    case HttpMethod::kGet: return "GET";
    case HttpMethod::kPost: return "POST";
    case HttpMethod::kPut: return "PUT";
    case HttpMethod::kPatch: return "PATCH";
    case HttpMethod::kDelete: return "DELETE";
  }
  return "GET";
}

std::string_view transport_error_kind_name(TransportErrorKind kind) noexcept {
  switch (kind) {
    case TransportErrorKind::kConnectFailed: return "connect_failed";
    case TransportErrorKind::kTimedOut: return "timed_out";
    case TransportErrorKind::kConnectionDropped: return "connection_dropped";
    case TransportErrorKind::kTls: return "tls";
    case TransportErrorKind::kInvalidRequest: return "invalid_request";
    case TransportErrorKind::kResponseTooLarge: return "response_too_large";
    case TransportErrorKind::kOther: return "other";
  }
  return "other";
}

Status HttpResult::status() const {
  if (has_response()) return Status::ok();
  const TransportError& failure = error();
  switch (failure.kind) {
    case TransportErrorKind::kTimedOut: return {StatusCode::kDeadlineExceeded, failure.message};
    case TransportErrorKind::kInvalidRequest: return invalid_argument(failure.message);
    default: return unavailable(failure.message);
  }
}

}  // namespace activation
