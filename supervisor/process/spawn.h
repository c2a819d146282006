// Spawn: fork and exec through Boost.Process v2's launcher, with the child-side setup that
// ProcessSpec asks for (process group, stdio, working directory, rlimits, no inherited fds or
// signal dispositions). Thread-safe: it touches no shared state.
#pragma once

#include <sys/resource.h>

#include <array>
#include <string>
#include <vector>

#include "base/result.h"

namespace gsk::process::internal {

// Everything the child does between fork and exec, prepared by the parent: the child only
// makes async-signal-safe system calls, with no allocation.
struct ChildSetup {
  struct Limit {
    int resource = 0;  // RLIMIT_*
    rlim_t value = 0;
    const char* name = "";
  };
  bool new_process_group = true;
  int stdin_fd = -1;  // dup2'd onto 0, 1, 2
  int stdout_fd = -1;
  int stderr_fd = -1;
  int secret_fd = -1;  // dup2'd onto kSecretFd (3) when set; every other fd is closed on exec
  const char* cwd = nullptr;  // nullptr: inherit
  std::array<Limit, 4> limits{};
  size_t limit_count = 0;
};

// Runs in the forked child. Returns 0, or a code for DescribeChildFailure.
int ApplyInChild(const ChildSetup& setup) noexcept;

// Starts argv (argv[0] an absolute path) with environment envp (nullptr-terminated) and returns
// its pid once exec has succeeded. On failure nothing is left running and no zombie is left.
Result<int> Spawn(const std::vector<std::string>& argv, const char* const* envp,
                  const ChildSetup& setup);

}  // namespace gsk::process::internal
