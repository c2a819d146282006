// Integration tests of the real launcher with short-lived processes (python3 and coreutils).
// Every wait is bounded by io_context::run_one_until; only processes started here are killed.

#include "supervisor/process/process_launcher.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "supervisor/process/proc_fs.h"

namespace gsk::process {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr char kPython[] = "/usr/bin/python3";

struct Launched {
  ProcessHandle handle;
  std::optional<ExitInfo> exit;
  int exit_calls = 0;
  std::vector<std::string> lines;
};

bool Alive(int pid) {
  auto stat = internal::ReadProcStat(pid);
  return stat.ok() && stat->state != 'Z' && stat->state != 'X';
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::set<int> OpenFds(int pid) {
  std::set<int> fds;
  for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    fds.insert(std::stoi(entry.path().filename().string()));
  }
  return fds;
}

// Zombie children of this test process: processes it started and never reaped.
std::vector<int> OwnZombies() {
  std::vector<int> zombies;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    int pid = std::atoi(entry.path().filename().c_str());
    if (pid <= 0) continue;
    auto stat = internal::ReadProcStat(pid);
    if (stat.ok() && stat->ppid == ::getpid() && stat->state == 'Z') zombies.push_back(pid);
  }
  return zombies;
}

class ProcessLauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " is not installed";
    char tmpl[] = "/tmp/gsk-process-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    launcher_ = MakeRealLauncher(io_);
  }
  void TearDown() override {
    launcher_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  static ProcessSpec Python(const std::string& code) {
    ProcessSpec spec;
    spec.argv = {kPython, "-u", "-c", code};
    return spec;
  }

  // Launches with output captured into the returned Run. Fails the test if Launch fails.
  std::shared_ptr<Launched> Start(ProcessSpec spec, bool capture = true) {
    auto run = std::make_shared<Launched>();
    if (capture) spec.on_output = [run](std::string_view l) { run->lines.emplace_back(l); };
    auto handle = launcher_->Launch(std::move(spec), [run](const ExitInfo& info) {
      run->exit = info;
      ++run->exit_calls;
    });
    EXPECT_TRUE(handle.ok()) << handle.status().ToString();
    if (handle.ok()) run->handle = *handle;
    return run;
  }

  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 15s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      if (io_.stopped()) io_.restart();  // it ran out of work after an earlier process
      if (io_.run_one_until(deadline) == 0 && io_.stopped()) return done();  // no work left
    }
    return true;
  }

  bool WaitExit(const std::shared_ptr<Launched>& run, std::chrono::milliseconds limit = 15s) {
    return RunUntil([&] { return run->exit.has_value(); }, limit);
  }

  bool WaitLine(const std::shared_ptr<Launched>& run) {
    return RunUntil([&] { return !run->lines.empty(); });
  }

  boost::asio::io_context io_;
  std::unique_ptr<ProcessLauncher> launcher_;
  fs::path dir_;
};

TEST_F(ProcessLauncherTest, ExitCodeIsReported) {
  auto run = Start(Python("import sys; sys.exit(3)"));
  EXPECT_FALSE(run->exit.has_value());  // never from inside Launch
  ASSERT_TRUE(WaitExit(run));
  EXPECT_EQ(run->exit->pid, run->handle.pid());
  EXPECT_FALSE(run->exit->signaled);
  EXPECT_EQ(run->exit->code_or_signal, 3);
  EXPECT_EQ(run->exit->Describe(), "exited with code 3");
}

TEST_F(ProcessLauncherTest, KillFromOutsideIsReportedAsSignal) {
  ProcessSpec spec;
  spec.argv = {"/usr/bin/sleep", "60"};
  auto run = Start(std::move(spec), false);
  ASSERT_EQ(::kill(run->handle.pid(), SIGKILL), 0);
  ASSERT_TRUE(WaitExit(run));
  EXPECT_TRUE(run->exit->signaled);
  EXPECT_EQ(run->exit->code_or_signal, SIGKILL);
  EXPECT_EQ(run->exit->Describe(), "killed by signal 9 (SIGKILL)");
}

TEST_F(ProcessLauncherTest, OutputLinesInOrderWithTheUnterminatedLastOne) {
  auto run = Start(Python(
      "import sys; print('one'); sys.stderr.write('two\\n'); print(); sys.stdout.write('three')"));
  ASSERT_TRUE(WaitExit(run));
  EXPECT_EQ(run->lines, (std::vector<std::string>{"one", "two", "", "three"}));
  EXPECT_TRUE(run->exit->success());
}

