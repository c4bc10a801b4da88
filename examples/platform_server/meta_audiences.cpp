// The audience, upload, session and inspection handlers of the Meta emulator. The state mutex
// is held by the caller (MetaEmulator::dispatch) for every handler here.
#include <algorithm>
#include <chrono>
#include <deque>
#include <set>
#include <span>
#include <string_view>

#include "meta_emulator.hpp"

namespace platform_server {

namespace {

constexpr std::size_t kMaxRowsPerRequest = 10'000;
constexpr std::size_t kMaxInvalidSamples = 100;
constexpr std::int64_t kFirstAudienceId = 23850000000000001;
constexpr std::int64_t kFirstAutomaticSession = 7000000000000001;

// Multi-key schema fields. The hashed ones must be 64 lowercase hex characters.
const std::set<std::string> kMultiKeyFields = {"EXTERN_ID",
                                               "EMAIL",
                                               "PHONE",
                                               "GEN",
                                               "DOBY",
                                               "DOBM",
                                               "DOBD",
                                               "LN",
                                               "FN",
                                               "FI",
                                               "CT",
                                               "ST",
                                               "ZIP",
                                               "MADID",
                                               "COUNTRY",
                                               "LOOKALIKE_VALUE",
                                               "DATA_PROCESSING_OPTIONS",
                                               "DATA_PROCESSING_OPTIONS_COUNTRY",
                                               "DATA_PROCESSING_OPTIONS_STATE",
                                               "PAGEUID",
                                               "APPUID"};
const std::set<std::string> kSingleKeyFields = {"EMAIL_SHA256", "PHONE_SHA256", "MOBILE_ADVERTISER_ID",
                                                "EXTERN_ID", "UID"};
const std::set<std::string> kHashedFields = {"EMAIL", "PHONE", "GEN",     "DOBY",         "DOBM",
                                             "DOBD",  "LN",    "FN",      "FI",           "CT",
                                             "ST",    "ZIP",   "COUNTRY", "EMAIL_SHA256", "PHONE_SHA256"};

const std::set<std::string> kAudienceFields = {"id",
                                               "name",
                                               "description",
                                               "subtype",
                                               "customer_file_source",
                                               "operation_status",
                                               "delivery_status",
                                               "approximate_count_lower_bound",
                                               "approximate_count_upper_bound",
                                               "time_created",
                                               "time_content_updated",
                                               "account_id",
                                               "retention_days",
                                               "is_value_based",
                                               "data_source"};

const std::set<std::string> kFileSources = {"USER_PROVIDED_ONLY", "PARTNER_PROVIDED_ONLY",
                                            "BOTH_USER_AND_PARTNER_PROVIDED"};

// A rejection that the caller turns into an error envelope.
struct Failure {
  int status = 400;
  int code = 100;
  std::optional<std::int64_t> subcode;
  std::string type = "OAuthException";
  std::string message;
};

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<std::int64_t> as_int(const Json& value) {
  if (value.is_number_integer()) return value.get<std::int64_t>();
  if (value.is_number_unsigned() && value.get<std::uint64_t>() <= INT64_MAX) return value.get<std::int64_t>();
  if (!value.is_string()) return std::nullopt;
  const std::string& text = value.get_ref<const std::string&>();
  if (text.empty() || text.size() > 18 || !std::all_of(text.begin(), text.end(), ::isdigit))
    return std::nullopt;
  return std::stoll(text);
}

std::optional<bool> as_bool(const Json& value) {
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_number_integer()) return value.get<std::int64_t>() != 0;
  if (!value.is_string()) return std::nullopt;
  const std::string& text = value.get_ref<const std::string&>();
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  return std::nullopt;
}

// Returns a parameter that may arrive as JSON text (query, form, multipart) or as a JSON value
// (JSON body). Missing gives null; text that is not JSON gives a discarded value.
Json json_param(const RequestData& data, const std::string& name) {
  auto it = data.params.find(name);
  if (it == data.params.end()) return nullptr;
  if (!it->second.is_string()) return it->second;
  return Json::parse(it->second.get<std::string>(), nullptr, false);
}

std::string string_param(const RequestData& data, const std::string& name) {
  auto it = data.params.find(name);
  if (it == data.params.end()) return {};
  return it->second.is_string() ? it->second.get<std::string>() : it->second.dump();
}

bool is_sha256_hex(std::string_view value) {
  if (value.size() != 64) return false;
  unsigned bad = 0;
  for (char c : value) bad |= static_cast<unsigned>(!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')));
  return bad == 0;
}

// One upload's schema and cells. The cells are views into the parsed payload (or into `owned`), so
// an Upload is valid only while its request is handled.
struct Upload {
  std::vector<std::string> schema;
  std::string data_source;
  std::size_t width = 0;                // Cells per row.
  std::vector<std::string_view> cells;  // Row by row, `width` cells each.
  std::deque<std::string> owned;        // The text of cells that were not JSON strings.

  std::size_t row_count() const { return width == 0 ? 0 : cells.size() / width; }
  std::span<const std::string_view> row(std::size_t index) const {
    return std::span<const std::string_view>(cells).subspan(index * width, width);
  }
};

struct SessionParams {
  bool present = false;
  std::int64_t session_id = 0;
  std::int64_t batch_seq = 0;
  bool last_batch_flag = false;
};

std::optional<Failure> parse_session(const RequestData& data, bool required, SessionParams& out) {
  Json session = json_param(data, "session");
  if (session.is_null()) {
    if (required)
      return Failure{400, 100, std::nullopt, "OAuthException", "(#100) The parameter session is required"};
    return std::nullopt;
  }
  if (!session.is_object()) {
    return Failure{400, 100, std::nullopt, "OAuthException", "(#100) Param session must be a JSON object"};
  }
  std::optional<std::int64_t> id =
      session.contains("session_id") ? as_int(session["session_id"]) : std::nullopt;
  if (!id || *id <= 0) {
    return Failure{400, 100, std::nullopt, "OAuthException",
                   "(#100) session.session_id must be a positive 64-bit integer"};
  }
  std::optional<std::int64_t> seq =
      session.contains("batch_seq") ? as_int(session["batch_seq"]) : std::nullopt;
  if (!seq || *seq < 1) {
    return Failure{400, 100, std::nullopt, "OAuthException",
                   "(#100) session.batch_seq must be an integer of 1 or more"};
  }
  std::optional<bool> last =
      session.contains("last_batch_flag") ? as_bool(session["last_batch_flag"]) : false;
  if (!last) {
    return Failure{400, 100, std::nullopt, "OAuthException",
                   "(#100) session.last_batch_flag must be a boolean"};
  }
  out.present = true;
  out.session_id = *id;
  out.batch_seq = *seq;
  out.last_batch_flag = *last;
  return std::nullopt;
}

std::optional<Failure> parse_schema(const Json& schema, Upload& out) {
  auto invalid = [](const std::string& message) {
    return Failure{400, 100, std::nullopt, "OAuthException", "(#100) " + message};
  };
  if (schema.is_string()) {
    std::string field = schema.get<std::string>();
    if (kSingleKeyFields.count(field) == 0) return invalid("Invalid schema: " + field);
    out.schema = {field};
    out.data_source = "FILE_IMPORTED.HASHES_OR_USER_IDS";
    return std::nullopt;
  }
  if (!schema.is_array() || schema.empty())
    return invalid("The payload's schema must be a field name or an array of them");

  std::set<std::string> seen;
  for (const Json& item : schema) {
    if (!item.is_string()) return invalid("The payload's schema must contain only field names");
    std::string field = item.get<std::string>();
    if (kMultiKeyFields.count(field) == 0 && kSingleKeyFields.count(field) == 0) {
      return invalid("Invalid schema field: " + field);
    }
    if (!seen.insert(field).second) return invalid("The schema names field " + field + " twice");
    out.schema.push_back(field);
  }
  bool single = out.schema.size() == 1 && kSingleKeyFields.count(out.schema[0]) != 0 &&
                kMultiKeyFields.count(out.schema[0]) == 0;
  out.data_source = single ? "FILE_IMPORTED.HASHES_OR_USER_IDS" : "FILE_IMPORTED.MULTI_HASHES";
  return std::nullopt;
}

// Appends the text of one cell to `out`: a string as it is, a number or an array (such as the
// DATA_PROCESSING_OPTIONS cell ["LDU"]) as its JSON text, null as empty. Returns false for any other
// value.
bool add_cell(simdjson::dom::element cell, Upload& out) {
  switch (cell.type()) {
    case simdjson::dom::element_type::STRING: out.cells.push_back(std::string_view(cell)); return true;
    case simdjson::dom::element_type::NULL_VALUE: out.cells.emplace_back(); return true;
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
    case simdjson::dom::element_type::ARRAY:
      out.owned.push_back(to_json(cell).dump());
      out.cells.push_back(out.owned.back());
      return true;
    default: return false;
  }
}

// Reads the payload parameter into `out`, as a view of the parsed request: the JSON body's payload
// object, or the payload text of a query, form or multipart parameter.
std::optional<Failure> parse_payload(RequestData& data, Upload& out) {
  auto invalid = [](const std::string& message) {
    return Failure{400, 100, std::nullopt, "OAuthException", "(#100) " + message};
  };
  simdjson::dom::element payload;
  if (data.json_payload) {
    payload = *data.json_payload;
  } else {
    auto it = data.params.find("payload");
    if (it == data.params.end() || it->second.is_null()) return invalid("The parameter payload is required");
    // A payload sent as a JSON value that is not an object, or read by nlohmann's parser because
    // simdjson rejected the body, is read again from its JSON text.
    const std::string text = it->second.is_string() ? it->second.get<std::string>() : it->second.dump();
    if (!parse_json_param(text, payload) || !payload.is_object()) {
      return invalid("Param payload must be a JSON object");
    }
  }
  if (!payload.is_object()) return invalid("Param payload must be a JSON object");
  simdjson::dom::element schema;
  if (payload["schema"].get(schema) != simdjson::SUCCESS) return invalid("The payload has no schema");
  if (auto failure = parse_schema(to_json(schema), out)) return failure;
  simdjson::dom::array rows;
  if (payload["data"].get(rows) != simdjson::SUCCESS) return invalid("The payload has no data array");

  const std::size_t row_count = rows.size();
  if (row_count == 0) return invalid("The payload's data array is empty");
  // Over the limit Meta returns an opaque "unknown error" (code 1, subcode 99) instead of a
  // message that names the limit. The emulator does the same so that clients are tested on it.
  if (row_count > kMaxRowsPerRequest) {
    return Failure{500, 1, 99, "OAuthException",
                   "An unexpected error occurred. Please retry your request later."};
  }

  const bool single = out.data_source == "FILE_IMPORTED.HASHES_OR_USER_IDS";
  out.width = out.schema.size();
  out.cells.reserve(row_count * out.width);
  std::size_t i = 0;
  for (simdjson::dom::element row : rows) {
    if (single && !row.is_array()) {
      if (!add_cell(row, out)) return invalid("Row " + std::to_string(i) + " of data is not a string");
    } else {
      if (!row.is_array()) {
        return invalid("Row " + std::to_string(i) + " of data must be an array for a multi-key schema");
      }
      const simdjson::dom::array cells(row);
      if (cells.size() != out.width) {
        return invalid("Row " + std::to_string(i) + " of data has " + std::to_string(cells.size()) +
                       " values but the schema has " + std::to_string(out.width) + " fields");
      }
      for (simdjson::dom::element cell : cells) {
        if (!add_cell(cell, out)) {
          return invalid("Row " + std::to_string(i) + " of data holds a value that is not a string");
        }
      }
    }
    ++i;
  }
  return std::nullopt;
}

// The members of one upload after validation.
struct CheckedRows {
  std::vector<std::string> valid;  // Canonical keys (member_keys() reads the fields back).
  std::int64_t invalid = 0;
  Json samples = Json::object();
};

CheckedRows check_rows(const Upload& upload) {
  CheckedRows out;
  // The schema's columns in field-name order, so that each member's canonical key and key map
  // come out sorted without a lookup per cell.
  std::vector<std::size_t> order(upload.schema.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return upload.schema[a] < upload.schema[b]; });
  std::vector<bool> hashed(upload.schema.size());
  for (std::size_t i = 0; i < hashed.size(); ++i) hashed[i] = kHashedFields.count(upload.schema[i]) != 0;

  out.valid.reserve(upload.row_count());
  for (std::size_t r = 0; r < upload.row_count(); ++r) {
    const std::span<const std::string_view> row = upload.row(r);
    std::string bad_value;
    std::string reason;
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (!row[i].empty() && hashed[i] && !is_sha256_hex(row[i])) {
        bad_value = std::string(row[i]);
        reason = "Invalid " + upload.schema[i] + ": expected a SHA-256 hash as 64 lowercase hexadecimal characters";
        break;
      }
    }
    std::string canonical;
    if (reason.empty()) {
      std::size_t length = 0;
      for (std::size_t i = 0; i < row.size(); ++i) length += upload.schema[i].size() + row[i].size() + 2;
      canonical.reserve(length);
      for (std::size_t i : order) {
        const std::string_view value = row[i];
        if (value.empty()) continue;
        if (!canonical.empty()) canonical.push_back('\x1f');
        canonical.append(upload.schema[i]).push_back('=');
        canonical.append(value);
      }
      if (canonical.empty()) {
        Json cells = Json::array();
        for (std::string_view cell : row) cells.push_back(std::string(cell));
        bad_value = cells.dump();
        reason = "The row has no identifier";
      }
    }
    if (!reason.empty()) {
      ++out.invalid;
      if (out.samples.size() < kMaxInvalidSamples) out.samples[bad_value] = reason;
      continue;
    }
    out.valid.push_back(std::move(canonical));
  }
  return out;
}

