#include "supervisor/store/sqlite_errors.h"

#include <sqlite3.h>

namespace gsk::store::internal {

std::string Context(std::string_view action, std::string_view subject) {
  std::string context(action);
  if (!subject.empty()) {
    context += " \"";
    context += subject;
    context += '"';
  }
  return context;
}

Status FromSqlite(const SQLite::Exception& e, std::string_view context) {
  std::string message = std::string(context) + ": " + e.what();
  // Statements report primary codes unless extended codes are on; the extended code comes from
  // the connection and is only trusted when it refines the primary one.
  int primary = e.getErrorCode() & 0xff;
  int extended = e.getExtendedErrorCode();
  if ((extended & 0xff) != primary) extended = primary;
  switch (primary) {
    case SQLITE_CONSTRAINT:
      if (extended == SQLITE_CONSTRAINT_PRIMARYKEY || extended == SQLITE_CONSTRAINT_UNIQUE) {
        return AlreadyExists(std::move(message));
      }
      if (extended == SQLITE_CONSTRAINT_FOREIGNKEY) return FailedPrecondition(std::move(message));
      return InvalidArgument(std::move(message));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable(message + " (another process holds the database locked; retry later)");
    case SQLITE_FULL:
      return ResourceExhausted(message + " (free disk space in the state directory)");
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return FailedPrecondition(message +
                                " (the file is not a sound giskard-supervisor database; move it "
                                "aside and restore a backup or start afresh)");
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return FailedPrecondition(message +
                                " (the supervisor's user needs read and write access to the "
                                "state directory and the database files)");
    default:
      return Internal(std::move(message));
  }
}

}  // namespace gsk::store::internal
