#include "supervisor/process/child_process.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <exception>

#include "supervisor/process/boost_process.h"
#include "supervisor/process/proc_fs.h"

namespace gsk::process::internal {

namespace asio = boost::asio;

struct ChildProcess::ExitWatch {
  // Waits on a pidfd (pidfd_open) through the io_context's reactor, then waitpid()s: no polling.
  boost::process::v2::basic_process_handle<asio::io_context::executor_type> handle;
};

namespace {
// Written and read on the launchers' thread only.
std::multiset<int>& Registry() {
  static std::multiset<int>* pids = new std::multiset<int>();
  return *pids;
}
}  // namespace

std::set<int> LiveChildPids() { return {Registry().begin(), Registry().end()}; }

ChildProcess::ChildProcess(asio::io_context& io, Options options)
    : io_(io), options_(std::move(options)), kill_timer_(io), pipe_(io) {
  exit_.pid = options_.handle.pid();
  if (options_.on_output) lines_.emplace(options_.on_output);
  Registry().insert(exit_.pid);
}

ChildProcess::~ChildProcess() {
  auto it = Registry().find(exit_.pid);
  if (it != Registry().end()) Registry().erase(it);
}

Status ChildProcess::Start() {
  if (options_.adopted_pidfd) return WatchAdopted();
  try {
    exit_watch_.reset(new ExitWatch{{io_.get_executor(), options_.handle.pid()}});
  } catch (const std::exception& e) {
    return ResourceExhausted(std::string("watching the started process: ") + e.what());
  }
  exit_watch_->handle.async_wait(
      [self = shared_from_this()](boost::system::error_code ec, int native_status) {
        if (!self->abandoned_) self->OnReaped(!ec, native_status);
      });
  if (options_.pipe_read) {
    boost::system::error_code ec;
    pipe_.assign(options_.pipe_read.get(), ec);
    if (ec) return Internal("reading the output of the started process: " + ec.message());
    options_.pipe_read.release();
    Read();
  }
  return Status::Ok();
}

Status ChildProcess::WatchAdopted() {
  adopted_watch_ = std::make_unique<asio::posix::stream_descriptor>(io_);
  boost::system::error_code ec;
  adopted_watch_->assign(options_.adopted_pidfd.get(), ec);
  if (ec) return Internal("watching the adopted process: " + ec.message());
  options_.adopted_pidfd.release();
  // A pidfd becomes readable when its process exits. A process we did not fork is reaped by
  // its parent (init, or a subreaper), so there is no status to collect; but one that became
  // our child (a worker forked by a template, re-parented to us as the child subreaper) is
  // ours to reap, with its status.
  adopted_watch_->async_wait(asio::posix::descriptor_base::wait_read,
                             [self = shared_from_this()](boost::system::error_code wait_ec) {
                               if (wait_ec || self->abandoned_) return;
                               int status = 0;
                               pid_t reaped = -1;
                               do {
                                 reaped = ::waitpid(self->options_.handle.pid(), &status, WNOHANG);
                               } while (reaped < 0 && errno == EINTR);
                               self->OnReaped(reaped == self->options_.handle.pid(), status);
                             });
  return Status::Ok();
}

void ChildProcess::Stop(std::chrono::milliseconds grace) {
  if (finishing_ || stopping_) return;
  stopping_ = true;
  Signal(SIGTERM);
  kill_timer_.expires_after(grace);
  kill_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && !self->abandoned_ && !self->finishing_) self->Signal(SIGKILL);
  });
}

void ChildProcess::Kill() {
  if (finishing_) return;
  stopping_ = true;
  kill_timer_.cancel();
  Signal(SIGKILL);
}