// A fingerprint of the schema and rows. Every value is preceded by its length, so that no two
// different uploads share the hashed text.
std::string rows_digest(const Upload& upload) {
  std::string text;
  auto append = [&text](std::string_view value) {
    text.append(std::to_string(value.size())).push_back(':');
    text.append(value);
  };
  for (const auto& field : upload.schema) append(field);
  text.push_back('|');
  for (std::size_t r = 0; r < upload.row_count(); ++r) {
    for (std::string_view cell : upload.row(r)) append(cell);
    text.push_back(';');
  }
  return sha256_hex(text);
}

// The schema fields and values of a member, read back from its canonical key: fields in name
// order, each "field=value", separated by U+001F.
Json member_keys(const std::string& canonical) {
  Json keys = Json::object();
  std::size_t start = 0;
  while (start < canonical.size()) {
    std::size_t end = canonical.find('\x1f', start);
    if (end == std::string::npos) end = canonical.size();
    std::size_t equals = canonical.find('=', start);
    keys[canonical.substr(start, equals - start)] = canonical.substr(equals + 1, end - equals - 1);
    start = end + 1;
  }
  return keys;
}

}  // namespace

MetaEmulator::Reply MetaEmulator::create_audience(const std::string& account, Call& call) {
  std::string name = string_param(call.data, "name");
  if (name.empty())
    return error(400, 100, std::nullopt, "OAuthException", "(#100) The parameter name is required");
  std::string subtype = string_param(call.data, "subtype");
  if (subtype != "CUSTOM") {
    return error(400, 100, std::nullopt, "OAuthException",
                 "(#100) subtype must be CUSTOM for a customer-file audience, got '" + subtype + "'");
  }
  std::string source = string_param(call.data, "customer_file_source");
  if (kFileSources.count(source) == 0) {
    return error(400, 100, std::nullopt, "OAuthException",
                 "(#100) customer_file_source must be USER_PROVIDED_ONLY, PARTNER_PROVIDED_ONLY or "
                 "BOTH_USER_AND_PARTNER_PROVIDED, got '" +
                     source + "'");
  }

  std::optional<bool> fetch_or_create = as_bool(json_param(call.data, "enable_fetch_or_create"));
  if (fetch_or_create.value_or(false)) {
    for (const std::string& id : audience_order_) {
      const Audience& existing = audiences_.at(id);
      if (!existing.deleted && existing.account == account && existing.name == name) {
        return Reply{200, Json{{"id", id}}, account, std::nullopt};
      }
    }
  }

  Audience audience;
  audience.id = std::to_string(kFirstAudienceId + next_audience_++ - 1);
  audience.account = account;
  audience.name = name;
  audience.description = string_param(call.data, "description");
  audience.customer_file_source = source;
  audience.is_value_based = as_bool(json_param(call.data, "is_value_based")).value_or(false);
  audience.retention_days = as_int(json_param(call.data, "retention_days")).value_or(0);
  audience.time_created = unix_now();
  audience.time_content_updated = audience.time_created;
  audience.alias_error_pending = core_.options().new_audience_alias_error;
  std::string id = audience.id;
  audience_order_.push_back(id);
  audiences_.emplace(id, std::move(audience));
  return Reply{200, Json{{"id", id}}, account, std::nullopt};
}

