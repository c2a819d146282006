// The relay stepped with fakes: a pool on a FakeProcessLauncher, FakeTimers and a FakeClock,
// and fake links that record the frames sent and let the test answer them.
#include "supervisor/relay/relay.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "base/fake_clock.h"
#include "base/fake_timers.h"
#include "supervisor/process/fake_process_launcher.h"
#include "supervisor/protocol/json_envelope.h"
#include "supervisor/relay/messages.h"
#include "supervisor/workers/observer_list.h"

namespace gsk::relay {
namespace {

using namespace protocol;  // NOLINT: the wire format under test

using ::testing::HasSubstr;
using std::chrono::milliseconds;

class FakeLinks final : public WorkerLinks {
 public:
  struct Sent {
    std::string worker, id, frame;
    ReplyHandler on_reply;
  };
  Status Request(const std::string& worker, const std::string& id, std::string frame,
                 ReplyHandler on_reply) override {
    if (!connected.count(worker)) return Unavailable("not connected");
    sent.push_back({worker, id, std::move(frame), std::move(on_reply)});
    return Status::Ok();
  }
  bool Connected(const std::string& worker) const override { return connected.count(worker) != 0; }

  // Answers the i-th request sent with a result object.
  void Reply(size_t i, const std::string& result) {
    sent.at(i).on_reply(R"({"type":"reply","id":")" + sent.at(i).id + R"(","result":)" + result + "}");
  }
  void Hangup(size_t i) { sent.at(i).on_reply(Unavailable("closed")); }

  std::set<std::string> connected;
  std::vector<Sent> sent;
};

class NullObserver final : public workers::WorkerObserver {
 public:
  void OnTransition(const workers::WorkerInfo&, workers::WorkerState, std::string_view) override {}
  void OnRemoved(const workers::WorkerInfo&) override {}
};

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    workers::WorkerPoolOptions o;
    int n = 0;
    o.new_worker_id = [n](const std::string& kernel) mutable {
      return kernel + "-" + std::to_string(++n);
    };
    observers_.Add(&null_);
    pool_ = std::make_unique<workers::WorkerPool>(launcher_, timers_, clock_, observers_, o);
    RelayOptions r;
    r.queue_size = 2;
    r.servable = [this](const std::string& kernel) {
      return servable_.count(kernel) ? servable_[kernel] : Status::Ok();
    };
    relay_ = std::make_unique<Relay>(links_, *pool_, timers_, clock_, r);
    observers_.Add(relay_.get());
  }

  // Launches `n` workers of kernel k and registers them all.
  void RunWorkers(int n) {
    workers::LaunchTemplate t;
    t.argv = {"/venv/bin/python", "-m", "giskard_worker_shim"};
    ASSERT_TRUE(pool_->SetWanted("k", n, t).ok());
    for (const auto& launched : launcher_.launches()) {
      workers::Registration r;
      r.worker_id = launched.spec.env.at("GSK_WORKER_ID");
      r.token = launched.spec.secret.value();
      r.pid = launched.handle.pid();
      r.process_start_ticks = launched.handle.start_time_ticks();
      if (pool_->Get(r.worker_id)->state == workers::WorkerState::kRunning) continue;
      ASSERT_TRUE(pool_->OnRegistered(r).ok());
      links_.connected.insert(r.worker_id);
    }
    timers_.Advance(milliseconds(0));
  }

  CallRequest Call(const std::string& model = "/m/a.pkl", milliseconds timeout = milliseconds(5000)) {
    return {"k", "predict", model, R"({"model":")" + model + R"(","rows":[[1]]})", timeout, ""};
  }
  void Submit(CallRequest call) {
    relay_->Submit(std::move(call), [this](CallOutcome o) { outcomes_.push_back(std::move(o)); });
  }
  int PidOf(const std::string& id) { return pool_->Get(id)->pid; }

