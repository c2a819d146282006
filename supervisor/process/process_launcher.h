// ProcessLauncher: starts and stops the OS processes of the supervisor (pip/venv build steps and
// long-lived workers). argv only, never a shell; a complete environment; an own process group;
// rlimits; output to a size-rotated log file and/or a per-line callback; exits observed without
// polling. Thread-safety: a launcher belongs to the thread that runs its io_context; call it and
// receive its callbacks on that thread only. The free functions are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/status.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace gsk::process {

// setrlimit values applied in the child before exec (soft = hard = value). Unset = inherited.
// A value above the supervisor's own hard limit makes Launch fail with kInvalidArgument.
struct ResourceLimits {
  std::optional<uint64_t> address_space_bytes;  // RLIMIT_AS
  std::optional<uint64_t> open_files;           // RLIMIT_NOFILE
  std::optional<uint64_t> processes;            // RLIMIT_NPROC (counts every process of the uid)
  std::optional<uint64_t> core_bytes;           // RLIMIT_CORE (0 = no core dumps)
};

// How many rotated logs are kept: log_file.1 (newest) .. log_file.3 (oldest).
inline constexpr int kRotatedLogsKept = 3;

struct ProcessSpec {
  std::vector<std::string> argv;           // argv[0] is an absolute path to the executable
  std::map<std::string, std::string> env;  // the complete environment: nothing is inherited
  std::filesystem::path cwd;               // empty = the supervisor's working directory
  bool new_process_group = true;           // setpgid(0, 0) in the child; Stop/Kill hit the group
  ResourceLimits limits;
  // If set, stdout and stderr are appended here (O_APPEND, created 0640). Without on_output the
  // child writes to the file directly, so the file keeps growing if the supervisor dies.
  std::filesystem::path log_file;
  // Rotate log_file to log_file.1 (shifting older ones, kRotatedLogsKept kept) once it grows past
  // this many bytes; 0 = never. Checked at launch and whenever the file is written. With
  // on_output the supervisor writes the file and rotates by rename, exactly; without, it
  // copies and truncates (the child keeps its descriptor), which can lose the bytes written
  // during the copy.
  uint64_t log_rotate_bytes = 0;
  // If set, stdout and stderr go through a pipe and are delivered here line by line (without
  // the '\n'; lines longer than 64 KiB are cut in pieces; a last unterminated line is delivered
  // at exit), and also written to log_file if set. Without log_file and on_output the output
  // goes to /dev/null. stdin is always /dev/null.
  std::function<void(std::string_view line)> on_output;
  // If set, the child inherits the read end of a pipe holding exactly these bytes (then EOF) as
  // file descriptor kSecretFd: a way to hand it a secret that, unlike the environment, no
  // other process can read from /proc. At most kMaxSecretBytes.
  std::optional<std::string> secret;
  // A launcher with a fork server (ForkingLauncher) may fork this worker from a template
  // instead of exec'ing argv; others ignore it.
  bool forkable = false;
  // With forkable: absolute paths of models the template loads before it forks (workers with
  // different lists are forked from different templates of the env).
  std::vector<std::string> preload;
  // If >= 0 (and no secret), this open descriptor of the caller's is handed to the child as
  // kSecretFd instead (a socket to talk with it, say). The caller keeps and closes its own.
  int inherit_fd = -1;
};

inline constexpr int kSecretFd = 3;
inline constexpr size_t kMaxSecretBytes = 4096;

// A running process to take charge of (ProcessLauncher::Adopt).
struct AdoptSpec {
  int pid = 0;
  int64_t start_time_ticks = 0;  // /proc/<pid>/stat field 22, as recorded at launch
  bool own_group = true;         // it leads its own process group (launched that way)
  std::filesystem::path log_file;  // the log it writes itself, rotated as in ProcessSpec
  uint64_t log_rotate_bytes = 0;
};

struct ExitInfo {
  int pid = 0;
  bool signaled = false;   // true: killed by signal code_or_signal; false: exited with a code
  int code_or_signal = 0;  // -1 with signaled = false when the status could not be collected
  bool success() const { return !signaled && code_or_signal == 0; }
  // "exited with code 1", "killed by signal 9 (SIGKILL)".
  std::string Describe() const;
};

