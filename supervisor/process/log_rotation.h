// Size-based rotation of worker logs: log -> log.1 -> ... -> log.<kRotatedLogsKept>, either by
// rename (when the supervisor is the writer) or by copy and truncate (when a child writes the
// file through its own O_APPEND descriptor), and an inotify watcher that triggers the latter.
// Functions are thread-safe on distinct paths; LogRotationWatcher belongs to its io thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "base/result.h"
#include "base/status.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace gsk::process::internal {

// Shifts log.N -> log.N+1 (dropping the oldest) and renames log -> log.1.
Status RotateByRename(const std::filesystem::path& path);

// Shifts the older logs, copies log to log.1 and truncates log to 0 bytes in place, so that a
// writer holding log open with O_APPEND continues at its start.
Status RotateByCopyTruncate(const std::filesystem::path& path);

// RotateByRename if the file exists and is larger than max_bytes.
Status RotateIfLarger(const std::filesystem::path& path, uint64_t max_bytes);

// Watches log files written by children and rotates each by copy-and-truncate once it grows
// past its limit. Event-driven (inotify IN_MODIFY), no polling.
class LogRotationWatcher {
 public:
  explicit LogRotationWatcher(boost::asio::io_context& io);
  ~LogRotationWatcher();
  LogRotationWatcher(const LogRotationWatcher&) = delete;
  LogRotationWatcher& operator=(const LogRotationWatcher&) = delete;

  // Starts watching path (which must exist). Returns a token for Unwatch. Watching the same
  // file twice is counted; the smaller limit wins.
  Result<int> Watch(const std::filesystem::path& path, uint64_t max_bytes);
  void Unwatch(int token);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace gsk::process::internal
