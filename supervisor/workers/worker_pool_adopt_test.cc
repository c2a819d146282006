// WorkerPool: adopting the workers of a previous supervisor, deleting and replacing a worker,
// and per-worker working directories.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "supervisor/workers/worker_pool_test_fixture.h"
#include "base/crypto.h"

namespace gsk::workers {
namespace {

using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class WorkerPoolAdoptTest : public WorkerPoolTest {
 protected:
  // A record as the store keeps it, for a process the fake launcher knows as foreign.
  AdoptRecord Record(const std::string& id, int pid, WorkerState state, bool alive = true) {
    AdoptRecord r;
    r.id = id;
    r.kernel = "k";
    r.state = state;
    r.pid = pid;
    r.process_start_ticks = 777;
    r.token_hash = HexEncode(Sha256("token-" + id));
    r.restarts = 2;
    r.python_version = "3.11.2";
    r.started_at_ms = clock_.NowUnixMillis() - 60'000;
    r.log_file = "/var/log/giskard/workers/" + id + ".log";
    if (alive) launcher_.AddForeign(pid, 777);
    return r;
  }
  Registration Hello(const std::string& id, int pid) {
    Registration r;
    r.worker_id = id;
    r.token = "token-" + id;
    r.pid = pid;
    r.process_start_ticks = 777;
    r.python_version = "3.11.2";
    return r;
  }
};

TEST_F(WorkerPoolAdoptTest, AnAdoptedRunningWorkerReconnectsAndIsCountedSoNoDuplicateStarts) {
  ASSERT_TRUE(pool_->Adopt(Record("k-a", 500, WorkerState::kRunning)).ok());
  WorkerInfo w = Info("k-a");
  EXPECT_EQ(w.state, WorkerState::kRunning);
  EXPECT_FALSE(w.connected);
  EXPECT_EQ(w.pid, 500);
  EXPECT_EQ(w.restarts, 2);
  ASSERT_TRUE(pool_->SetWanted("k", 1, Template()).ok());
  ASSERT_EQ(launcher_.launches().size(), 1u) << "an adopted worker counts towards the wanted number";
  EXPECT_TRUE(launcher_.launches()[0].adopted);
  EXPECT_EQ(launcher_.launches()[0].spec.log_file, "/var/log/giskard/workers/k-a.log");
  ASSERT_TRUE(pool_->OnRegistered(Hello("k-a", 500)).ok());
  EXPECT_TRUE(Info("k-a").connected);
  EXPECT_EQ(timers_.pending(), 0u);  // the reconnect deadline was cancelled
  // A replay of the same hello while connected is refused.
  EXPECT_EQ(pool_->OnRegistered(Hello("k-a", 500)).code(), StatusCode::kFailedPrecondition);
}

TEST_F(WorkerPoolAdoptTest, TheTokenAndTheProcessIdentityAreChecked) {
  ASSERT_TRUE(pool_->Adopt(Record("k-a", 500, WorkerState::kRunning)).ok());
  Registration wrong = Hello("k-a", 500);
  wrong.token = "token-other";
  EXPECT_EQ(pool_->OnRegistered(wrong).code(), StatusCode::kUnauthenticated);
  Registration reused = Hello("k-a", 500);
  reused.process_start_ticks = 778;  // same pid, another process
  EXPECT_EQ(pool_->OnRegistered(reused).code(), StatusCode::kUnauthenticated);
  EXPECT_FALSE(Info("k-a").connected);
}

TEST_F(WorkerPoolAdoptTest, AnAdoptedWorkerThatNeverReconnectsIsKilledAtTheDeadline) {
  ASSERT_TRUE(pool_->Adopt(Record("k-a", 500, WorkerState::kRunning)).ok());
  timers_.Advance(seconds(59));
  EXPECT_TRUE(launcher_.stops().empty());
  timers_.Advance(seconds(1));
  ASSERT_EQ(launcher_.stops().size(), 1u);
  EXPECT_EQ(launcher_.stops()[0].pid, 500);
  EXPECT_THAT(Info("k-a").last_error, HasSubstr("did not reconnect"));
}

TEST_F(WorkerPoolAdoptTest, AGoneProcessIsForgottenAndItsKernelGetsANewWorker) {
  EXPECT_EQ(pool_->Adopt(Record("k-gone", 501, WorkerState::kRunning, /*alive=*/false)).code(),
            StatusCode::kNotFound);
  EXPECT_FALSE(pool_->Get("k-gone").has_value());
  EXPECT_THAT(observer_.removed, ElementsAre("k-gone"));
  ASSERT_TRUE(pool_->SetWanted("k", 1, Template()).ok());
  ASSERT_EQ(launcher_.launches().size(), 1u);
  EXPECT_FALSE(launcher_.launches()[0].adopted);
}

TEST_F(WorkerPoolAdoptTest, AnAdoptedStartingWorkerGetsARegistrationDeadline) {
  ASSERT_TRUE(pool_->Adopt(Record("k-s", 502, WorkerState::kStarting)).ok());
  EXPECT_EQ(State("k-s"), "starting");
  ASSERT_TRUE(pool_->OnRegistered(Hello("k-s", 502)).ok());
  EXPECT_EQ(State("k-s"), "running");
}

TEST_F(WorkerPoolAdoptTest, AnAdoptedStoppingWorkerIsStoppedThenForgotten) {
  ASSERT_TRUE(pool_->Adopt(Record("k-t", 503, WorkerState::kStopping)).ok());
  ASSERT_EQ(launcher_.stops().size(), 1u);
  EXPECT_TRUE(launcher_.stops()[0].grace.has_value());  // SIGTERM first
  ASSERT_TRUE(launcher_.ExitBySignal(503, 15));
  EXPECT_FALSE(pool_->Get("k-t").has_value());
  EXPECT_THAT(observer_.removed, ElementsAre("k-t"));
}

TEST_F(WorkerPoolAdoptTest, AnAdoptedWorkerThatExitsIsRestartedLikeAnyOther) {
  ASSERT_TRUE(pool_->Adopt(Record("k-a", 500, WorkerState::kRunning)).ok());
  ASSERT_TRUE(pool_->SetWanted("k", 1, Template()).ok());
  ASSERT_TRUE(pool_->OnRegistered(Hello("k-a", 500)).ok());
  ASSERT_TRUE(launcher_.Exit(500, -1));  // not our child: status unknown
  WorkerInfo w = Info("k-a");
  EXPECT_EQ(w.state, WorkerState::kStarting);  // ran 60 s: not an early exit
  EXPECT_EQ(w.restarts, 3);
  EXPECT_NE(w.pid, 500);
}

TEST_F(WorkerPoolAdoptTest, DeleteStopsForgetsAndReplacesTheWorker) {
  std::string id = RunningWorker();
  int pid = Info(id).pid;
  ASSERT_TRUE(pool_->Delete(id).ok());
  EXPECT_EQ(State(id), "stopping");
  ASSERT_TRUE(launcher_.Exit(pid, 0));
  EXPECT_FALSE(pool_->Get(id).has_value());
  std::vector<WorkerInfo> left = pool_->List("k");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_NE(left[0].id, id);
  EXPECT_EQ(left[0].state, WorkerState::kStarting);
  EXPECT_EQ(pool_->Delete("nope").code(), StatusCode::kNotFound);
}

TEST_F(WorkerPoolAdoptTest, ScalingDownDoesNotReplace) {
  std::string a = RunningWorker();
  std::string b = RunningWorker();
  ASSERT_TRUE(pool_->SetWanted("k", 1, Template()).ok());
  ASSERT_TRUE(launcher_.Exit(Info(b).pid, 0));
  EXPECT_EQ(pool_->List("k").size(), 1u);
  EXPECT_EQ(pool_->List("k")[0].id, a);
}

TEST_F(WorkerPoolAdoptTest, EachWorkerGetsItsOwnWorkingDirectory) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("gsk-cwd-" + std::to_string(::getpid()));
  LaunchTemplate t = Template();
  t.cwd = root;
  t.cwd_per_worker = true;
  t.env.erase("HOME");
  ASSERT_TRUE(pool_->SetWanted("k", 2, t).ok());
  ASSERT_EQ(launcher_.launches().size(), 2u);
  fs::path first = launcher_.launches()[0].spec.cwd;
  fs::path second = launcher_.launches()[1].spec.cwd;
  EXPECT_NE(first, second);
  EXPECT_EQ(first.parent_path(), root);
  EXPECT_TRUE(fs::is_directory(first));
  EXPECT_EQ(fs::status(first).permissions() & fs::perms::all, fs::perms::owner_all);
  EXPECT_EQ(launcher_.launches()[0].spec.env.at("HOME"), first.string());
  fs::remove_all(root);
}

TEST_F(WorkerPoolAdoptTest, ABurstIsLaunchedOnePerTurnAndCanBeStoppedBeforeItsLaunch) {
  WorkerPoolOptions o = Options();
  o.launch_one_per_turn = true;
  int ids = 0;
  o.new_worker_id = [&ids](const std::string& kernel) { return kernel + "-" + std::to_string(++ids); };
  WorkerPool pool(launcher_, timers_, clock_, observer_, o);
  ASSERT_TRUE(pool.SetWanted("k", 3, Template()).ok());
  EXPECT_TRUE(launcher_.launches().empty());
  EXPECT_EQ(pool.Get("k-1")->state, WorkerState::kStarting);  // queued, shown as starting
  EXPECT_EQ(pool.Get("k-1")->pid, 0);
  ASSERT_TRUE(pool.Stop("k-3").ok());  // stopped while still queued: never launched
  EXPECT_EQ(pool.Get("k-3")->state, WorkerState::kStopped);
  // FakeTimers runs the chained 0 ms timers in one Advance; asio runs one per turn.
  timers_.Advance(std::chrono::milliseconds(0));
  EXPECT_EQ(launcher_.launches().size(), 2u);
  EXPECT_THAT(observer_.Path("k-2"), ElementsAre("stopped->starting"));
  EXPECT_THAT(observer_.Path("k-3"), ElementsAre("starting->stopped"));
  bool done = false;
  pool.StopAll([&done] { done = true; });
  EXPECT_FALSE(done);
  for (int pid : launcher_.RunningPids()) launcher_.Exit(pid, 0);
  EXPECT_TRUE(done);
}

}  // namespace
}  // namespace gsk::workers
