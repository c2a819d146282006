// FakeProcessLauncher: a ProcessLauncher for unit tests that starts nothing. It hands out pids
// (from 1000 up), records launches, stops and kills, and lets the test make a process print
// lines or exit. Callbacks run synchronously inside Output/Exit/ExitBySignal, never inside
// Launch/Stop/Kill, as with the real launcher. A spec's inherit_fd is duplicated and kept open,
// as the child would hold it, so that the test can play the child's end (Launched::inherited_fd,
// closed with the fake). Not thread-safe: use it from the test thread.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "supervisor/process/process_launcher.h"
#include "supervisor/process/unique_fd.h"

namespace gsk::process {

class FakeProcessLauncher final : public ProcessLauncher {
 public:
  struct Launched {
    ProcessHandle handle;
    ProcessSpec spec;
    bool running = true;
    ExitCallback on_exit;
    bool adopted = false;  // by Adopt, not Launch
    int inherited_fd = -1;  // the fake's duplicate of spec.inherit_fd, if any
  };
  struct Signaled {
    int pid = 0;
    std::optional<std::chrono::milliseconds> grace;  // set for Stop, empty for Kill
  };

  Result<ProcessHandle> Launch(ProcessSpec spec, ExitCallback on_exit) override;
  // Recorded only for a running process; the process keeps running until the test ends it.
  void Stop(const ProcessHandle& handle, std::chrono::milliseconds grace) override;
  void Kill(const ProcessHandle& handle) override;
  // Adopts only pids made "alive" with AddForeign (with their start time); kNotFound otherwise.
  Result<ProcessHandle> Adopt(const AdoptSpec& spec, ExitCallback on_exit) override;
  // A process that runs but was not launched here (for Adopt).
  void AddForeign(int pid, int64_t start_time_ticks) { foreign_.push_back({pid, start_time_ticks}); }

  // The next Launch fails with `status` (once).
  void FailNextLaunch(Status status) { next_failure_ = std::move(status); }
  // Delivers a line to the process's on_output. False if it is not running.
  bool Output(int pid, std::string_view line);
  // Ends the process and calls its on_exit. False if it is not running.
  bool Exit(int pid, int code);
  bool ExitBySignal(int pid, int signal);

  const std::vector<Launched>& launches() const { return launches_; }
  const std::vector<Signaled>& stops() const { return stops_; }
  bool IsRunning(int pid) const;
  std::vector<int> RunningPids() const;

 private:
  Launched* FindRunning(int pid);
  bool End(int pid, bool signaled, int code_or_signal);

  std::vector<Launched> launches_;
  std::vector<Signaled> stops_;
  std::optional<Status> next_failure_;
  std::vector<std::pair<int, int64_t>> foreign_;
  std::vector<internal::UniqueFd> inherited_;
  int next_pid_ = 1000;
};

}  // namespace gsk::process
