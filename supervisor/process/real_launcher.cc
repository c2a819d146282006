// The launcher of real processes: prepares a spec, spawns it, and hands it to a ChildProcess.

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "supervisor/process/child_process.h"
#include "supervisor/process/launch_prep.h"
#include "supervisor/process/log_rotation.h"
#include "supervisor/process/proc_fs.h"
#include "supervisor/process/process_launcher.h"
#include "supervisor/process/spawn.h"

namespace gsk::process {
namespace {

using internal::ChildProcess;

class RealLauncher final : public ProcessLauncher {
 public:
  explicit RealLauncher(boost::asio::io_context& io) : io_(io), watcher_(io), sigchld_(io) {
    boost::system::error_code ec;
    sigchld_.add(SIGCHLD, ec);
    if (!ec) WaitForOrphans();
  }

  ~RealLauncher() override {
    boost::system::error_code ignored;
    sigchld_.cancel(ignored);
    for (auto& [id, child] : children_) child->Abandon();
    for (auto& [id, token] : watch_tokens_) watcher_.Unwatch(token);
  }

  Result<ProcessHandle> Launch(ProcessSpec spec, ExitCallback on_exit) override;

  void Stop(const ProcessHandle& handle, std::chrono::milliseconds grace) override {
    if (ChildProcess* child = Find(handle)) child->Stop(grace);
  }

  void Kill(const ProcessHandle& handle) override {
    if (ChildProcess* child = Find(handle)) child->Kill();
  }

  Result<ProcessHandle> Adopt(const AdoptSpec& spec, ExitCallback on_exit) override;

 private:
  ChildProcess* Find(const ProcessHandle& handle) {
    auto it = children_.find(handle.id());
    return it == children_.end() ? nullptr : it->second.get();
  }

  void Forget(uint64_t id) {
    if (auto it = watch_tokens_.find(id); it != watch_tokens_.end()) {
      watcher_.Unwatch(it->second);
      watch_tokens_.erase(it);
    }
    children_.erase(id);
  }

  // Children of ours that no ChildProcess watches (orphans re-parented to us as a subreaper)
  // are reaped when they exit, so that none stays a zombie.
  void WaitForOrphans() {
    sigchld_.async_wait([this, alive = std::weak_ptr<int>(alive_)](boost::system::error_code ec,
                                                                   int) {
      if (ec || !alive.lock()) return;
      ReapOrphans();
      WaitForOrphans();
    });
  }

  void ReapOrphans() {
    int subreaper = 0;
    // Without it, orphans go to init: every child we have is then one we launched.
    if (::prctl(PR_GET_CHILD_SUBREAPER, &subreaper, 0, 0, 0) != 0 || subreaper == 0) return;
    std::set<int> known = internal::LiveChildPids();
    std::ifstream list("/proc/self/task/" + std::to_string(::getpid()) + "/children");
    int pid = 0;
    while (list >> pid) {
      if (known.count(pid) != 0) continue;
      while (::waitpid(pid, nullptr, WNOHANG) < 0 && errno == EINTR) {
      }
    }
  }

  boost::asio::io_context& io_;
  internal::LogRotationWatcher watcher_;
  boost::asio::signal_set sigchld_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::shared_ptr<ChildProcess>> children_;
  std::map<uint64_t, int> watch_tokens_;  // children whose log the child itself writes
};

Result<ProcessHandle> RealLauncher::Launch(ProcessSpec spec, ExitCallback on_exit) {
  GSK_ASSIGN_OR_RETURN(internal::PreparedLaunch prep, internal::PrepareLaunch(spec));
  std::optional<int> watch;
  if (!spec.on_output && !spec.log_file.empty() && spec.log_rotate_bytes > 0) {
    GSK_ASSIGN_OR_RETURN(watch, watcher_.Watch(spec.log_file, spec.log_rotate_bytes));
  }
  std::vector<const char*> envp = prep.Envp();
  Result<int> pid = internal::Spawn(spec.argv, envp.data(), prep.Setup());
  if (!pid.ok()) {
    if (watch) watcher_.Unwatch(*watch);
    return pid.status();
  }
  int pgid = spec.new_process_group ? *pid : 0;
  // Not reaped yet, so /proc/<pid> is there even if it has exited already.
  Result<int64_t> start_time = ProcessStartTime(*pid);
  ProcessHandle handle(next_id_++, *pid, pgid, start_time.ok() ? *start_time : 0);

  ChildProcess::Options options;
  options.handle = handle;
  options.on_exit = std::move(on_exit);
  options.on_output = std::move(spec.on_output);
  options.log = std::move(prep.log);
  options.pipe_read = std::move(prep.pipe_read);
  options.on_done = [this, id = handle.id()] { Forget(id); };
  auto child = std::make_shared<ChildProcess>(io_, std::move(options));
  if (Status started = child->Start(); !started.ok()) {
    child->Abandon();  // kills and reaps it
    if (watch) watcher_.Unwatch(*watch);
    return started;
  }
  children_.emplace(handle.id(), std::move(child));
  if (watch) watch_tokens_.emplace(handle.id(), *watch);
  return handle;
}

Result<ProcessHandle> RealLauncher::Adopt(const AdoptSpec& spec, ExitCallback on_exit) {
  int pid = spec.pid;
  std::string what = "process " + std::to_string(pid);
  if (pid <= 0) return InvalidArgument("cannot adopt " + what);
  // Open the pidfd first, then check the start time: if it matches, the pidfd refers to that
  // very process even if the pid is reused later.
  internal::UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) return NotFound(what + " is gone");
  Result<int64_t> start = ProcessStartTime(pid);
  if (!start.ok() || *start != spec.start_time_ticks) {
    return NotFound(what + " is not the one recorded (its start time differs: the pid was reused)");
  }
  std::optional<int> watch;
  if (!spec.log_file.empty() && spec.log_rotate_bytes > 0) {
    // Best effort: a log that cannot be watched only grows.
    Result<int> token = watcher_.Watch(spec.log_file, spec.log_rotate_bytes);
    if (token.ok()) watch = *token;
  }
  ProcessHandle handle(next_id_++, pid, spec.own_group ? pid : 0, spec.start_time_ticks);
  ChildProcess::Options options;
  options.handle = handle;
  options.on_exit = std::move(on_exit);
  options.adopted_pidfd = std::move(pidfd);
  options.on_done = [this, id = handle.id()] { Forget(id); };
  auto child = std::make_shared<ChildProcess>(io_, std::move(options));
  if (Status started = child->Start(); !started.ok()) {
    if (watch) watcher_.Unwatch(*watch);
    return started;
  }
  children_.emplace(handle.id(), std::move(child));
  if (watch) watch_tokens_.emplace(handle.id(), *watch);
  return handle;
}

}  // namespace

std::unique_ptr<ProcessLauncher> MakeRealLauncher(boost::asio::io_context& io) {
  return std::make_unique<RealLauncher>(io);
}

Status MakeChildSubreaper() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    return Internal(std::string("prctl(PR_SET_CHILD_SUBREAPER): ") + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace gsk::process
