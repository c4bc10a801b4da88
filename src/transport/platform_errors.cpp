#include "activation/platform_errors.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace activation {

namespace {

using std::chrono::nanoseconds;
using Json = nlohmann::json;

std::optional<double> number_field(const Json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

void raise_to(std::optional<double>& current, std::optional<double> value) {
  if (!value) return;
  current = current ? std::max(*current, *value) : *value;
}

void raise_to(std::optional<nanoseconds>& current, nanoseconds value) {
  current = current ? std::max(*current, value) : value;
}

Json parse_object(std::string_view text) {
  Json parsed = Json::parse(text.begin(), text.end(), nullptr, false);
  return parsed.is_object() ? parsed : Json();
}

// X-App-Usage and the entries of X-Business-Use-Case-Usage carry the same three percentages.
void read_percentages(const Json& object, MetaUsage& usage) {
  raise_to(usage.max_percent, number_field(object, "call_count"));
  raise_to(usage.max_percent, number_field(object, "total_cputime"));
  raise_to(usage.max_percent, number_field(object, "total_time"));
}

bool is_throttle_code(std::int64_t code) {
  return code == 4 || code == 17 || code == 32 || code == 341 || code == 613 ||
         (code >= 80000 && code <= 80014);
}

bool is_auth_code(std::int64_t code) {
  // 190 is an invalid or expired token, 102 an invalid session and 104 a missing token. 10 and
  // 200-299 are missing permissions, 294 a missing ads_management permission, 2655 unaccepted
  // terms, 1487301 an audience not shared, and 368 a block for abuse. Only a person can fix them.
  return code == 190 || code == 102 || code == 104 || code == 10 || (code >= 200 && code <= 299) ||
         code == 294 || code == 2655 || code == 1487301 || code == 368;
}

PlatformErrorClass meta_error_class(std::int64_t code, std::optional<std::int64_t> subcode, bool transient,
                            int status) {
  if (is_throttle_code(code)) return PlatformErrorClass::kThrottled;
  if (is_auth_code(code)) return PlatformErrorClass::kAuth;
  if (code == 1 || code == 2 || code == 803) return PlatformErrorClass::kPlatform5xx;
  if (code == 2650 && subcode) {
    if (*subcode == 1870145) return PlatformErrorClass::kThrottled;    // Another update of the audience is running.
    if (*subcode == 1870148) return PlatformErrorClass::kPlatform5xx;  // Replace failed on Meta's side.
  }
  if (transient) return PlatformErrorClass::kPlatform5xx;
  if (status >= 500) return PlatformErrorClass::kPlatform5xx;
  return PlatformErrorClass::kInvalidRequest;
}

PlatformErrorClass status_error_class(int status) {
  if (status >= 200 && status < 300) return PlatformErrorClass::kNone;
  if (status == 429) return PlatformErrorClass::kThrottled;
  if (status == 401 || status == 403) return PlatformErrorClass::kAuth;
  if (status == 408) return PlatformErrorClass::kNetwork;
  if (status >= 500) return PlatformErrorClass::kPlatform5xx;
  return PlatformErrorClass::kInvalidRequest;
}

std::string html_title(std::string_view body) {
  std::string lower(body.substr(0, 4096));
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  auto open = lower.find("<title>");
  auto close = lower.find("</title>");
  if (open == std::string::npos || close == std::string::npos || close < open) return {};
  std::string title(body.substr(open + 7, close - open - 7));
  title.erase(std::remove_if(title.begin(), title.end(), [](char c) { return c == '\n' || c == '\r'; }),
              title.end());
  return title;
}

std::string describe_non_json(const HttpResponse& response) {
  std::string content_type(response.header("Content-Type").value_or("no content type"));
  std::string description = fmt::format("HTTP {} with a {}-byte body of type {} instead of a JSON response",
                                        response.status, response.body.size(), content_type);
  std::string title = html_title(response.body);
  if (!title.empty()) description += fmt::format(" (page title \"{}\")", title);
  return description;
}

void add_waits(const HttpResponse& response, std::chrono::system_clock::time_point now,
               ResponseClassification& out) {
  if (auto retry_after = response.header("Retry-After"))
    out.retry_after = parse_retry_after(*retry_after, now);
}

std::string int_or_empty(const std::optional<std::int64_t>& value) {
  return value ? std::to_string(*value) : std::string();
}

}  // namespace

std::string_view platform_error_class_name(PlatformErrorClass error_class) noexcept {
  switch (error_class) {
    case PlatformErrorClass::kNone: return "none";
    case PlatformErrorClass::kThrottled: return "throttled";
    case PlatformErrorClass::kAuth: return "auth";
    case PlatformErrorClass::kNetwork: return "network";
    case PlatformErrorClass::kPlatform5xx: return "platform_5xx";
    case PlatformErrorClass::kInvalidRequest: return "invalid_request";
  }
  return "none";
}

bool counts_against_circuit(PlatformErrorClass error_class) noexcept {
  return error_class == PlatformErrorClass::kNetwork || error_class == PlatformErrorClass::kPlatform5xx;
}

std::string ResponseClassification::summary() const {
  std::string text = fmt::format("{}: ", platform_error_class_name(error_class));
  // Meta's own messages usually start with "(#code)"; others get the code in front.
  if (code && message.rfind("(#", 0) != 0) text += fmt::format("(#{}) ", *code);
  text += message;
  std::string details;
  auto append = [&details](const std::string& part) {
    if (!details.empty()) details += ", ";
    details += part;
  };
  if (http_status != 0) append(fmt::format("HTTP {}", http_status));
  if (subcode) append("subcode " + int_or_empty(subcode));
  if (!trace_id.empty()) append("fbtrace_id " + trace_id);
  if (retry_after) {
    append(fmt::format("retry after {} s",
                       std::chrono::duration_cast<std::chrono::seconds>(*retry_after).count()));
  }
  if (!details.empty()) text += " [" + details + "]";
  return text;
}

MetaUsage parse_meta_usage(const HttpHeaders& headers) {
  MetaUsage usage;
  if (auto app = find_header(headers, "X-App-Usage")) read_percentages(parse_object(*app), usage);

  if (auto account = find_header(headers, "X-Ad-Account-Usage")) {
    Json object = parse_object(*account);
    std::optional<double> percent = number_field(object, "acc_id_util_pct");
    raise_to(usage.max_percent, percent);
    std::optional<double> reset = number_field(object, "reset_time_duration");
    if (percent && *percent >= 100.0 && reset && *reset > 0) {
      raise_to(usage.regain_after, nanoseconds(static_cast<std::int64_t>(*reset * 1e9)));
    }
  }

  // Keyed by business object id; every key and every entry counts, because the throttled bucket
  // can be any of them.
  if (auto business = find_header(headers, "X-Business-Use-Case-Usage")) {
    Json object = parse_object(*business);
    for (const auto& [id, entries] : object.items()) {
      if (!entries.is_array()) continue;
      for (const Json& entry : entries) {
        if (!entry.is_object()) continue;
        read_percentages(entry, usage);
        std::optional<double> minutes = number_field(entry, "estimated_time_to_regain_access");
        if (minutes && *minutes > 0) {
          raise_to(usage.regain_after, nanoseconds(static_cast<std::int64_t>(*minutes * 60e9)));
        }
      }
    }
  }
  return usage;
}

std::optional<nanoseconds> parse_retry_after(std::string_view value,
                                             std::chrono::system_clock::time_point now) {
  std::string text(value);
  text.erase(0, text.find_first_not_of(" \t"));
  text.erase(text.find_last_not_of(" \t") + 1);
  if (text.empty()) return std::nullopt;

  if (std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (text.size() > 9) return std::nullopt;  // More than 30 years: not a sensible delay.
    return std::chrono::seconds(std::stoll(text));
  }

  // An HTTP date (RFC 9110 IMF-fixdate), such as "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm parts{};
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &parts);
  if (end == nullptr || *end != '\0') return std::nullopt;
  std::time_t when = timegm(&parts);
  auto target = std::chrono::system_clock::from_time_t(when);
  if (target <= now) return nanoseconds::zero();
  return std::chrono::duration_cast<nanoseconds>(target - now);
}

