// WorkerPool: stop, restart, scaling down, StopAll and reconnection.
#include <chrono>
#include <string>

#include "supervisor/workers/worker_pool_test_fixture.h"

namespace gsk::workers {
namespace {

using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST_F(WorkerPoolTest, StopSendsSigtermWithTheGraceAndEndsStopped) {
  std::string id = RunningWorker();
  int pid = Info(id).pid;
  ASSERT_TRUE(pool_->Stop(id).ok());
  ASSERT_EQ(launcher_.stops().size(), 1u);
  EXPECT_EQ(launcher_.stops()[0].pid, pid);
  EXPECT_EQ(launcher_.stops()[0].grace, std::chrono::milliseconds(10'000));
  EXPECT_EQ(State(id), "stopping");
  ASSERT_TRUE(pool_->Stop(id).ok());  // again: nothing more is sent
  EXPECT_EQ(launcher_.stops().size(), 1u);

  ASSERT_TRUE(launcher_.ExitBySignal(pid, 9));  // the launcher escalated after the grace
  WorkerInfo w = Info(id);
  EXPECT_EQ(w.state, WorkerState::kStopped);
  EXPECT_EQ(w.exit_description, "killed by signal 9 (SIGKILL)");
  EXPECT_EQ(w.pid, 0);
  EXPECT_THAT(observer_.transitions.back().reason, HasSubstr("killed by signal 9"));
  timers_.Advance(seconds(3600));
  EXPECT_EQ(launcher_.launches().size(), 1u);  // a stopped worker stays stopped
  EXPECT_TRUE(pool_->Stop(id).ok());
  EXPECT_THAT(observer_.Path(id), ElementsAre("stopped->starting", "starting->running",
                                              "running->stopping", "stopping->stopped"));
}

TEST_F(WorkerPoolTest, StopWhileStartingOrInBackoff) {
  ASSERT_TRUE(pool_->SetWanted("k", 2, Template()).ok());
  ASSERT_TRUE(pool_->Stop("k-1").ok());
  EXPECT_EQ(State("k-1"), "stopping");
  ASSERT_TRUE(launcher_.Exit(Info("k-2").pid, 1));
  ASSERT_EQ(State("k-2"), "backoff");
  ASSERT_TRUE(pool_->Stop("k-2").ok());
  EXPECT_EQ(State("k-2"), "stopped");
  ASSERT_TRUE(launcher_.Exit(Info("k-1").pid, 0));
  EXPECT_EQ(State("k-1"), "stopped");
  EXPECT_EQ(timers_.pending(), 0u);
  timers_.Advance(seconds(3600));
  EXPECT_EQ(launcher_.launches().size(), 2u);
}

TEST_F(WorkerPoolTest, RestartStopsThenLaunchesAfresh) {
  std::string id = RunningWorker();
  int pid = Info(id).pid;
  ASSERT_TRUE(pool_->Restart(id).ok());
  EXPECT_EQ(State(id), "stopping");
  ASSERT_EQ(launcher_.stops().size(), 1u);
  ASSERT_TRUE(launcher_.Exit(pid, 0));
  WorkerInfo w = Info(id);
  EXPECT_EQ(w.state, WorkerState::kStarting);
  EXPECT_EQ(w.restarts, 1);
  EXPECT_NE(w.pid, pid);
  EXPECT_THAT(observer_.Path(id),
              ElementsAre("stopped->starting", "starting->running", "running->stopping",
                          "stopping->stopped", "stopped->starting"));
}

TEST_F(WorkerPoolTest, RestartOfAFatalWorkerGivesItItsRetriesBack) {
  ASSERT_TRUE(pool_->SetWanted("k", 1, Template()).ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(launcher_.Exit(LastPid(), 3));
    if (timers_.NextDelay()) timers_.Advance(*timers_.NextDelay());
  }
  ASSERT_EQ(State("k-1"), "fatal");
  ASSERT_EQ(launcher_.launches().size(), 5u);
  ASSERT_TRUE(pool_->Restart("k-1").ok());
  WorkerInfo w = Info("k-1");
  EXPECT_EQ(w.state, WorkerState::kStarting);
  EXPECT_EQ(w.quick_failures, 0);
  EXPECT_EQ(w.restarts, 5);
  EXPECT_EQ(launcher_.launches().size(), 6u);
  ASSERT_TRUE(launcher_.Exit(LastPid(), 3));
  EXPECT_EQ(State("k-1"), "backoff");  // counting from one again
  EXPECT_EQ(timers_.NextDelay(), std::chrono::milliseconds(1000));
}

TEST_F(WorkerPoolTest, ScalingDownStopsTheNewestWorkersAndForgetsThem) {
  ASSERT_TRUE(pool_->SetWanted("k", 3, Template()).ok());
  ASSERT_TRUE(Register("k-1").ok());
  ASSERT_TRUE(Register("k-3").ok());
  ASSERT_TRUE(launcher_.Exit(Info("k-2").pid, 1));  // k-2 in backoff, no process
  int pid3 = Info("k-3").pid;

  ASSERT_TRUE(pool_->SetWanted("k", 1, Template()).ok());
  EXPECT_EQ(pool_->Wanted("k"), 1);
  EXPECT_THAT(observer_.removed, ElementsAre("k-2"));  // nothing to wait for
  EXPECT_EQ(State("k-3"), "stopping");
  ASSERT_EQ(launcher_.stops().size(), 1u);
  EXPECT_EQ(launcher_.stops()[0].pid, pid3);
  EXPECT_EQ(launcher_.stops()[0].grace, std::chrono::milliseconds(10'000));
  EXPECT_EQ(pool_->Restart("k-3").code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(pool_->SetWanted("k", 1, Template()).ok());  // idempotent
  EXPECT_EQ(launcher_.stops().size(), 1u);

  ASSERT_TRUE(launcher_.ExitBySignal(pid3, 15));
  EXPECT_THAT(observer_.removed, ElementsAre("k-2", "k-3"));
  std::vector<WorkerInfo> left = pool_->List("k");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].id, "k-1");
  EXPECT_EQ(left[0].state, WorkerState::kRunning);
  EXPECT_EQ(timers_.pending(), 0u);

  ASSERT_TRUE(pool_->SetWanted("k", 2, Template()).ok());  // scaling up again: a new worker
  EXPECT_EQ(State("k-4"), "starting");
}

TEST_F(WorkerPoolTest, StopAllCallsOnDoneOnceEveryWorkerIsStopped) {
  std::string running = RunningWorker();
  ASSERT_TRUE(pool_->SetWanted("k", 4, Template()).ok());  // k-2, k-3, k-4 starting
  ASSERT_TRUE(launcher_.Exit(Info("k-3").pid, 1));         // k-3 in backoff
  ASSERT_TRUE(pool_->SetWanted("j", 1, Template()).ok());  // j-5 starting
  ASSERT_TRUE(pool_->Stop("k-4").ok());                    // k-4 already stopping
  int stopping_pid = Info("k-4").pid;

  int done = 0;
  pool_->StopAll([&] { ++done; });
  EXPECT_EQ(done, 0);
  EXPECT_EQ(State(running), "stopping");
  EXPECT_EQ(State("k-2"), "stopping");
  EXPECT_EQ(State("k-3"), "stopped");
  EXPECT_EQ(State("j-5"), "stopping");
  EXPECT_EQ(pool_->SetWanted("k", 9, Template()).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(pool_->Restart("k-3").code(), StatusCode::kFailedPrecondition);

  ASSERT_TRUE(launcher_.Exit(Info(running).pid, 0));
  ASSERT_TRUE(launcher_.Exit(Info("k-2").pid, 0));
  ASSERT_TRUE(launcher_.ExitBySignal(Info("j-5").pid, 9));
  EXPECT_EQ(done, 0);
  ASSERT_TRUE(launcher_.Exit(stopping_pid, 0));
  EXPECT_EQ(done, 1);
  EXPECT_THAT(launcher_.RunningPids(), IsEmpty());
  for (const WorkerInfo& w : pool_->List()) EXPECT_EQ(w.state, WorkerState::kStopped) << w.id;
  EXPECT_EQ(timers_.pending(), 0u);
  timers_.Advance(seconds(3600));
  EXPECT_EQ(done, 1);
  EXPECT_THAT(launcher_.RunningPids(), IsEmpty());
}

TEST_F(WorkerPoolTest, StopAllWithNothingRunningIsDoneAtOnce) {
  int done = 0;
  pool_->StopAll([&] { ++done; });
  EXPECT_EQ(done, 1);
}

TEST_F(WorkerPoolTest, ADisconnectedWorkerMayRegisterAgainBeforeTheDeadline) {
  std::string id = RunningWorker();
  Registration hello = RegistrationOf(id);
  pool_->OnDisconnected(id);
  EXPECT_FALSE(Info(id).connected);
  EXPECT_EQ(State(id), "running");
  timers_.Advance(seconds(59));
  ASSERT_TRUE(pool_->OnRegistered(hello).ok());  // same token, same process: adopted again
  EXPECT_TRUE(Info(id).connected);
  EXPECT_EQ(pool_->OnRegistered(hello).code(), StatusCode::kFailedPrecondition);
  timers_.Advance(seconds(3600));
  EXPECT_TRUE(launcher_.stops().empty());
  EXPECT_THAT(observer_.Path(id), ElementsAre("stopped->starting", "starting->running"));

  pool_->OnDisconnected(id);
  timers_.Advance(seconds(60));
  ASSERT_EQ(launcher_.stops().size(), 1u);
  EXPECT_FALSE(launcher_.stops()[0].grace.has_value());
  EXPECT_THAT(Info(id).last_error, HasSubstr("did not reconnect within 60000 ms"));
  ASSERT_TRUE(launcher_.ExitBySignal(hello.pid, 9));
  EXPECT_EQ(State(id), "starting");  // it had run long enough: restarted at once
}

TEST_F(WorkerPoolTest, LateExitsOfAnEarlierProcessAreIgnoredAfterThePoolIsGone) {
  ASSERT_TRUE(pool_->SetWanted("k", 1, Template()).ok());
  int pid = LastPid();
  pool_.reset();
  EXPECT_EQ(timers_.pending(), 0u);
  EXPECT_TRUE(launcher_.Exit(pid, 1));  // must not touch the destroyed pool
}

}  // namespace
}  // namespace gsk::workers