MetaEmulator::Reply MetaEmulator::list_audiences(const std::string& account, Call& call) {
  std::vector<std::string> fields = {"id"};
  std::string requested = string_param(call.data, "fields");
  if (!requested.empty()) {
    fields.clear();
    std::size_t start = 0;
    while (start <= requested.size()) {
      std::size_t comma = requested.find(',', start);
      if (comma == std::string::npos) comma = requested.size();
      std::string field = requested.substr(start, comma - start);
      if (!field.empty()) {
        if (kAudienceFields.count(field) == 0) {
          return error(400, 100, std::nullopt, "OAuthException",
                       "(#100) Unknown field '" + field + "' on node type CustomAudience");
        }
        fields.push_back(field);
      }
      start = comma + 1;
    }
  }
  std::int64_t limit = as_int(json_param(call.data, "limit")).value_or(25);
  limit = std::clamp<std::int64_t>(limit, 1, 500);
  std::string after = string_param(call.data, "after");

  // Name filtering, as in filtering=[{"field":"name","operator":"EQUAL","value":"..."}].
  Json filtering = json_param(call.data, "filtering");
  std::string name_equal;
  std::string name_contains;
  if (filtering.is_array()) {
    for (const Json& filter : filtering) {
      if (!filter.is_object() || filter.value("field", "") != "name") continue;
      std::string op = filter.value("operator", "");
      std::string value = filter.value("value", "");
      if (op == "EQUAL") name_equal = value;
      if (op == "CONTAIN") name_contains = value;
    }
  }

  Json data = Json::array();
  bool started = after.empty();
  bool more = false;
  std::string last;
  for (const std::string& id : audience_order_) {
    const Audience& audience = audiences_.at(id);
    if (audience.deleted || audience.account != account) continue;
    if (!name_equal.empty() && audience.name != name_equal) continue;
    if (!name_contains.empty() && audience.name.find(name_contains) == std::string::npos) continue;
    if (!started) {
      started = id == after;
      continue;
    }
    if (static_cast<std::int64_t>(data.size()) == limit) {
      more = true;
      break;
    }
    Json item = Json::object();
    for (const std::string& field : fields) item[field] = audience_field(audience, field);
    if (!item.contains("id")) item["id"] = id;
    data.push_back(item);
    last = id;
  }

  Json body = {{"data", data}};
  if (!data.empty()) {
    body["paging"] = {{"cursors", {{"before", data.front()["id"]}, {"after", last}}}};
    if (more) {
      body["paging"]["next"] = "/meta/v" + (call.api_version.empty() ? std::string("24") : call.api_version) +
                               ".0/" + account + "/customaudiences?limit=" + std::to_string(limit) +
                               "&after=" + last;
    }
  }
  return Reply{200, body, account, std::nullopt};
}

