#include "supervisor/daemon/workers_setup.h"

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "supervisor/relay/relay.h"
#include "supervisor/relay/remote_workers.h"
#include "supervisor/relay/worker_socket.h"
#include "supervisor/workers/observer_list.h"
#include "supervisor/workers/store_observer.h"
#include "supervisor/workers/worker_pool.h"

namespace gsk::daemon {

// Destroyed in reverse: the relay and the model service before the socket and the pool.
struct WorkerSupervision::Parts {
  std::unique_ptr<workers::StoreObserver> store_observer;
  workers::ObserverList observers;  // the store first, then the relay
  std::unique_ptr<workers::WorkerPool> pool;
  std::unique_ptr<service::WorkerService> service;
  std::unique_ptr<relay::WorkerSocket> socket;
  std::unique_ptr<relay::RemoteWorkers> remote;
  std::unique_ptr<relay::EitherLinks> links;
  std::unique_ptr<relay::Relay> relay;
  std::unique_ptr<service::ModelBlobs> blobs;
  std::unique_ptr<service::ModelService> models;
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
  o.models_per_worker = config.models.models_per_worker;
  o.fork_server = w.fork_server;
  return o;
}

service::ModelOptions ModelOptions(const config::Config& config) {
  service::ModelOptions o = config.models;
  if (o.roots.empty()) o.roots.push_back(config.ModelsDir());
  return o;
}

// An unmanaged worker may take a name that is free or an unmanaged kernel's; the first one
// creates its UNMANAGED kernel, with the worker's Python version.
Status AcceptRemoteName(service::KernelService& kernels, const relay::RemoteHello& hello) {
  Result<const service::Kernel*> k = kernels.Get(hello.name);
  if (k.ok()) {
    if (!(*k)->managed()) return Status::Ok();
    return AlreadyExists("the name \"" + hello.name + "\" belongs to a managed kernel of this "
                         "supervisor; start the worker with another --name");
  }
  if (k.status().code() != StatusCode::kNotFound) return k.status();
  std::string version = hello.python_version;
  if (size_t dot = version.find('.'); dot != std::string::npos) {
    version = version.substr(0, version.find('.', dot + 1));  // "3.11.7" -> "3.11"
  }
  nlohmann::json doc = {{"name", hello.name}, {"type", "UNMANAGED"}, {"pythonVersion", version}};
  auto created = kernels.Create(doc.dump(), service::Caller{"worker-key:" + hello.key_name});
  if (!created.ok()) {
    return InvalidArgument("cannot create the kernel \"" + hello.name + "\" for this worker: " +
                           created.status().message());
  }
  spdlog::info("event=kernel.created_by_worker kernel={} python={}", hello.name, version);
  return Status::Ok();
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
  p.store_observer = std::make_unique<workers::StoreObserver>(d.store);
  p.observers.Add(p.store_observer.get());
  p.pool = std::make_unique<workers::WorkerPool>(d.launcher, d.timers, d.clock, p.observers,
                                                 PoolOptions(config));
  p.service = std::make_unique<service::WorkerService>(d.store, *p.pool, d.kernels, d.clock,
                                                       ServiceOptions(config, d.environments));
  relay::WorkerSocketOptions socket_options;
  socket_options.path = config.WorkerSocketPath();
  socket_options.heartbeat = config.workers.heartbeat;
  Parts* parts = &p;
  socket_options.on_hello = [parts](const workers::Registration& r) {
    Status s = parts->pool->OnRegistered(r);
    if (s.ok()) parts->relay->OnConnected(r.worker_id);
    return s;
  };
  socket_options.on_disconnect = [parts](const std::string& id) {
    parts->pool->OnDisconnected(id);
  };
  p.socket = std::make_unique<relay::WorkerSocket>(d.io, std::move(socket_options));
  relay::RemoteWorkersOptions remote_options;
  remote_options.heartbeat = config.workers.heartbeat;
  remote_options.supervisor_pid = static_cast<int>(::getpid());
  service::KernelService* kernels = &d.kernels;
  remote_options.on_hello = [kernels](const relay::RemoteHello& hello) {
    return AcceptRemoteName(*kernels, hello);
  };
  remote_options.on_connected = [parts](const std::string& kernel) {
    parts->relay->OnRemoteConnected(kernel);
  };
  remote_options.on_disconnect = [parts](const std::string& worker, const std::string&,
                                         const std::string& why) {
    parts->relay->OnRemoteGone(worker, why);
  };
  p.remote = std::make_unique<relay::RemoteWorkers>(d.timers, d.clock, std::move(remote_options));
  p.links = std::make_unique<relay::EitherLinks>(*p.socket, *p.remote);
  relay::RelayOptions relay_options;
  relay_options.queue_size = config.models.queue_size;
  relay_options.models_per_worker = config.models.models_per_worker;
  relay_options.remote_worker = [parts](const std::string& kernel) {
    return parts->remote->Active(kernel);
  };
  p.relay = std::make_unique<relay::Relay>(*p.links, *p.pool, d.timers, d.clock, relay_options);
  p.observers.Add(p.relay.get());
  p.blobs = std::make_unique<service::ModelBlobs>(config.state_dir / "cache/model-blobs");
  p.models = std::make_unique<service::ModelService>(d.kernels, *p.pool, *p.relay,
                                                     ModelOptions(config));
  p.models->SetBlobs(p.blobs.get());
  GSK_RETURN_IF_ERROR(p.models->Init());
  service::ModelService* models = p.models.get();
  p.service->SetModelResolver([models](const std::string& model) {
    return models->ResolveModel(model);
  });
  d.kernels.SetModelPathCheck([models](const std::string& model) {
    return models->ResolveModel(model).status();
  });
  GSK_RETURN_IF_ERROR(p.socket->Listen());
  p.service->AdoptFromStore();
  d.kernels.SetOnChange([parts](const std::string& name) {
    parts->service->Reconcile(name);
    parts->relay->Recheck();
  });
  d.environments.SetOnChange([parts](const std::string& hash) {
    parts->service->ReconcileEnv(hash);
    parts->relay->Recheck();
  });
  return self;
}

service::ModelService& WorkerSupervision::models() { return *parts_->models; }

relay::RemoteWorkers& WorkerSupervision::remote() { return *parts_->remote; }

service::ModelBlobs& WorkerSupervision::blobs() { return *parts_->blobs; }

service::WorkerService& WorkerSupervision::service() { return *parts_->service; }

void WorkerSupervision::ReconcileAll() { parts_->service->ReconcileAll(); }

void WorkerSupervision::StopAll(std::function<void()> done) {
  Parts* p = parts_.get();
  p->remote->CloseAll();
  p->pool->StopAll([p, done = std::move(done)] {
    p->socket->Close();
    if (done) done();
  });
}

}  // namespace gsk::daemon
