#include "supervisor/store/connection.h"

#include <SQLiteCpp/Database.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

#include "supervisor/store/sqlite_errors.h"

namespace gsk::store::internal {
namespace {

constexpr int kBusyTimeoutMs = 5000;
constexpr mode_t kFileMode = 0600;

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

// SQLite would create a missing file with the umask's mode; creating it first (and tightening an
// existing one) gives 0600, which SQLite then copies to the -wal and -shm files it creates.
Status CreatePrivateFile(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, kFileMode);
  if (fd < 0) {
    int err = errno;
    std::string hint = err == ENOENT ? " (create the state directory first)"
                       : err == EACCES
                           ? " (the supervisor's user needs write access to the state directory)"
                           : "";
    return FailedPrecondition("cannot open database " + path.string() + ": " + ErrnoText(err) +
                              hint);
  }
  int rc = ::fchmod(fd, kFileMode);
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    return FailedPrecondition("cannot set mode 0600 on database " + path.string() + ": " +
                              ErrnoText(err) + " (it must belong to the supervisor's user)");
  }
  return Status::Ok();
}

Status RestrictSidecarFiles(const std::filesystem::path& path) {
  for (const char* suffix : {"-wal", "-shm"}) {
    std::string file = path.string() + suffix;
    if (::chmod(file.c_str(), kFileMode) != 0 && errno != ENOENT) {
      return FailedPrecondition("cannot set mode 0600 on " + file + ": " + ErrnoText(errno));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<SQLite::Database>> OpenConnection(const std::filesystem::path& path) {
  GSK_RETURN_IF_ERROR(CreatePrivateFile(path));
  using DatabasePtr = std::unique_ptr<SQLite::Database>;
  return Guarded("opening database", path.string(), [&]() -> Result<DatabasePtr> {
    auto db =
        std::make_unique<SQLite::Database>(path.string(), SQLite::OPEN_READWRITE, kBusyTimeoutMs);
    std::string mode = db->execAndGet("PRAGMA journal_mode = WAL").getString();
    if (mode != "wal") {
      return FailedPrecondition("cannot use write-ahead logging for database " + path.string() +
                                " (journal_mode stays \"" + mode +
                                "\"); put the state directory on a local filesystem");
    }
    db->exec("PRAGMA synchronous = NORMAL");
    db->exec("PRAGMA foreign_keys = ON");
    if (db->execAndGet("PRAGMA foreign_keys").getInt() != 1) {
      return Internal("cannot enable foreign keys on database " + path.string() +
                      " (SQLite built without them?)");
    }
    GSK_RETURN_IF_ERROR(RestrictSidecarFiles(path));
    return DatabasePtr(std::move(db));
  });
}

}  // namespace gsk::store::internal