Json MetaEmulator::audience_field(const Audience& audience, const std::string& field) const {
  auto count = static_cast<std::int64_t>(audience.members.size());
  if (field == "id") return audience.id;
  if (field == "name") return audience.name;
  if (field == "description") return audience.description;
  if (field == "subtype") return audience.subtype;
  if (field == "customer_file_source") return audience.customer_file_source;
  if (field == "account_id") return audience.account.substr(4);
  if (field == "retention_days") return audience.retention_days;
  if (field == "is_value_based") return audience.is_value_based;
  if (field == "data_source") {
    return audience.data_source.empty()
               ? Json(nullptr)
               : Json{{"type", "FILE_IMPORTED"}, {"sub_type", audience.data_source.substr(14)}};
  }
  if (field == "time_created") return audience.time_created;
  if (field == "time_content_updated") return audience.time_content_updated;
  // The emulator reports exact counts at once, where Meta reports ranges hours later.
  if (field == "approximate_count_lower_bound" || field == "approximate_count_upper_bound") return count;
  if (field == "operation_status") {
    return audience.replace ? Json{{"code", 300}, {"description", "Replace in progress"}}
                            : Json{{"code", 200}, {"description", "Normal"}};
  }
  if (field == "delivery_status")
    return Json{{"code", 200}, {"description", "This audience is ready for use."}};
  return nullptr;
}

