// activate hash: shows exactly what a platform receives for each identifier, to debug a poor
// match rate. Reads NDJSON on stdin and writes one NDJSON line per input line, in order.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "activation/identifiers.hpp"
#include "commands.hpp"

namespace activate {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kUsage =
    "usage: activate hash --platform PLATFORM [--default-region CODE] [--no-gmail-canonicalization]\n"
    "\n"
    "Normalizes and hashes identifiers the way PLATFORM receives them. Reads NDJSON on stdin, one\n"
    "object per line:\n"
    "  {\"field\": \"phone\", \"value\": \"(650) 253-0000\", \"country\": \"US\"}\n"
    "and writes one line per input line, in the same order:\n"
    "  {\"field\", \"input\", \"normalized\", \"sha256\" (null when the platform takes the value\n"
    "   unhashed), \"error\" (null or {\"code\", \"message\"}), \"warnings\" ([{\"code\", \"message\"}])}\n"
    "A line that is not a valid request gets an error line that also has \"line\", its line number,\n"
    "and reading goes on. Exit status 0 when stdin was read to its end, whatever the lines held.\n"
    "\n"
    "options:\n"
    "  --platform PLATFORM          meta, google, linkedin, tiktok or snapchat (required)\n"
    "  --default-region CODE        ISO 3166-1 alpha-2 region for phone numbers without a country\n"
    "                               code when the line has no usable country (default US)\n"
    "  --no-gmail-canonicalization  google: keep the dots and +tag of gmail.com addresses\n"
    "\n"
    "fields: email, phone, first_name, last_name, first_initial, city, state, zip, country, dob,\n"
    "        gender, maid, external_id\n";

// The maximum line length: a longer line is reported and skipped rather than held in memory. The
// longest value any field accepts is 1 KiB, so a valid request never comes close, and a 1 MB value
// still reaches the library and gets its "too_long" reason.
constexpr std::size_t kMaxLineBytes = 4 << 20;

Json reason_json(std::string_view code, std::string_view message) {
  Json reason = Json::object();
  reason["code"] = code;
  reason["message"] = message;
  return reason;
}

// The line for a request that could not be read; `field` and `input` are echoed when known.
Json request_error(std::size_t line_number, std::string_view code, const std::string& message,
                   const Json& field, const Json& input) {
  Json out = Json::object();
  out["line"] = line_number;
  out["field"] = field;
  out["input"] = input;
  out["normalized"] = nullptr;
  out["sha256"] = nullptr;
  out["error"] = reason_json(code, "line " + std::to_string(line_number) + ": " + message);
  out["warnings"] = Json::array();
  return out;
}

Json result_json(const activation::NormalizedIdentifier& id, const std::string& field,
                 const std::string& input) {
  Json out = Json::object();
  out["field"] = field;
  out["input"] = input;
  if (id.ok()) {
    out["normalized"] = id.normalized;
    out["sha256"] = id.hashed ? Json(id.sha256) : Json(nullptr);
    out["error"] = nullptr;
  } else {
    out["normalized"] = nullptr;
    out["sha256"] = nullptr;
    out["error"] = reason_json(id.error->code, id.error->message);
  }
  Json warnings = Json::array();
  for (const auto& warning : id.warnings) warnings.push_back(reason_json(warning.code, warning.message));
  out["warnings"] = std::move(warnings);
  return out;
}

// Turns one input line into its output line.
Json process_line(const activation::Normalizer& normalizer, std::size_t line_number, const std::string& line,
                  activation::NormalizedIdentifier& scratch) {
  Json request = Json::parse(line, nullptr, false);
  if (request.is_discarded()) {
    return request_error(line_number, "invalid_json", "not valid JSON (or not UTF-8)", nullptr, nullptr);
  }
  if (!request.is_object()) {
    return request_error(line_number, "invalid_request",
                         "expected a JSON object with \"field\" and \"value\"", nullptr, nullptr);
  }

  Json field_json = request.contains("field") ? request["field"] : Json(nullptr);
  Json value_json = request.contains("value") ? request["value"] : Json(nullptr);
  if (!field_json.is_string()) {
    return request_error(line_number, "invalid_request", "\"field\" is missing or not a string", field_json,
                         value_json);
  }
  const std::string field_name = field_json.get<std::string>();
  auto field = activation::parse_field(field_name);
  if (!field) {
    return request_error(
        line_number, "unknown_field",
        "unknown field '" + field_name +
            "'; expected email, phone, first_name, last_name, first_initial, city, state, zip, "
            "country, dob, gender, maid or external_id",
        field_json, value_json);
  }

  // Numbers are accepted as their JSON text, since spreadsheets turn phones and zips into numbers.
  std::string value;
  if (value_json.is_string()) {
    value = value_json.get<std::string>();
  } else if (value_json.is_number_integer() || value_json.is_number_unsigned()) {
    value = value_json.dump();
  } else {
    return request_error(line_number, "invalid_request",
                         "\"value\" is missing or not a string or a whole number", field_json, value_json);
  }

  std::string country;
  if (request.contains("country") && !request["country"].is_null()) {
    if (!request["country"].is_string()) {
      return request_error(line_number, "invalid_request", "\"country\" is not a string", field_json,
                           value_json);
    }
    country = request["country"].get<std::string>();
  }

  normalizer.normalize_into(*field, value, activation::RowContext{country}, scratch);
  return result_json(scratch, field_name, value);
}

void write_line(const Json& out) {
  // The input echo may hold anything a JSON string can; replace what is not UTF-8 rather than fail.
  std::string text = out.dump(-1, ' ', false, Json::error_handler_t::replace);
  text.push_back('\n');
  std::fwrite(text.data(), 1, text.size(), stdout);
}

}  // namespace

