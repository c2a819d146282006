#include "supervisor/process/output_sink.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "supervisor/process/log_rotation.h"

namespace gsk::process::internal {

void LineSplitter::Feed(std::string_view chunk) {
  while (!chunk.empty()) {
    size_t newline = chunk.find('\n');
    size_t take = newline == std::string_view::npos ? chunk.size() : newline;
    if (partial_.size() + take > kMaxLine) take = kMaxLine - partial_.size();
    partial_.append(chunk.substr(0, take));
    chunk.remove_prefix(take);
    bool complete = !chunk.empty() && chunk.front() == '\n';
    if (complete) chunk.remove_prefix(1);
    if (complete || partial_.size() == kMaxLine) {
      on_line_(partial_);
      partial_.clear();
    }
  }
}

void LineSplitter::Flush() {
  if (partial_.empty()) return;
  on_line_(partial_);
  partial_.clear();
}

Result<UniqueFd> OpenForAppend(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd) {
    std::string message = "opening log file " + path.string() + ": " + ::strerror(errno);
    if (errno == ENOENT) return NotFound(message + " (create its directory first)");
    return Internal(message);
  }
  return fd;
}

Result<LogWriter> LogWriter::Open(std::filesystem::path path, uint64_t max_bytes) {
  GSK_ASSIGN_OR_RETURN(UniqueFd fd, OpenForAppend(path));
  struct stat st {};
  uint64_t size = ::fstat(fd.get(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return LogWriter(std::move(path), max_bytes, std::move(fd), size);
}

void LogWriter::Write(std::string_view data) {
  while (!data.empty() && fd_) {
    ssize_t n = ::write(fd_.get(), data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
    size_ += static_cast<uint64_t>(n);
  }
  if (max_bytes_ == 0 || size_ <= max_bytes_) return;
  if (!RotateByRename(path_).ok()) return;
  Result<UniqueFd> reopened = OpenForAppend(path_);
  fd_ = reopened.ok() ? std::move(reopened).value() : UniqueFd();
  size_ = 0;
}

}  // namespace gsk::process::internal