MetaEmulator::Reply MetaEmulator::read_audience(Audience& audience, Call& call) {
  std::string requested = string_param(call.data, "fields");
  std::vector<std::string> fields;
  std::size_t start = 0;
  while (!requested.empty() && start <= requested.size()) {
    std::size_t comma = requested.find(',', start);
    if (comma == std::string::npos) comma = requested.size();
    std::string field = requested.substr(start, comma - start);
    if (!field.empty()) fields.push_back(field);
    start = comma + 1;
  }
  if (fields.empty()) fields = {"id", "name"};

  Json body = Json::object();
  for (const std::string& field : fields) {
    if (kAudienceFields.count(field) == 0) {
      return error(400, 100, std::nullopt, "OAuthException",
                   "(#100) Unknown field '" + field + "' on node type CustomAudience");
    }
    body[field] = audience_field(audience, field);
  }
  if (!body.contains("id")) body["id"] = audience.id;
  return Reply{200, body, audience.account, std::nullopt};
}

MetaEmulator::Reply MetaEmulator::delete_audience(Audience& audience) {
  audience.deleted = true;
  return Reply{200, Json{{"success", true}}, audience.account, std::nullopt};
}

MetaEmulator::Reply MetaEmulator::upload_users(Audience& audience, Call& call, const std::string& operation) {
  auto reject = [this](const Failure& failure) {
    return error(failure.status, failure.code, failure.subcode, failure.type, failure.message);
  };
  if (audience.replace) {
    return error(400, 2650, 1870145, "OAuthException",
                 "(#2650) Failed to update the custom audience: a replace of this audience is in progress; "
                 "add or remove users after it ends.");
  }
  SessionParams session_params;
  if (auto failure = parse_session(call.data, false, session_params)) return reject(*failure);
  Upload upload;
  if (auto failure = parse_payload(call.data, upload)) return reject(*failure);
  if (!audience.data_source.empty() && audience.data_source != upload.data_source) {
    return error(400, 2650, std::nullopt, "OAuthException",
                 "(#2650) Failed to update the custom audience: it was created from data source " +
                     audience.data_source + ", which does not accept data source " + upload.data_source);
  }
  if (audience.alias_error_pending) {
    audience.alias_error_pending = false;
    return error(400, 803, std::nullopt, "OAuthException",
                 "(#803) The alias 'users' you requested does not exist yet", true);
  }

  // Session rules: one audience and one operation per session, the first batch's schema for all
  // batches, nothing after the last batch, and nothing after the session's lifetime.
  Session* session = nullptr;
  if (session_params.present) {
    auto key = std::make_pair(audience.account, session_params.session_id);
    auto it = sessions_.find(key);
    if (it == sessions_.end()) {
      Session fresh;
      fresh.account = audience.account;
      fresh.session_id = session_params.session_id;
      fresh.audience_id = audience.id;
      fresh.operation = operation;
      fresh.schema = upload.schema;
      fresh.first_batch_at = std::chrono::steady_clock::now();
      fresh.start_unix = unix_now();
      it = sessions_.emplace(key, std::move(fresh)).first;
    }
    session = &it->second;
    if (session->audience_id != audience.id || session->operation != operation) {
      return error(400, 100, std::nullopt, "OAuthException",
                   "(#100) session_id " + std::to_string(session->session_id) + " belongs to a " +
                       session->operation + " session of audience " + session->audience_id);
    }
    if (session->finished) {
      return error(400, 2650, 1870159, "OAuthException",
                   "(#2650) Failed to update the custom audience: session " +
                       std::to_string(session->session_id) + " already received its last batch");
    }
    if (session->expired ||
        std::chrono::steady_clock::now() - session->first_batch_at >= core_.options().session_lifetime) {
      session->expired = true;
      session->end_unix = session->end_unix == 0 ? unix_now() : session->end_unix;
      return error(400, 2650, 1870158, "OAuthException",
                   "(#2650) Failed to update the custom audience: session " +
                       std::to_string(session->session_id) +
                       " timed out; batches that arrive after its lifetime are discarded");
    }
    if (session->schema != upload.schema) {
      return error(400, 100, std::nullopt, "OAuthException",
                   "(#100) The schema of this batch differs from the first batch of session " +
                       std::to_string(session->session_id));
    }
  }

  // Adds have set semantics, so a member added twice is one member with two adds. A remove
  // matches a member only with exactly the keys the member was added with.
  CheckedRows checked = check_rows(upload);
  BatchRecord record;
  record.index = static_cast<std::int64_t>(audience.batches.size());
  for (const std::string& key : checked.valid) {
    if (operation == "add") {
      auto [it, inserted] = audience.members.try_emplace(key);
      if (inserted) {
        it->second.first_batch = record.index;
      } else {
        ++audience.duplicate_adds;
      }
      ++it->second.times_added;
    } else if (audience.members.erase(key) != 0) {
      ++audience.removed;
    } else {
      ++audience.unmatched_removes;
    }
  }
  if (audience.data_source.empty()) audience.data_source = upload.data_source;
  auto rows = static_cast<std::int64_t>(upload.row_count());
  audience.rows_received += rows;
  audience.invalid_entries += checked.invalid;
  audience.time_content_updated = unix_now();

  record.operation = operation;
  record.rows = rows;
  record.invalid = checked.invalid;
  record.digest = rows_digest(upload);
  record.body_encoding = call.data.body_encoding;
  record.token_via = call.token_via;
  record.api_version = call.api_version;
  for (const BatchRecord& earlier : audience.batches) {
    if (earlier.digest == record.digest && earlier.operation == record.operation) {
      record.duplicate_of = earlier.index;
      ++audience.duplicate_batches;
      break;
    }
  }

  std::int64_t session_id = 0;
  std::int64_t received = rows;
  std::int64_t invalid = checked.invalid;
  if (session != nullptr) {
    session->num_received += rows;
    session->num_invalid += checked.invalid;
    session->batch_seqs.push_back(session_params.batch_seq);
    if (session_params.last_batch_flag) {
      session->finished = true;
      session->end_unix = unix_now();
    }
    session_id = session->session_id;
    received = session->num_received;
    invalid = session->num_invalid;
    record.session_id = session_id;
    record.batch_seq = session_params.batch_seq;
    record.last_batch_flag = session_params.last_batch_flag;
  } else {
    session_id = kFirstAutomaticSession + next_auto_session_++ - 1;
  }
  audience.batches.push_back(std::move(record));

  Json body = {{"audience_id", audience.id},
               {"session_id", std::to_string(session_id)},
               {"num_received", received},
               {"num_invalid_entries", invalid},
               {"invalid_entry_samples", checked.samples}};
  return Reply{200, body, audience.account, std::nullopt};
}