  FakeClock clock_;
  FakeTimers timers_{clock_};
  process::FakeProcessLauncher launcher_;
  NullObserver null_;
  workers::ObserverList observers_;
  std::unique_ptr<workers::WorkerPool> pool_;
  FakeLinks links_;
  std::map<std::string, Status> servable_;
  std::unique_ptr<Relay> relay_;
  std::vector<CallOutcome> outcomes_;
};

TEST_F(RelayTest, ACallGoesToAnIdleWorkerAndItsReplyComesBackAsIs) {
  RunWorkers(1);
  Submit(Call());
  ASSERT_EQ(links_.sent.size(), 1u);
  auto frame = ParseFrame(links_.sent[0].frame);
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(frame->type, "request");
  EXPECT_THAT(links_.sent[0].frame, HasSubstr(R"("method":"predict","params":{"model":"/m/a.pkl","rows":[[1]]})"));
  clock_.Advance(7);
  links_.Reply(0, R"({"predictions":[0]})");
  ASSERT_EQ(outcomes_.size(), 1u);
  EXPECT_TRUE(outcomes_[0].status.ok());
  EXPECT_EQ(outcomes_[0].worker, "k-1");
  EXPECT_EQ(outcomes_[0].duration_ms, 7);
  EXPECT_THAT(outcomes_[0].reply, HasSubstr(R"("result":{"predictions":[0]})"));
}

TEST_F(RelayTest, OneCallAtATimePerWorkerTheRestWaitInABoundedQueue) {
  RunWorkers(1);
  Submit(Call());
  Submit(Call());
  Submit(Call());
  EXPECT_EQ(links_.sent.size(), 1u);  // one running, two waiting
  EXPECT_EQ(relay_->waiting("k"), 2u);
  Submit(Call());  // the queue holds 2
  timers_.Advance(milliseconds(0));
  ASSERT_EQ(outcomes_.size(), 1u);
  EXPECT_EQ(outcomes_[0].status.code(), StatusCode::kResourceExhausted);
  links_.Reply(0, "{}");
  EXPECT_EQ(links_.sent.size(), 2u);  // the next waiting call goes at once
  links_.Reply(1, "{}");
  links_.Reply(2, "{}");
  EXPECT_EQ(outcomes_.size(), 4u);
  EXPECT_EQ(relay_->waiting("k"), 0u);
}

TEST_F(RelayTest, AWorkerThatHasTheModelLoadedIsPreferred) {
  RunWorkers(2);
  Submit(Call("/m/a.pkl"));
  Submit(Call("/m/b.pkl"));
  ASSERT_EQ(links_.sent.size(), 2u);
  std::string has_b = links_.sent[1].worker;
  links_.Reply(0, "{}");
  links_.Reply(1, "{}");
  Submit(Call("/m/b.pkl"));
  ASSERT_EQ(links_.sent.size(), 3u);
  EXPECT_EQ(links_.sent[2].worker, has_b);
}

