// Status: the outcome of an operation that can fail, with a code, a message for humans and
// optional key/value details (for example the field of a document that was wrong).
// A value type: cheap to copy when OK, safe to pass between threads; not synchronized.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gsk {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is malformed or breaks a rule
  kNotFound,            // the named thing does not exist
  kAlreadyExists,       // the named thing exists and may not be created again
  kFailedPrecondition,  // the system is not in a state that allows the operation
  kResourceExhausted,   // a configured limit was reached (size, count, disk)
  kUnavailable,         // a dependency is temporarily unreachable; retry may succeed
  kDeadlineExceeded,    // the operation did not finish in time
  kCancelled,           // the operation was cancelled by a caller or shutdown
  kUnauthenticated,     // missing or wrong credentials
  kInternal,            // a bug or an unexpected failure of a library or the OS
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  using Detail = std::pair<std::string, std::string>;

  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::vector<Detail>& details() const { return details_; }

  // Adds a machine-readable detail (returned in REST errors as "details": {key: value}).
  Status& WithDetail(std::string key, std::string value) & {
    details_.emplace_back(std::move(key), std::move(value));
    return *this;
  }
  Status&& WithDetail(std::string key, std::string value) && {
    details_.emplace_back(std::move(key), std::move(value));
    return std::move(*this);
  }

  // Prefixes the message with context: "opening store: <message>".
  Status Annotate(std::string_view context) const;

  // "INVALID_ARGUMENT: message" or "OK".
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::vector<Detail> details_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status ResourceExhausted(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) {
  return {StatusCode::kDeadlineExceeded, std::move(m)};
}
inline Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
inline Status Unauthenticated(std::string m) {
  return {StatusCode::kUnauthenticated, std::move(m)};
}
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

}  // namespace gsk

// Returns early from the enclosing function if `expr` (a Status) is not OK.
#define GSK_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::gsk::Status gsk_status_ = (expr);        \
    if (!gsk_status_.ok()) return gsk_status_; \
  } while (0)
