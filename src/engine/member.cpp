#include "engine/member.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/json_text.hpp"
#include "identifiers/sha256.hpp"

namespace activation::engine {
namespace {

std::string_view part_suffix(DatePart part) {
  switch (part) {
    case DatePart::kWhole: return "";
    case DatePart::kYear: return "_year";
    case DatePart::kMonth: return "_month";
    case DatePart::kDay: return "_day";
  }
  return "";
}

std::string_view trim(std::string_view text) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

RowProcessor::RowProcessor(Normalizer normalizer)
    : normalizer_(std::move(normalizer)), split_dob_(normalizer_.platform() == Platform::kMeta) {}

bool RowProcessor::has_match_key(std::uint32_t usable) const noexcept {
  auto has = [usable](Field field) { return (usable & (1u << static_cast<int>(field))) != 0; };
  if (has(Field::kEmail) || has(Field::kPhone) || has(Field::kMaid) || has(Field::kExternalId)) return true;
  bool names = has(Field::kFirstName) && has(Field::kLastName);
  // Google matches a name only as part of a complete address.
  if (normalizer_.platform() == Platform::kGoogle) return names && has(Field::kCountry) && has(Field::kZip);
  return names;
}

std::string RowProcessor::match_key_rule() const {
  if (normalizer_.platform() == Platform::kGoogle) {
    return "no identifier that can match a person: expected an email, a phone, a MAID, an external id, or "
           "first "
           "name, last name, country and zip together";
  }
  return "no identifier that can match a person: expected an email, a phone, a MAID, an external id, or "
         "first and "
         "last name together";
}

bool RowProcessor::accepts(Field field) const noexcept {
  return normalizer_.treatment(field) != FieldTreatment::kNotAccepted;
}

void RowProcessor::keep_spare_values(std::vector<WireIdentifier>& identifiers, std::size_t count) {
  for (std::size_t i = count; i < identifiers.size() && spare_values_.size() < kMaxSpareValues; ++i) {
    spare_values_.push_back(std::move(identifiers[i].value));
  }
  identifiers.resize(count);
}

std::optional<Reason> RowProcessor::process(const SourceRow& row, RowIdentifiers& out,
                                            DestinationCounters& counters) {
  // The identifiers of the row before are overwritten in place, so their strings keep their capacity.
  std::size_t count = 0;
  auto add_identifier = [&](Field field, std::string_view value, DatePart part) {
    if (count == out.identifiers.size()) {
      out.identifiers.emplace_back();
      if (!spare_values_.empty()) {
        out.identifiers.back().value = std::move(spare_values_.back());
        spare_values_.pop_back();
      }
    }
    WireIdentifier& identifier = out.identifiers[count++];
    identifier.field = field;
    identifier.value.assign(value);
    identifier.part = part;
  };
  out.fields_present = 0;
  out.fields_usable = 0;
  drops_.clear();

  RowContext context;
  std::string_view external_id;
  for (const auto& value : row.values) {
    if (value.field == Field::kCountry && context.country.empty()) context.country = value.value;
    if (value.field == Field::kExternalId && external_id.empty()) external_id = trim(value.value);
  }

  for (const auto& value : row.values) {
    if (!accepts(value.field)) continue;
    const auto field_index = static_cast<int>(value.field);
    out.fields_present |= 1u << field_index;
    normalizer_.normalize_into(value.field, value.value, context, scratch_);
    FieldCounts& field_counts = counters.fields[field_index];
    if (!scratch_.ok()) {
      ++field_counts.dropped;
      ++counters.reasons[scratch_.error->code];
      if (!drops_.empty()) drops_ += "; ";
      drops_ += std::string(field_name(value.field)) + ": " + scratch_.error->message;
      continue;
    }
    ++field_counts.valid;
    for (const auto& warning : scratch_.warnings) ++counters.reasons[warning.code];
    out.fields_usable |= 1u << field_index;

    // A profile that wants the parts of a date of birth apart gets each part hashed on its own.
    std::string_view normalized = scratch_.normalized;
    if (value.field == Field::kDob && split_dob_ && normalized.size() == 8 && all_digits(normalized)) {
      const std::pair<DatePart, std::string_view> parts[] = {{DatePart::kYear, normalized.substr(0, 4)},
                                                             {DatePart::kMonth, normalized.substr(4, 2)},
                                                             {DatePart::kDay, normalized.substr(6, 2)}};
      for (const auto& [part, text] : parts) {
        add_identifier(value.field, scratch_.hashed ? sha256_hex(text) : std::string(text), part);
      }
      continue;
    }
    add_identifier(value.field, scratch_.wire_value(), DatePart::kWhole);
  }
  keep_spare_values(out.identifiers, count);

  if (out.fields_present == 0) return Reason{"no_identifier", "the row has no value in any mapped column"};
  if (!has_match_key(out.fields_usable)) {
    if (!drops_.empty()) return Reason{"no_usable_identifier", "no usable identifier: " + drops_};
    return Reason{"no_match_key", match_key_rule()};
  }

  std::sort(out.identifiers.begin(), out.identifiers.end(),
            [](const WireIdentifier& a, const WireIdentifier& b) {
              if (a.field != b.field) return a.field < b.field;
              if (a.part != b.part) return a.part < b.part;
              return a.value < b.value;
            });
  const auto unique_end = std::unique(out.identifiers.begin(), out.identifiers.end());
  keep_spare_values(out.identifiers, static_cast<std::size_t>(unique_end - out.identifiers.begin()));
  // Both overwrite the previous row's strings, which keeps their capacity.
  encode_keys_into(out.identifiers, out.keys_json);
  member_key_into(external_id, out.identifiers, out.keys_json, key_input_, out.member_key);
  return std::nullopt;
}

std::string encode_keys(const std::vector<WireIdentifier>& identifiers) {
  std::string out;
  encode_keys_into(identifiers, out);
  return out;
}

void encode_keys_into(const std::vector<WireIdentifier>& identifiers, std::string& out) {
  out.clear();
  out.reserve(2 + identifiers.size() * 88);  // A pair with a hex digest takes about 80 characters.
  out += '[';
  for (std::size_t i = 0; i < identifiers.size(); ++i) {
    if (i > 0) out += ',';
    out += "[\"";
    out += field_name(identifiers[i].field);
    out += part_suffix(identifiers[i].part);
    out += "\",";
    internal::append_json_string(out, identifiers[i].value);
    out += ']';
  }
  out += ']';
}

Result<std::vector<WireIdentifier>> decode_keys(std::string_view json_text) {
  auto bad = [&] {
    return Status(StatusCode::kDataLoss,
                  "ledger keys are not in the expected form: " + std::string(json_text.substr(0, 80)));
  };
  auto parsed = nlohmann::json::parse(json_text, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_array()) return bad();
  std::vector<WireIdentifier> identifiers;
  for (const auto& pair : parsed) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) return bad();
    std::string name = pair[0].get<std::string>();
    DatePart part = DatePart::kWhole;
    for (auto [candidate, suffix] :
         {std::pair{DatePart::kYear, "_year"}, std::pair{DatePart::kMonth, "_month"},
          std::pair{DatePart::kDay, "_day"}}) {
      std::string_view s = suffix;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0 &&
          name.rfind("dob", 0) == 0) {
        part = candidate;
        name.resize(name.size() - s.size());
        break;
      }
    }
    auto field = parse_field(name);
    if (!field) return bad();
    identifiers.push_back(WireIdentifier{*field, pair[1].get<std::string>(), part});
  }
  return identifiers;
}

void member_key_into(std::string_view external_id, const std::vector<WireIdentifier>& identifiers,
                     std::string_view keys_json, std::string& input, std::string& key) {
  auto hash_of = [&](std::string_view name, std::string_view value) {
    input.assign(name);
    input += ':';
    input += value;
    identifiers::sha256_hex_into(input, key);
  };
  if (!external_id.empty()) return hash_of("external_id", external_id);
  for (Field field : {Field::kEmail, Field::kPhone, Field::kMaid}) {
    for (const auto& identifier : identifiers) {
      if (identifier.field == field) return hash_of(field_name(field), identifier.value);
    }
  }
  identifiers::sha256_hex_into(keys_json, key);
}

}  // namespace activation::engine
