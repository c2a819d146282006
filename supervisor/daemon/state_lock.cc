#include "supervisor/daemon/state_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/crypto.h"

namespace gsk::daemon {
namespace {

std::string Errno() { return std::strerror(errno); }

}  // namespace

Result<std::unique_ptr<StateLock>> StateLock::Acquire(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Internal("cannot open lock file " + path.string() + ": " + Errno());
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    if (err != EWOULDBLOCK) {
      return Internal("cannot lock " + path.string() + ": " + std::strerror(err));
    }
    std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return FailedPrecondition("another giskard-supervisor (pid " + pid +
                              ") is already running on state directory " +
                              path.parent_path().string() +
                              "; stop it first (systemctl stop giskard-supervisor) or choose "
                              "another --state-dir")
        .WithDetail("pid", pid);
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    ::close(fd);
    return Internal("cannot write pid to " + path.string() + ": " + Errno());
  }
  return std::unique_ptr<StateLock>(new StateLock(fd, path));
}

StateLock::~StateLock() {
  if (::ftruncate(fd_, 0) != 0) {
    // Nothing useful to do: the lock itself is released by close() below either way.
  }
  ::close(fd_);
}

Result<std::string> LoadOrCreateToken(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if ((st.st_mode & 0077) != 0) {
      return FailedPrecondition("token file " + path.string() +
                                " is readable by group or others; run: chmod 600 " +
                                path.string());
    }
    std::ifstream in(path);
    std::string token;
    std::getline(in, token);
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (token.size() < 16) {
      return FailedPrecondition("token file " + path.string() +
                                " holds fewer than 16 characters; delete it to have a new token "
                                "generated at the next start");
    }
    return token;
  }
  Result<std::string> random = RandomHex(32);
  if (!random.ok()) return random.status().Annotate("generating the API token");
  const std::string& token = *random;
  // Write to a temporary file and rename, so a crash never leaves a half-written token.
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Internal("cannot create token file " + tmp.string() + ": " + Errno());
  std::string line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return Internal("cannot write token file " + path.string() + ": " + Errno());
  }
  return token;
}

}  // namespace gsk::daemon
