// StateLock: an exclusive flock on <state-dir>/supervisor.lock that holds our pid, so that a
// second daemon on the same state directory refuses to start. Released when destroyed (and by
// the kernel when the process dies, so a crash never leaves a stale lock). Not thread-safe.
#pragma once

#include <filesystem>
#include <memory>

#include "base/result.h"

namespace gsk::daemon {

class StateLock {
 public:
  // kFailedPrecondition naming the holder's pid when another process holds the lock.
  static Result<std::unique_ptr<StateLock>> Acquire(const std::filesystem::path& path);
  ~StateLock();
  StateLock(const StateLock&) = delete;
  StateLock& operator=(const StateLock&) = delete;

 private:
  StateLock(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::filesystem::path path_;
};

// Reads the API token from `path`, or creates it (32 random bytes, hex, mode 0600) when the file
// does not exist. Refuses a token file that others can read.
Result<std::string> LoadOrCreateToken(const std::filesystem::path& path);

}  // namespace gsk::daemon