ResponseClassification classify_http_response(const HttpResponse& response,
                                              std::chrono::system_clock::time_point now) {
  ResponseClassification out;
  out.http_status = response.status;
  out.error_class = status_error_class(response.status);
  add_waits(response, now, out);
  if (!out.ok()) out.message = fmt::format("HTTP {} from the platform", response.status);
  return out;
}

ResponseClassification classify_meta_response(const HttpResponse& response,
                                              std::chrono::system_clock::time_point now) {
  ResponseClassification out;
  out.http_status = response.status;
  add_waits(response, now, out);

  MetaUsage usage = parse_meta_usage(response.headers);
  out.usage_percent = usage.max_percent;
  if (!out.retry_after && usage.regain_after) out.retry_after = usage.regain_after;

  Json body = parse_object(response.body);
  auto error_it = body.is_object() ? body.find("error") : body.end();
  if (!body.is_object() || error_it == body.end() || !error_it->is_object()) {
    out.error_class = status_error_class(response.status);
    if (!out.ok()) {
      out.message = body.is_object() ? fmt::format("HTTP {} without an error object", response.status)
                                     : describe_non_json(response);
    }
    return out;
  }

  const Json& error = *error_it;
  auto read_int = [&error](const char* name) -> std::optional<std::int64_t> {
    auto it = error.find(name);
    if (it == error.end()) return std::nullopt;
    if (it->is_number_integer()) return it->get<std::int64_t>();
    if (it->is_string()) {
      const std::string& text = it->get_ref<const std::string&>();
      if (!text.empty() &&
          std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
        return std::stoll(text);
      }
    }
    return std::nullopt;
  };
  auto read_string = [&error](const char* name) {
    auto it = error.find(name);
    return it != error.end() && it->is_string() ? it->get<std::string>() : std::string();
  };

  out.code = read_int("code");
  out.subcode = read_int("error_subcode");
  out.error_type = read_string("type");
  out.message = redact_url(read_string("message"));
  out.user_message = redact_url(read_string("error_user_msg"));
  out.trace_id = read_string("fbtrace_id");
  auto transient_it = error.find("is_transient");
  out.is_transient = transient_it != error.end() && transient_it->is_boolean() && transient_it->get<bool>();
  if (out.message.empty())
    out.message = fmt::format("HTTP {} with an error object without a message", response.status);

  out.error_class = out.code ? meta_error_class(*out.code, out.subcode, out.is_transient, response.status)
                             : status_error_class(response.status == 200 ? 400 : response.status);
  return out;
}

