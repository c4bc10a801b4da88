// act_hash(): one value through a platform's normalizer, in the form `activate hash` writes.
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

#include "activation/identifiers.hpp"
#include "c_api_internal.hpp"

namespace activation::capi {
namespace {

using Json = nlohmann::json;

struct HashOptions {
  std::string country;
  NormalizerOptions normalizer;
};

Result<HashOptions> parse_hash_options(const char* options_json) {
  HashOptions options;
  if (options_json == nullptr) return options;
  Json in = Json::parse(options_json, nullptr, false);
  if (in.is_discarded() || !in.is_object()) {
    return invalid_argument(
        "options_json: expected a JSON object with country, default_region or "
        "google_canonicalize_gmail");
  }
  for (const auto& [key, value] : in.items()) {
    if (key == "country" || key == "default_region") {
      if (!value.is_string())
        return invalid_argument("options_json." + key + ": expected a string, got " + value.dump());
      (key == "country" ? options.country : options.normalizer.default_region) = value.get<std::string>();
    } else if (key == "google_canonicalize_gmail") {
      if (!value.is_boolean())
        return invalid_argument("options_json." + key + ": expected true or false, got " + value.dump());
      options.normalizer.google_canonicalize_gmail = value.get<bool>();
    } else {
      return invalid_argument(
          "options_json." + key +
          ": unknown key; expected one of country, default_region, google_canonicalize_gmail");
    }
  }
  return options;
}

// Normalizers by (platform, default region, gmail rule). Creating one builds its profile's tables,
// so hosts that hash value by value reuse them. The key space is bounded by the valid regions.
Result<Normalizer> cached_normalizer(Platform platform, const NormalizerOptions& options) {
  static std::mutex mutex;
  static auto* cache = new std::map<std::tuple<int, std::string, bool>, Normalizer>();
  auto key =
      std::make_tuple(static_cast<int>(platform), options.default_region, options.google_canonicalize_gmail);
  {
    std::lock_guard lock(mutex);
    if (auto found = cache->find(key); found != cache->end()) return found->second;
  }
  ACT_ASSIGN_OR_RETURN(auto created, Normalizer::create(platform, options));
  std::lock_guard lock(mutex);
  cache->emplace(key, created);
  return created;
}

Json reason_json(const Reason& reason) {
  return {{"code", reason.code}, {"message", reason.message}};
}

}  // namespace
}  // namespace activation::capi

using namespace activation;
using namespace activation::capi;

extern "C" {

int act_hash(char** out_json, const char* platform, const char* field, const char* value, size_t value_len,
             const char* options_json) {
  constexpr const char* kFunction = "act_hash";
  return guarded(kFunction, [&]() -> int {
    if (out_json == nullptr) return invalid(kFunction, "out_json is NULL");
    *out_json = nullptr;
    if (platform == nullptr) return invalid(kFunction, "platform is NULL");
    if (field == nullptr) return invalid(kFunction, "field is NULL");
    if (value == nullptr && value_len > 0) return invalid(kFunction, "value is NULL but value_len is not 0");

    auto parsed_platform = parse_platform(platform);
    if (!parsed_platform) {
      return invalid(kFunction, "unknown platform \"" + std::string(platform) +
                                    "\"; expected meta, google, linkedin, tiktok or snapchat");
    }
    auto parsed_field = parse_field(field);
    if (!parsed_field) {
      return invalid(kFunction, "unknown field \"" + std::string(field) +
                                    "\"; expected email, phone, first_name, last_name, first_initial, city, "
                                    "state, zip, country, dob, gender, maid or external_id");
    }
    auto options = parse_hash_options(options_json);
    if (!options.is_ok()) return fail(options.status());
    auto normalizer = cached_normalizer(*parsed_platform, options->normalizer);
    if (!normalizer.is_ok()) return fail(normalizer.status());

    std::string_view input(value == nullptr ? "" : value, value_len);
    RowContext row;
    row.country = options->country;
    NormalizedIdentifier result = normalizer->normalize(*parsed_field, input, row);

    Json warnings = Json::array();
    for (const auto& warning : result.warnings) warnings.push_back(reason_json(warning));
    Json out = {{"field", std::string(field_name(*parsed_field))},
                {"input", std::string(input)},
                {"normalized", result.ok() ? Json(result.normalized) : Json(nullptr)},
                {"sha256", result.ok() && result.hashed ? Json(result.sha256) : Json(nullptr)},
                {"error", result.error ? reason_json(*result.error) : Json(nullptr)},
                {"warnings", std::move(warnings)}};
    // Invalid UTF-8 in the input is echoed with U+FFFD, because JSON text must be valid UTF-8.
    set_output(out_json, out.dump(-1, ' ', false, Json::error_handler_t::replace));
    return ACT_OK;
  });
}

}  // extern "C"