MetaEmulator::Reply MetaEmulator::replace_users(Audience& audience, Call& call) {
  auto reject = [this](const Failure& failure) {
    return error(failure.status, failure.code, failure.subcode, failure.type, failure.message);
  };
  SessionParams params;
  if (auto failure = parse_session(call.data, true, params)) return reject(*failure);
  Upload upload;
  if (auto failure = parse_payload(call.data, upload)) return reject(*failure);
  if (!audience.data_source.empty() && audience.data_source != upload.data_source) {
    return error(400, 2650, std::nullopt, "OAuthException",
                 "(#2650) Failed to update the custom audience: it was created from data source " +
                     audience.data_source + ", which does not accept data source " + upload.data_source);
  }
  if (audience.replace && audience.replace->session_id != params.session_id) {
    return error(
        400, 2650, 1870145, "OAuthException",
        "(#2650) Failed to update the custom audience: another replace of this audience is in progress "
        "(session " +
            std::to_string(audience.replace->session_id) + ")");
  }

  // Replace rules: batch 1 starts the replace (a second batch 1 restarts it), other batches must
  // follow a batch 1, and a finished or timed-out session takes no more batches.
  auto key = std::make_pair(audience.account, params.session_id);
  auto it = sessions_.find(key);
  if (it != sessions_.end()) {
    Session& existing = it->second;
    if (existing.audience_id != audience.id || existing.operation != "replace") {
      return error(400, 100, std::nullopt, "OAuthException",
                   "(#100) session_id " + std::to_string(existing.session_id) + " belongs to a " +
                       existing.operation + " session of audience " + existing.audience_id);
    }
    if (existing.finished) {
      return error(400, 2650, 1870159, "OAuthException",
                   "(#2650) Failed to update the custom audience: replace session " +
                       std::to_string(existing.session_id) + " already finished");
    }
    if (existing.expired) {
      return error(400, 2650, 1870158, "OAuthException",
                   "(#2650) Failed to update the custom audience: replace session " +
                       std::to_string(existing.session_id) + " timed out; the batches received were applied");
    }
  }
  if (params.batch_seq == 1) {
    if (it != sessions_.end()) {
      ++audience.replace_restarts;
      sessions_.erase(it);
    }
    Session fresh;
    fresh.account = audience.account;
    fresh.session_id = params.session_id;
    fresh.audience_id = audience.id;
    fresh.operation = "replace";
    fresh.schema = upload.schema;
    fresh.first_batch_at = std::chrono::steady_clock::now();
    fresh.start_unix = unix_now();
    it = sessions_.emplace(key, std::move(fresh)).first;
    audience.replace = ReplaceState{params.session_id, {}, it->second.first_batch_at};
  } else if (it == sessions_.end()) {
    return error(
        400, 2650, 1870147, "OAuthException",
        "(#2650) Failed to update the custom audience: the first batch (batch_seq 1) of replace session " +
            std::to_string(params.session_id) + " was not received");
  }
  Session& session = it->second;
  if (session.schema != upload.schema) {
    return error(400, 100, std::nullopt, "OAuthException",
                 "(#100) The schema of this batch differs from the first batch of session " +
                     std::to_string(session.session_id));
  }

  CheckedRows checked = check_rows(upload);
  BatchRecord record;
  record.index = static_cast<std::int64_t>(audience.batches.size());
  for (const std::string& member_key : checked.valid) {
    auto [member, inserted] = audience.replace->pending.try_emplace(member_key);
    if (inserted) {
      member->second.first_batch = record.index;
    }
    ++member->second.times_added;
  }
  auto rows = static_cast<std::int64_t>(upload.row_count());
  audience.rows_received += rows;
  audience.invalid_entries += checked.invalid;
  if (audience.data_source.empty()) audience.data_source = upload.data_source;

  session.num_received += rows;
  session.num_invalid += checked.invalid;
  session.batch_seqs.push_back(params.batch_seq);
  record.operation = "replace";
  record.session_id = params.session_id;
  record.batch_seq = params.batch_seq;
  record.last_batch_flag = params.last_batch_flag;
  record.rows = rows;
  record.invalid = checked.invalid;
  record.digest = rows_digest(upload);
  record.body_encoding = call.data.body_encoding;
  record.token_via = call.token_via;
  record.api_version = call.api_version;
  for (const BatchRecord& earlier : audience.batches) {
    if (earlier.digest == record.digest && earlier.operation == record.operation) {
      record.duplicate_of = earlier.index;
      ++audience.duplicate_batches;
      break;
    }
  }
  audience.batches.push_back(std::move(record));
  if (params.last_batch_flag) {
    session.finished = true;
    session.end_unix = unix_now();
    apply_replace(audience);
  }

  Json body = {{"account_id", audience.account.substr(4)},
               {"session_id", std::to_string(session.session_id)},
               {"num_received", session.num_received},
               {"num_invalid_entries", session.num_invalid},
               {"invalid_entry_samples", checked.samples}};
  return Reply{200, body, audience.account, std::nullopt};
}

