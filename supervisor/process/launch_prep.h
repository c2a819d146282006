// PrepareLaunch: checks a ProcessSpec and opens what the child will inherit (stdin, the log or
// the output pipe), so that errors come back with a clear message before any fork.
// Not synchronized; one PreparedLaunch per Launch call.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "supervisor/process/output_sink.h"
#include "supervisor/process/process_launcher.h"
#include "supervisor/process/spawn.h"
#include "supervisor/process/unique_fd.h"

namespace gsk::process::internal {

struct PreparedLaunch {
  std::vector<std::string> env_strings;  // "KEY=value"
  std::string cwd;
  UniqueFd dev_null;
  UniqueFd child_output;  // the child's stdout and stderr: the pipe's write end, the log or null
  UniqueFd pipe_read;     // set when the output is piped to the supervisor
  UniqueFd secret_read;   // the child's end of the secret pipe (already holding the secret)
  int inherited_fd = -1;  // or the caller's descriptor to hand down as fd 3 (not owned)
  std::optional<LogWriter> log;  // set when the supervisor writes the log itself
  std::array<ChildSetup::Limit, 4> limits{};
  size_t limit_count = 0;
  bool new_process_group = true;

  // Pointers into this object: valid while it is neither moved nor changed.
  std::vector<const char*> Envp() const;
  ChildSetup Setup() const;
};

// kInvalidArgument for a malformed spec (relative or empty argv[0], NUL bytes, '=' in an
// environment name, a limit above the hard limit); kNotFound for a missing cwd or log folder.
// Rotates spec.log_file first if it is over spec.log_rotate_bytes.
Result<PreparedLaunch> PrepareLaunch(const ProcessSpec& spec);

}  // namespace gsk::process::internal