int run_hash(const std::vector<std::string>& args) {
  std::string platform_name;
  activation::NormalizerOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if ((arg == "--platform" || arg == "--default-region") && i + 1 >= args.size()) {
      std::fprintf(stderr, "activate hash: %s needs a value\n\n%s", arg.c_str(), kUsage);
      return 2;
    }
    if (arg == "--platform") {
      platform_name = args[++i];
    } else if (arg == "--default-region") {
      options.default_region = args[++i];
    } else if (arg == "--no-gmail-canonicalization") {
      options.google_canonicalize_gmail = false;
    } else {
      std::fprintf(stderr, "activate hash: unknown option '%s'\n\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (platform_name.empty()) {
    std::fprintf(stderr, "activate hash: --platform is required\n\n%s", kUsage);
    return 2;
  }
  auto platform = activation::parse_platform(platform_name);
  if (!platform) {
    std::fprintf(
        stderr, "activate hash: unknown platform '%s'; expected meta, google, linkedin, tiktok or snapchat\n",
        platform_name.c_str());
    return 2;
  }
  auto normalizer = activation::Normalizer::create(*platform, options);
  if (!normalizer.is_ok()) {
    std::fprintf(stderr, "activate hash: %s\n", normalizer.status().message().c_str());
    return 2;
  }

  // Read line by line with a bound on the line length; a final line without '\n' counts too.
  activation::NormalizedIdentifier scratch;
  std::string line;
  bool too_long = false;
  std::size_t line_number = 0;
  std::vector<char> buffer(64 * 1024);
  auto finish_line = [&] {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (too_long) {
      write_line(
          request_error(line_number, "invalid_request", "longer than 4 MiB; skipped", nullptr, nullptr));
    } else {
      write_line(process_line(*normalizer, line_number, line, scratch));
    }
    line.clear();
    too_long = false;
  };
  std::size_t read = 0;
  while ((read = std::fread(buffer.data(), 1, buffer.size(), stdin)) > 0) {
    std::size_t start = 0;
    for (std::size_t i = 0; i < read; ++i) {
      if (buffer[i] != '\n') continue;
      if (!too_long) line.append(buffer.data() + start, i - start);
      too_long = too_long || line.size() > kMaxLineBytes;
      finish_line();
      start = i + 1;
    }
    if (!too_long) line.append(buffer.data() + start, read - start);
    if (line.size() > kMaxLineBytes) {
      too_long = true;
      line.clear();
    }
  }
  if (!line.empty() || too_long) finish_line();

  if (std::ferror(stdin)) {
    std::fprintf(stderr, "activate hash: reading stdin failed: %s\n", std::strerror(errno));
    return 1;
  }
  if (std::fflush(stdout) != 0) {
    std::fprintf(stderr, "activate hash: writing stdout failed: %s\n", std::strerror(errno));
    return 1;
  }
  return 0;
}

}  // namespace activate
