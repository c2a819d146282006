#include "supervisor/process/fake_process_launcher.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <string>
#include <vector>

namespace gsk::process {
namespace {

using std::chrono::milliseconds;

ProcessSpec Spec(std::string program) {
  ProcessSpec spec;
  spec.argv = {std::move(program), "--flag"};
  spec.env = {{"HOME", "/nonexistent"}};
  return spec;
}

TEST(FakeProcessLauncherTest, RecordsLaunchesWithDistinctPids) {
  FakeProcessLauncher fake;
  auto a = fake.Launch(Spec("/bin/a"), nullptr);
  ProcessSpec no_group = Spec("/bin/b");
  no_group.new_process_group = false;
  auto b = fake.Launch(std::move(no_group), nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->pid(), b->pid());
  EXPECT_NE(a->id(), b->id());
  EXPECT_EQ(a->pgid(), a->pid());
  EXPECT_EQ(b->pgid(), 0);
  ASSERT_EQ(fake.launches().size(), 2u);
  EXPECT_EQ(fake.launches()[0].spec.argv, (std::vector<std::string>{"/bin/a", "--flag"}));
  EXPECT_EQ(fake.RunningPids(), (std::vector<int>{a->pid(), b->pid()}));
}

TEST(FakeProcessLauncherTest, ExitCallsOnExitOnce) {
  FakeProcessLauncher fake;
  std::vector<ExitInfo> exits;
  auto handle = fake.Launch(Spec("/bin/a"), [&](const ExitInfo& e) { exits.push_back(e); });
  ASSERT_TRUE(handle.ok());
  EXPECT_TRUE(exits.empty());
  EXPECT_TRUE(fake.Exit(handle->pid(), 3));
  EXPECT_FALSE(fake.Exit(handle->pid(), 4));
  EXPECT_FALSE(fake.ExitBySignal(handle->pid(), SIGKILL));
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].pid, handle->pid());
  EXPECT_FALSE(exits[0].signaled);
  EXPECT_EQ(exits[0].code_or_signal, 3);
  EXPECT_FALSE(fake.IsRunning(handle->pid()));
}

TEST(FakeProcessLauncherTest, OutputGoesToOnOutputWhileRunning) {
  FakeProcessLauncher fake;
  std::vector<std::string> lines;
  ProcessSpec spec = Spec("/bin/pip");
  spec.on_output = [&](std::string_view line) { lines.emplace_back(line); };
  auto handle = fake.Launch(std::move(spec), nullptr);
  ASSERT_TRUE(handle.ok());
  EXPECT_TRUE(fake.Output(handle->pid(), "Collecting numpy"));
  EXPECT_TRUE(fake.ExitBySignal(handle->pid(), SIGTERM));
  EXPECT_FALSE(fake.Output(handle->pid(), "late"));
  EXPECT_EQ(lines, (std::vector<std::string>{"Collecting numpy"}));
}

TEST(FakeProcessLauncherTest, StopAndKillAreRecordedOnlyForRunningProcesses) {
  FakeProcessLauncher fake;
  auto handle = fake.Launch(Spec("/bin/worker"), nullptr);
  ASSERT_TRUE(handle.ok());
  fake.Stop(*handle, milliseconds(5000));
  fake.Kill(*handle);
  EXPECT_TRUE(fake.IsRunning(handle->pid()));  // the test decides when it exits
  ASSERT_EQ(fake.stops().size(), 2u);
  EXPECT_EQ(fake.stops()[0].pid, handle->pid());
  EXPECT_EQ(fake.stops()[0].grace, milliseconds(5000));
  EXPECT_FALSE(fake.stops()[1].grace.has_value());
  ASSERT_TRUE(fake.ExitBySignal(handle->pid(), SIGKILL));
  fake.Stop(*handle, milliseconds(1));
  EXPECT_EQ(fake.stops().size(), 2u);
}

TEST(FakeProcessLauncherTest, FailNextLaunchFailsOnce) {
  FakeProcessLauncher fake;
  fake.FailNextLaunch(NotFound("no python3.13"));
  auto failed = fake.Launch(Spec("/bin/a"), nullptr);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(fake.launches().empty());
  EXPECT_TRUE(fake.Launch(Spec("/bin/a"), nullptr).ok());
}

TEST(FakeProcessLauncherTest, OnExitMayRelaunch) {
  FakeProcessLauncher fake;
  int restarts = 0;
  std::function<void(const ExitInfo&)> restart = [&](const ExitInfo&) {
    if (++restarts < 3) {
      ASSERT_TRUE(fake.Launch(Spec("/bin/worker"), restart).ok());
    }
  };
  auto first = fake.Launch(Spec("/bin/worker"), restart);
  ASSERT_TRUE(first.ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(fake.Exit(fake.RunningPids().at(0), 1));
  EXPECT_EQ(restarts, 3);
  EXPECT_EQ(fake.launches().size(), 3u);
  EXPECT_TRUE(fake.RunningPids().empty());
}

}  // namespace
}  // namespace gsk::process