TEST_F(ProcessLauncherTest, EnvironmentIsExactlyTheSpec) {
  ::setenv("GSK_SHOULD_NOT_LEAK", "1", 1);
  ProcessSpec spec;
  spec.argv = {"/usr/bin/env"};
  spec.env = {{"FOO", "bar baz"}, {"X", ""}};
  auto run = Start(std::move(spec));
  ASSERT_TRUE(WaitExit(run));
  EXPECT_EQ(run->lines, (std::vector<std::string>{"FOO=bar baz", "X="}));
}

TEST_F(ProcessLauncherTest, ArgumentsArePassedVerbatimWithoutAShell) {
  ProcessSpec spec = Python("import sys; print(sys.argv[1:])");
  spec.argv.insert(spec.argv.end(), {"$HOME", "a b", "'; rm -rf /", ""});
  auto run = Start(std::move(spec));
  ASSERT_TRUE(WaitExit(run));
  EXPECT_EQ(run->lines, (std::vector<std::string>{"['$HOME', 'a b', \"'; rm -rf /\", '']"}));
}

TEST_F(ProcessLauncherTest, WorkingDirectoryGroupAndStartTime) {
  ProcessSpec pwd;
  pwd.argv = {"/usr/bin/pwd"};
  pwd.cwd = dir_;
  auto run = Start(std::move(pwd));
  ASSERT_TRUE(WaitExit(run));
  EXPECT_EQ(run->lines, (std::vector<std::string>{dir_.string()}));

  ProcessSpec sleep;
  sleep.argv = {"/usr/bin/sleep", "60"};
  run = Start(sleep, false);
  auto stat = internal::ReadProcStat(run->handle.pid());
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->pgrp, run->handle.pid());
  EXPECT_EQ(run->handle.pgid(), run->handle.pid());
  EXPECT_EQ(stat->start_time_ticks, run->handle.start_time_ticks());
  launcher_->Kill(run->handle);
  ASSERT_TRUE(WaitExit(run));

  sleep.new_process_group = false;
  run = Start(sleep, false);
  stat = internal::ReadProcStat(run->handle.pid());
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->pgrp, ::getpgrp());
  EXPECT_EQ(run->handle.pgid(), 0);
  launcher_->Kill(run->handle);
  ASSERT_TRUE(WaitExit(run));
  EXPECT_EQ(run->exit->code_or_signal, SIGKILL);
}

TEST_F(ProcessLauncherTest, StopTerminatesTheWholeGroup) {
  auto run =
      Start(Python("import subprocess, time\n"
                   "p = subprocess.Popen(['/usr/bin/sleep', '60'])\n"
                   "print(p.pid)\n"
                   "time.sleep(60)\n"));
  ASSERT_TRUE(WaitLine(run));
  int grandchild = std::stoi(run->lines[0]);
  ASSERT_TRUE(Alive(grandchild));
  launcher_->Stop(run->handle, 10s);
  ASSERT_TRUE(WaitExit(run, 5s));  // both die on SIGTERM, long before the grace
  EXPECT_TRUE(run->exit->signaled);
  EXPECT_EQ(run->exit->code_or_signal, SIGTERM);
  EXPECT_FALSE(Alive(run->handle.pid()));
  EXPECT_FALSE(Alive(grandchild));
  EXPECT_FALSE(GroupAlive(run->handle.pgid()));
}

TEST_F(ProcessLauncherTest, ChildIgnoringSigtermIsKilledAfterTheGrace) {
  auto run =
      Start(Python("import signal, time\n"
                   "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                   "print('ready')\n"
                   "time.sleep(60)\n"));
  ASSERT_TRUE(WaitLine(run));
  auto stopped_at = std::chrono::steady_clock::now();
  launcher_->Stop(run->handle, 300ms);
  launcher_->Stop(run->handle, 60s);  // a second Stop keeps the first deadline
  ASSERT_TRUE(WaitExit(run, 10s));
  EXPECT_GE(std::chrono::steady_clock::now() - stopped_at, 300ms);
  EXPECT_TRUE(run->exit->signaled);
  EXPECT_EQ(run->exit->code_or_signal, SIGKILL);
}

