// WorkerSupervision: the worker side of the daemon, assembled from the config: the store
// observer, the worker pool, the worker service, the worker socket, and the relay of model
// calls with its service. Built once on the core
// thread before serving; used and destroyed there.
#pragma once

#include <functional>
#include <memory>

#include "base/clock.h"
#include "base/result.h"
#include "base/timers.h"
#include "supervisor/config/config.h"
#include "supervisor/envs/environments.h"
#include "supervisor/process/process_launcher.h"
#include "supervisor/service/kernel_service.h"
#include "supervisor/service/model_blobs.h"
#include "supervisor/service/model_service.h"
#include "supervisor/service/worker_service.h"
#include "supervisor/store/store.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace gsk::relay {
class RemoteWorkers;
}  // namespace gsk::relay

namespace gsk::daemon {

// What the worker side needs from the rest of the daemon; all must outlive it.
struct WorkerDeps {
  boost::asio::io_context& io;
  store::Store& store;
  process::ProcessLauncher& launcher;
  Timers& timers;
  const Clock& clock;
  service::KernelService& kernels;
  envs::Environments& environments;
};

class WorkerSupervision {
 public:
  // Listens on the worker socket, adopts the workers a previous supervisor left, and hooks the
  // pool to kernel and env changes.
  static Result<std::unique_ptr<WorkerSupervision>> Start(const config::Config& config,
                                                          const WorkerDeps& deps);
  ~WorkerSupervision();

  service::WorkerService& service();
  service::ModelService& models();
  // The unmanaged workers (their WebSocket connections).
  relay::RemoteWorkers& remote();
  // The bytes of the models that unmanaged workers fetch.
  service::ModelBlobs& blobs();
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
