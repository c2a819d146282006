// WorkerPool: launch, registration, deadline, backoff and fatal.
#include <chrono>
#include <string>

#include "supervisor/workers/worker_pool_test_fixture.h"
#include "base/crypto.h"

namespace gsk::workers {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST_F(WorkerPoolTest, LaunchThenRegistrationMakesItRunning) {
  ASSERT_TRUE(pool_->SetWanted("k", 1, Template()).ok());
  ASSERT_EQ(launcher_.launches().size(), 1u);
  const process::ProcessSpec& spec = launcher_.launches()[0].spec;
  EXPECT_EQ(spec.argv, Template().argv);
  EXPECT_EQ(spec.cwd, "/var/lib/giskard");
  EXPECT_TRUE(spec.new_process_group);
  EXPECT_EQ(spec.log_file, "/var/log/giskard/workers/k-1.log");
  EXPECT_EQ(spec.env.at("PATH"), "/envs/h1/bin:/usr/bin");
  EXPECT_EQ(spec.env.at("GSK_SUPERVISOR_SOCKET"), "/run/giskard/supervisor.sock");
  EXPECT_EQ(spec.env.at("GSK_WORKER_ID"), "k-1");
  EXPECT_EQ(spec.env.at("GSK_WORKER_TOKEN_FD"), "3");
  EXPECT_EQ(spec.env.count("GSK_WORKER_TOKEN"), 0u);  // never in the environment
  const std::string token = spec.secret.value();
  EXPECT_EQ(token.size(), 64u);

  WorkerInfo starting = Info("k-1");
  EXPECT_EQ(starting.state, WorkerState::kStarting);
  EXPECT_EQ(starting.pid, LastPid());
  EXPECT_EQ(starting.token_hash, HexEncode(Sha256(token)));
  EXPECT_NE(starting.token_hash, token);
  EXPECT_EQ(starting.log_file, "/var/log/giskard/workers/k-1.log");

