// Kernel: a kernel as the daemon holds it: its document parsed once into a typed value, and what
// the supervisor keeps about it. Its status is not stored with it: it is its env's, read when
// asked (KernelService::StateOf). Value types, not synchronized.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kernel-spec/kernel_spec.h"
#include "supervisor/envs/pip_output.h"

namespace gsk::service {

enum class KernelStatus { kPending, kBuilding, kReady, kFailed };

// "pending", "building", "ready", "failed" (the REST API's spelling).
std::string_view KernelStatusName(KernelStatus status);

struct Kernel {
  spec::KernelSpec spec;
  std::string document;  // the normalized document as stored: what a repeat is compared with
  std::string env_hash;  // of spec and the package index settings
  int64_t generation = 1;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  bool workers_stopped = false;  // POST /kernels/{name}/stop: no workers until /start
  // Set when the stored document breaks the rules of this supervisor (it was written by an
  // earlier version or under other settings): the kernel is kept, shown failed with this
  // reason, and neither built nor run until it is replaced.
  std::string problem;

  const std::string& name() const { return spec.name; }
  bool managed() const { return spec.type == spec::KernelType::kProcess; }
};

// Where a kernel stands now, derived from its env.
struct KernelState {
  KernelStatus status = KernelStatus::kPending;
  std::string last_error;                        // "" unless failed
  std::optional<envs::BuildProgress> progress;  // while its env is queued or building
};

}  // namespace gsk::service
