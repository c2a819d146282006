#include "supervisor/process/spawn.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <exception>

#include "supervisor/process/boost_process.h"

namespace gsk::process::internal {
namespace {

namespace bp = boost::process::v2;

// A failure in the child is reported through Boost's exec-error pipe as one int:
// step * kStepFactor + errno. Step 0 is execve itself.
constexpr int kStepFactor = 1000;
enum Step : int { kExec = 0, kSetpgid, kStdio, kCloseOnExec, kChdir, kSecret, kRlimit0 };
constexpr int kSecretTarget = 3;  // ProcessSpec's kSecretFd

int Fail(int step) noexcept { return step * kStepFactor + errno; }

void ResetSignals() noexcept {
  // Ignored signals and the signal mask survive exec; the child must start with defaults.
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);  // errors: KILL, STOP
}

// Boost 1.81's close_all() skips the fds between 2 and its own error pipe (a loop compares an
// element with itself), so mark everything above stderr close-on-exec ourselves.
int MarkCloseOnExec(unsigned first) noexcept {
  if (::close_range(first, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return 0;
  struct rlimit nofile {};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0) return -1;
  rlim_t top = nofile.rlim_cur == RLIM_INFINITY ? 65536 : nofile.rlim_cur;
  for (rlim_t fd = first; fd < top && fd < 1'048'576; ++fd) {
    ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);  // EBADF for fds that are not open
  }
  return 0;
}

int SetUpStdio(const ChildSetup& setup) noexcept {
  int sources[3] = {setup.stdin_fd, setup.stdout_fd, setup.stderr_fd};
  // Move sources out of 0..2 first so that no dup2 overwrites a later source.
  for (int& fd : sources) {
    if (fd < 3) fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return -1;
  }
  for (int target = 0; target < 3; ++target) {
    if (::dup2(sources[target], target) < 0) return -1;
  }
  return 0;
}

// The Boost.Process initializer; its hooks run in the child after fork.
struct ChildSetupInit {
  const ChildSetup* setup;

  template <typename Launcher, typename Path>
  boost::system::error_code on_exec_setup(Launcher&, const Path&, const char* const*) {
    int code = ApplyInChild(*setup);
    if (code == 0) return {};
    errno = code;  // Boost writes errno, not the returned code, to its error pipe
    return {code, boost::system::system_category()};
  }

  // Boost's child calls exit() after a failed exec, which would run the parent's atexit
  // handlers and static destructors in the child; leave at once instead. Variadic because
  // Boost 1.81 detects this hook with one signature and calls it with another.
  template <typename... Args>
  void on_exec_error(Args&&...) {
    ::_exit(127);
  }
};

const char* StepName(int step, const ChildSetup& setup) {
  switch (step) {
    case kExec:
      return "exec";
    case kSetpgid:
      return "setpgid";
    case kStdio:
      return "redirecting stdio";
    case kCloseOnExec:
      return "closing inherited file descriptors";
    case kChdir:
      return "chdir";
    case kSecret:
      return "passing the secret pipe";
    default:
      break;
  }
  size_t index = static_cast<size_t>(step - kRlimit0);
  return index < setup.limit_count ? setup.limits[index].name : "setting up the child";
}

Status ChildFailure(const std::string& exe, int code, const ChildSetup& setup) {
  int step = code / kStepFactor;
  int err = code % kStepFactor;
  std::string message = "starting " + exe + ": " + StepName(step, setup) + ": " + ::strerror(err);
  if (step == kChdir && setup.cwd != nullptr) message += " (" + std::string(setup.cwd) + ")";
  if (err == ENOENT) return NotFound(message);
  if (err == EACCES || err == ENOEXEC || err == EPERM) return FailedPrecondition(message);
  if (err == EAGAIN || err == ENOMEM || err == EMFILE || err == ENFILE) {
    return ResourceExhausted(message);
  }
  return Internal(message);
}

void KillAndReap(int pid) {
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

int ApplyInChild(const ChildSetup& setup) noexcept {
  ResetSignals();
  if (setup.new_process_group && ::setpgid(0, 0) != 0) return Fail(kSetpgid);
  int secret = setup.secret_fd;
  // Out of the way of the stdio targets and of its own target before those are written.
  if (secret >= 0 && secret <= kSecretTarget) secret = ::fcntl(secret, F_DUPFD_CLOEXEC, 10);
  if (setup.secret_fd >= 0 && secret < 0) return Fail(kSecret);
  if (SetUpStdio(setup) != 0) return Fail(kStdio);
  // dup2 onto another number clears close-on-exec on the copy: only it is inherited.
  if (secret >= 0 && ::dup2(secret, kSecretTarget) < 0) return Fail(kSecret);
  if (MarkCloseOnExec(secret >= 0 ? kSecretTarget + 1 : 3) != 0) return Fail(kCloseOnExec);
  if (setup.cwd != nullptr && ::chdir(setup.cwd) != 0) return Fail(kChdir);
  for (size_t i = 0; i < setup.limit_count; ++i) {
    rlimit limit{};
    limit.rlim_cur = limit.rlim_max = setup.limits[i].value;
    if (::setrlimit(setup.limits[i].resource, &limit) != 0) {
      return Fail(kRlimit0 + static_cast<int>(i));
    }
  }
  return 0;
}

Result<int> Spawn(const std::vector<std::string>& argv, const char* const* envp,
                  const ChildSetup& setup) {
  // Boost's launcher runs the io_context fork hooks in the child; give it an idle private
  // context so that the child never walks the state of the supervisor's io_context.
  boost::asio::io_context spawn_context(1);
  bp::posix::default_launcher launcher;
  launcher.env = envp;
  std::vector<std::string> args(argv.begin() + 1, argv.end());
  boost::system::error_code ec;
  try {
    auto proc = launcher(spawn_context.get_executor(), ec, std::filesystem::path(argv[0]), args,
                         ChildSetupInit{&setup});
    if (!ec) {
      int pid = proc.id();
      proc.detach();
      return pid;
    }
  } catch (const std::exception& e) {
    // The launcher throws only after fork, when it cannot watch the started child.
    if (launcher.pid > 0) KillAndReap(launcher.pid);
    return Internal("starting " + argv[0] + ": " + e.what());
  }
  // Boost 1.81 does not reap a child whose exec failed.
  if (launcher.pid > 0) KillAndReap(launcher.pid);
  if (launcher.pid <= 0)
    return ResourceExhausted("starting " + argv[0] + ": fork: " + ec.message());
  return ChildFailure(argv[0], ec.value(), setup);
}

}  // namespace gsk::process::internal
