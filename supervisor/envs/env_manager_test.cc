// The build queue stepped with fakes: a FakeProcessLauncher stands for venv, pip and the import
// check, FakeTimers for the deadline and the event-loop turns; the store is a real SQLite file.
#include "supervisor/envs/env_manager.h"

#include <unistd.h>

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/fake_clock.h"
#include "base/fake_timers.h"
#include "supervisor/process/fake_process_launcher.h"

namespace gsk::envs {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using std::chrono::milliseconds;

const std::string kHashA(64, 'a');
const std::string kHashB(64, 'b');

class EnvManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gsk-envs-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    store_ = std::move(store::Store::Open(dir_ / "supervisor.db")).value();
    std::ofstream(dir_ / "shim.whl") << "wheel";
    Make();
  }
  void TearDown() override {
    manager_.reset();
    runner_.reset();
    fs::remove_all(dir_);
  }

  EnvOptions Options() {
    EnvOptions o;
    o.envs_dir = dir_ / "envs";
    o.logs_dir = dir_ / "logs";
    o.scratch_dir = dir_ / "tmp";
    o.shim_wheel = dir_ / "shim.whl";
    o.limits.timeout_seconds = 60;
    o.limits.max_concurrent = max_concurrent_;
    o.limits.disk_budget_mb = budget_mb_;
    python::Interpreter py;
    py.version = "3.11.2";
    py.minor = "3.11";
    py.path = "/usr/bin/python3.11";
    py.pip_wheel = "/usr/share/python-wheels/pip.whl";
    py.has_venv = true;
    o.interpreters = {py};
    return o;
  }

  void Make() {
    manager_.reset();
    runner_ = std::make_unique<BuildRunner>(launcher_, timers_, RunnerOptions{});
    manager_ = std::make_unique<EnvManager>(*store_, *runner_, timers_, clock_, Options());
    ASSERT_TRUE(manager_->Recover().ok());
    manager_->SetOnChange([this](const std::string& hash) { changes_.push_back(hash); });
  }

  // A kernel row that refers to `hash`, so that the env is in use.
  void UseEnv(const std::string& name, const std::string& hash) {
    store::KernelRow k;
    k.name = name;
    k.type = "PROCESS";
    k.spec_json = "{}";
    k.env_hash = hash;
    ASSERT_TRUE(store_->InsertKernel(k, {0, 1, "kernel.created", "kernel/" + name, "t", "{}"}).ok());
  }
  void StopUsing(const std::string& name) {
    ASSERT_TRUE(store_->DeleteKernel(name, {0, 1, "kernel.deleted", "kernel/" + name, "t", "{}"})
                    .ok());
  }

  static EnvRequest Request(const std::string& hash, const std::string& minor = "3.11") {
    return {hash, minor, {"gsk-alpha==1.0"}};
  }

  // The pid of the latest launch, after checking it runs `want` (a word of its argv).
  int LatestLaunch(const std::string& want) {
    const auto& launches = launcher_.launches();
    EXPECT_FALSE(launches.empty());
    if (launches.empty()) return 0;
    std::string argv;
    for (const auto& a : launches.back().spec.argv) argv += a + " ";
    EXPECT_THAT(argv, HasSubstr(want));
    return launches.back().handle.pid();
  }

  // Runs the three steps of the current build to success.
  void Succeed(const std::string& hash) {
    int venv = LatestLaunch("venv");
    fs::create_directories(manager_->EnvPath(hash));  // what `python -m venv` would make
    std::ofstream(manager_->EnvPath(hash) / "lib.py") << std::string(1000, 'x');
    launcher_.Exit(venv, 0);
    launcher_.Exit(LatestLaunch("install"), 0);
    launcher_.Exit(LatestLaunch("write-packages"), 0);
    timers_.Advance(milliseconds(0));
  }

  EnvStatus StatusOf(const std::string& hash) { return manager_->State(hash).status; }

  std::vector<std::string> EventKinds() {
    std::vector<std::string> kinds;
    std::vector<store::Event> events = store_->ListEvents({}).value();
    for (const auto& e : events) {
      if (e.subject.rfind("env/", 0) == 0) kinds.push_back(e.kind);
    }
    return kinds;
  }

  fs::path dir_;
  int max_concurrent_ = 2;
  int64_t budget_mb_ = 1024;
  FakeClock clock_;
  FakeTimers timers_{clock_};
  process::FakeProcessLauncher launcher_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<BuildRunner> runner_;
  std::unique_ptr<EnvManager> manager_;
  std::vector<std::string> changes_;
};

