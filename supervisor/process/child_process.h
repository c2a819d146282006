// ChildProcess: one launched process as the real launcher tracks it, from exec to on_exit:
// its exit (a pidfd, through Boost.Process's async_wait), its piped output, the SIGTERM/SIGKILL
// escalation, and the wait for the rest of its process group. Internal to the launcher; lives
// on the io thread, kept alive by its pending handlers.
#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "base/status.h"
#include "supervisor/process/output_sink.h"
#include "supervisor/process/process_launcher.h"
#include "supervisor/process/unique_fd.h"

namespace gsk::process::internal {

// The pids every live ChildProcess of this process watches (of every launcher), so that the
// orphan reaper leaves them to their watchers. Call on the thread that runs the launchers.
std::set<int> LiveChildPids();

class ChildProcess : public std::enable_shared_from_this<ChildProcess> {
 public:
  struct Options {
    ProcessHandle handle;
    ProcessLauncher::ExitCallback on_exit;
    std::function<void(std::string_view)> on_output;  // may be empty
    std::optional<LogWriter> log;                     // set when the launcher writes the log
    UniqueFd pipe_read;                               // the child's stdout+stderr, or none
    std::function<void()> on_done;  // the launcher forgets the child; called before on_exit
    // Set for a process that is not our child (Adopt): its exit is watched on this pidfd and
    // cannot be reaped, so its status is unknown.
    UniqueFd adopted_pidfd;
  };

  ChildProcess(boost::asio::io_context& io, Options options);
  ~ChildProcess();

  // Starts watching the exit and reading the output. On error the caller kills and reaps.
  Status Start();
  void Stop(std::chrono::milliseconds grace);
  void Kill();
  // For the launcher's destructor: SIGKILL, reap synchronously, never call back.
  void Abandon();
  int pid() const { return options_.handle.pid(); }

 private:
  void OnReaped(bool ok, int native_status);
  Status WatchAdopted();
  void WaitForGroup();
  void Signal(int sig);
  void Read();
  void Deliver(std::string_view data);
  void Finish();
  void CompleteFinish();

  boost::asio::io_context& io_;
  Options options_;
  struct ExitWatch;  // Boost.Process's handle, kept out of this header
  std::unique_ptr<ExitWatch> exit_watch_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> adopted_watch_;
  boost::asio::steady_timer kill_timer_;
  boost::asio::posix::stream_descriptor pipe_;
  // The output pipe's read buffer, allocated on the first read: a worker without a pipe (a
  // forked or adopted one) costs no buffer.
  static constexpr size_t kBufferBytes = 16384;
  std::unique_ptr<char[]> buffer_;
  char* Buffer();
  std::optional<LineSplitter> lines_;
  std::vector<std::unique_ptr<boost::asio::posix::stream_descriptor>> members_;
  size_t members_pending_ = 0;
  ExitInfo exit_;
  bool abandoned_ = false;
  bool reading_ = false;
  bool stopping_ = false;
  bool reaped_ = false;
  bool finishing_ = false;
};

}  // namespace gsk::process::internal
