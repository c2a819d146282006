#include "supervisor/daemon/serve_command.h"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "supervisor/daemon/daemon.h"

namespace gsk::daemon {
namespace {

struct ServeFlags {
  std::string config_file;
  std::string state_dir;
  std::string listen;
  std::string admin_socket;
  std::string log_level;
};

int RunServe(const ServeFlags& flags) {
  config::Config cfg;
  if (!flags.config_file.empty()) {
    auto loaded = config::LoadTomlFile(flags.config_file, cfg);
    if (!loaded.ok()) {
      spdlog::error("event=config.invalid error=\"{}\"", loaded.status().message());
      return 2;
    }
    cfg = std::move(loaded).value();
  }
  if (!flags.state_dir.empty()) cfg.state_dir = flags.state_dir;
  if (!flags.listen.empty()) cfg.server.listen = flags.listen;
  if (!flags.admin_socket.empty()) cfg.server.admin_socket = flags.admin_socket;
  if (!flags.log_level.empty()) cfg.log_level = flags.log_level;
  auto resolved = config::Resolve(std::move(cfg));
  if (!resolved.ok()) {
    spdlog::error("event=config.invalid error=\"{}\"", resolved.status().message());
    return 2;
  }
  SetupLogging(resolved->log_level);
  return RunDaemon(*resolved);
}

}  // namespace

void AddServeCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* serve = app.add_subcommand(
      "serve", "Run the supervisor daemon in the foreground (systemd runs exactly this)");
  serve->add_option("-c,--config", flags->config_file, "TOML config file")
      ->check(CLI::ExistingFile);
  serve->add_option("--state-dir", flags->state_dir,
                    "State directory (default: $STATE_DIRECTORY, else "
                    "~/.local/state/giskard-supervisor)");
  serve->add_option("--listen", flags->listen, "HOST:PORT for REST (default 127.0.0.1:40051)");
  serve->add_option("--admin-socket", flags->admin_socket,
                    "Admin Unix socket path (default: $RUNTIME_DIRECTORY/admin.sock, else "
                    "<state-dir>/admin.sock)");
  serve->add_option("--log-level", flags->log_level, "trace, debug, info, warn or error");
  serve->callback([flags, exit_code] { *exit_code = RunServe(*flags); });
}

}  // namespace gsk::daemon
