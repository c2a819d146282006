#include "supervisor/daemon/daemon.h"

#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "base/clock.h"
#include "supervisor/api/router.h"
#include "supervisor/daemon/environments_setup.h"
#include "supervisor/daemon/state_lock.h"
#include "supervisor/daemon/workers_setup.h"
#include "supervisor/envs/env_manager.h"
#include "supervisor/process/process_launcher.h"
#include "supervisor/server/http_server.h"
#include "supervisor/service/kernel_service.h"
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

nlohmann::json EventsToJson(const std::vector<store::Event>& events) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : events) {
    nlohmann::json detail = nlohmann::json::parse(e.detail_json, nullptr, false);
    if (detail.is_discarded()) detail = nlohmann::json::object();
    out.push_back({{"id", e.id},
                   {"time", FormatRfc3339(e.ts_ms)},
                   {"kind", e.kind},
                   {"subject", e.subject},
                   {"actor", e.actor},
                   {"detail", std::move(detail)}});
  }
  return out;
}

nlohmann::json InterpretersToJson(const std::vector<python::Interpreter>& found) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& it : found) {
    nlohmann::json j = {{"version", it.version},
                        {"path", it.path.string()},
                        {"source", it.source},
                        {"usable", it.usable()}};
    if (!it.usable()) j["problem"] = it.problem;
    out.push_back(std::move(j));
  }
  return out;
}

service::ServiceOptions MakeServiceOptions(const config::Config& config) {
  service::ServiceOptions o;
  o.parse.allow_pip_options = config.packages.allow_pip_options;
  o.parse.allow_direct_urls = config.packages.allow_direct_urls;
  o.parse.allow_local_paths = config.packages.allow_local_paths;
  o.parse.max_workers = config.limits.max_workers_per_kernel;
  o.max_kernels = config.limits.max_kernels;
  o.index_fingerprint = config.IndexFingerprint();
  return o;
}

