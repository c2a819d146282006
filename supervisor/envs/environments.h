// Environments: what the kernel service needs from the env builder, as an interface so that the
// service's unit tests need no processes (FakeEnvironments, fake_environments.h). EnvManager
// implements it. Core thread only.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "supervisor/envs/pip_output.h"

namespace gsk::envs {

// Where an env stands. Kernels show their env's status as their own.
enum class EnvStatus { kPending, kBuilding, kReady, kFailed };

// "pending", "building", "ready", "failed".
std::string_view EnvStatusName(EnvStatus status);

struct EnvState {
  EnvStatus status = EnvStatus::kPending;
  std::string last_error;                 // why it failed; "" otherwise
  std::optional<BuildProgress> progress;  // while queued or building
};

struct EnvRequest {
  std::string hash;                       // the kernel-spec env hash
  std::string python_minor;               // "3.11"
  std::vector<std::string> requirements;  // canonical requirement lines
};

class Environments {
 public:
  virtual ~Environments() = default;
  // Makes sure the env of `request.hash` exists: a ready env is used as is; otherwise a build is
  // queued or joined. A failed env is built again only when `retry_failed`.
  virtual void Ensure(const EnvRequest& request, bool retry_failed) = 0;
  // Called when a kernel stopped using `hash`. When no kernel uses it any more, a queued or
  // running build is cancelled and its files removed; a ready env stays cached until collected.
  virtual void Release(const std::string& hash) = 0;
  // Builds the env again from scratch. kFailedPrecondition while a build of it is queued or runs.
  virtual Status Rebuild(const EnvRequest& request) = 0;
  // The env's status now ("pending" for one never asked for). O(log envs), no I/O.
  virtual EnvState State(const std::string& hash) const = 0;
  virtual std::filesystem::path EnvPath(const std::string& hash) const = 0;
  virtual std::filesystem::path LogPath(const std::string& hash) const = 0;
  // `on_change(hash)` runs soon after (never inside the call that caused it) a build of the env
  // ended (ready or failed), or a rebuild sent it back to pending.
  virtual void SetOnChange(std::function<void(const std::string& hash)> on_change) = 0;
};

}  // namespace gsk::envs