TEST_F(EnvManagerTest, BuildsThroughItsThreeStepsThenIsReadyAndCached) {
  UseEnv("k", kHashA);
  manager_->Ensure(Request(kHashA), true);
  EXPECT_EQ(StatusOf(kHashA), EnvStatus::kBuilding);
  EXPECT_EQ(store_->GetEnv(kHashA).value()->status, "building");
  int venv = LatestLaunch("--without-pip");
  fs::create_directories(manager_->EnvPath(kHashA));
  launcher_.Exit(venv, 0);
  int pip = LatestLaunch("install");
  launcher_.Output(pip, "Collecting gsk-alpha==1.0");
  EXPECT_EQ(manager_->State(kHashA).progress->phase, "resolving");
  EXPECT_EQ(manager_->State(kHashA).progress->current, "gsk-alpha==1.0");
  launcher_.Exit(pip, 0);
  launcher_.Exit(LatestLaunch("giskard_worker_shim"), 0);
  EXPECT_EQ(StatusOf(kHashA), EnvStatus::kReady);
  EXPECT_TRUE(changes_.empty());  // never inside the call that caused it
  timers_.Advance(milliseconds(0));
  EXPECT_EQ(changes_, std::vector<std::string>{kHashA});
  EXPECT_TRUE(fs::exists(manager_->EnvPath(kHashA) / ".gsk-env.json"));
  EXPECT_EQ(store_->GetEnv(kHashA).value()->status, "ready");
  EXPECT_THAT(EventKinds(), ::testing::ElementsAre("env.queued", "env.build_started", "env.ready"));
  // Asked again: ready at once, no process.
  size_t launches = launcher_.launches().size();
  manager_->Ensure(Request(kHashA), true);
  EXPECT_EQ(StatusOf(kHashA), EnvStatus::kReady);
  EXPECT_EQ(launcher_.launches().size(), launches);
}

TEST_F(EnvManagerTest, RequestsForTheSameEnvJoinOneBuild) {
  manager_->Ensure(Request(kHashA), true);
  manager_->Ensure(Request(kHashA), true);
  EXPECT_EQ(launcher_.launches().size(), 1u);
}

TEST_F(EnvManagerTest, RunsAtMostMaxConcurrentBuildsAndStartsTheNextOnAFinish) {
  max_concurrent_ = 1;
  Make();
  UseEnv("a", kHashA);
  UseEnv("b", kHashB);
  manager_->Ensure(Request(kHashA), true);
  manager_->Ensure(Request(kHashB), true);
  EXPECT_EQ(StatusOf(kHashA), EnvStatus::kBuilding);
  EXPECT_EQ(StatusOf(kHashB), EnvStatus::kPending);
  EXPECT_EQ(manager_->State(kHashB).progress->phase, "queued");
  EXPECT_EQ(store_->GetEnv(kHashB).value()->status, "pending");
  EXPECT_EQ(launcher_.launches().size(), 1u);
  Succeed(kHashA);
  EXPECT_EQ(StatusOf(kHashB), EnvStatus::kBuilding);
  EXPECT_EQ(manager_->running_builds(), 1);
}

TEST_F(EnvManagerTest, AFailedStepFailsWithPipsReasonAndIsRetriedOnlyWhenAsked) {
  UseEnv("k", kHashA);
  manager_->Ensure(Request(kHashA), true);
  launcher_.Exit(LatestLaunch("venv"), 0);
  int pip = LatestLaunch("install");
  launcher_.Output(pip, "ERROR: No matching distribution found for gsk-alpha==1.0");
  launcher_.Exit(pip, 1);
  EnvState state = manager_->State(kHashA);
  EXPECT_EQ(state.status, EnvStatus::kFailed);
  EXPECT_EQ(state.last_error, "No matching distribution found for gsk-alpha==1.0");
  EXPECT_FALSE(fs::exists(manager_->EnvPath(kHashA)));
  size_t launches = launcher_.launches().size();
  manager_->Ensure(Request(kHashA), /*retry_failed=*/false);
  EXPECT_EQ(StatusOf(kHashA), EnvStatus::kFailed);
  EXPECT_EQ(launcher_.launches().size(), launches);
  manager_->Ensure(Request(kHashA), /*retry_failed=*/true);
  EXPECT_EQ(StatusOf(kHashA), EnvStatus::kBuilding);
  EXPECT_EQ(store_->GetEnv(kHashA).value()->attempts, 2);
}

