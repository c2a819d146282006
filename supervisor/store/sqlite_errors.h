// Internal to the store: where SQLiteCpp's exceptions become Status, at the component's edge.
// Stateless; safe from any thread.
#pragma once

#include <SQLiteCpp/Statement.h>

#include <SQLiteCpp/Exception.h>

#include <exception>
#include <string>
#include <string_view>

#include "base/status.h"

namespace gsk::store::internal {

// Maps the SQLite result code to a Status code; the message is "<context>: <sqlite message>".
// Unique-key violations are kAlreadyExists, foreign-key violations (a row still referenced)
// kFailedPrecondition, other constraint violations kInvalidArgument, a locked database
// kUnavailable, a full disk kResourceExhausted, a file that cannot be opened or is not a
// database kFailedPrecondition, anything else kInternal.
Status FromSqlite(const SQLite::Exception& e, std::string_view context);

// "inserting kernel \"x\"" or "listing kernels" when `subject` is empty.
std::string Context(std::string_view action, std::string_view subject);

// Runs `body` (returning Status or Result<T>) and turns any exception it throws into a Status.
// The context is only built when something failed, keeping the hot path free of allocations.
template <typename F>
auto Guarded(std::string_view action, std::string_view subject, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const SQLite::Exception& e) {
    return FromSqlite(e, Context(action, subject));
  } catch (const std::exception& e) {
    return Internal(Context(action, subject) + ": " + e.what());
  }
}

// Resets a cached statement when the scope ends, so that no finished SELECT keeps a read
// snapshot open (which would hold back WAL checkpoints) and the next use starts clean.
class ResetOnExit {
 public:
  explicit ResetOnExit(SQLite::Statement& statement) : statement_(statement) {}
  ~ResetOnExit() { statement_.tryReset(); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  SQLite::Statement& statement_;
};

}  // namespace gsk::store::internal
