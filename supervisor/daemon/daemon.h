// Daemon: builds the supervisor's objects from a resolved Config, serves until a stop signal,
// and shuts down cleanly. Runs everything on one io_context on the calling thread.
#pragma once

#include "supervisor/config/config.h"

namespace gsk::daemon {

// Returns the process exit code (see serve_command.h).
int RunDaemon(const config::Config& config);

// Sets up spdlog for journald (no timestamps when JOURNAL_STREAM is set) or a terminal.
void SetupLogging(const std::string& level);

}  // namespace gsk::daemon
