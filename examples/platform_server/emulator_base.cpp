#include "emulator_base.hpp"

#include <algorithm>
#include <thread>

namespace platform_server {

bool is_lower_hex(const std::string& value, std::size_t length) {
  return value.size() == length && std::all_of(value.begin(), value.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Json EmulatorBase::stats() const {
  std::lock_guard<std::mutex> lock(counts_mutex_);
  return Json{{"requests_by_endpoint", requests_by_endpoint_}, {"errors_by_code", errors_by_code_}};
}

void EmulatorBase::count_error(const std::string& code) {
  std::lock_guard<std::mutex> lock(counts_mutex_);
  ++errors_by_code_[code];
}

void EmulatorBase::reset_counts() {
  std::lock_guard<std::mutex> lock(counts_mutex_);
  requests_by_endpoint_.clear();
  errors_by_code_.clear();
}

std::string EmulatorBase::check_token(const std::string& token) {
  const ServerOptions& options = core_.options();
  if (token.empty()) return "missing";
  bool known = options.tokens.empty() ||
               std::find(options.tokens.begin(), options.tokens.end(), token) != options.tokens.end();
  if (!known) return "unknown";
  std::int64_t uses = core_.count_token_use(token);
  if (options.token_expire_after > 0 && uses > options.token_expire_after) return "expired";
  return {};
}

void EmulatorBase::route(httplib::Server& server, const std::string& method, const std::string& pattern,
                         const std::string& endpoint, Handler handler) {
  if (method == "GET") {
    server.Get(pattern,
               [this, endpoint, handler](const httplib::Request& request, httplib::Response& response) {
                 serve(request, response, nullptr, endpoint, handler);
               });
    return;
  }
  auto with_body = [this, endpoint, handler](const httplib::Request& request, httplib::Response& response,
                                             const httplib::ContentReader& reader) {
    serve(request, response, &reader, endpoint, handler);
  };
  if (method == "POST") server.Post(pattern, with_body);
  if (method == "DELETE") server.Delete(pattern, with_body);
}

void EmulatorBase::serve(const httplib::Request& request, httplib::Response& response,
                         const httplib::ContentReader* reader, const std::string& endpoint,
                         const Handler& handler) {
  core_.note_connection(request);
  FaultPlan plan = core_.draw_faults(name());
  if (plan.latency.count() > 0) std::this_thread::sleep_for(plan.latency);

  // The body is read in every case, so that a fault injected before the request is applied still
  // leaves the connection clean for keep-alive.
  std::string body;
  if (reader != nullptr) {
    (*reader)([&body](const char* data, std::size_t size) {
      body.append(data, size);
      return true;
    });
  }
  {
    std::lock_guard<std::mutex> lock(counts_mutex_);
    ++requests_by_endpoint_[endpoint];
  }

  if (plan.kind != FaultKind::kNone && !plan.after_apply) {
    core_.count_fault(name(), plan);
    if (plan.kind == FaultKind::kDrop) {
      core_.drop_connection(request);
      response.status = 500;
      return;
    }
    if (plan.kind == FaultKind::kHtml5xx) {
      send_html_error(response, plan.status);
      return;
    }
    send(response, server_error(plan.status));
    return;
  }

  Reply reply = handler(request, body);

  if (plan.kind != FaultKind::kNone) {
    core_.count_fault(name(), plan);
    if (plan.kind == FaultKind::kDrop) {
      core_.drop_connection(request);
      response.status = 500;
      return;
    }
    if (plan.kind == FaultKind::kHtml5xx) {
      send_html_error(response, plan.status);
      return;
    }
    send(response, server_error(plan.status));
    return;
  }
  send(response, reply);
}

void EmulatorBase::send(httplib::Response& response, const Reply& reply) {
  response.status = reply.status;
  for (const auto& [name, value] : reply.headers) response.set_header(name, value);
  if (!reply.content_type.empty()) {
    response.set_content(reply.text, reply.content_type);
  } else if (!reply.body.is_null()) {
    response.set_content(reply.body.dump(), "application/json");
  }
}

}  // namespace platform_server
