// KernelService: the transport-free kernel registry. It holds every kernel in memory as a typed
// value (parsed once, when loaded or written), validates documents with kernel-spec, enforces
// limits, writes each change with its audit event to the store in one transaction, and asks the
// env builder for the environments of managed kernels. A kernel's status is its env's, derived
// when asked. It is the one writer of the kernels table. Not thread-safe: lives on the core
// thread, like the store and the env builder it uses.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "supervisor/envs/environments.h"
#include "supervisor/service/kernel.h"
#include "supervisor/service/log_chunk.h"
#include "supervisor/service/service_options.h"
#include "supervisor/store/store.h"

namespace gsk::service {

// Who asked: recorded as the actor of audit events.
struct Caller {
  std::string actor = "rest";
};

struct WriteOutcome {
  const Kernel* kernel = nullptr;     // valid until the next change of the registry
  bool changed = false;               // false for an idempotent repeat of the same document
  std::vector<std::string> warnings;  // from parsing, e.g. unknown fields kept
};

class KernelService {
 public:
  // `store`, `clock` and `envs` must outlive the service.
  KernelService(store::Store& store, const Clock& clock, envs::Environments& envs,
                ServiceOptions options);

  // At startup, before anything else: reads every kernel once. A kernel whose env hash differs
  // from what today's document rules and package index settings give is rewritten with the new
  // hash (one transaction, one "kernels.rehashed" event), so that no kernel points at an env
  // built for other settings. A stored document that today's rules refuse keeps its kernel,
  // marked with a problem (see Kernel::problem).
  Status Load();
  // Then: asks for the env of every managed kernel again (failed ones are not retried).
  void ResumeEnvironments();

  // Creates a kernel from a Hub document. Posting the identical document again is a no-op that
  // returns the existing kernel (changed == false); a different document for an existing name
  // is kAlreadyExists. kInvalidArgument for bad documents (detail "field"), with detail
  // ("reason","invalid_json") when the body is not a JSON object. kResourceExhausted at
  // ServiceOptions::max_kernels.
  Result<WriteOutcome> Create(std::string_view body, const Caller& caller);
  // Replaces the document of an existing kernel. The body's "name", when present, must match.
  Result<WriteOutcome> Replace(const std::string& name, std::string_view body,
                               const Caller& caller);
  // kNotFound with detail "name"; kInvalidArgument for a name that cannot be a kernel's.
  Result<const Kernel*> Get(const std::string& name) const;
  // Ordered by name; the pointers are valid until the next change of the registry.
  std::vector<const Kernel*> List() const;
  size_t count() const { return kernels_.size(); }
  Status Delete(const std::string& name, const Caller& caller);
  // Builds the kernel's environment again. kFailedPrecondition for unmanaged kernels, a kernel
  // with a problem, or while a build of its env runs.
  Result<const Kernel*> Rebuild(const std::string& name, const Caller& caller);
  // POST /kernels/{name}/stop (true) and /start (false): whether the kernel's workers run.
  // kFailedPrecondition for unmanaged kernels.
  Result<const Kernel*> SetWorkersStopped(const std::string& name, bool stopped,
                                          const Caller& caller);
  // Sets the document's "workers" field (a new generation). kInvalidArgument out of range.
  Result<const Kernel*> SetWorkers(const std::string& name, int workers, const Caller& caller);

  KernelState StateOf(const Kernel& kernel) const;

  // Up to `limit` bytes of the kernel's env build log from `offset`; `complete` once the build
  // is over (ready or failed).
  Result<LogChunk> BuildLog(const std::string& name, uint64_t offset, uint64_t limit) const;

  // Called with the kernel's name after every change this service makes to it (create,
  // replace, delete, rebuild, start, stop), on the same thread, before the call returns.
  void SetOnChange(std::function<void(const std::string& name)> on_change) {
    on_change_ = std::move(on_change);
  }

  // How a model path of "preloadModels" is checked when a kernel is written (it must be a model
  // a predict call could name: under the model roots, existing). Unset: not checked.
  void SetModelPathCheck(std::function<Status(const std::string& path)> check) {
    model_path_check_ = std::move(check);
  }

  const ServiceOptions& options() const { return options_; }

 private:
  Kernel FromSpec(spec::KernelSpec spec) const;
  Kernel FromRow(const store::KernelRow& row) const;
  store::KernelRow ToRow(const Kernel& kernel) const;
  store::Event MakeEvent(std::string kind, const Kernel& kernel, const Caller& caller) const;
  Result<WriteOutcome> Write(Kernel kernel, const Kernel& existing, std::vector<std::string> warnings,
                             const Caller& caller);
  void EnsureEnv(const Kernel& kernel, bool retry_failed);
  Status CheckModelPaths(const spec::KernelSpec& spec) const;
  void Changed(const std::string& name);
  Kernel* Find(const std::string& name);

  store::Store& store_;
  const Clock& clock_;
  envs::Environments& envs_;
  ServiceOptions options_;
  std::map<std::string, Kernel> kernels_;  // by name: the kernels table, as written
  std::function<void(const std::string& name)> on_change_;
  std::function<Status(const std::string& path)> model_path_check_;
};

}  // namespace gsk::service