void ChildProcess::Abandon() {
  abandoned_ = true;
  if (!finishing_) Signal(SIGKILL);
  if (!reaped_ && adopted_watch_) {
    adopted_watch_.reset();
    ::waitpid(options_.handle.pid(), nullptr, WNOHANG);  // ours if it was re-parented to us
    reaped_ = true;
  } else if (!reaped_) {
    // Close the pidfd first so that Boost's pending wait does not waitpid() after us. A wait
    // already completed and queued would find the pid reaped (ECHILD).
    exit_watch_.reset();
    while (::waitpid(options_.handle.pid(), nullptr, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
  }
  kill_timer_.cancel();
  members_.clear();
  boost::system::error_code ignored;
  pipe_.close(ignored);
}

void ChildProcess::OnReaped(bool ok, int native_status) {
  reaped_ = true;
  if (!ok) {
    exit_.code_or_signal = -1;
  } else if (WIFSIGNALED(native_status)) {
    exit_.signaled = true;
    exit_.code_or_signal = WTERMSIG(native_status);
  } else {
    exit_.code_or_signal = WEXITSTATUS(native_status);
  }
  if (options_.handle.pgid() > 0) {
    WaitForGroup();
  } else {
    Finish();
  }
}

// The group outlives its leader while any member lives: watch each member's pidfd, rescan
// when all have exited (a member may have forked), and finish when the group is empty.
void ChildProcess::WaitForGroup() {
  members_.clear();
  int pgid = options_.handle.pgid();
  // The usual case, without a scan of /proc: no process is left in the group (zombies count
  // for kill(), so a success still needs the scan).
  if (::kill(-pgid, 0) != 0 && errno == ESRCH) return Finish();
  std::vector<int> pids = ListGroupMembers(pgid);
  if (pids.empty()) return Finish();
  // Without a Stop in progress, what outlives the leader is an orphan of a finished job.
  if (!stopping_) ::kill(-pgid, SIGKILL);
  for (int pid : pids) {
    // Debian 12's <sys/pidfd.h> lacks extern "C", so call the system call directly.
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) continue;  // already gone
    auto member = std::make_unique<asio::posix::stream_descriptor>(io_);
    boost::system::error_code ec;
    member->assign(fd, ec);
    if (ec) {
      ::close(fd);
      continue;
    }
    member->async_wait(asio::posix::descriptor_base::wait_read,
                       [self = shared_from_this()](boost::system::error_code wait_ec) {
                         if (wait_ec || self->abandoned_ || self->finishing_) return;
                         if (--self->members_pending_ == 0) self->WaitForGroup();
                       });
    members_.push_back(std::move(member));
  }
  members_pending_ = members_.size();
  // Members that vanished between the scan and pidfd_open: rescan later rather than spin.
  if (members_pending_ == 0)
    asio::post(io_, [self = shared_from_this()] {
      if (!self->abandoned_ && !self->finishing_) self->WaitForGroup();
    });
}

void ChildProcess::Signal(int sig) {
  int pgid = options_.handle.pgid();
  if (pgid > 0) {
    // Once the leader is reaped its pid is reserved only while the group has members.
    if (!reaped_ || GroupAlive(pgid)) {
      // A forked worker may not lead its group yet in the first instants: then the process.
      if (::kill(-pgid, sig) != 0 && errno == ESRCH && !reaped_) ::kill(options_.handle.pid(), sig);
    }
  } else if (!reaped_) {
    ::kill(options_.handle.pid(), sig);
  }
}

void ChildProcess::Read() {
  reading_ = true;
  pipe_.async_read_some(
      asio::buffer(Buffer(), kBufferBytes),
      [self = shared_from_this()](boost::system::error_code ec, size_t n) {
        self->reading_ = false;
        if (self->abandoned_) return;
        self->Deliver(std::string_view(self->buffer_.get(), n));
        if (self->finishing_) return self->CompleteFinish();
        if (!ec) self->Read();  // on EOF or an error, stop reading; the exit finishes the child
      });
}

void ChildProcess::Deliver(std::string_view data) {
  if (data.empty()) return;
  if (options_.log) options_.log->Write(data);
  if (lines_) lines_->Feed(data);
}

void ChildProcess::Finish() {
  if (finishing_) return;
  finishing_ = true;
  kill_timer_.cancel();
  members_.clear();
  if (!reading_) return CompleteFinish();
  // A completed read may be queued with data older than what is still in the pipe; let it
  // run first (cancel() makes a pending one complete now), then drain.
  boost::system::error_code ignored;
  pipe_.cancel(ignored);
}

char* ChildProcess::Buffer() {
  if (!buffer_) buffer_ = std::make_unique_for_overwrite<char[]>(kBufferBytes);
  return buffer_.get();
}

void ChildProcess::CompleteFinish() {
  if (pipe_.is_open()) {
    // The leader and its group are gone, so what they wrote is in the pipe now. Bound the
    // drain in case a process outside the group keeps writing.
    for (size_t total = 0; total < (size_t{1} << 20);) {
      ssize_t n = ::read(pipe_.native_handle(), Buffer(), kBufferBytes);
      if (n <= 0) break;
      Deliver(std::string_view(buffer_.get(), static_cast<size_t>(n)));
      total += static_cast<size_t>(n);
    }
    boost::system::error_code ignored;
    pipe_.close(ignored);
  }
  if (lines_) lines_->Flush();
  ProcessLauncher::ExitCallback on_exit = std::move(options_.on_exit);
  if (options_.on_done) options_.on_done();
  if (on_exit) on_exit(exit_);
}

}  // namespace gsk::process::internal
