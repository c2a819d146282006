// Environments: what the kernel service needs from the env builder, as an interface so that the
// service's unit tests need no processes. EnvManager implements it. Core thread only.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "supervisor/envs/pip_output.h"

namespace gsk::envs {

struct EnvRequest {
  std::string hash;
  std::string python_minor;               // "3.11"
  std::vector<std::string> requirements;  // canonical requirement lines
  // The kernel that asks. When the env is already built (or failed), only its status is set;
  // "" sets the status of every kernel of the hash (at startup).
  std::string kernel;
};

class Environments {
 public:
  virtual ~Environments() = default;
  // See EnvManager for the meaning of each.
  virtual void Ensure(const EnvRequest& request, bool retry_failed) = 0;
  virtual void Release(const std::string& hash) = 0;
  virtual Status Rebuild(const EnvRequest& request) = 0;
  virtual std::optional<BuildProgress> Progress(const std::string& hash) const = 0;
  virtual std::filesystem::path LogPath(const std::string& hash) const = 0;
};

}  // namespace gsk::envs
