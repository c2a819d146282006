#include "supervisor/process/proc_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <memory>
#include <string>

#include "supervisor/process/process_launcher.h"
#include "supervisor/process/unique_fd.h"

namespace gsk::process {
namespace internal {
namespace {

template <typename T>
bool ParseNumber(std::string_view text, T& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

// Splits on single spaces; /proc/<pid>/stat after the command name is space-separated.
std::vector<std::string_view> SplitFields(std::string_view text) {
  std::vector<std::string_view> fields;
  while (!text.empty()) {
    size_t space = text.find(' ');
    fields.push_back(text.substr(0, space));
    if (space == std::string_view::npos) break;
    text.remove_prefix(space + 1);
  }
  return fields;
}

}  // namespace

Result<ProcStat> ParseProcStat(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  size_t close = text.rfind(')');
  if (close == std::string_view::npos || close + 2 > text.size()) {
    return Internal("malformed /proc stat line: no command name");
  }
  // Fields 3.. follow ") "; field N is at index N - 3.
  std::vector<std::string_view> fields = SplitFields(text.substr(close + 2));
  constexpr size_t kStartTimeIndex = 22 - 3;
  if (fields.size() <= kStartTimeIndex || fields[0].size() != 1) {
    return Internal("malformed /proc stat line: too few fields");
  }
  ProcStat stat;
  stat.state = fields[0][0];
  if (!ParseNumber(fields[1], stat.ppid) || !ParseNumber(fields[2], stat.pgrp) ||
      !ParseNumber(fields[kStartTimeIndex], stat.start_time_ticks)) {
    return Internal("malformed /proc stat line: a field is not a number");
  }
  return stat;
}

Result<ProcStat> ReadProcStat(int pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT || errno == ESRCH) return NotFound("no process " + std::to_string(pid));
    return Internal("opening " + path + ": " + ::strerror(errno));
  }
  char buffer[4096];
  ssize_t n;
  do {
    n = ::read(fd.get(), buffer, sizeof(buffer));
  } while (n < 0 && errno == EINTR);
  // A process that exited between open and read gives ESRCH or an empty read.
  if (n <= 0) return NotFound("no process " + std::to_string(pid));
  return ParseProcStat(std::string_view(buffer, static_cast<size_t>(n)));
}

std::vector<int> ListGroupMembers(int pgid) {
  std::vector<int> members;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir("/proc"), ::closedir);
  if (!dir) return members;
  while (const dirent* entry = ::readdir(dir.get())) {
    int pid = 0;
    if (!ParseNumber(std::string_view(entry->d_name), pid)) continue;
    Result<ProcStat> stat = ReadProcStat(pid);
    if (stat.ok() && stat->pgrp == pgid && stat->state != 'Z' && stat->state != 'X') {
      members.push_back(pid);
    }
  }
  return members;
}

}  // namespace internal

std::string ExitInfo::Describe() const {
  if (!signaled && code_or_signal < 0) return "exit status unknown";
  if (!signaled) return "exited with code " + std::to_string(code_or_signal);
  std::string text = "killed by signal " + std::to_string(code_or_signal);
  if (const char* name = ::sigabbrev_np(code_or_signal)) text += std::string(" (SIG") + name + ")";
  return text;
}

Result<int64_t> ProcessStartTime(int pid) {
  GSK_ASSIGN_OR_RETURN(internal::ProcStat stat, internal::ReadProcStat(pid));
  return stat.start_time_ticks;
}

bool GroupAlive(int pgid) {
  if (pgid <= 0) return false;
  // The cheap test first; zombies still count for kill(), so confirm with a scan.
  if (::kill(-pgid, 0) != 0 && errno == ESRCH) return false;
  return !internal::ListGroupMembers(pgid).empty();
}

}  // namespace gsk::process
