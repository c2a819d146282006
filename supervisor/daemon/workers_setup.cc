#include "supervisor/daemon/workers_setup.h"

#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include "supervisor/relay/worker_socket.h"
#include "supervisor/workers/store_observer.h"
#include "supervisor/workers/worker_pool.h"

namespace gsk::daemon {

struct WorkerSupervision::Parts {
  std::unique_ptr<workers::StoreObserver> observer;
  std::unique_ptr<workers::WorkerPool> pool;
  std::unique_ptr<service::WorkerService> service;
  std::unique_ptr<relay::WorkerSocket> socket;
};

namespace {

workers::WorkerPoolOptions PoolOptions(const config::Config& config) {
  const config::WorkersConfig& w = config.workers;
  workers::WorkerPoolOptions o;
  static_cast<workers::Timings&>(o) = w;
  o.supervisor_socket = config.WorkerSocketPath().string();
  o.adopted_log_rotate_bytes = static_cast<uint64_t>(w.log_rotate_bytes);
  o.launch_one_per_turn = true;
  return o;
}

service::WorkerServiceOptions ServiceOptions(const config::Config& config,
                                             envs::Environments& environments) {
  const config::WorkersConfig& w = config.workers;
  service::WorkerServiceOptions o;
  o.env_path = [&environments](const std::string& hash) { return environments.EnvPath(hash); };
  o.work_dir = config.WorkersDir();
  o.log_dir = config.WorkerLogsDir();
  o.log_rotate_bytes = static_cast<uint64_t>(w.log_rotate_bytes);
  if (w.memory_limit_mb > 0) o.limits.address_space_bytes = static_cast<uint64_t>(w.memory_limit_mb) << 20;
  if (w.open_files > 0) o.limits.open_files = static_cast<uint64_t>(w.open_files);
  if (w.max_processes > 0) o.limits.processes = static_cast<uint64_t>(w.max_processes);
  o.limits.core_bytes = 0;  // a crashing model must not fill the disk with cores
  return o;
}

}  // namespace

WorkerSupervision::WorkerSupervision() : parts_(std::make_unique<Parts>()) {}

WorkerSupervision::~WorkerSupervision() {
  if (parts_->socket) parts_->socket->Close();
}

Result<std::unique_ptr<WorkerSupervision>> WorkerSupervision::Start(
    const config::Config& config, const WorkerDeps& d) {
  std::unique_ptr<WorkerSupervision> self(new WorkerSupervision());
  Parts& p = *self->parts_;
  p.observer = std::make_unique<workers::StoreObserver>(d.store);
  p.pool = std::make_unique<workers::WorkerPool>(d.launcher, d.timers, d.clock, *p.observer,
                                                 PoolOptions(config));
  p.service = std::make_unique<service::WorkerService>(d.store, *p.pool, d.kernels, d.clock,
                                                       ServiceOptions(config, d.environments));
  relay::WorkerSocketOptions socket_options;
  socket_options.path = config.WorkerSocketPath();
  socket_options.heartbeat = config.workers.heartbeat;
  workers::WorkerPool* pool = p.pool.get();
  socket_options.on_hello = [pool](const workers::Registration& r) { return pool->OnRegistered(r); };
  socket_options.on_disconnect = [pool](const std::string& id) { pool->OnDisconnected(id); };
  p.socket = std::make_unique<relay::WorkerSocket>(d.io, std::move(socket_options));
  GSK_RETURN_IF_ERROR(p.socket->Listen());
  p.service->AdoptFromStore();
  service::WorkerService* workers = p.service.get();
  d.kernels.SetOnChange([workers](const std::string& name) { workers->Reconcile(name); });
  d.environments.SetOnChange([workers](const std::string& hash) { workers->ReconcileEnv(hash); });
  return self;
}

service::WorkerService& WorkerSupervision::service() { return *parts_->service; }

void WorkerSupervision::ReconcileAll() { parts_->service->ReconcileAll(); }

void WorkerSupervision::StopAll(std::function<void()> done) {
  Parts* p = parts_.get();
  p->pool->StopAll([p, done = std::move(done)] {
    p->socket->Close();
    if (done) done();
  });
}

}  // namespace gsk::daemon
