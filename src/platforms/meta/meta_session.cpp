#include "platforms/meta/meta_session.hpp"

#include <nlohmann/json.hpp>

#include "activation/identifiers.hpp"

namespace activation::platforms::meta {
namespace {

using Json = nlohmann::json;

}  // namespace

std::string_view session_kind_name(SessionKind kind) noexcept {
  switch (kind) {
    case SessionKind::kAdd: return "add";
    case SessionKind::kRemove: return "remove";
    case SessionKind::kReplace: return "replace";
  }
  return "add";
}

std::string SessionState::to_json() const {
  Json out = Json::object();
  out["audience_id"] = audience_id;
  out["schema"] = schema;
  Json sessions = Json::object();
  for (int i = 0; i < kSessionKindCount; ++i) {
    const SessionSlot& slot = slots[i];
    if (slot.generation == 0 && !slot.started()) continue;
    sessions[std::string(session_kind_name(static_cast<SessionKind>(i)))] = {
        {"generation", slot.generation},
        {"session_id", slot.session_id},
        {"batch_seq", slot.batch_seq},
        {"started_unix", slot.started_unix},
        {"closing_row", slot.closing_row}};
  }
  out["sessions"] = std::move(sessions);
  if (replace_applied) out["replace_applied"] = true;
  return out.dump();
}

Result<SessionState> SessionState::from_json(std::string_view text) {
  SessionState state;
  if (text.empty() || text == "{}") return state;
  auto bad = [&](std::string_view why) {
    return Status(
        StatusCode::kDataLoss,
        "meta: the checkpoint's session state is not one this adapter writes (" + std::string(why) + ")");
  };
  Json parsed = Json::parse(text, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return bad("not a JSON object");
  try {
    state.audience_id = parsed.value("audience_id", std::string());
    if (auto schema = parsed.find("schema"); schema != parsed.end())
      state.schema = schema->get<std::vector<std::string>>();
    state.replace_applied = parsed.value("replace_applied", false);
    if (auto sessions = parsed.find("sessions"); sessions != parsed.end()) {
      if (!sessions->is_object()) return bad("sessions is not an object");
      for (int i = 0; i < kSessionKindCount; ++i) {
        auto entry = sessions->find(std::string(session_kind_name(static_cast<SessionKind>(i))));
        if (entry == sessions->end()) continue;
        SessionSlot& slot = state.slots[i];
        slot.generation = entry->at("generation").get<std::int64_t>();
        slot.session_id = entry->at("session_id").get<std::int64_t>();
        slot.batch_seq = entry->at("batch_seq").get<std::int64_t>();
        slot.started_unix = entry->at("started_unix").get<std::int64_t>();
        slot.closing_row = entry->at("closing_row").get<std::vector<std::string>>();
      }
    }
  } catch (const Json::exception& error) {
    return bad(error.what());
  }
  return state;
}

std::int64_t derive_session_id(std::int64_t job_id, std::string_view destination,
                               std::string_view audience_id, SessionKind kind, std::int64_t generation) {
  std::string seed = "meta-session|" + std::to_string(job_id) + "|" + std::string(destination) + "|" +
                     std::string(audience_id) + "|" + std::string(session_kind_name(kind)) + "|" +
                     std::to_string(generation);
  std::string digest = sha256_hex(seed);
  // 15 hex digits are 60 bits: a positive int64 with room to spare.
  std::int64_t id = std::stoll(digest.substr(0, 15), nullptr, 16);
  return id == 0 ? 1 : id;
}

}  // namespace activation::platforms::meta
