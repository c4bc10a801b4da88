// The upload sessions of one Meta run, kept in the checkpoint's session state so that a resumed
// run continues them. The state names the session of each operation, the last batch_seq that
// Meta accepted, and one row of each session for the request that closes it.
#ifndef ACTIVATION_PLATFORMS_META_META_SESSION_HPP_
#define ACTIVATION_PLATFORMS_META_META_SESSION_HPP_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "activation/status.hpp"

namespace activation::platforms::meta {

// The operation a session carries. Meta ties each session to one operation and one audience.
enum class SessionKind : int { kAdd = 0, kRemove = 1, kReplace = 2 };
inline constexpr int kSessionKindCount = 3;

std::string_view session_kind_name(SessionKind kind) noexcept;

struct SessionSlot {
  // Bumped when a session is replaced by a new one (too old, or closed by Meta); part of the id.
  std::int64_t generation = 0;
  std::int64_t session_id = 0;  // 0 until Meta accepted the session's first batch.
  std::int64_t batch_seq = 0;   // The last batch_seq that Meta accepted.
  std::int64_t started_unix = 0;
  // One row that Meta received in this session. Meta accepts no batch without rows, so the
  // request that closes the session (last_batch_flag) sends this row again, which set semantics
  // make harmless.
  std::vector<std::string> closing_row;

  bool started() const noexcept { return session_id != 0; }
};

struct SessionState {
  std::string audience_id;
  std::vector<std::string> schema;  // The schema keys of the run's sessions.
  std::array<SessionSlot, kSessionKindCount> slots;
  // Meta applied a replace session that timed out or was closed with the rows it had received.
  // The rest of the run's rows then go as adds.
  bool replace_applied = false;

  SessionSlot& slot(SessionKind kind) { return slots[static_cast<int>(kind)]; }
  const SessionSlot& slot(SessionKind kind) const { return slots[static_cast<int>(kind)]; }

  std::string to_json() const;
  // Parses what to_json() wrote; "{}" or an empty text gives a fresh state. Fails with
  // kDataLoss for text that is not a session state of this adapter.
  static Result<SessionState> from_json(std::string_view text);
};

// The session id of (job, destination, audience, operation, generation): positive, below 2^60,
// and the same every time, so that a run restarted after a crash finds the session its first
// batch may have opened.
std::int64_t derive_session_id(std::int64_t job_id, std::string_view destination,
                               std::string_view audience_id, SessionKind kind, std::int64_t generation);

}  // namespace activation::platforms::meta

#endif  // ACTIVATION_PLATFORMS_META_META_SESSION_HPP_