store::Event SupervisorEvent(const Clock& clock, std::string kind, nlohmann::json detail) {
  store::Event e;
  e.ts_ms = clock.NowUnixMillis();
  e.kind = std::move(kind);
  e.subject = "supervisor";
  e.actor = "supervisor";
  e.detail_json = detail.dump();
  return e;
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

int RunDaemon(const config::Config& config) {
  SystemClock clock;
  int64_t start_mono = clock.MonotonicMillis();
  int64_t started_at = clock.NowUnixMillis();
  if (Status s = PrepareStateDir(config.state_dir); !s.ok()) {
    spdlog::error("event=supervisor.start_failed error=\"{}\"", s.message());
    return 1;
  }
  auto lock = StateLock::Acquire(config.LockPath());
  if (!lock.ok()) {
    spdlog::error("event=supervisor.start_failed error=\"{}\"", lock.status().message());
    return lock.status().code() == StatusCode::kFailedPrecondition ? 3 : 1;
  }
  auto store = store::Store::Open(config.DatabasePath());
  if (!store.ok()) {
    spdlog::error("event=supervisor.start_failed error=\"{}\"", store.status().message());
    return 1;
  }
  std::string token = config.server.api_token;
  if (token.empty()) {
    auto loaded = LoadOrCreateToken(config.ApiTokenPath());
    if (!loaded.ok()) {
      spdlog::error("event=supervisor.start_failed error=\"{}\"", loaded.status().message());
      return 1;
    }
    token = *loaded;
  }

  boost::asio::io_context io(1);
  store::Store& db = **store;
  auto interpreters = DiscoverConfiguredInterpreters(config);
  for (const auto& it : interpreters) {
    spdlog::info("event=python.found version={} path={} source={} usable={}{}", it.version,
                 it.path.string(), it.source, it.usable(),
                 it.usable() ? "" : " problem=\"" + it.problem + "\"");
  }
  auto shim_wheel = FindShimWheel(config);
  if (!shim_wheel.ok()) {
    spdlog::warn("event=shim.missing error=\"{}\"", shim_wheel.status().message());
  }
  auto launcher = process::MakeRealLauncher(io);
  envs::EnvManager environments(
      io, &db, launcher.get(), &clock,
      MakeEnvManagerOptions(config, interpreters,
                            shim_wheel.ok() ? *shim_wheel : std::filesystem::path()));
  if (Status s = environments.Recover(); !s.ok()) {
    spdlog::error("event=supervisor.start_failed error=\"{}\"", s.message());
    return 1;
  }
  service::KernelService kernels(&db, &clock, MakeServiceOptions(config), &environments);
  auto supervision =
      WorkerSupervision::Start(io, config, db, *launcher, clock, kernels, environments);
  if (!supervision.ok()) {
    spdlog::error("event=supervisor.start_failed error=\"{}\"", supervision.status().message());
    return 1;
  }
  WorkerSupervision& workers = **supervision;
  kernels.ResumeEnvironments();
  workers.ReconcileAll();
  std::string listen_text = config.server.listen;
  api::RouterOptions router_options;
  router_options.api_token = token;
  router_options.workers = &workers.service();
  router_options.now_ms = [&clock] { return clock.NowUnixMillis(); };
  router_options.events = [&db](const store::EventFilter& f) -> Result<nlohmann::json> {
    GSK_ASSIGN_OR_RETURN(auto events, db.ListEvents(f));
    return EventsToJson(events);
  };
  router_options.status_info = [&] {
    auto count = db.CountKernels();
    auto schema = db.SchemaVersion();
    return nlohmann::json{{"version", GSK_VERSION},
                          {"pid", ::getpid()},
                          {"startedAt", FormatRfc3339(started_at)},
                          {"uptimeSeconds", (clock.MonotonicMillis() - start_mono) / 1000},
                          {"stateDir", config.state_dir.string()},
                          {"listen", listen_text},
                          {"adminSocket", config.AdminSocketPath().string()},
                          {"workerSocket", config.WorkerSocketPath().string()},
                          {"workers", workers.service().List("").size()},
                          {"schemaVersion", schema.ok() ? *schema : -1},
                          {"kernels", count.ok() ? *count : -1},
                          {"runningBuilds", environments.running_builds()},
                          {"interpreters", InterpretersToJson(environments.interpreters())}};
  };
  api::Router router(&kernels, std::move(router_options));

  server::ServerOptions server_options;
  server_options.max_body_bytes = config.server.max_body_bytes;
  server_options.read_timeout = std::chrono::seconds(config.server.read_timeout_seconds);
  server_options.idle_timeout = std::chrono::seconds(config.server.idle_timeout_seconds);
  server_options.max_connections = config.server.max_connections;
  server::HttpServer http(io, server_options,
                          [&router](const api::HttpRequest& r) { return router.Handle(r); });

  auto host_port = config::ParseHostPort(config.server.listen);  // validated by Resolve
  auto port = http.ListenTcp(host_port->host, host_port->port);
  if (!port.ok()) {
    spdlog::error("event=supervisor.start_failed error=\"{}\"", port.status().message());
    return 1;
  }
  listen_text = (host_port->host.find(':') != std::string::npos ? "[" + host_port->host + "]"
                                                                : host_port->host) +
                ":" + std::to_string(*port);
  if (Status s = http.ListenUnix(config.AdminSocketPath(), config.server.admin_socket_mode);
      !s.ok()) {
    spdlog::error("event=supervisor.start_failed error=\"{}\"", s.message());
    return 1;
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    spdlog::info("event=supervisor.stopping signal={}", signo == SIGTERM ? "SIGTERM" : "SIGINT");
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
    router.SetDraining(true);
    http.Stop();
    environments.Shutdown();
    workers.StopAll([&io] {
      spdlog::info("event=workers.all_stopped");
      // Idle watchers (the log rotation's inotify read) would keep io.run() going forever.
      io.stop();
    });
  });

  auto count = db.CountKernels();
  if (Status s = db.AppendEvent(SupervisorEvent(clock, "supervisor.started",
                                                {{"pid", ::getpid()}, {"version", GSK_VERSION}}));
      !s.ok()) {
    spdlog::warn("event=store.write_failed error=\"{}\"", s.message());
  }
  int64_t ready_ms = clock.MonotonicMillis() - start_mono;
  sd_notifyf(0, "READY=1\nSTATUS=serving on %s, %lld kernels\nMAINPID=%d", listen_text.c_str(),
             static_cast<long long>(count.ok() ? *count : 0), static_cast<int>(::getpid()));
  spdlog::info(
      "event=supervisor.ready version={} pid={} listen={} admin_socket={} state_dir={} "
      "kernels={} startup_ms={}",
      GSK_VERSION, ::getpid(), listen_text, config.AdminSocketPath().string(),
      config.state_dir.string(), count.ok() ? *count : -1, ready_ms);

  io.run();

  (void)db.AppendEvent(SupervisorEvent(clock, "supervisor.stopped", {{"pid", ::getpid()}}));
  std::error_code ec;
  std::filesystem::remove(config.AdminSocketPath(), ec);
  spdlog::info("event=supervisor.stopped pid={}", ::getpid());
  return 0;
}

}  // namespace gsk::daemon
