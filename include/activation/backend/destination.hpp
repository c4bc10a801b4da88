// The destination adapter: the protocol of one kind of destination (a platform's API, a folder of
// files). The engine normalizes, hashes, diffs and numbers batches. An adapter only sends a batch
// of operations and returns, per operation, whether it was accepted, rejected or deferred.
//
// New adapters are made known with register_destination_type(); the engine creates one adapter
// per (job, destination) run.
#ifndef ACTIVATION_BACKEND_DESTINATION_HPP_
#define ACTIVATION_BACKEND_DESTINATION_HPP_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "activation/config.hpp"
#include "activation/export.hpp"
#include "activation/identifiers.hpp"
#include "activation/log.hpp"
#include "activation/status.hpp"

namespace activation {

// `add` and `remove` send the source's members as adds or removes. `replace` sends them as the
// platform's full replace (members absent from the source are dropped by the platform). `mirror`
// sends only the difference against the membership ledger.
enum class SyncMode : int { kAdd = 0, kRemove, kReplace, kMirror };

ACT_EXPORT std::string_view sync_mode_name(SyncMode mode) noexcept;
ACT_EXPORT std::optional<SyncMode> parse_sync_mode(std::string_view name) noexcept;

// The four outcomes of a row. Only accepted rows count as delivered.
enum class RowOutcome : int {
  kInvalid = 0,   // No usable identifier was left after normalization; never sent.
  kRejected = 1,  // The destination refused the row.
  kDeferred = 2,  // The destination could not take the row now (throttled, audience too small).
  kAccepted = 3,
};
inline constexpr int kRowOutcomeCount = 4;

ACT_EXPORT std::string_view row_outcome_name(RowOutcome outcome) noexcept;

enum class OperationType : int { kAdd = 0, kRemove = 1 };

ACT_EXPORT std::string_view operation_type_name(OperationType type) noexcept;

// The part of a date of birth in an identifier. Profiles that want the year, month and day
// apart (Meta's DOBY, DOBM, DOBD) get three identifiers, each hashed on its own.
enum class DatePart : int { kWhole = 0, kYear, kMonth, kDay };

// One identifier as the destination receives it: the lowercase hex SHA-256 of the normalized
// value for hashed fields, or the normalized value for fields the profile sends plain.
struct WireIdentifier {
  Field field = Field::kEmail;
  std::string value;
  DatePart part = DatePart::kWhole;

  bool operator==(const WireIdentifier&) const = default;
};

// One add or remove of one member.
struct MemberOperation {
  OperationType type = OperationType::kAdd;
  // A stable hash identifying the member within the audience (docs/engine.md gives the rule).
  std::string member_key;
  // The source line of the row, or 0 for the remove of a member who left the source.
  std::uint64_t line = 0;
  // Sorted by field, then part; a field may appear several times (two phones).
  std::vector<WireIdentifier> identifiers;
};

// A batch: numbered from 1 per (job, destination), in an order that depends only on the source,
// the sync mode and the ledger, so a resumed run re-creates the number of the batch in flight.
struct Batch {
  std::int64_t number = 0;
  // Removes come before adds, so a member whose identifiers changed is removed with its old keys
  // before it is added with its new ones.
  std::vector<MemberOperation> operations;
};

struct OperationResult {
  RowOutcome outcome = RowOutcome::kAccepted;  // kAccepted, kRejected or kDeferred.
  Reason reason;                               // Empty for kAccepted.
};

// The destination's result for one batch.
struct BatchResult {
  // Not OK when the whole batch failed in transport (no connection, a 5xx response, a full disk):
  // `results` is then empty, and the engine retries the batch by the code's class.
  // kResourceExhausted is a rate limit, kUnavailable, kIoError and kDeadlineExceeded are
  // transient; other codes end the destination's run.
  Status transport;
  std::optional<std::chrono::milliseconds> retry_after;  // A platform's Retry-After, when given.
  std::vector<OperationResult> results;                  // One per operation, in batch order.
  // The adapter's session state after this batch (JSON text), saved with the checkpoint and given
  // back to begin() when the run resumes.
  std::string session_state = "{}";
};

// The run an adapter serves: job, audience, destination, mode and restored session.
struct DestinationRun {
  std::int64_t job_id = 0;
  std::string audience;
  std::string destination;
  SyncMode mode = SyncMode::kAdd;
  // The identifier fields the audience maps, with the most values a row can hold for each field
  // (two for PHONE1 and PHONE2). A file or a multi-key schema keeps one shape for the whole run.
  std::vector<std::pair<Field, int>> field_slots;
  std::string session_state = "{}";  // From the checkpoint; "{}" on a fresh start.
  bool resumed = false;
};

// Totals of a finished run, for an adapter that writes a manifest or closes a session.
struct DestinationRunSummary {
  std::int64_t batches = 0;
  std::uint64_t rows_read = 0;
  std::uint64_t adds_sent = 0;
  std::uint64_t removes_sent = 0;
  std::uint64_t outcome_counts[kRowOutcomeCount] = {0, 0, 0, 0};
};

// Thread safety: one adapter serves one run on one thread at a time; distinct adapters may run on
// distinct threads at once.
class ACT_EXPORT DestinationAdapter {
 public:
  virtual ~DestinationAdapter() = default;

  // The identifier profile the adapter's payloads follow.
  virtual Platform profile() const = 0;
  // The maximum number of operations the destination takes in one request.
  virtual std::size_t max_batch_size() const = 0;

  // Prepares a run: finds or creates the destination list, restores a session. Fails with a
  // message naming the setting or secret that is wrong.
  virtual Status begin(const DestinationRun& run) = 0;
  // Sends one batch. May be called again with the same number after a crash or a failed send.
  virtual BatchResult send(const Batch& batch) = 0;
  // True when sending a batch again, with the same number and operations, replaces what its
  // earlier send wrote instead of adding to it, as a file named by the batch number does. The
  // engine may then send a batch of an add or replace run before the previous batch's checkpoint
  // is saved, so that a crash may send two batches again instead of one.
  virtual bool replaces_resent_batches() const { return false; }
  // Ends a run whose batches were all sent: closes a session, writes a manifest.
  virtual Status finish(const DestinationRunSummary& summary) = 0;
};

// The services a factory gets besides the destination's configuration.
struct DestinationEnvironment {
  Logger logger;
  // Returns the value of the secret `name` of this destination (from the environment variable
  // its configuration names), or kNotFound naming the variable. Values must never be logged.
  std::function<Result<std::string>(std::string_view name)> secret;
};

// Creates an adapter for one run. Fails with kInvalidArgument naming the setting that is wrong,
// kPermissionDenied for a folder that cannot be written, kNotFound for a missing secret.
using DestinationFactory = std::function<Result<std::unique_ptr<DestinationAdapter>>(
    const DestinationConfig& config, const DestinationEnvironment& environment)>;

// Makes a destination type known to every engine of the process. Fails with kAlreadyExists when
// `type` is registered already. Thread safety: may be called from any thread.
ACT_EXPORT Status register_destination_type(std::string type, DestinationFactory factory);
// Returns the factory of `type`, or nullopt when none is registered. "file" is always registered.
ACT_EXPORT std::optional<DestinationFactory> find_destination_type(std::string_view type);
// The registered type names, sorted.
ACT_EXPORT std::vector<std::string> destination_types();

}  // namespace activation

#endif  // ACTIVATION_BACKEND_DESTINATION_HPP_