// Identifies one launched process. A value type; copies refer to the same process. A handle
// outlives its process harmlessly: Stop/Kill on a process already reported exited do nothing.
class ProcessHandle {
 public:
  ProcessHandle() = default;
  ProcessHandle(uint64_t id, int pid, int pgid, int64_t start_time_ticks)
      : id_(id), pid_(pid), pgid_(pgid), start_time_ticks_(start_time_ticks) {}
  uint64_t id() const { return id_; }  // unique within its launcher, never reused (pids are)
  int pid() const { return pid_; }
  int pgid() const { return pgid_; }  // == pid() with new_process_group, else 0
  // /proc/<pid>/stat field 22: with pid(), identifies the process across supervisor restarts.
  int64_t start_time_ticks() const { return start_time_ticks_; }

 private:
  uint64_t id_ = 0;
  int pid_ = 0;
  int pgid_ = 0;
  int64_t start_time_ticks_ = 0;
};

// The seam for tests: FakeProcessLauncher (fake_process_launcher.h) starts nothing.
class ProcessLauncher {
 public:
  using ExitCallback = std::function<void(const ExitInfo&)>;
  virtual ~ProcessLauncher() = default;

  // Starts spec.argv and returns once exec has succeeded. Errors (kInvalidArgument for a bad
  // spec; kNotFound for a missing executable or cwd; kInternal/kResourceExhausted for the OS)
  // mean nothing is left running and on_exit is never called. On success on_exit is called
  // exactly once, never from inside Launch/Stop/Kill, after the last on_output call, once the
  // process has been reaped and, with new_process_group, no live member of its group is left.
  // When the process exits by itself, what is left of its group is SIGKILLed.
  virtual Result<ProcessHandle> Launch(ProcessSpec spec, ExitCallback on_exit) = 0;

  // SIGTERM to the process group (or to the process without one); SIGKILL to the group after
  // `grace` if any member is still alive. A Stop while stopping keeps the earlier deadline.
  virtual void Stop(const ProcessHandle& handle, std::chrono::milliseconds grace) = 0;

  // SIGKILL to the process group (or to the process) now.
  virtual void Kill(const ProcessHandle& handle) = 0;

  // Takes charge of a process that this launcher did not start: a worker left running by a
  // supervisor that crashed. kNotFound if no process `spec.pid` runs with that start time (it
  // exited, or the pid was reused). Then as for Launch: Stop/Kill work, hitting the process
  // group when `own_group`, the log file keeps being rotated, and on_exit is called once it and
  // its group are gone; its exit status cannot be collected (it is not our child), so ExitInfo
  // has code_or_signal -1.
  virtual Result<ProcessHandle> Adopt(const AdoptSpec& spec, ExitCallback on_exit) = 0;
};

// The launcher of real processes, its async work on `io`. REQUIRES: `io` outlives it, and one
// thread runs `io`. Destroying it SIGKILLs what it still runs and reaps it without on_exit.
// It also reaps the children it does not know (orphans re-parented to the daemon when it is a
// child subreaper: see MakeChildSubreaper), on SIGCHLD, so that none stays a zombie.
std::unique_ptr<ProcessLauncher> MakeRealLauncher(boost::asio::io_context& io);

// prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants of this process are re-parented to it
// rather than to init, so that it collects their exit status (the workers a fork server
// makes). kInternal if the kernel refuses.
Status MakeChildSubreaper();

// /proc/<pid>/stat field 22 (start time in clock ticks after boot). kNotFound if no such pid.
Result<int64_t> ProcessStartTime(int pid);

// Whether a process other than a zombie is in process group `pgid`.
bool GroupAlive(int pgid);

struct CapturedOutput {
  ExitInfo exit;
  std::string output;  // stdout and stderr interleaved, '\n' after every line; first 1 MiB only
};

// Runs spec to completion on a private io_context and returns its output (spec.on_output is
// replaced). Blocks the calling thread: for short probes such as an interpreter's version.
// kDeadlineExceeded if it ran longer than `timeout` (its process group is then SIGKILLed).
Result<CapturedOutput> RunAndCapture(ProcessSpec spec, std::chrono::milliseconds timeout);

}  // namespace gsk::process
