// giskard-supervisor: `serve` runs the daemon; every other subcommand is a client of it.
#include <csignal>

#include <CLI/CLI.hpp>

#include "supervisor/cli/client_commands.h"
#include "supervisor/daemon/serve_command.h"

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"giskard-supervisor: builds Python environments for Giskard kernels and supervises "
               "their ML workers"};
  app.require_subcommand(1);
  int exit_code = 0;
  gsk::daemon::AddServeCommand(app, &exit_code);
  gsk::cli::AddClientCommands(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return exit_code;
}