ResponseClassification classify_transport_error(const TransportError& error) {
  ResponseClassification out;
  out.error_class =
      error.kind == TransportErrorKind::kInvalidRequest ? PlatformErrorClass::kInvalidRequest : PlatformErrorClass::kNetwork;
  out.message = redact_url(error.message);
  return out;
}

RateFeedback rate_feedback(const ResponseClassification& classification) {
  RateFeedback feedback;
  feedback.throttled = classification.error_class == PlatformErrorClass::kThrottled;
  feedback.usage_percent = classification.usage_percent;
  if (feedback.throttled) feedback.retry_after = classification.retry_after;
  return feedback;
}

Status validate_retry_policy(const RequestRetryPolicy& policy) {
  if (policy.max_retries < 0) {
    return invalid_argument(
        fmt::format("retry policy: max_retries must not be negative, got {}", policy.max_retries));
  }
  auto positive = [](nanoseconds value, const char* field) -> Status {
    if (value.count() > 0) return Status::ok();
    return invalid_argument(
        fmt::format("retry policy: {} must be a positive duration, got {} ns", field, value.count()));
  };
  ACT_RETURN_IF_ERROR(positive(policy.base_delay, "base_delay"));
  ACT_RETURN_IF_ERROR(positive(policy.max_delay, "max_delay"));
  ACT_RETURN_IF_ERROR(positive(policy.default_throttle_wait, "default_throttle_wait"));
  ACT_RETURN_IF_ERROR(positive(policy.max_throttle_wait, "max_throttle_wait"));
  ACT_RETURN_IF_ERROR(positive(policy.max_total_throttle_wait, "max_total_throttle_wait"));
  if (policy.max_delay < policy.base_delay) {
    return invalid_argument("retry policy: max_delay must not be shorter than base_delay");
  }
  return Status::ok();
}

