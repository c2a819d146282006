// WorkerSupervision: the worker side of the daemon, assembled from the config: the timers, the
// store observer, the worker pool, the worker service and the worker socket. Built once on the
// core thread before serving; used and destroyed there.
#pragma once

#include <functional>
#include <memory>

#include "base/clock.h"
#include "base/result.h"
#include "supervisor/config/config.h"
#include "supervisor/envs/env_manager.h"
#include "supervisor/process/process_launcher.h"
#include "supervisor/service/kernel_service.h"
#include "supervisor/service/worker_service.h"
#include "supervisor/store/store.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace gsk::daemon {

class WorkerSupervision {
 public:
  // Listens on the worker socket, adopts the workers a previous supervisor left, and hooks the
  // pool to kernel and env changes. Everything passed in must outlive the object.
  static Result<std::unique_ptr<WorkerSupervision>> Start(
      boost::asio::io_context& io, const config::Config& config, store::Store& store,
      process::ProcessLauncher& launcher, const Clock& clock, service::KernelService& kernels,
      envs::EnvManager& environments);
  ~WorkerSupervision();

  service::WorkerService& service();
  // Starts the workers every ready kernel wants (after the envs were resumed).
  void ReconcileAll();
  // Stops every worker gracefully; `done` runs once none is left, and the socket is closed.
  void StopAll(std::function<void()> done);

 private:
  WorkerSupervision();
  struct Parts;
  std::unique_ptr<Parts> parts_;
};

}  // namespace gsk::daemon
