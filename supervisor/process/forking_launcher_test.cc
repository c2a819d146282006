#include "supervisor/process/forking_launcher.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "base/fake_clock.h"
#include "base/fake_timers.h"
#include "supervisor/process/fake_process_launcher.h"
#include "supervisor/protocol/frame_codec.h"

namespace gsk::process {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// The fake launcher starts nothing: the test plays the template on its end of the template's
// socket, and a forked worker is this test process itself (a real pid with a start time).
class ForkingLauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gsk-forking-launcher-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ / "env/bin");
    std::ofstream(dir_ / "env/bin/python") << "";
    options_.templates_dir = dir_ / "templates";
    options_.logs_dir = dir_ / "logs";
    options_.idle = milliseconds(1000);
    options_.fork_timeout = milliseconds(50);
    launcher_ = std::make_unique<ForkingLauncher>(inner_, timers_, options_);
  }
  void TearDown() override {
    launcher_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  ProcessSpec Worker(const std::string& id) const {
    ProcessSpec spec;
    spec.argv = {(dir_ / "env/bin/python").string(), "-m", "giskard_worker_shim",
                 "serve-managed"};
    spec.env = {{"GSK_WORKER_ID", id}, {"GSK_SUPERVISOR_SOCKET", "/run/workers.sock"}};
    spec.secret = "token-" + id;
    spec.new_process_group = true;
    spec.forkable = true;
    spec.cwd = dir_ / "workers" / id;
    spec.log_file = dir_ / "logs" / (id + ".log");
    return spec;
  }

  // Launches worker `id`, counting its exits in `exits_`.
  int Launch(const std::string& id) {
    Result<ProcessHandle> handle = launcher_->Launch(Worker(id), [this](const ExitInfo&) {
      ++exits_;
    });
    EXPECT_TRUE(handle.ok()) << handle.status().message();
    return handle.ok() ? handle->pid() : 0;
  }

  // What the template says on its socket (the one launch #0 inherited).
  void TemplateSays(const nlohmann::json& message) {
    ASSERT_GE(inner_.launches().size(), 1u);
    int fd = inner_.launches()[0].inherited_fd;
    ASSERT_GE(fd, 0);
    Result<std::string> frame = protocol::EncodeFrame(message.dump());
    ASSERT_TRUE(frame.ok());
    ASSERT_EQ(::send(fd, frame->data(), frame->size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(frame->size()));
  }

  // The template is ready, and will answer the next fork request (the launcher's n-th) with
  // this very process as the forked worker.
  void ReadyToFork(int n) {
    TemplateSays({{"type", "ready"}, {"pid", inner_.launches()[0].handle.pid()}});
    TemplateSays({{"type", "forked"}, {"id", "f" + std::to_string(n)}, {"pid", ::getpid()}});
    Result<int64_t> ticks = ProcessStartTime(::getpid());
    ASSERT_TRUE(ticks.ok());
    inner_.AddForeign(::getpid(), *ticks);
  }

  bool TemplateStopped() const {
    int pid = inner_.launches()[0].handle.pid();
    for (const auto& s : inner_.stops()) {
      if (s.pid == pid) return true;
    }
    return false;
  }

  fs::path dir_;
  FakeClock clock_;
  FakeTimers timers_{clock_};
  FakeProcessLauncher inner_;
  ForkOptions options_;
  std::unique_ptr<ForkingLauncher> launcher_;
  int exits_ = 0;
};

TEST_F(ForkingLauncherTest, FirstWorkerIsExecutedWhileItsTemplateStarts) {
  int pid = Launch("w1");
  ASSERT_EQ(inner_.launches().size(), 2u);
  const ProcessSpec& t = inner_.launches()[0].spec;
  EXPECT_EQ(t.argv.back(), "serve-template");
  EXPECT_EQ(t.env.at("GSK_TEMPLATE_FD"), "3");
  EXPECT_FALSE(t.env.count("GSK_WORKER_ID"));
  EXPECT_EQ(inner_.launches()[1].handle.pid(), pid);
  EXPECT_EQ(inner_.launches()[1].spec.argv.back(), "serve-managed");
  EXPECT_EQ(launcher_->counts().executed, 1);
  EXPECT_EQ(launcher_->counts().templates, 1);
}

TEST_F(ForkingLauncherTest, ReadyTemplateForksTheNextWorker) {
  Launch("w1");
  ReadyToFork(1);
  EXPECT_EQ(Launch("w2"), ::getpid());
  EXPECT_EQ(launcher_->counts().forked, 1);
  EXPECT_TRUE(inner_.launches().back().adopted);
  EXPECT_EQ(inner_.launches().size(), 3u);  // template, w1, w2 (adopted)
}

// Workers that preload models get a template of their own, which is told the list; workers
// of the same env without a list keep theirs.
TEST_F(ForkingLauncherTest, APreloadListGetsATemplateOfItsOwn) {
  Launch("w1");  // the plain template, then w1 exec'd
  ProcessSpec preloading = Worker("w2");
  preloading.preload = {"/models/iris.pkl", "/models/big"};
  ASSERT_TRUE(launcher_->Launch(preloading, [](const ExitInfo&) {}).ok());
  ASSERT_EQ(inner_.launches().size(), 4u);  // plain template, w1, preloading template, w2
  const ProcessSpec& plain = inner_.launches()[0].spec;
  const ProcessSpec& preload = inner_.launches()[2].spec;
  EXPECT_EQ(preload.argv.back(), "serve-template");
  EXPECT_FALSE(plain.env.count("GSK_TEMPLATE_PRELOAD"));
  EXPECT_EQ(nlohmann::json::parse(preload.env.at("GSK_TEMPLATE_PRELOAD")),
            nlohmann::json({"/models/iris.pkl", "/models/big"}));
  EXPECT_EQ(plain.cwd.filename(), "env");
  EXPECT_EQ(preload.cwd.filename().string().rfind("env-preload-", 0), 0u) << preload.cwd;
  EXPECT_NE(preload.log_file, plain.log_file);
  EXPECT_EQ(launcher_->counts().templates, 2);
}

TEST_F(ForkingLauncherTest, PythonVariableOrOptOutIsExecuted) {
  ProcessSpec spec = Worker("w1");
  spec.env["PYTHONHASHSEED"] = "0";
  EXPECT_EQ(ForkingLauncher::WhyNotForkable(spec),
            "PYTHONHASHSEED changes how the interpreter starts");
  spec = Worker("w1");
  spec.forkable = false;
  EXPECT_NE(ForkingLauncher::WhyNotForkable(spec), "");
  ASSERT_TRUE(launcher_->Launch(std::move(spec), [](const ExitInfo&) {}).ok());
  EXPECT_EQ(inner_.launches().size(), 1u);  // no template for it
}

TEST_F(ForkingLauncherTest, TemplateThatDoesNotAnswerIsRetiredAndTheWorkerExecuted) {
  Launch("w1");
  TemplateSays({{"type", "ready"}, {"pid", 1}});
  int pid = Launch("w2");  // no answer within fork_timeout
  EXPECT_EQ(inner_.launches().back().handle.pid(), pid);
  EXPECT_FALSE(inner_.launches().back().adopted);
  EXPECT_TRUE(TemplateStopped());
  EXPECT_EQ(launcher_->counts().executed, 2);
}

// Regression: the template stopped after `idle` although its env still had a worker (one exec'd
// while it warmed up), and never stopped when its env had only had exec'd workers.
TEST_F(ForkingLauncherTest, TemplateStaysWhileItsEnvHasAnyWorkerThenStops) {
  int executed = Launch("w1");
  ReadyToFork(1);
  int forked = Launch("w2");
  ASSERT_TRUE(inner_.Exit(forked, 0));
  timers_.Advance(milliseconds(5000));
  EXPECT_FALSE(TemplateStopped()) << "w1 still uses the env";
  ASSERT_TRUE(inner_.Exit(executed, 0));
  EXPECT_EQ(exits_, 2);
  timers_.Advance(milliseconds(999));
  EXPECT_FALSE(TemplateStopped());
  timers_.Advance(milliseconds(1));
  EXPECT_TRUE(TemplateStopped());
}

TEST_F(ForkingLauncherTest, TemplateOfAnEnvThatOnlyHadExecutedWorkersStops) {
  int pid = Launch("w1");
  ASSERT_TRUE(inner_.Exit(pid, 0));
  timers_.Advance(milliseconds(1000));
  EXPECT_TRUE(TemplateStopped());
}

TEST_F(ForkingLauncherTest, ANewWorkerCancelsTheIdleStop) {
  int pid = Launch("w1");
  ASSERT_TRUE(inner_.Exit(pid, 0));
  timers_.Advance(milliseconds(500));
  Launch("w2");
  timers_.Advance(milliseconds(5000));
  EXPECT_FALSE(TemplateStopped());
}

}  // namespace
}  // namespace gsk::process
