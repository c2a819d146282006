// The `serve` subcommand: parses its flags and runs the daemon in the foreground until SIGTERM
// or SIGINT. Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration, 3 another
// instance already runs on the state directory.
#pragma once

namespace CLI {
class App;
}

namespace gsk::daemon {

void AddServeCommand(CLI::App& app, int* exit_code);

}  // namespace gsk::daemon
