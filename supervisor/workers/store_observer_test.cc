// StoreObserver with a real Store: every transition becomes the worker's row and an event.
#include "supervisor/workers/store_observer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "base/fake_clock.h"
#include "supervisor/process/fake_process_launcher.h"
#include "base/fake_timers.h"
#include "supervisor/workers/worker_pool.h"

namespace gsk::workers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

class StoreObserverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "gsk-workers-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    store_ = store::Store::Open(dir_ / "supervisor.db").value();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::vector<std::string> EventKinds(const std::string& subject) {
    store::EventFilter filter;
    filter.subject = subject;
    std::vector<std::string> kinds;
    std::vector<store::Event> events = store_->ListEvents(filter).value();
    for (const store::Event& e : events) kinds.push_back(e.kind);
    return kinds;
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(StoreObserverTest, TransitionsArePersistedWithEventsAndRemovalDeletesTheRow) {
  FakeClock clock;
  FakeTimers timers(clock);
  process::FakeProcessLauncher launcher;
  StoreObserver observer(*store_);
  WorkerPoolOptions options;
  options.new_worker_id = [](const std::string& kernel) { return kernel + "-1"; };
  WorkerPool pool(launcher, timers, clock, observer, options);
  LaunchTemplate launch;
  launch.argv = {"/usr/bin/python3", "-m", "giskard_worker_shim", "serve-managed"};
  ASSERT_TRUE(pool.SetWanted("k", 1, launch).ok());

  store::WorkerRow starting = store_->GetWorker("k-1").value().value();
  EXPECT_EQ(starting.kernel, "k");
  EXPECT_EQ(starting.state, "starting");
  EXPECT_EQ(starting.pid, launcher.launches()[0].handle.pid());
  EXPECT_EQ(starting.token_hash.size(), 64u);
  EXPECT_NE(starting.token_hash, launcher.launches()[0].spec.secret.value());

  Registration hello;
  hello.worker_id = "k-1";
  hello.token = launcher.launches()[0].spec.secret.value();
  hello.pid = launcher.launches()[0].handle.pid();
  hello.process_start_ticks = starting.process_start_ticks;
  hello.python_version = "3.11.2";
  hello.env_json = R"({"pythonVersion":"3.11.2","packages":[]})";
  clock.Advance(500);
  ASSERT_TRUE(pool.OnRegistered(hello).ok());
  store::WorkerRow running = store_->GetWorker("k-1").value().value();
  EXPECT_EQ(running.state, "running");
  EXPECT_EQ(running.python_version, "3.11.2");
  EXPECT_EQ(running.env_json, hello.env_json);
  EXPECT_EQ(running.started_at_ms, clock.NowUnixMillis());

  ASSERT_TRUE(pool.SetWanted("k", 0, launch).ok());
  ASSERT_TRUE(launcher.ExitBySignal(hello.pid, 15));
  EXPECT_FALSE(store_->GetWorker("k-1").value().has_value());
  EXPECT_THAT(EventKinds("worker/k-1"),
              ElementsAre("worker.starting", "worker.running", "worker.stopping", "worker.stopped",
                          "worker.removed"));
  store::EventFilter filter;
  filter.subject = "worker/k-1";
  std::vector<store::Event> events = store_->ListEvents(filter).value();
  EXPECT_THAT(events[3].detail_json, HasSubstr(R"("reason":"stopped (killed by signal 15)"));
  EXPECT_THAT(events[3].detail_json, HasSubstr(R"("from":"stopping")"));
}

}  // namespace
}  // namespace gsk::workers