TEST_F(ProcessLauncherTest, OnExitWaitsForGroupMembersThatIgnoreSigterm) {
  // The leader dies on SIGTERM at once; its child ignores SIGTERM and holds out until SIGKILL.
  auto run = Start(Python(
      "import subprocess, sys, time\n"
      "subprocess.Popen([sys.executable, '-u', '-c', 'import os, signal, time; "
      "signal.signal(signal.SIGTERM, signal.SIG_IGN); print(os.getpid()); time.sleep(60)'])\n"
      "time.sleep(60)\n"));
  ASSERT_TRUE(WaitLine(run));
  int grandchild = std::stoi(run->lines[0]);
  auto stopped_at = std::chrono::steady_clock::now();
  launcher_->Stop(run->handle, 400ms);
  ASSERT_TRUE(WaitExit(run, 10s));
  EXPECT_GE(std::chrono::steady_clock::now() - stopped_at, 400ms);
  EXPECT_EQ(run->exit->code_or_signal, SIGTERM);  // the leader's own exit
  EXPECT_FALSE(Alive(grandchild));
  EXPECT_FALSE(GroupAlive(run->handle.pgid()));
}

TEST_F(ProcessLauncherTest, LeftoversOfAnExitedLeaderAreKilled) {
  auto run =
      Start(Python("import subprocess\n"
                   "print(subprocess.Popen(['/usr/bin/sleep', '60']).pid)\n"));
  ASSERT_TRUE(WaitExit(run));
  EXPECT_TRUE(run->exit->success());
  ASSERT_EQ(run->lines.size(), 1u);
  EXPECT_FALSE(Alive(std::stoi(run->lines[0])));
}

TEST_F(ProcessLauncherTest, ManyShortProcessesAreAllReapedOnce) {
  std::vector<std::shared_ptr<Launched>> runs;
  for (int i = 0; i < 40; ++i) {
    ProcessSpec spec;
    spec.argv = {"/usr/bin/true"};
    if (i % 2 == 0) spec.on_output = [](std::string_view) {};
    runs.push_back(Start(std::move(spec), false));
  }
  ASSERT_TRUE(RunUntil([&] {
    return std::all_of(runs.begin(), runs.end(), [](auto& r) { return r->exit.has_value(); });
  }));
  io_.run_for(50ms);  // a second on_exit would show up here
  for (const auto& run : runs) {
    EXPECT_EQ(run->exit_calls, 1);
    EXPECT_TRUE(run->exit->success());
  }
  EXPECT_TRUE(OwnZombies().empty());
}

TEST_F(ProcessLauncherTest, AddressSpaceLimitStopsABigAllocation) {
  ProcessSpec spec = Python("bytearray(1 << 30)");
  spec.limits.address_space_bytes = 200ull << 20;
  auto run = Start(std::move(spec));
  ASSERT_TRUE(WaitExit(run));
  EXPECT_FALSE(run->exit->success());
  bool memory_error = false;
  for (const auto& line : run->lines) memory_error |= line.find("MemoryError") != std::string::npos;
  EXPECT_TRUE(memory_error) << "output: " << ::testing::PrintToString(run->lines);
}

TEST_F(ProcessLauncherTest, OpenFilesLimitIsVisibleInProc) {
  ProcessSpec spec;
  spec.argv = {"/usr/bin/sleep", "60"};
  spec.limits.open_files = 16;
  spec.limits.core_bytes = 0;
  auto run = Start(std::move(spec), false);
  std::string limits = ReadFile("/proc/" + std::to_string(run->handle.pid()) + "/limits");
  EXPECT_NE(limits.find("Max open files            16                   16"), std::string::npos)
      << limits;
  EXPECT_NE(limits.find("Max core file size        0                    0"), std::string::npos)
      << limits;
  launcher_->Kill(run->handle);
  ASSERT_TRUE(WaitExit(run));
}

