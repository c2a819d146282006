#include "supervisor/daemon/daemon.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "base/clock.h"
#include "base/timers.h"
#include "supervisor/api/router.h"
#include "supervisor/daemon/environments_setup.h"
#include "supervisor/daemon/state_lock.h"
#include "supervisor/daemon/workers_setup.h"
#include "supervisor/envs/build_runner.h"
#include "supervisor/envs/env_manager.h"
#include "supervisor/process/forking_launcher.h"
#include "supervisor/process/process_launcher.h"
#include "supervisor/relay/remote_workers.h"
#include "supervisor/server/http_server.h"
#include "supervisor/service/kernel_service.h"
#include "supervisor/service/key_service.h"
#include "supervisor/service/system_service.h"
#include "supervisor/store/store.h"

namespace gsk::daemon {
namespace {

Status PrepareStateDir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return FailedPrecondition("cannot create state directory " + dir.string() + ": " +
                              ec.message() + " (choose another with --state-dir)");
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    return FailedPrecondition("state directory " + dir.string() + " is not writable by uid " +
                              std::to_string(::getuid()));
  }
  ::chmod(dir.c_str(), 0750);
  return Status::Ok();
}

// Connections, pipes and log files all take descriptors: use what the hard limit allows.
uint64_t RaiseOpenFilesLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur == RLIM_INFINITY ? 1'048'576 : limit.rlim_cur;
}

// Half of the descriptors for connections (the rest for workers, builds, logs and SQLite),
// split between the TCP listener and the admin socket, within sane bounds.
int ConnectionLimit(int configured, uint64_t open_files) {
  if (configured > 0) return configured;
  uint64_t half = open_files / 2;
  return static_cast<int>(std::clamp<uint64_t>(half, 64, 16384));
}

