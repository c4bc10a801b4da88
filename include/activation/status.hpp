// Status and Result<T>: the library's one error model.
//
// Expected failures are values, never exceptions. docs/errors.md lists the codes and what each
// means for a retry.
//
// Thread safety: a Status or Result is a plain value. Several threads may read one object at once.
#ifndef ACTIVATION_STATUS_HPP_
#define ACTIVATION_STATUS_HPP_

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "activation/export.hpp"

namespace activation {

// The canonical codes. The C API will return the negated values: never renumber, only append.
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,     // The caller passed a bad value: input, option or configuration.
  kNotFound = 2,            // A job, audience, destination or file does not exist.
  kAlreadyExists = 3,       // Creating something that exists already.
  kFailedPrecondition = 4,  // The object is in the wrong state for the call (a finished job, say).
  kConflict = 5,            // A compare-and-set lost: another worker changed the record first.
  kResourceExhausted = 6,   // A quota, rate limit or disk is full.
  kUnavailable = 7,         // A transient failure: retrying later may succeed.
  kDeadlineExceeded = 8,    // A timeout expired.
  kPermissionDenied = 9,    // The store, a file or a platform refused access.
  kUnauthenticated = 10,    // A platform rejected the credentials.
  kCancelled = 11,          // The operation was cancelled by the caller.
  kDataLoss = 12,           // A store file is corrupt or from a newer schema.
  kIoError = 13,            // A read or write failed.
  kInternal = 14,           // A bug in the library. The message names the place.
};

// Returns the lowercase name of `code`, such as "invalid_argument".
ACT_EXPORT std::string_view status_code_name(StatusCode code) noexcept;

class [[nodiscard]] ACT_EXPORT Status {
 public:
  Status() noexcept = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() noexcept { return Status(); }

  bool is_ok() const noexcept { return code_ == StatusCode::kOk; }
  StatusCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  // Returns "ok", or "<code name>: <message>".
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Factories for the common codes, so call sites read as the failure they report.
inline Status invalid_argument(std::string message) { return {StatusCode::kInvalidArgument, std::move(message)}; }
inline Status not_found(std::string message) { return {StatusCode::kNotFound, std::move(message)}; }
inline Status failed_precondition(std::string message) { return {StatusCode::kFailedPrecondition, std::move(message)}; }
inline Status conflict(std::string message) { return {StatusCode::kConflict, std::move(message)}; }
inline Status unavailable(std::string message) { return {StatusCode::kUnavailable, std::move(message)}; }
inline Status io_error(std::string message) { return {StatusCode::kIoError, std::move(message)}; }
inline Status internal_error(std::string message) { return {StatusCode::kInternal, std::move(message)}; }

// A value of T or a failed Status. Constructing it from an OK Status is a programming error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : data_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(data_).is_ok() && "Result built from an OK status");
    if (std::get<Status>(data_).is_ok()) {
      data_ = Status(StatusCode::kInternal, "Result built from an OK status");
    }
  }

  bool is_ok() const noexcept { return std::holds_alternative<T>(data_); }
  explicit operator bool() const noexcept { return is_ok(); }

  // Returns the error, or an OK status when the result contains a value.
  Status status() const { return is_ok() ? Status() : std::get<Status>(data_); }

  // REQUIRES: is_ok().
  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace activation

// Returns the Status of `expr` from the enclosing function when it failed.
#define ACT_RETURN_IF_ERROR(expr)                      \
  do {                                                 \
    ::activation::Status act_status_ = (expr);         \
    if (!act_status_.is_ok()) return act_status_;      \
  } while (false)

#define ACT_CONCAT_INNER_(a, b) a##b
#define ACT_CONCAT_(a, b) ACT_CONCAT_INNER_(a, b)

// Declares `lhs` from the value of the Result `expr`, or returns its Status from the enclosing
// function when it failed.
#define ACT_ASSIGN_OR_RETURN(lhs, expr) ACT_ASSIGN_OR_RETURN_IMPL_(ACT_CONCAT_(act_result_, __LINE__), lhs, expr)
#define ACT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.is_ok()) return tmp.status();           \
  lhs = std::move(tmp).value()

#endif  // ACTIVATION_STATUS_HPP_