TEST_F(ProcessLauncherTest, ChildInheritsOnlyStdio) {
  int leaked_fd = ::dup(2);  // not close-on-exec, like a careless library's descriptor
  int leaked_socket = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(leaked_fd, 0);
  ASSERT_GE(leaked_socket, 0);
  for (bool piped : {false, true}) {
    ProcessSpec spec;
    spec.argv = {"/usr/bin/sleep", "60"};
    auto run = Start(std::move(spec), piped);
    // The dynamic loader and libc of the fresh child open files for a moment (ld.so.cache,
    // libc.so, locale data); an inherited descriptor stays. Poll until the transient ones close.
    const std::set<int> stdio{0, 1, 2};
    std::set<int> fds = OpenFds(run->handle.pid());
    for (int i = 0; i < 500 && fds != stdio; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      fds = OpenFds(run->handle.pid());
    }
    EXPECT_EQ(fds, stdio) << "piped: " << piped;
    launcher_->Kill(run->handle);
    ASSERT_TRUE(WaitExit(run));
  }
  ::close(leaked_fd);
  ::close(leaked_socket);
}

TEST_F(ProcessLauncherTest, TheSecretArrivesOnFd3AndNowhereElse) {
  int leaked_fd = ::dup(2);  // must not land on fd 3 in the child, nor be inherited at all
  ASSERT_GE(leaked_fd, 0);
  ProcessSpec spec = Python(
      "import os, sys\n"
      "secret = os.read(3, 100)\n"
      "rest = os.read(3, 100)\n"
      "os.close(3)\n"
      "fds = sorted(int(f) for f in os.listdir('/proc/self/fd'))\n"
      "print(secret.decode(), len(rest), fds, 'GSK' in repr(dict(os.environ)))\n");
  spec.secret = "s3cret-token";
  auto run = Start(std::move(spec));
  ASSERT_TRUE(WaitExit(run));
  ASSERT_EQ(run->lines.size(), 1u);
  // The secret, then EOF; then fds 0-2 plus the one listdir opens; nothing in the environment.
  EXPECT_EQ(run->lines[0], "s3cret-token 0 [0, 1, 2, 3] False");
  ProcessSpec too_big = Python("pass");
  too_big.secret = std::string(kMaxSecretBytes + 1, 'x');
  EXPECT_EQ(launcher_->Launch(std::move(too_big), [](const ExitInfo&) {}).status().code(),
            StatusCode::kInvalidArgument);
  ::close(leaked_fd);
}

TEST_F(ProcessLauncherTest, LogFileIsAppendedAcrossRuns) {
  for (const char* word : {"first", "second"}) {
    ProcessSpec spec =
        Python(std::string("import sys; print('") + word + "'); print('err', file=sys.stderr)");
    spec.log_file = dir_ / "worker.log";
    ASSERT_TRUE(WaitExit(Start(std::move(spec), false)));
  }
  EXPECT_EQ(ReadFile(dir_ / "worker.log"), "first\nerr\nsecond\nerr\n");
}

TEST_F(ProcessLauncherTest, PipedLogIsRotatedByRename) {
  // How the 600 bytes arrive in reads is up to the kernel; the pauses make several likely.
  ProcessSpec spec = Python(
      "import time\n"
      "for i in range(20):\n"
      "    print('line %02d ' % i + 'x' * 21)\n"
      "    time.sleep(0.005)\n");
  spec.log_file = dir_ / "build.log";
  spec.log_rotate_bytes = 100;
  auto run = Start(std::move(spec));
  ASSERT_TRUE(WaitExit(run));
  EXPECT_EQ(run->lines.size(), 20u);
  ASSERT_TRUE(fs::exists(dir_ / "build.log.1"));
  EXPECT_FALSE(fs::exists(dir_ / "build.log.4"));
  EXPECT_LE(fs::file_size(dir_ / "build.log"), 100u);
  std::string kept;
  for (int n = kRotatedLogsKept; n >= 1; --n) {
    fs::path rotated = dir_ / ("build.log." + std::to_string(n));
    if (!fs::exists(rotated)) continue;
    EXPECT_LE(fs::file_size(rotated), 100u + 16384u);  // past the limit by one read at most
    kept += ReadFile(rotated);
  }
  kept += ReadFile(dir_ / "build.log");
  std::string last = "line 19 " + std::string(21, 'x') + "\n";
  ASSERT_GE(kept.size(), last.size());
  EXPECT_EQ(kept.substr(kept.size() - last.size()), last);
}

