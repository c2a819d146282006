// WorkerService: the transport-free face of worker supervision. It keeps the worker pool in
// line with the kernels in the store (a ready, started managed kernel gets its `workers`
// processes; any other gets none), adopts the workers a crashed supervisor left, and serves
// the worker requests of the REST API and CLI. Not thread-safe: core thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "supervisor/service/kernel_service.h"
#include "supervisor/store/store.h"
#include "supervisor/workers/worker_pool.h"

namespace gsk::service {

struct WorkerServiceOptions {
  std::function<std::filesystem::path(const std::string& env_hash)> env_path;
  std::filesystem::path work_dir;  // each worker runs in work_dir/<id>
  std::filesystem::path log_dir;   // each worker logs to log_dir/<id>.log
  uint64_t log_rotate_bytes = 0;
  process::ResourceLimits limits;
  int models_per_worker = 4;  // GSK_MODEL_CACHE_SIZE: models each worker keeps loaded
  bool fork_server = true;    // workers may be forked from templates (unless a kernel opts out)
  // The heartbeat and the orphan grace the workers are told come from the pool's Timings.
};

class WorkerService {
 public:
  // All references must outlive the service.
  WorkerService(store::Store& store, workers::WorkerPool& pool, KernelService& kernels,
                const Clock& clock, WorkerServiceOptions options);

  // At startup, before ReconcileAll: takes charge again of the workers whose rows say they had
  // a process; the rows of those that are gone are dropped (their kernel gets new ones).
  void AdoptFromStore();
  // Makes the pool match the store for one kernel, all kernels of an env, or every kernel.
  void Reconcile(const std::string& kernel);
  void ReconcileEnv(const std::string& env_hash);
  void ReconcileAll();

  // POST /kernels/{name}/start and /stop. `workers` (start only) also sets the kernel's
  // document field. kNotFound, kFailedPrecondition (unmanaged), kInvalidArgument (workers).
  Result<const Kernel*> StartKernel(const std::string& name, std::optional<int> workers,
                                    const Caller& caller);
  Result<const Kernel*> StopKernel(const std::string& name, const Caller& caller);

  // How a kernel's "preloadModels" become the paths its template loads (the model roots'
  // resolution, as for a call). Unset: no model is preloaded.
  void SetModelResolver(
      std::function<Result<std::filesystem::path>(const std::string& model)> resolve) {
    resolve_model_ = std::move(resolve);
  }

  std::vector<workers::WorkerInfo> List(const std::string& kernel) const;
  Result<workers::WorkerInfo> Get(const std::string& id) const;
  // kNotFound for an unknown id; the answer is the worker right after the request.
  Result<workers::WorkerInfo> Stop(const std::string& id);
  Result<workers::WorkerInfo> Start(const std::string& id);  // a stopped/fatal/exited one
  Result<workers::WorkerInfo> Restart(const std::string& id);
  Status Delete(const std::string& id);  // stopped, forgotten and replaced
  int Running(const std::string& kernel) const;

  // Up to `limit` bytes of the worker's log from `offset` (never `complete`: a worker may
  // always write more).
  Result<LogChunk> Logs(const std::string& id, uint64_t offset, uint64_t limit) const;

 private:
  Result<workers::LaunchTemplate> Template(const Kernel& kernel) const;
  Status NotFoundWorker(const std::string& id) const;

  store::Store& store_;
  workers::WorkerPool& pool_;
  KernelService& kernels_;
  const Clock& clock_;
  WorkerServiceOptions options_;
  std::map<std::string, std::string> launched_generation_;  // kernel -> its launch (argv, env)
  std::function<Result<std::filesystem::path>(const std::string& model)> resolve_model_;
};


}  // namespace gsk::service