TEST_F(EnvManagerTest, ABuildPastItsDeadlineIsKilledAndFails) {
  UseEnv("k", kHashA);
  manager_->Ensure(Request(kHashA), true);
  int venv = LatestLaunch("venv");
  timers_.Advance(std::chrono::seconds(59));
  EXPECT_TRUE(launcher_.stops().empty());
  timers_.Advance(std::chrono::seconds(1));
  ASSERT_EQ(launcher_.stops().size(), 1u);
  EXPECT_EQ(launcher_.stops()[0].pid, venv);
  EXPECT_FALSE(launcher_.stops()[0].grace.has_value());  // SIGKILL
  launcher_.ExitBySignal(venv, 9);
  EXPECT_EQ(StatusOf(kHashA), EnvStatus::kFailed);
  EXPECT_THAT(manager_->State(kHashA).last_error, HasSubstr("longer than 60 s"));
}

TEST_F(EnvManagerTest, ReleaseCancelsRunningAndQueuedBuildsThatNoKernelNeeds) {
  max_concurrent_ = 1;
  Make();
  manager_->Ensure(Request(kHashA), true);
  manager_->Ensure(Request(kHashB), true);
  manager_->Release(kHashB);  // queued: gone at once
  EXPECT_FALSE(store_->GetEnv(kHashB).value().has_value());
  int venv = LatestLaunch("venv");
  manager_->Release(kHashA);  // running: killed, then forgotten
  ASSERT_EQ(launcher_.stops().size(), 1u);
  EXPECT_TRUE(store_->GetEnv(kHashA).value().has_value());
  launcher_.ExitBySignal(venv, 9);
  EXPECT_FALSE(store_->GetEnv(kHashA).value().has_value());
  EXPECT_EQ(manager_->running_builds(), 0);
  EXPECT_THAT(EventKinds(), ::testing::Contains("env.cancelled"));
}

TEST_F(EnvManagerTest, ReleaseKeepsABuildAKernelStillNeeds) {
  UseEnv("k", kHashA);
  manager_->Ensure(Request(kHashA), true);
  manager_->Release(kHashA);
  EXPECT_TRUE(launcher_.stops().empty());
  EXPECT_EQ(StatusOf(kHashA), EnvStatus::kBuilding);
}

TEST_F(EnvManagerTest, RebuildIsRefusedWhileBuildingAndStartsAfreshOtherwise) {
  UseEnv("k", kHashA);
  manager_->Ensure(Request(kHashA), true);
  EXPECT_EQ(manager_->Rebuild(Request(kHashA)).code(), StatusCode::kFailedPrecondition);
  Succeed(kHashA);
  changes_.clear();
  ASSERT_TRUE(manager_->Rebuild(Request(kHashA)).ok());
  EXPECT_EQ(StatusOf(kHashA), EnvStatus::kBuilding);
  EXPECT_FALSE(fs::exists(manager_->EnvPath(kHashA) / ".gsk-env.json"));
  timers_.Advance(milliseconds(0));
  EXPECT_EQ(changes_, std::vector<std::string>{kHashA});  // its kernels stop being ready
}

TEST_F(EnvManagerTest, MissingShimWheelOrInterpreterFailsWithWhatToDo) {
  UseEnv("k", kHashA);
  manager_->Ensure(Request(kHashA, "3.99"), true);
  EXPECT_EQ(StatusOf(kHashA), EnvStatus::kFailed);
  EXPECT_THAT(manager_->State(kHashA).last_error, HasSubstr("\"3.99\" is not available"));
  fs::remove(dir_ / "shim.whl");
  UseEnv("k2", kHashB);
  manager_->Ensure(Request(kHashB), true);
  EXPECT_THAT(manager_->State(kHashB).last_error, HasSubstr("worker-shim wheel is missing"));
  EXPECT_TRUE(launcher_.launches().empty());
}