TEST_F(ProcessLauncherTest, DirectLogIsRotatedByCopyAndTruncate) {
  // The child writes its log itself; it waits until it sees the rotation, then writes more.
  fs::path log = dir_ / "worker.log";
  ProcessSpec spec = Python(
      "import os, sys, time\n"
      "sys.stdout.write('x' * 299 + '\\n')\n"
      "deadline = time.time() + 10\n"
      "while not os.path.exists(sys.argv[1] + '.1') and time.time() < deadline:\n"
      "    time.sleep(0.01)\n"
      "print('tail')\n");
  spec.argv.push_back(log.string());
  spec.log_file = log;
  spec.log_rotate_bytes = 100;
  auto run = Start(std::move(spec), false);
  ASSERT_TRUE(WaitExit(run));
  EXPECT_EQ(ReadFile(log.string() + ".1"), std::string(299, 'x') + "\n");
  EXPECT_EQ(ReadFile(log), "tail\n");
}

TEST_F(ProcessLauncherTest, LaunchErrorsSayWhatIsWrong) {
  auto launch = [&](ProcessSpec spec) { return launcher_->Launch(std::move(spec), nullptr); };
  ProcessSpec missing;
  missing.argv = {"/nonexistent/python9"};
  auto result = launch(missing);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kNotFound);
  EXPECT_NE(result.status().message().find("/nonexistent/python9"), std::string::npos);

  ProcessSpec relative;
  relative.argv = {"python3"};
  EXPECT_EQ(launch(relative).status().code(), StatusCode::kInvalidArgument);

  ProcessSpec bad_env = Python("pass");
  bad_env.env = {{"A=B", "c"}};
  EXPECT_EQ(launch(bad_env).status().code(), StatusCode::kInvalidArgument);

  ProcessSpec bad_cwd = Python("pass");
  bad_cwd.cwd = dir_ / "missing";
  result = launch(bad_cwd);
  EXPECT_EQ(result.status().code(), StatusCode::kNotFound);
  EXPECT_NE(result.status().message().find("missing"), std::string::npos);

  ProcessSpec bad_log = Python("pass");
  bad_log.log_file = dir_ / "missing" / "x.log";
  EXPECT_EQ(launch(bad_log).status().code(), StatusCode::kNotFound);

  ProcessSpec not_executable;
  not_executable.argv = {dir_.string()};
  EXPECT_EQ(launch(not_executable).status().code(), StatusCode::kFailedPrecondition);

  if (::geteuid() != 0) {
    ProcessSpec too_many = Python("pass");
    too_many.limits.open_files = uint64_t{1} << 40;
    EXPECT_EQ(launch(too_many).status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(OwnZombies().empty());
}

TEST_F(ProcessLauncherTest, StopAndKillAfterExitDoNothing) {
  auto run = Start(Python("pass"));
  ASSERT_TRUE(WaitExit(run));
  launcher_->Stop(run->handle, 10ms);
  launcher_->Kill(run->handle);
  io_.run_for(50ms);
  EXPECT_EQ(run->exit_calls, 1);
}

TEST_F(ProcessLauncherTest, DestroyingTheLauncherKillsAndReaps) {
  ProcessSpec spec;
  spec.argv = {"/usr/bin/sleep", "60"};
  auto run = Start(std::move(spec));
  int pid = run->handle.pid();
  launcher_.reset();
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid)));  // reaped, not a zombie
  EXPECT_FALSE(run->exit.has_value());
  io_.run_for(20ms);
  EXPECT_FALSE(run->exit.has_value());
}

TEST_F(ProcessLauncherTest, RunAndCaptureReturnsTheOutput) {
  ProcessSpec spec;
  spec.argv = {kPython, "--version"};
  auto captured = RunAndCapture(std::move(spec), 10s);
  ASSERT_TRUE(captured.ok()) << captured.status().ToString();
  EXPECT_TRUE(captured->exit.success());
  EXPECT_EQ(captured->output.rfind("Python 3.", 0), 0u) << captured->output;
}

TEST_F(ProcessLauncherTest, RunAndCaptureKillsOnTimeout) {
  ProcessSpec spec;
  spec.argv = {"/usr/bin/sleep", "30"};
  auto started = std::chrono::steady_clock::now();
  auto captured = RunAndCapture(std::move(spec), 200ms);
  ASSERT_FALSE(captured.ok());
  EXPECT_EQ(captured.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_TRUE(OwnZombies().empty());
}

}  // namespace
}  // namespace gsk::process
