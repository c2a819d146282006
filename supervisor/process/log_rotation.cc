#include "supervisor/process/log_rotation.h"

#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cerrno>
#include <map>
#include <string>

#include "supervisor/process/process_launcher.h"
#include "supervisor/process/unique_fd.h"

namespace gsk::process::internal {
namespace {

namespace fs = std::filesystem;

fs::path Numbered(const fs::path& path, int n) { return path.string() + "." + std::to_string(n); }

Status ErrnoStatus(const std::string& what, const fs::path& path) {
  return Internal(what + " " + path.string() + ": " + ::strerror(errno));
}

// log.(N-1) -> log.N ... log.1 -> log.2; the oldest is overwritten.
Status ShiftOlder(const fs::path& path) {
  for (int n = kRotatedLogsKept - 1; n >= 1; --n) {
    if (::rename(Numbered(path, n).c_str(), Numbered(path, n + 1).c_str()) != 0 &&
        errno != ENOENT) {
      return ErrnoStatus("rotating", Numbered(path, n));
    }
  }
  return Status::Ok();
}

bool CopyAll(int from, int to) {
  loff_t offset = 0;
  while (true) {
    ssize_t n = ::copy_file_range(from, &offset, to, nullptr, size_t{1} << 30, 0);
    if (n == 0) return true;
    if (n > 0) continue;
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) return false;
    break;  // not supported here: copy by hand from where it stopped
  }
  std::array<char, 65536> buffer;
  while (true) {
    ssize_t n = ::pread(from, buffer.data(), buffer.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n == 0;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(to, buffer.data() + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return false;
      done += w;
    }
    offset += n;
  }
}

}  // namespace

Status RotateByRename(const fs::path& path) {
  GSK_RETURN_IF_ERROR(ShiftOlder(path));
  if (::rename(path.c_str(), Numbered(path, 1).c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus("rotating", path);
  }
  return Status::Ok();
}

Status RotateByCopyTruncate(const fs::path& path) {
  UniqueFd source(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!source) return ErrnoStatus("opening", path);
  GSK_RETURN_IF_ERROR(ShiftOlder(path));
  fs::path first = Numbered(path, 1);
  UniqueFd copy(::open(first.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!copy) return ErrnoStatus("creating", first);
  if (!CopyAll(source.get(), copy.get())) return ErrnoStatus("copying", path);
  // Whatever the child wrote since the copy finished is lost; the window is one system call.
  if (::ftruncate(source.get(), 0) != 0) return ErrnoStatus("truncating", path);
  return Status::Ok();
}

Status RotateIfLarger(const fs::path& path, uint64_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? Status::Ok() : ErrnoStatus("checking", path);
  }
  if (static_cast<uint64_t>(st.st_size) <= max_bytes) return Status::Ok();
  return RotateByRename(path);
}

struct LogRotationWatcher::State : std::enable_shared_from_this<State> {
  struct Entry {
    fs::path path;
    uint64_t max_bytes = 0;
    int refs = 0;
  };
  explicit State(boost::asio::io_context& io) : inotify(io) {}

  void Read() {
    inotify.async_read_some(
        boost::asio::buffer(buffer),
        [self = shared_from_this()](boost::system::error_code ec, size_t n) {
          if (ec) return;  // closed by the destructor, or a broken inotify: stop watching
          self->Handle(n);
          self->Read();
        });
  }

  void Handle(size_t n) {
    for (size_t offset = 0; offset + sizeof(inotify_event) <= n;) {
      inotify_event event;
      ::memcpy(&event, buffer.data() + offset, sizeof(event));
      offset += sizeof(inotify_event) + event.len;
      auto it = entries.find(event.wd);
      if (it == entries.end()) continue;
      if (event.mask & IN_IGNORED) {  // the file was deleted
        entries.erase(it);
        continue;
      }
      struct stat st {};
      if (::stat(it->second.path.c_str(), &st) == 0 &&
          static_cast<uint64_t>(st.st_size) > it->second.max_bytes) {
        (void)RotateByCopyTruncate(it->second.path);  // best effort: retried on the next write
      }
    }
  }

  boost::asio::posix::stream_descriptor inotify;
  alignas(inotify_event) std::array<char, 8192> buffer{};
  std::map<int, Entry> entries;  // by watch descriptor
};

LogRotationWatcher::LogRotationWatcher(boost::asio::io_context& io)
    : state_(std::make_shared<State>(io)) {}

LogRotationWatcher::~LogRotationWatcher() {
  boost::system::error_code ignored;
  state_->inotify.close(ignored);
}

Result<int> LogRotationWatcher::Watch(const fs::path& path, uint64_t max_bytes) {
  if (!state_->inotify.is_open()) {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return ResourceExhausted(std::string("inotify_init1: ") + ::strerror(errno));
    boost::system::error_code ec;
    state_->inotify.assign(fd, ec);
    if (ec) {
      ::close(fd);
      return Internal("watching log files: " + ec.message());
    }
    state_->Read();
  }
  int wd = ::inotify_add_watch(state_->inotify.native_handle(), path.c_str(), IN_MODIFY);
  if (wd < 0) {
    int err = errno;
    Status status = ErrnoStatus("watching", path);
    if (err != ENOSPC) return status;
    return ResourceExhausted(status.message() + " (raise fs.inotify.max_user_watches)");
  }
  State::Entry& entry = state_->entries[wd];
  entry.max_bytes = entry.refs == 0 ? max_bytes : std::min(entry.max_bytes, max_bytes);
  entry.path = path;
  ++entry.refs;
  return wd;
}

void LogRotationWatcher::Unwatch(int token) {
  auto it = state_->entries.find(token);
  if (it == state_->entries.end() || --it->second.refs > 0) return;
  state_->entries.erase(it);
  if (state_->inotify.is_open()) ::inotify_rm_watch(state_->inotify.native_handle(), token);
  // The descriptor stays open with nothing to watch: closing an inotify fd blocks in the kernel
  // for milliseconds, which would delay every restart of a lone worker. Its pending read keeps
  // the io_context busy, so the daemon stops its io_context explicitly at shutdown.
}

}  // namespace gsk::process::internal
