// WorkerPool with the real launcher, real timers and a real python3 that never registers: it is
// killed at the registration deadline and its exit is recorded as a signal.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>

#include "base/clock.h"
#include "supervisor/process/process_launcher.h"
#include "base/timers.h"
#include "supervisor/workers/worker_pool.h"

namespace gsk::workers {
namespace {

using ::testing::HasSubstr;

class StopOnFatal final : public WorkerObserver {
 public:
  explicit StopOnFatal(boost::asio::io_context& io) : io_(io) {}
  void OnTransition(const WorkerInfo& w, WorkerState, std::string_view) override {
    if (w.state == WorkerState::kFatal) io_.stop();
  }
  void OnRemoved(const WorkerInfo&) override {}

 private:
  boost::asio::io_context& io_;
};

TEST(WorkerPoolIntegrationTest, AWorkerThatNeverRegistersIsKilledAtTheDeadline) {
  if (!std::filesystem::exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
  boost::asio::io_context io;
  std::unique_ptr<process::ProcessLauncher> launcher = process::MakeRealLauncher(io);
  std::unique_ptr<Timers> timers = MakeAsioTimers(io);
  SystemClock clock;
  StopOnFatal observer(io);
  WorkerPoolOptions options;
  options.registration_deadline = std::chrono::milliseconds(300);
  options.max_quick_failures = 1;
  WorkerPool pool(*launcher, *timers, clock, observer, options);

  LaunchTemplate launch;
  launch.argv = {"/usr/bin/python3", "-c", "import time; time.sleep(60)"};
  launch.env = {{"PATH", "/usr/bin:/bin"}};
  // The registration deadline runs from the launch, inside SetWanted.
  auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(pool.SetWanted("k", 1, launch).ok());
  std::vector<WorkerInfo> workers = pool.List();
  ASSERT_EQ(workers.size(), 1u);
  const std::string id = workers[0].id;
  const int pid = workers[0].pid;
  ASSERT_GT(pid, 0);
  EXPECT_EQ(workers[0].state, WorkerState::kStarting);
  EXPECT_EQ(workers[0].process_start_ticks, process::ProcessStartTime(pid).value());

  io.run_for(std::chrono::seconds(20));
  auto took = std::chrono::steady_clock::now() - started;

  WorkerInfo w = pool.Get(id).value();
  ASSERT_EQ(w.state, WorkerState::kFatal);
  EXPECT_EQ(w.exit_description, "killed by signal 9 (SIGKILL)");
  EXPECT_THAT(w.last_error, HasSubstr("did not register within 300 ms"));
  EXPECT_GE(took, std::chrono::milliseconds(300));
  EXPECT_FALSE(process::GroupAlive(pid));
}

TEST(WorkerPoolIntegrationTest, AsioTimersFireInOrderAndCancelledOnesDoNot) {
  boost::asio::io_context io;
  std::unique_ptr<Timers> timers = MakeAsioTimers(io);
  std::vector<int> fired;
  timers->After(std::chrono::milliseconds(30), [&] { fired.push_back(2); });
  timers->After(std::chrono::milliseconds(10), [&] { fired.push_back(1); });
  TimerId cancelled = timers->After(std::chrono::milliseconds(20), [&] { fired.push_back(9); });
  timers->Cancel(cancelled);
  timers->After(std::chrono::milliseconds(0), [&] { timers->Cancel(cancelled); });
  io.run_for(std::chrono::seconds(5));
  EXPECT_EQ(fired, (std::vector<int>{1, 2}));
  // Destroying the timers cancels what is pending; the io_context may still hold the handler.
  timers->After(std::chrono::milliseconds(0), [&] { fired.push_back(3); });
  timers.reset();
  io.restart();
  io.run_for(std::chrono::seconds(1));
  EXPECT_EQ(fired, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace gsk::workers