void MetaEmulator::apply_replace(Audience& audience) {
  if (!audience.replace) return;
  audience.members = std::move(audience.replace->pending);
  audience.replace.reset();
  ++audience.replaces_completed;
  audience.time_content_updated = unix_now();
}

// A replace whose session outlived its lifetime is applied with what it received.
void MetaEmulator::expire_replace_if_due(Audience& audience) {
  if (!audience.replace) return;
  if (std::chrono::steady_clock::now() - audience.replace->started < core_.options().session_lifetime) return;
  auto it = sessions_.find(std::make_pair(audience.account, audience.replace->session_id));
  if (it != sessions_.end()) {
    it->second.expired = true;
    it->second.end_unix = unix_now();
  }
  apply_replace(audience);
}

MetaEmulator::Reply MetaEmulator::remove_from_all(const std::string& account, Call& call) {
  Upload upload;
  if (auto failure = parse_payload(call.data, upload)) {
    return error(failure->status, failure->code, failure->subcode, failure->type, failure->message);
  }
  CheckedRows checked = check_rows(upload);
  for (auto& [id, audience] : audiences_) {
    if (audience.account != account || audience.deleted) continue;
    for (const std::string& key : checked.valid) {
      audience.removed += static_cast<std::int64_t>(audience.members.erase(key));
    }
  }
  Json body = {{"success", true},
               {"num_received", static_cast<std::int64_t>(upload.row_count())},
               {"num_invalid_entries", checked.invalid},
               {"invalid_entry_samples", checked.samples}};
  return Reply{200, body, account, std::nullopt};
}