  clock_.Advance(1234);
  ASSERT_TRUE(Register("k-1").ok());
  WorkerInfo running = Info("k-1");
  EXPECT_EQ(running.state, WorkerState::kRunning);
  EXPECT_TRUE(running.connected);
  EXPECT_EQ(running.python_version, "3.11.2");
  EXPECT_THAT(running.env_json, HasSubstr("3.11.2"));
  EXPECT_EQ(running.started_at_ms, clock_.NowUnixMillis());
  EXPECT_EQ(running.restarts, 0);
  EXPECT_THAT(observer_.Path("k-1"), ElementsAre("stopped->starting", "starting->running"));
  EXPECT_EQ(timers_.pending(), 0u);  // the registration deadline was cancelled
  timers_.Advance(seconds(3600));
  EXPECT_EQ(State("k-1"), "running");
  EXPECT_TRUE(launcher_.stops().empty());
}

TEST_F(WorkerPoolTest, MissedRegistrationDeadlineKillsAndCountsAFailedStart) {
  ASSERT_TRUE(pool_->SetWanted("k", 1, Template()).ok());
  int pid = LastPid();
  timers_.Advance(milliseconds(29'999));
  EXPECT_TRUE(launcher_.stops().empty());
  timers_.Advance(milliseconds(1));
  ASSERT_EQ(launcher_.stops().size(), 1u);
  EXPECT_EQ(launcher_.stops()[0].pid, pid);
  EXPECT_FALSE(launcher_.stops()[0].grace.has_value());  // Kill, not Stop
  EXPECT_EQ(State("k-1"), "starting");
  // Too late: the hello that arrives while the kill is under way is refused.
  EXPECT_EQ(Register("k-1").code(), StatusCode::kFailedPrecondition);

  ASSERT_TRUE(launcher_.ExitBySignal(pid, 9));
  WorkerInfo w = Info("k-1");
  EXPECT_EQ(w.state, WorkerState::kBackoff);
  EXPECT_EQ(w.quick_failures, 1);
  EXPECT_EQ(w.pid, 0);
  EXPECT_EQ(w.exit_description, "killed by signal 9 (SIGKILL)");
  EXPECT_THAT(w.last_error, HasSubstr("did not register within 30000 ms"));
  EXPECT_THAT(observer_.transitions.back().reason, HasSubstr("retrying in 1000 ms"));
}

TEST_F(WorkerPoolTest, WrongTokenWrongProcessAndReplayedTokenAreRefused) {
  ASSERT_TRUE(pool_->SetWanted("k", 1, Template()).ok());
  Registration good = RegistrationOf("k-1");

  Registration wrong = good;
  wrong.token = std::string(64, '0');
  EXPECT_EQ(pool_->OnRegistered(wrong).code(), StatusCode::kUnauthenticated);
  wrong.token = "";
  EXPECT_EQ(pool_->OnRegistered(wrong).code(), StatusCode::kUnauthenticated);
  Registration other_pid = good;
  other_pid.pid = good.pid + 1;
  EXPECT_EQ(pool_->OnRegistered(other_pid).code(), StatusCode::kUnauthenticated);
  Registration recycled_pid = good;  // same pid, another process: start time differs
  recycled_pid.process_start_ticks = good.process_start_ticks + 1;
  EXPECT_EQ(pool_->OnRegistered(recycled_pid).code(), StatusCode::kUnauthenticated);
  Registration unknown = good;
  unknown.worker_id = "k-99";
  EXPECT_EQ(pool_->OnRegistered(unknown).code(), StatusCode::kNotFound);
  EXPECT_EQ(State("k-1"), "starting");

  ASSERT_TRUE(pool_->OnRegistered(good).ok());
  Status replay = pool_->OnRegistered(good);
  EXPECT_EQ(replay.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(replay.message(), HasSubstr("already"));
  EXPECT_THAT(observer_.Path("k-1"), ElementsAre("stopped->starting", "starting->running"));

  // A restart gets a new token: the old one is refused from then on.
  ASSERT_TRUE(pool_->Restart("k-1").ok());
  ASSERT_TRUE(launcher_.Exit(good.pid, 0));
  EXPECT_EQ(State("k-1"), "starting");
  Registration stale = RegistrationOf("k-1");
  stale.token = good.token;
  EXPECT_EQ(pool_->OnRegistered(stale).code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(Register("k-1").ok());
}

TEST_F(WorkerPoolTest, EarlyExitsBackOffExponentiallyCappedThenFatal) {
  ASSERT_TRUE(pool_->SetWanted("k", 1, Template()).ok());
  std::vector<milliseconds> delays;
  for (int attempt = 1; attempt <= 5; ++attempt) {
    SCOPED_TRACE("attempt " + std::to_string(attempt));
    ASSERT_EQ(launcher_.launches().size(), static_cast<size_t>(attempt));
    EXPECT_EQ(State("k-1"), "starting");
    EXPECT_EQ(Info("k-1").restarts, attempt - 1);
    if (attempt == 3) {
      // Registered, then gone within start_seconds: as early as an exit while starting.
      ASSERT_TRUE(Register("k-1").ok());
      clock_.Advance(9'999);
    }
    ASSERT_TRUE(launcher_.Exit(LastPid(), 1));
    if (attempt == 5) break;
    EXPECT_EQ(State("k-1"), "backoff");
    ASSERT_TRUE(timers_.NextDelay().has_value());
    milliseconds delay = *timers_.NextDelay();
    delays.push_back(delay);
    timers_.Advance(delay - milliseconds(1));
    EXPECT_EQ(launcher_.launches().size(), static_cast<size_t>(attempt));  // not yet
    timers_.Advance(milliseconds(1));
  }
  EXPECT_THAT(delays, ElementsAre(seconds(1), seconds(2), seconds(4), seconds(4)));
  WorkerInfo w = Info("k-1");
  EXPECT_EQ(w.state, WorkerState::kFatal);
  EXPECT_EQ(w.quick_failures, 5);
  EXPECT_EQ(w.exit_description, "exited with code 1");
  EXPECT_THAT(observer_.transitions.back().reason, HasSubstr("gave up after 5 early exits"));
  EXPECT_EQ(timers_.pending(), 0u);
  timers_.Advance(seconds(3600));
  EXPECT_EQ(launcher_.launches().size(), 5u);  // fatal: no more launches
  EXPECT_THAT(observer_.Path("k-1"),
              ElementsAre("stopped->starting", "starting->backoff", "backoff->starting",
                          "starting->backoff", "backoff->starting", "starting->running",
                          "running->backoff", "backoff->starting", "starting->backoff",
                          "backoff->starting", "starting->fatal"));
}

TEST_F(WorkerPoolTest, ACrashAfterRunningLongEnoughRestartsAtOnceAndResetsTheCounter) {
  ASSERT_TRUE(pool_->SetWanted("k", 1, Template()).ok());
  ASSERT_TRUE(launcher_.Exit(LastPid(), 2));  // one early exit first
  timers_.Advance(seconds(1));
  ASSERT_EQ(Info("k-1").quick_failures, 1);
  ASSERT_TRUE(Register("k-1").ok());
  clock_.Advance(10'000);
  int pid = LastPid();
  ASSERT_TRUE(launcher_.ExitBySignal(pid, 11));
  ASSERT_EQ(launcher_.launches().size(), 3u);  // at once, no backoff
  WorkerInfo w = Info("k-1");
  EXPECT_EQ(w.state, WorkerState::kStarting);
  EXPECT_EQ(w.quick_failures, 0);
  EXPECT_EQ(w.restarts, 2);
  EXPECT_EQ(w.exit_description, "killed by signal 11 (SIGSEGV)");
  EXPECT_NE(w.pid, pid);
  EXPECT_THAT(observer_.Path("k-1"),
              ElementsAre("stopped->starting", "starting->backoff", "backoff->starting",
                          "starting->running", "running->exited", "exited->starting"));
}

TEST_F(WorkerPoolTest, ALaunchFailureIsAnEarlyExit) {
  launcher_.FailNextLaunch(NotFound("/envs/h1/bin/python: no such file"));
  ASSERT_TRUE(pool_->SetWanted("k", 1, Template()).ok());
  WorkerInfo w = Info("k-1");
  EXPECT_EQ(w.state, WorkerState::kBackoff);
  EXPECT_THAT(w.last_error, HasSubstr("could not launch: /envs/h1/bin/python: no such file"));
  timers_.Advance(seconds(1));
  EXPECT_EQ(State("k-1"), "starting");
  EXPECT_EQ(launcher_.launches().size(), 1u);
}

TEST_F(WorkerPoolTest, SetWantedChecksItsArguments) {
  EXPECT_EQ(pool_->SetWanted("", 1, Template()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(pool_->SetWanted("k", -1, Template()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(pool_->SetWanted("k", 1, LaunchTemplate{}).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(launcher_.launches().empty());
  EXPECT_EQ(pool_->Stop("nope").code(), StatusCode::kNotFound);
  EXPECT_EQ(pool_->Restart("nope").code(), StatusCode::kNotFound);
}

TEST_F(WorkerPoolTest, DefaultWorkerIdsAreKernelPlusRandomSuffix) {
  WorkerPool pool(launcher_, timers_, clock_, observer_, Options());
  ASSERT_TRUE(pool.SetWanted("my-kernel", 2, Template()).ok());
  std::vector<WorkerInfo> workers = pool.List("my-kernel");
  ASSERT_EQ(workers.size(), 2u);
  EXPECT_NE(workers[0].id, workers[1].id);
  for (const WorkerInfo& w : workers) {
    EXPECT_THAT(w.id, ::testing::MatchesRegex("my-kernel-[0-9a-f]{8}"));
  }
}

}  // namespace
}  // namespace gsk::workers