TEST_F(RelayTest, ACallWaitsForStartingWorkersWithinItsTimeout) {
  Submit(Call("/m/a.pkl", milliseconds(1000)));
  EXPECT_TRUE(links_.sent.empty());
  RunWorkers(1);
  ASSERT_EQ(links_.sent.size(), 1u);  // sent once the worker registered
  links_.Reply(0, "{}");
  ASSERT_EQ(outcomes_.size(), 1u);
  EXPECT_TRUE(outcomes_[0].status.ok());
  Submit(Call("/m/a.pkl", milliseconds(1000)));
  Submit(Call("/m/a.pkl", milliseconds(1000)));  // waits behind the first
  timers_.Advance(milliseconds(1000));
  ASSERT_EQ(outcomes_.size(), 3u);
  EXPECT_EQ(outcomes_[2].status.code(), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(outcomes_[2].status.message(), HasSubstr("no worker"));
}

TEST_F(RelayTest, AWorkerPastTheTimeoutIsKilledAndItsCallGets504) {
  RunWorkers(1);
  int pid = PidOf("k-1");
  Submit(Call("/m/a.pkl", milliseconds(500)));
  timers_.Advance(milliseconds(500));
  ASSERT_EQ(outcomes_.size(), 1u);
  EXPECT_EQ(outcomes_[0].status.code(), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(outcomes_[0].status.message(), HasSubstr("killed"));
  ASSERT_EQ(launcher_.stops().size(), 1u);
  EXPECT_EQ(launcher_.stops()[0].pid, pid);
  EXPECT_FALSE(launcher_.stops()[0].grace.has_value());  // SIGKILL
  Submit(Call());  // nothing goes to the worker being killed
  EXPECT_EQ(links_.sent.size(), 1u);
  links_.connected.erase("k-1");
  launcher_.ExitBySignal(pid, 9);  // it is replaced at once, not backed off
  EXPECT_EQ(pool_->Get("k-1")->state, workers::WorkerState::kStarting);
  EXPECT_EQ(pool_->Get("k-1")->quick_failures, 0);
}

TEST_F(RelayTest, AWorkerThatDiesMidCallFailsTheCallNamingItsExit) {
  RunWorkers(1);
  Submit(Call());
  links_.connected.erase("k-1");
  links_.Hangup(0);
  EXPECT_TRUE(outcomes_.empty());  // waiting to learn the exit
  clock_.Advance(11'000);           // long enough that the exit is not an early one
  launcher_.Exit(PidOf("k-1"), 137);
  ASSERT_EQ(outcomes_.size(), 1u);
  EXPECT_EQ(outcomes_[0].status.code(), StatusCode::kUnavailable);
  EXPECT_THAT(outcomes_[0].status.message(), HasSubstr("exited with code 137"));
  ASSERT_FALSE(outcomes_[0].status.details().empty());
  EXPECT_EQ(outcomes_[0].status.details()[0].second, "worker_lost");
}

TEST_F(RelayTest, AHangUpWithoutAnExitFailsAfterTheWait) {
  RunWorkers(1);
  Submit(Call());
  links_.Hangup(0);
  timers_.Advance(milliseconds(2000));
  ASSERT_EQ(outcomes_.size(), 1u);
  EXPECT_THAT(outcomes_[0].status.message(), HasSubstr("lost the connection"));
  Submit(Call());  // the worker still runs and takes calls again
  EXPECT_EQ(links_.sent.size(), 2u);
}

TEST_F(RelayTest, UnservableKernelsAreRefusedAndWaitingCallsFailWhenTheyBecomeSo) {
  servable_["k"] = Unavailable("kernel \"k\" is stopped");
  Submit(Call());
  timers_.Advance(milliseconds(0));
  ASSERT_EQ(outcomes_.size(), 1u);
  EXPECT_THAT(outcomes_[0].status.message(), HasSubstr("stopped"));
  servable_.erase("k");
  Submit(Call());  // waits: no worker yet
  EXPECT_TRUE(outcomes_.size() == 1u);
  servable_["k"] = Unavailable("the environment failed");
  relay_->Recheck();
  ASSERT_EQ(outcomes_.size(), 2u);
  EXPECT_THAT(outcomes_[1].status.message(), HasSubstr("environment failed"));
}

TEST_F(RelayTest, APinnedCallWaitsForItsWorker) {
  RunWorkers(2);
  Submit(Call());  // to k-1
  ASSERT_EQ(links_.sent.size(), 1u);
  std::string busy = links_.sent[0].worker;
  CallRequest pinned = Call();
  pinned.method = "load_model";
  pinned.worker = busy;
  Submit(pinned);
  EXPECT_EQ(links_.sent.size(), 1u);  // its worker is busy; the other does not take it
  links_.Reply(0, "{}");
  ASSERT_EQ(links_.sent.size(), 2u);
  EXPECT_EQ(links_.sent[1].worker, busy);
}

}  // namespace
}  // namespace gsk::relay
