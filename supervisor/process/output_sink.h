// Where a child's piped output goes: LineSplitter cuts the byte stream into lines for the
// on_output callback, LogWriter appends it to the log file and rotates it by rename.
// Not synchronized: both belong to the launcher's io thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "supervisor/process/unique_fd.h"

namespace gsk::process::internal {

class LineSplitter {
 public:
  static constexpr size_t kMaxLine = 64 * 1024;
  explicit LineSplitter(std::function<void(std::string_view)> on_line)
      : on_line_(std::move(on_line)) {}

  // Delivers each complete line without its '\n'; a line longer than kMaxLine in pieces.
  void Feed(std::string_view chunk);
  // Delivers the unterminated rest, if any.
  void Flush();

 private:
  std::function<void(std::string_view)> on_line_;
  std::string partial_;
};

class LogWriter {
 public:
  // Opens path for appending (created 0640). max_bytes 0: never rotate.
  static Result<LogWriter> Open(std::filesystem::path path, uint64_t max_bytes);

  // Appends data, then rotates if the file grew past max_bytes. Write errors are dropped: the
  // log is best effort and must not stop the process it records.
  void Write(std::string_view data);

 private:
  LogWriter(std::filesystem::path path, uint64_t max_bytes, UniqueFd fd, uint64_t size)
      : path_(std::move(path)), max_bytes_(max_bytes), fd_(std::move(fd)), size_(size) {}

  std::filesystem::path path_;
  uint64_t max_bytes_;
  UniqueFd fd_;
  uint64_t size_;
};

// Opens path with O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode 0640.
Result<UniqueFd> OpenForAppend(const std::filesystem::path& path);

}  // namespace gsk::process::internal
