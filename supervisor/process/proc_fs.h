// Reading /proc: a process's state, parent, group and start time, and the members of a process
// group. Stateless and thread-safe.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace gsk::process::internal {

struct ProcStat {
  char state = '?';  // 'R', 'S', 'D', 'Z' (zombie), ...
  int ppid = 0;
  int pgrp = 0;
  int64_t start_time_ticks = 0;  // field 22
};

// Parses the text of /proc/<pid>/stat. The command name (field 2) may hold spaces and
// parentheses; it ends at the last ')'.
Result<ProcStat> ParseProcStat(std::string_view text);

// kNotFound if the process does not exist (any more).
Result<ProcStat> ReadProcStat(int pid);

// The pids in process group `pgid` that are not zombies, from a scan of /proc.
std::vector<int> ListGroupMembers(int pgid);

}  // namespace gsk::process::internal
