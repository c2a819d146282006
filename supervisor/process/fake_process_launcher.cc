#include "supervisor/process/fake_process_launcher.h"

#include <fcntl.h>

#include <string>

namespace gsk::process {

Result<ProcessHandle> FakeProcessLauncher::Launch(ProcessSpec spec, ExitCallback on_exit) {
  if (next_failure_) {
    Status failure = std::move(*next_failure_);
    next_failure_.reset();
    return failure;
  }
  int pid = next_pid_++;
  ProcessHandle handle(launches_.size() + 1, pid, spec.new_process_group ? pid : 0, 100'000 + pid);
  int inherited = -1;
  if (spec.inherit_fd >= 0) {
    inherited = ::fcntl(spec.inherit_fd, F_DUPFD_CLOEXEC, 0);
    if (inherited < 0) return Internal("duplicating inherit_fd " + std::to_string(spec.inherit_fd));
    inherited_.emplace_back(inherited);
  }
  launches_.push_back({handle, std::move(spec), true, std::move(on_exit), false, inherited});
  return handle;
}

void FakeProcessLauncher::Stop(const ProcessHandle& handle, std::chrono::milliseconds grace) {
  if (FindRunning(handle.pid())) stops_.push_back({handle.pid(), grace});
}

void FakeProcessLauncher::Kill(const ProcessHandle& handle) {
  if (FindRunning(handle.pid())) stops_.push_back({handle.pid(), std::nullopt});
}

Result<ProcessHandle> FakeProcessLauncher::Adopt(const AdoptSpec& spec, ExitCallback on_exit) {
  int pid = spec.pid;
  int64_t start_time_ticks = spec.start_time_ticks;
  bool own_group = spec.own_group;
  for (auto it = foreign_.begin(); it != foreign_.end(); ++it) {
    if (it->first != pid || it->second != start_time_ticks) continue;
    foreign_.erase(it);
    ProcessHandle handle(launches_.size() + 1, pid, own_group ? pid : 0, start_time_ticks);
    ProcessSpec recorded;
    recorded.log_file = spec.log_file;
    recorded.log_rotate_bytes = spec.log_rotate_bytes;
    launches_.push_back({handle, std::move(recorded), true, std::move(on_exit), true});
    return handle;
  }
  return NotFound("no process " + std::to_string(pid) + " with start time " +
                  std::to_string(start_time_ticks));
}

bool FakeProcessLauncher::Output(int pid, std::string_view line) {
  Launched* launched = FindRunning(pid);
  if (!launched) return false;
  // A copy: the callback may launch again, which can move launches_.
  std::function<void(std::string_view)> on_output = launched->spec.on_output;
  if (on_output) on_output(line);
  return true;
}

bool FakeProcessLauncher::Exit(int pid, int code) { return End(pid, false, code); }

bool FakeProcessLauncher::ExitBySignal(int pid, int signal) { return End(pid, true, signal); }

bool FakeProcessLauncher::IsRunning(int pid) const {
  for (const Launched& launched : launches_) {
    if (launched.handle.pid() == pid) return launched.running;
  }
  return false;
}

std::vector<int> FakeProcessLauncher::RunningPids() const {
  std::vector<int> pids;
  for (const Launched& launched : launches_) {
    if (launched.running) pids.push_back(launched.handle.pid());
  }
  return pids;
}

FakeProcessLauncher::Launched* FakeProcessLauncher::FindRunning(int pid) {
  for (Launched& launched : launches_) {
    if (launched.handle.pid() == pid && launched.running) return &launched;
  }
  return nullptr;
}

bool FakeProcessLauncher::End(int pid, bool signaled, int code_or_signal) {
  Launched* launched = FindRunning(pid);
  if (!launched) return false;
  launched->running = false;
  ExitCallback on_exit = std::move(launched->on_exit);
  // on_exit may launch again, which can move launches_: touch nothing after it.
  if (on_exit) on_exit(ExitInfo{pid, signaled, code_or_signal});
  return true;
}

}  // namespace gsk::process