std::string HostPortText(const std::string& host, uint16_t port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// The daemon's objects, built in dependency order by Setup and destroyed in reverse.
class Daemon {
 public:
  explicit Daemon(const config::Config& config) : config_(config) {}

  int Run() {
    if (Status s = Setup(); !s.ok()) {
      spdlog::error("event=supervisor.start_failed error=\"{}\"", s.message());
      return exit_code_;
    }
    Serve();
    Shutdown();
    return 0;
  }

 private:
  Status Setup();
  Status OpenState();
  Status BuildServices();
  Status Listen();
  void Serve();
  void OnStopSignal(int signo);
  void Shutdown();

  const config::Config& config_;
  SystemClock clock_;
  int64_t start_mono_ = clock_.MonotonicMillis();
  int exit_code_ = 1;
  boost::asio::io_context io_{1};
  std::unique_ptr<StateLock> lock_;
  std::unique_ptr<store::Store> store_;
  std::string token_;
  std::unique_ptr<Timers> timers_;
  std::unique_ptr<process::ProcessLauncher> launcher_;
  std::unique_ptr<process::ProcessLauncher> worker_launcher_;  // the fork server, or launcher_
  std::unique_ptr<envs::BuildRunner> runner_;
  std::unique_ptr<envs::EnvManager> environments_;
  std::unique_ptr<service::KernelService> kernels_;
  std::unique_ptr<WorkerSupervision> workers_;
  std::unique_ptr<service::SystemService> system_;
  std::unique_ptr<service::KeyService> keys_;
  std::unique_ptr<api::Router> router_;
  std::unique_ptr<server::HttpServer> http_;
  std::optional<boost::asio::signal_set> signals_;
};

Status Daemon::Setup() {
  GSK_RETURN_IF_ERROR(OpenState());
  GSK_RETURN_IF_ERROR(BuildServices());
  return Listen();
}

// The state directory, its lock (exit code 3 when another daemon holds it), the store and the
// API token.
Status Daemon::OpenState() {
  GSK_RETURN_IF_ERROR(PrepareStateDir(config_.state_dir));
  auto lock = StateLock::Acquire(config_.LockPath());
  if (!lock.ok()) {
    if (lock.status().code() == StatusCode::kFailedPrecondition) exit_code_ = 3;
    return lock.status();
  }
  lock_ = std::move(lock).value();
  GSK_ASSIGN_OR_RETURN(store_, store::Store::Open(config_.DatabasePath()));
  token_ = config_.server.api_token;
  if (token_.empty()) {
    GSK_ASSIGN_OR_RETURN(token_, LoadOrCreateToken(config_.ApiTokenPath()));
  }
  return Status::Ok();
}

Status Daemon::BuildServices() {
  std::vector<python::Interpreter> interpreters = DiscoverConfiguredInterpreters(config_);
  for (const auto& it : interpreters) {
    spdlog::info("event=python.found version={} path={} source={} usable={}{}", it.version,
                 it.path.string(), it.source, it.usable(),
                 it.usable() ? "" : " problem=\"" + it.problem + "\"");
  }
  auto shim_wheel = FindShimWheel(config_);
  if (!shim_wheel.ok()) {
    spdlog::warn("event=shim.missing error=\"{}\"", shim_wheel.status().message());
  }
  timers_ = MakeAsioTimers(io_);
  // Workers forked by a template are re-parented to us: we collect their exits.
  if (Status s = process::MakeChildSubreaper(); !s.ok()) {
    spdlog::warn("event=subreaper.failed error=\"{}\"", s.message());
  }
  launcher_ = process::MakeRealLauncher(io_);
  process::ProcessLauncher* for_workers = launcher_.get();
  if (config_.workers.fork_server) {
    process::ForkOptions fork;
    fork.templates_dir = config_.state_dir / "templates";
    fork.logs_dir = config_.state_dir / "logs/templates";
    fork.idle = config_.workers.template_idle;
    worker_launcher_ = std::make_unique<process::ForkingLauncher>(*launcher_, *timers_, fork);
    for_workers = worker_launcher_.get();
  }
  envs::EnvOptions env_options = MakeEnvOptions(
      config_, interpreters, shim_wheel.ok() ? *shim_wheel : std::filesystem::path());
  runner_ = std::make_unique<envs::BuildRunner>(*launcher_, *timers_,
                                                MakeRunnerOptions(env_options));
  environments_ = std::make_unique<envs::EnvManager>(*store_, *runner_, *timers_, clock_,
                                                     std::move(env_options));
  kernels_ = std::make_unique<service::KernelService>(*store_, clock_, *environments_,
                                                      config_.kernels);
  // Kernels first: a changed index rehashes them, and Recover keeps the envs they now use.
  GSK_RETURN_IF_ERROR(kernels_->Load());
  GSK_RETURN_IF_ERROR(environments_->Recover());
  GSK_ASSIGN_OR_RETURN(workers_, WorkerSupervision::Start(
                                     config_, {io_, *store_, *for_workers, *timers_, clock_,
                                               *kernels_, *environments_}));
  kernels_->ResumeEnvironments();
  workers_->ReconcileAll();

  service::DaemonFacts facts;
  facts.version = GSK_VERSION;
  facts.pid = ::getpid();
  facts.started_at_ms = clock_.NowUnixMillis();
  facts.started_mono_ms = start_mono_;
  facts.state_dir = config_.state_dir.string();
  facts.listen = config_.server.listen;
  facts.admin_socket = config_.AdminSocketPath().string();
  facts.worker_socket = config_.WorkerSocketPath().string();
  facts.interpreters = std::move(interpreters);
  service::StatusSources sources;
  sources.kernels = [this] { return static_cast<int64_t>(kernels_->count()); };
  sources.workers = [this] { return static_cast<int64_t>(workers_->service().List("").size()); };
  sources.running_builds = [this] { return environments_->running_builds(); };
  system_ = std::make_unique<service::SystemService>(*store_, clock_, std::move(facts),
                                                     std::move(sources));
  keys_ = std::make_unique<service::KeyService>(*store_, clock_);
  api::RouterOptions router_options;
  router_options.api_token = token_;
  router_options.now_ms = [this] { return clock_.NowUnixMillis(); };
  if (shim_wheel.ok()) router_options.shim_wheel = *shim_wheel;
  router_ = std::make_unique<api::Router>(
      api::Services{kernels_.get(), &workers_->service(), system_.get(), &workers_->models(),
                    keys_.get(), &workers_->remote(), &workers_->blobs()},
      router_options);
  relay::RemoteWorkers* remote = &workers_->remote();
  keys_->SetOnRevoked([remote](const std::string& name) { remote->CloseByKey(name); });
  return Status::Ok();
}

// The REST listener and the admin socket.
Status Daemon::Listen() {
  server::ServerOptions options = config_.server.http;
  options.max_connections = ConnectionLimit(options.max_connections, RaiseOpenFilesLimit());
  uint64_t small = options.max_body_bytes;
  uint64_t model_calls = config_.models.max_request_bytes;
  http_ = std::make_unique<server::HttpServer>(
      io_, options,
      [this](const api::HttpRequest& r, api::Reply reply) { router_->Handle(r, std::move(reply)); },
      [small, model_calls](std::string_view method, std::string_view target) {
        return api::IsModelCall(method, target) ? model_calls : small;
      });
  http_->SetUpgradeHandler([this](const api::HttpRequest& r) { return router_->Upgrade(r); });
  bool tls = !config_.server.tls_certificate.empty();
  if (tls) {
    GSK_RETURN_IF_ERROR(
        http_->UseTls(config_.server.tls_certificate, config_.server.tls_private_key));
  }
  auto host_port = config::ParseHostPort(config_.server.listen);  // validated by Resolve
  GSK_ASSIGN_OR_RETURN(uint16_t port, http_->ListenTcp(host_port->host, host_port->port));
  system_->facts().listen = HostPortText(host_port->host, port);
  GSK_RETURN_IF_ERROR(
      http_->ListenUnix(config_.AdminSocketPath(), config_.server.admin_socket_mode));
  spdlog::info("event=http.listening listen={} tls={} max_connections={}",
               system_->facts().listen, tls, options.max_connections);
  return Status::Ok();
}

void Daemon::Serve() {
  signals_.emplace(io_, SIGINT, SIGTERM);
  signals_->async_wait([this](const boost::system::error_code& ec, int signo) {
    if (!ec) OnStopSignal(signo);
  });
  system_->Record("supervisor.started",
                  nlohmann::json{{"pid", ::getpid()}, {"version", GSK_VERSION}}.dump());
  const std::string& listen = system_->facts().listen;
  sd_notifyf(0, "READY=1\nSTATUS=serving on %s, %zu kernels\nMAINPID=%d", listen.c_str(),
             kernels_->count(), static_cast<int>(::getpid()));
  spdlog::info(
      "event=supervisor.ready version={} pid={} listen={} admin_socket={} state_dir={} "
      "kernels={} startup_ms={}",
      GSK_VERSION, ::getpid(), listen, config_.AdminSocketPath().string(),
      config_.state_dir.string(), kernels_->count(), clock_.MonotonicMillis() - start_mono_);
  io_.run();
}

// SIGTERM or SIGINT: refuse new requests, stop builds, stop every worker gracefully, then leave
// the event loop.
void Daemon::OnStopSignal(int signo) {
  spdlog::info("event=supervisor.stopping signal={}", signo == SIGTERM ? "SIGTERM" : "SIGINT");
  sd_notify(0, "STOPPING=1\nSTATUS=stopping");
  router_->SetDraining(true);
  http_->Stop();
  environments_->Shutdown();
  workers_->StopAll([this] {
    spdlog::info("event=workers.all_stopped");
    // Idle watchers (the log rotation's inotify read) would keep io.run() going forever.
    io_.stop();
  });
}

void Daemon::Shutdown() {
  system_->Record("supervisor.stopped", nlohmann::json{{"pid", ::getpid()}}.dump());
  std::error_code ec;
  std::filesystem::remove(config_.AdminSocketPath(), ec);
  spdlog::info("event=supervisor.stopped pid={}", ::getpid());
}

}  // namespace

void SetupLogging(const std::string& level) {
  auto logger = spdlog::stderr_logger_st("giskard-supervisor");
  // journald adds its own timestamps; a terminal wants them.
  if (std::getenv("JOURNAL_STREAM") != nullptr) {
    logger->set_pattern("%l %v");
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  }
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

int RunDaemon(const config::Config& config) { return Daemon(config).Run(); }

}  // namespace gsk::daemon