nanoseconds full_jitter_delay(const RequestRetryPolicy& policy, int retry, double uniform) noexcept {
  // The exponent is capped so that the doubling cannot overflow before the max_delay cap applies.
  int exponent = std::clamp(retry - 1, 0, 40);
  double ceiling = std::min(static_cast<double>(policy.max_delay.count()),
                            static_cast<double>(policy.base_delay.count()) * std::ldexp(1.0, exponent));
  double fraction = std::clamp(uniform, 0.0, 1.0);
  return nanoseconds(static_cast<std::int64_t>(ceiling * fraction));
}

RetryBudget::RetryBudget(RequestRetryPolicy policy, std::uint64_t seed) : policy_(policy), random_(seed) {}

RetryDecision RetryBudget::next(const ResponseClassification& failure) {
  RetryDecision decision;
  switch (failure.error_class) {
    case PlatformErrorClass::kNone:
      decision.action = RetryAction::kFail;
      decision.reason = "internal error: a successful response was passed to RetryBudget::next";
      return decision;

    case PlatformErrorClass::kThrottled: {
      nanoseconds wait = failure.retry_after && *failure.retry_after > nanoseconds::zero()
                             ? std::min(*failure.retry_after, policy_.max_throttle_wait)
                             : policy_.default_throttle_wait;
      if (throttled_wait_ + wait > policy_.max_total_throttle_wait) {
        decision.action = RetryAction::kFail;
        decision.reason = fmt::format(
            "throttled for {} s in total, more than the {} s allowed: {}",
            std::chrono::duration_cast<std::chrono::seconds>(throttled_wait_).count(),
            std::chrono::duration_cast<std::chrono::seconds>(policy_.max_total_throttle_wait).count(),
            failure.summary());
        return decision;
      }
      throttled_wait_ += wait;
      decision.action = RetryAction::kRetry;
      decision.delay = wait;
      decision.counted = false;
      decision.reason = failure.summary();
      return decision;
    }

    case PlatformErrorClass::kAuth:
      decision.action = RetryAction::kPause;
      decision.reason =
          failure.summary() +
          "; the platform rejected the destination's credentials or permissions: replace its access "
          "token (or grant the missing permission), then resume the destination";
      return decision;

    case PlatformErrorClass::kInvalidRequest:
      decision.action = RetryAction::kFail;
      decision.reason = failure.summary();
      return decision;

    case PlatformErrorClass::kNetwork:
    case PlatformErrorClass::kPlatform5xx: {
      if (retries_used_ >= policy_.max_retries) {
        decision.action = RetryAction::kFail;
        decision.reason = fmt::format("gave up after {} retries: {}", retries_used_, failure.summary());
        return decision;
      }
      ++retries_used_;
      std::uniform_real_distribution<double> uniform(0.0, 1.0);
      nanoseconds delay = full_jitter_delay(policy_, retries_used_, uniform(random_));
      if (failure.retry_after)
        delay = std::max(delay, std::min(*failure.retry_after, policy_.max_throttle_wait));
      decision.action = RetryAction::kRetry;
      decision.delay = delay;
      decision.counted = true;
      decision.reason = failure.summary();
      return decision;
    }
  }
  return decision;
}

}  // namespace activation
