// Shared by the WorkerPool unit tests: a pool on a FakeProcessLauncher, FakeTimers and a
// FakeClock, with an observer that records every transition.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/fake_clock.h"
#include "supervisor/process/fake_process_launcher.h"
#include "base/fake_timers.h"
#include "supervisor/workers/worker_pool.h"

namespace gsk::workers {

struct RecordedTransition {
  std::string id;
  std::string from;
  std::string to;
  std::string reason;
};

class RecordingObserver final : public WorkerObserver {
 public:
  void OnTransition(const WorkerInfo& w, WorkerState from, std::string_view reason) override {
    transitions.push_back(
        {w.id, std::string(StateName(from)), std::string(StateName(w.state)), std::string(reason)});
  }
  void OnRemoved(const WorkerInfo& w) override { removed.push_back(w.id); }

  // "from->to" for each transition of `id`.
  std::vector<std::string> Path(const std::string& id) const {
    std::vector<std::string> out;
    for (const RecordedTransition& t : transitions) {
      if (t.id == id) out.push_back(t.from + "->" + t.to);
    }
    return out;
  }

  std::vector<RecordedTransition> transitions;
  std::vector<std::string> removed;
};

class WorkerPoolTest : public ::testing::Test {
 protected:
  static WorkerPoolOptions Options() {
    WorkerPoolOptions o;
    o.registration_deadline = std::chrono::seconds(30);
    o.start_seconds = std::chrono::seconds(10);
    o.backoff_initial = std::chrono::seconds(1);
    o.backoff_max = std::chrono::seconds(4);
    o.max_quick_failures = 5;
    o.stop_grace = std::chrono::seconds(10);
    o.reconnect_deadline = std::chrono::seconds(60);
    o.supervisor_socket = "/run/giskard/supervisor.sock";
    return o;
  }

  WorkerPoolTest() : timers_(clock_) {
    WorkerPoolOptions o = Options();
    o.new_worker_id = [this](const std::string& kernel) {
      return kernel + "-" + std::to_string(++ids_);
    };
    pool_ = std::make_unique<WorkerPool>(launcher_, timers_, clock_, observer_, o);
  }

  static LaunchTemplate Template() {
    LaunchTemplate t;
    t.argv = {"/envs/h1/bin/python", "-m", "giskard_worker_shim", "serve-managed"};
    t.env = {{"PATH", "/envs/h1/bin:/usr/bin"}, {"HOME", "/var/lib/giskard"}};
    t.cwd = "/var/lib/giskard";
    t.log_dir = "/var/log/giskard/workers";
    return t;
  }

  const process::FakeProcessLauncher::Launched& LaunchOf(int pid) const {
    for (const auto& l : launcher_.launches()) {
      if (l.handle.pid() == pid) return l;
    }
    ADD_FAILURE() << "no launch with pid " << pid;
    return launcher_.launches().front();
  }
  int LastPid() const { return launcher_.launches().back().handle.pid(); }

  WorkerInfo Info(const std::string& id) const {
    std::optional<WorkerInfo> info = pool_->Get(id);
    EXPECT_TRUE(info.has_value()) << id;
    return info.value_or(WorkerInfo{});
  }
  std::string State(const std::string& id) const { return std::string(StateName(Info(id).state)); }

  Registration RegistrationOf(const std::string& id) const {
    int pid = Info(id).pid;
    const auto& launched = LaunchOf(pid);
    Registration r;
    r.worker_id = id;
    r.token = launched.spec.secret.value();
    r.pid = pid;
    r.process_start_ticks = launched.handle.start_time_ticks();
    r.python_version = "3.11.2";
    r.env_json = R"({"pythonVersion":"3.11.2","pid":)" + std::to_string(pid) + "}";
    return r;
  }
  Status Register(const std::string& id) { return pool_->OnRegistered(RegistrationOf(id)); }

  // Starts one worker of kernel "k" and registers it; returns its id.
  std::string RunningWorker() {
    EXPECT_TRUE(pool_->SetWanted("k", pool_->Wanted("k") + 1, Template()).ok());
    std::string id = "k-" + std::to_string(ids_);
    EXPECT_TRUE(Register(id).ok());
    return id;
  }

  FakeClock clock_;
  FakeTimers timers_;
  process::FakeProcessLauncher launcher_;
  RecordingObserver observer_;
  int ids_ = 0;
  std::unique_ptr<WorkerPool> pool_;
};

}  // namespace gsk::workers