TEST_F(EnvManagerTest, ALaunchFailureIsReportedOnALaterTurn) {
  UseEnv("k", kHashA);
  launcher_.FailNextLaunch(NotFound("no such interpreter"));
  manager_->Ensure(Request(kHashA), true);
  EXPECT_EQ(StatusOf(kHashA), EnvStatus::kBuilding);
  timers_.Advance(milliseconds(0));
  EXPECT_EQ(StatusOf(kHashA), EnvStatus::kFailed);
  EXPECT_THAT(manager_->State(kHashA).last_error, HasSubstr("no such interpreter"));
}

TEST_F(EnvManagerTest, ABuildThatCannotFitTheDiskBudgetFailsWithTheNumbers) {
  budget_mb_ = 1;
  Make();
  store::EnvRow big;
  big.hash = kHashB;
  big.python_version = "3.11";
  big.path = manager_->EnvPath(kHashB).string();
  big.status = "ready";
  big.size_bytes = 2 << 20;
  ASSERT_TRUE(store_->PutEnv(big, {0, 1, "env.ready", "env/b", "t", "{}"}).ok());
  UseEnv("big", kHashB);
  UseEnv("k", kHashA);
  Make();  // reload the envs table
  manager_->Ensure(Request(kHashA), true);
  EXPECT_EQ(StatusOf(kHashA), EnvStatus::kFailed);
  EXPECT_THAT(manager_->State(kHashA).last_error, HasSubstr("disk budget of 1 MiB"));
}

TEST_F(EnvManagerTest, GarbageCollectionDeletesUnusedEnvsLeastRecentlyUsedFirst) {
  budget_mb_ = 1;
  Make();
  for (const std::string& hash : {kHashA, kHashB}) {
    UseEnv("k" + hash.substr(0, 1), hash);
    manager_->Ensure(Request(hash), true);
    Succeed(hash);
    std::ofstream(manager_->EnvPath(hash) / "big") << std::string(600 << 10, 'x');
    clock_.Advance(1000);
  }
  ASSERT_EQ(StatusOf(kHashA), EnvStatus::kReady);
  // Both in use: nothing collected even though the real sizes are over the budget.
  manager_->CollectGarbage();
  EXPECT_TRUE(fs::exists(manager_->EnvPath(kHashA)));
  StopUsing("ka");
  StopUsing("kb");
  manager_->Release(kHashA);
  clock_.Advance(1000);
  manager_->Release(kHashB);
  // Sizes as recorded at build time are small; make them count.
  for (const std::string& hash : {kHashA, kHashB}) {
    store::EnvRow row = store_->GetEnv(hash).value().value();
    row.size_bytes = 700 << 10;
    ASSERT_TRUE(store_->PutEnv(row, {0, 1, "env.ready", "env/x", "t", "{}"}).ok());
  }
  Make();
  manager_->CollectGarbage();
  EXPECT_FALSE(store_->GetEnv(kHashA).value().has_value());  // the least recently used
  EXPECT_FALSE(fs::exists(manager_->EnvPath(kHashA)));
  EXPECT_TRUE(store_->GetEnv(kHashB).value().has_value());
}

TEST_F(EnvManagerTest, RecoverRemovesWhatAnInterruptedBuildLeft) {
  UseEnv("k", kHashA);
  manager_->Ensure(Request(kHashA), true);
  fs::create_directories(manager_->EnvPath(kHashA) / "lib");
  fs::create_directories(dir_ / "envs" / "stranger");
  manager_->Ensure(Request(kHashB), true);  // no kernel uses it
  // The supervisor dies here; a new one starts.
  runner_->Abandon();
  Make();
  EXPECT_FALSE(fs::exists(manager_->EnvPath(kHashA)));
  EXPECT_FALSE(fs::exists(dir_ / "envs" / "stranger"));
  EXPECT_TRUE(store_->GetEnv(kHashA).value().has_value());   // a kernel still needs it
  EXPECT_FALSE(store_->GetEnv(kHashB).value().has_value());  // nobody does
  EXPECT_EQ(StatusOf(kHashA), EnvStatus::kPending);
  manager_->Ensure(Request(kHashA), false);
  EXPECT_EQ(StatusOf(kHashA), EnvStatus::kBuilding);
}

}  // namespace
}  // namespace gsk::envs
