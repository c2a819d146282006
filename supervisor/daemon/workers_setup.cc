#include "supervisor/daemon/workers_setup.h"

#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include "supervisor/relay/worker_socket.h"
#include "supervisor/workers/store_observer.h"
#include "supervisor/workers/timers.h"
#include "supervisor/workers/worker_pool.h"

namespace gsk::daemon {

struct WorkerSupervision::Parts {
  std::unique_ptr<workers::Timers> timers;
  std::unique_ptr<workers::StoreObserver> observer;
  std::unique_ptr<workers::WorkerPool> pool;
  std::unique_ptr<service::WorkerService> service;
  std::unique_ptr<relay::WorkerSocket> socket;
};

namespace {

workers::WorkerPoolOptions PoolOptions(const config::Config& config) {
  const config::WorkersConfig& w = config.workers;
  workers::WorkerPoolOptions o;
  o.registration_deadline = w.registration_timeout;
  o.start_seconds = w.start_seconds;
  o.backoff_initial = w.backoff_initial;
  o.backoff_max = w.backoff_max;
  o.max_quick_failures = w.max_quick_failures;
  o.stop_grace = w.stop_timeout;
  o.reconnect_deadline = w.reconnect;
  o.supervisor_socket = config.WorkerSocketPath().string();
  o.adopted_log_rotate_bytes = static_cast<uint64_t>(w.log_rotate_bytes);
  o.launch_one_per_turn = true;
  return o;
}

service::WorkerServiceOptions ServiceOptions(const config::Config& config,
                                             envs::EnvManager& environments) {
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
  o.heartbeat = w.heartbeat;
  o.reconnect = w.reconnect;
  return o;
}

}  // namespace

WorkerSupervision::WorkerSupervision() : parts_(std::make_unique<Parts>()) {}

WorkerSupervision::~WorkerSupervision() {
  if (parts_->socket) parts_->socket->Close();
}

Result<std::unique_ptr<WorkerSupervision>> WorkerSupervision::Start(
    boost::asio::io_context& io, const config::Config& config, store::Store& store,
    process::ProcessLauncher& launcher, const Clock& clock, service::KernelService& kernels,
    envs::EnvManager& environments) {
  std::unique_ptr<WorkerSupervision> self(new WorkerSupervision());
  Parts& p = *self->parts_;
  p.timers = workers::MakeAsioTimers(io);
  p.observer = std::make_unique<workers::StoreObserver>(store);
  p.pool = std::make_unique<workers::WorkerPool>(launcher, *p.timers, clock, *p.observer,
                                                 PoolOptions(config));
  p.service = std::make_unique<service::WorkerService>(&store, p.pool.get(), &kernels, &clock,
                                                       ServiceOptions(config, environments));
  relay::WorkerSocketOptions socket_options;
  socket_options.path = config.WorkerSocketPath();
  socket_options.heartbeat = config.workers.heartbeat;
  workers::WorkerPool* pool = p.pool.get();
  socket_options.on_hello = [pool](const workers::Registration& r) { return pool->OnRegistered(r); };
  socket_options.on_disconnect = [pool](const std::string& id) { pool->OnDisconnected(id); };
  p.socket = std::make_unique<relay::WorkerSocket>(io, std::move(socket_options));
  GSK_RETURN_IF_ERROR(p.socket->Listen());
  p.service->AdoptFromStore();
  service::WorkerService* workers = p.service.get();
  kernels.SetOnChange([workers](const std::string& name) { workers->Reconcile(name); });
  environments.SetOnChange([workers](const std::string& hash) { workers->ReconcileEnv(hash); });
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