Json MetaEmulator::session_json(const Session& session) const {
  bool open = !session.finished && !session.expired;
  std::string stage = session.finished ? "finished" : (session.expired ? "timed_out" : "uploading");
  return Json{{"session_id", std::to_string(session.session_id)},
              {"start_time", std::to_string(session.start_unix)},
              {"end_time", std::to_string(open ? 0 : session.end_unix)},
              {"num_received", std::to_string(session.num_received)},
              {"num_matched", std::to_string(session.num_received - session.num_invalid)},
              {"num_invalid_entries", std::to_string(session.num_invalid)},
              {"progress", open ? "0" : "100"},
              {"stage", stage}};
}

MetaEmulator::Reply MetaEmulator::list_sessions(Audience& audience, Call& call) {
  std::optional<std::int64_t> wanted = as_int(json_param(call.data, "session_id"));
  Json data = Json::array();
  for (const auto& [key, session] : sessions_) {
    if (session.audience_id != audience.id) continue;
    if (wanted && session.session_id != *wanted) continue;
    data.push_back(session_json(session));
  }
  return Reply{200, Json{{"data", data}}, audience.account, std::nullopt};
}

Json MetaEmulator::inspect_audiences() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Json out = Json::array();
  for (const std::string& id : audience_order_) {
    const Audience& audience = audiences_.at(id);
    out.push_back({{"id", id},
                   {"account_id", audience.account},
                   {"name", audience.name},
                   {"deleted", audience.deleted},
                   {"member_count", audience.members.size()},
                   {"batches", audience.batches.size()}});
  }
  return Json{{"audiences", out}};
}

Json MetaEmulator::inspect_audience(const std::string& id, bool include_members) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = audiences_.find(id);
  if (it == audiences_.end()) return nullptr;
  const Audience& audience = it->second;

  Json out = {{"id", audience.id},
              {"account_id", audience.account},
              {"name", audience.name},
              {"description", audience.description},
              {"subtype", audience.subtype},
              {"customer_file_source", audience.customer_file_source},
              {"data_source", audience.data_source},
              {"deleted", audience.deleted},
              {"member_count", audience.members.size()}};
  out["counters"] = {
      {"rows_received", audience.rows_received},           {"invalid_entries", audience.invalid_entries},
      {"duplicate_adds", audience.duplicate_adds},         {"removed", audience.removed},
      {"unmatched_removes", audience.unmatched_removes},   {"replace_restarts", audience.replace_restarts},
      {"replaces_completed", audience.replaces_completed}, {"duplicate_batches", audience.duplicate_batches}};
  if (include_members) {
    Json members = Json::array();
    for (const auto& [key, member] : audience.members) {
      members.push_back(
          {{"keys", member_keys(key)}, {"times_added", member.times_added}, {"first_batch", member.first_batch}});
    }
    out["members"] = std::move(members);
  }

  Json batches = Json::array();
  for (const BatchRecord& batch : audience.batches) {
    Json item = {{"index", batch.index},
                 {"operation", batch.operation},
                 {"rows", batch.rows},
                 {"invalid", batch.invalid},
                 {"digest", batch.digest},
                 {"last_batch_flag", batch.last_batch_flag},
                 {"body_encoding", batch.body_encoding},
                 {"token_via", batch.token_via},
                 {"api_version", batch.api_version}};
    item["session_id"] = batch.session_id ? Json(std::to_string(*batch.session_id)) : Json(nullptr);
    item["batch_seq"] = batch.batch_seq ? Json(*batch.batch_seq) : Json(nullptr);
    item["duplicate_of"] = batch.duplicate_of ? Json(*batch.duplicate_of) : Json(nullptr);
    batches.push_back(std::move(item));
  }
  out["batches"] = std::move(batches);

  Json sessions = Json::array();
  for (const auto& [key, session] : sessions_) {
    if (session.audience_id != audience.id) continue;
    Json item = session_json(session);
    item["operation"] = session.operation;
    item["batch_seqs"] = session.batch_seqs;
    sessions.push_back(std::move(item));
  }
  out["sessions"] = std::move(sessions);
  out["replace_in_progress"] = audience.replace
                                   ? Json{{"session_id", std::to_string(audience.replace->session_id)},
                                          {"pending_members", audience.replace->pending.size()}}
                                   : Json(nullptr);
  return out;
}

}  // namespace platform_server
