// Unmanaged workers stepped with fake WebSocket peers, FakeTimers and a FakeClock: registration,
// refusals, routing to the most recent worker, standby take-over, heartbeats and silence, and a
// relay whose calls go to them.
#include "supervisor/relay/remote_workers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/fake_clock.h"
#include "base/fake_timers.h"
#include "supervisor/process/fake_process_launcher.h"
#include "supervisor/relay/relay.h"
#include "supervisor/workers/observer_list.h"

namespace gsk::relay {
namespace {

using ::testing::HasSubstr;
using std::chrono::milliseconds;

class FakePeer final : public api::WebSocketPeer {
 public:
  bool Send(std::string text) override {
    if (closed) return false;
    sent.push_back(std::move(text));
    return true;
  }
  void Close(uint16_t code, std::string reason) override {
    closed = true;
    close_code = code;
    close_reason = std::move(reason);
  }
  std::vector<std::string> sent;
  bool closed = false;
  uint16_t close_code = 0;
  std::string close_reason;
};

std::string Hello(const std::string& id, const std::string& name, bool reconnect = false) {
  return R"({"type":"hello","protocol":1,"workerId":")" + id + R"(","name":")" + name +
         R"(","reconnect":)" + (reconnect ? "true" : "false") +
         R"(,"env":{"pythonVersion":"3.11.7","pid":4242,"hostname":"laptop"}})";
}

class RemoteWorkersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RemoteWorkersOptions o;
    o.heartbeat = milliseconds(1000);
    o.hello_timeout = milliseconds(5000);
    o.supervisor_pid = 77;
    o.on_hello = [this](const RemoteHello& h) {
      hellos_.push_back(h);
      return h.name == "managed" ? AlreadyExists("the name \"managed\" belongs to a managed kernel")
                                 : Status::Ok();
    };
    o.on_connected = [this](const std::string& kernel) { connected_.push_back(kernel); };
    o.on_disconnect = [this](const std::string& worker, const std::string&, const std::string& why) {
      gone_.push_back(worker + ": " + why);
    };
    hub_ = std::make_unique<RemoteWorkers>(timers_, clock_, std::move(o));
  }

  struct Conn {
    std::shared_ptr<FakePeer> peer;
    api::WebSocketHandlers handlers;
  };
  Conn Open(const std::string& key = "laptop-key") {
    Conn c;
    c.peer = std::make_shared<FakePeer>();
    RemoteHello origin;
    origin.remote = "10.0.0.7:5555";
    origin.key_name = key;
    c.handlers = hub_->Attach(c.peer, origin);
    return c;
  }
  Conn Register(const std::string& id, const std::string& name) {
    Conn c = Open();
    c.handlers.on_message(Hello(id, name));
    return c;
  }

  FakeClock clock_;
  FakeTimers timers_{clock_};
  std::vector<RemoteHello> hellos_;
  std::vector<std::string> connected_;
  std::vector<std::string> gone_;
  std::unique_ptr<RemoteWorkers> hub_;
};

TEST_F(RemoteWorkersTest, AHelloRegistersTheWorkerUnderItsNameWithWhereItCameFrom) {
  Conn c = Register("w1", "laptop");
  ASSERT_EQ(c.peer->sent.size(), 1u);
  EXPECT_THAT(c.peer->sent[0], HasSubstr(R"("type":"welcome")"));
  EXPECT_THAT(c.peer->sent[0], HasSubstr(R"("heartbeatSeconds":1.0)"));
  ASSERT_EQ(hellos_.size(), 1u);
  EXPECT_EQ(hellos_[0].key_name, "laptop-key");
  EXPECT_EQ(hellos_[0].remote, "10.0.0.7:5555");
  EXPECT_EQ(connected_, std::vector<std::string>{"laptop"});
  EXPECT_TRUE(hub_->Connected("w1"));
  EXPECT_EQ(hub_->Active("laptop"), "w1");
  auto info = hub_->Get("w1");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->pid, 4242);
  EXPECT_EQ(info->hostname, "laptop");
  EXPECT_EQ(info->hello.python_version, "3.11.7");
  EXPECT_TRUE(info->active);
}

TEST_F(RemoteWorkersTest, TheMostRecentWorkerIsActiveAndTheNextTakesOverWhenItGoes) {
  Conn a = Register("a", "laptop");
  Conn b = Register("b", "laptop");
  Conn other = Register("c", "desktop");
  EXPECT_EQ(hub_->Active("laptop"), "b");
  EXPECT_EQ(hub_->Count("laptop"), 2);
  auto list = hub_->List("laptop");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].hello.worker_id, "b");  // most recent first
  EXPECT_TRUE(list[0].active);
  EXPECT_FALSE(list[1].active);
  b.handlers.on_closed("closed by the peer");
  EXPECT_EQ(gone_, std::vector<std::string>{"b: closed by the peer"});
  EXPECT_EQ(hub_->Active("laptop"), "a");
  a.handlers.on_closed("closed by the peer");
  EXPECT_EQ(hub_->Active("laptop"), "");
  EXPECT_EQ(hub_->Active("desktop"), "c");
}

TEST_F(RemoteWorkersTest, BadHellosAndTakenNamesAreRefusedWithAReasonTheWorkerShows) {
  Conn not_hello = Open();
  not_hello.handlers.on_message(R"({"type":"heartbeat","ts":1})");
  ASSERT_EQ(not_hello.peer->sent.size(), 1u);
  EXPECT_THAT(not_hello.peer->sent[0], HasSubstr("ProtocolError"));
  EXPECT_TRUE(not_hello.peer->closed);

  Conn no_name = Open();
  no_name.handlers.on_message(R"({"type":"hello","protocol":1,"workerId":"x","env":{"pythonVersion":"3.11"}})");
  EXPECT_THAT(no_name.peer->sent.at(0), HasSubstr("name must be a string"));

  Conn old_protocol = Open();
  old_protocol.handlers.on_message(R"({"type":"hello","protocol":2,"workerId":"x","name":"n","env":{}})");
  EXPECT_THAT(old_protocol.peer->sent.at(0), HasSubstr("ProtocolVersion"));

  Conn taken = Open();
  taken.handlers.on_message(Hello("m", "managed"));
  EXPECT_THAT(taken.peer->sent.at(0), HasSubstr("NameTaken"));
  EXPECT_THAT(taken.peer->sent.at(0), HasSubstr("belongs to a managed kernel"));
  EXPECT_TRUE(taken.peer->closed);
  EXPECT_FALSE(hub_->Connected("m"));
  EXPECT_TRUE(connected_.empty());

  Conn silent = Open();
  timers_.Advance(milliseconds(5001));
  EXPECT_TRUE(silent.peer->closed);
  EXPECT_EQ(silent.peer->close_reason, "no hello in time");
}

TEST_F(RemoteWorkersTest, HeartbeatsGoOutAndASilentWorkerIsLost) {
  Conn c = Register("w1", "laptop");
  timers_.Advance(milliseconds(1000));
  ASSERT_EQ(c.peer->sent.size(), 2u);
  EXPECT_THAT(c.peer->sent[1], HasSubstr(R"("type":"heartbeat")"));
  c.handlers.on_message(R"({"type":"heartbeat","ts":1})");  // alive
  timers_.Advance(milliseconds(2500));
  EXPECT_FALSE(c.peer->closed);
  timers_.Advance(milliseconds(1500));  // checked at each heartbeat: 4 s since its last message
  EXPECT_TRUE(c.peer->closed);
  ASSERT_EQ(gone_.size(), 1u);
  EXPECT_THAT(gone_[0], HasSubstr("silent"));
  EXPECT_FALSE(hub_->Connected("w1"));
}

TEST_F(RemoteWorkersTest, RequestsAreAnsweredByIdAsTheReplyIsReadAndFailWhenTheConnectionCloses) {
  Conn c = Register("w1", "laptop");
  std::vector<Result<std::string>> replies;
  auto keep = [&replies](Result<std::string> r) { replies.push_back(std::move(r)); };
  ASSERT_TRUE(hub_->Request("w1", "r1", R"({"type":"request","id":"r1"})", keep).ok());
  ASSERT_TRUE(hub_->Request("w1", "r2", R"({"type":"request","id":"r2"})", keep).ok());
  EXPECT_TRUE(replies.empty());  // never inside Request
  EXPECT_EQ(c.peer->sent.back(), R"({"type":"request","id":"r2"})");
  size_t timers = timers_.pending();
  c.handlers.on_message(R"({"type":"reply","id":"r1","result":{"ok":true}})");
  // Delivered directly from the read handler: no zero-delay timer in between.
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(*replies[0], R"({"type":"reply","id":"r1","result":{"ok":true}})");
  EXPECT_EQ(timers_.pending(), timers);
  c.handlers.on_message(R"({"type":"reply","id":"r1","result":{"again":true}})");
  EXPECT_EQ(replies.size(), 1u);  // once: a second reply with that id is ignored
  // A handler that sends the next request on the same connection, as the relay does.
  ASSERT_TRUE(hub_->Request("w1", "r3", R"({"type":"request","id":"r3"})",
                            [this, &replies, keep](Result<std::string> r) {
                              replies.push_back(std::move(r));
                              ASSERT_TRUE(hub_->Request("w1", "r4", "{}", keep).ok());
                            })
                  .ok());
  c.handlers.on_message(R"({"type":"reply","id":"r3","result":{}})");
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(c.peer->sent.back(), "{}");
  c.handlers.on_closed("closed by the peer");
  EXPECT_EQ(replies.size(), 2u);  // failures: on a later turn (r2 and r4)
  timers_.Advance(milliseconds(0));
  ASSERT_EQ(replies.size(), 4u);
  EXPECT_EQ(replies[2].status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(replies[3].status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(hub_->Request("w1", "r5", "{}", keep).code(), StatusCode::kUnavailable);
}

TEST_F(RemoteWorkersTest, AWorkerThatRedialsReplacesItsOldConnectionAndIsListedOnce) {
  Conn first = Register("w1", "laptop");
  Conn again = Open();
  again.handlers.on_message(Hello("w1", "laptop", /*reconnect=*/true));
  EXPECT_TRUE(first.peer->closed);
  EXPECT_EQ(hub_->Count("laptop"), 1);
  EXPECT_EQ(hub_->List().size(), 1u);
  EXPECT_TRUE(hellos_.back().reconnect);
  first.handlers.on_closed("closed");  // the old connection's late close changes nothing
  EXPECT_TRUE(hub_->Connected("w1"));
}

TEST_F(RemoteWorkersTest, RevokingAKeyClosesItsWorkersOnly) {
  Conn a = Register("a", "laptop");
  Conn b = Open("other-key");
  b.handlers.on_message(Hello("b", "desktop"));
  hub_->CloseByKey("laptop-key");
  EXPECT_TRUE(a.peer->closed);
  EXPECT_THAT(a.peer->sent.back(), HasSubstr("KeyRevoked"));
  EXPECT_FALSE(hub_->Connected("a"));
  EXPECT_TRUE(hub_->Connected("b"));
}

class NullObserver final : public workers::WorkerObserver {
 public:
  void OnTransition(const workers::WorkerInfo&, workers::WorkerState, std::string_view) override {}
  void OnRemoved(const workers::WorkerInfo&) override {}
};

// The relay with only unmanaged workers: calls go to the active one; a lost worker fails its
// call at once (502), and the standby takes the next.
TEST_F(RemoteWorkersTest, TheRelaySendsCallsToTheActiveWorkerAndFailsThemWhenItIsLost) {
  process::FakeProcessLauncher launcher;
  workers::ObserverList observers;
  NullObserver null;
  observers.Add(&null);
  workers::WorkerPool pool(launcher, timers_, clock_, observers, {});
  RelayOptions o;
  o.remote_worker = [this](const std::string& kernel) { return hub_->Active(kernel); };
  Relay relay(*hub_, pool, timers_, clock_, o);
  Conn a = Register("a", "laptop");
  Conn b = Register("b", "laptop");
  std::vector<CallOutcome> outcomes;
  auto keep = [&outcomes](CallOutcome out) { outcomes.push_back(std::move(out)); };
  relay.Submit({"laptop", "predict", "/m.pkl", R"({"rows":[[1]]})", milliseconds(10'000), ""}, keep);
  ASSERT_EQ(b.peer->sent.size(), 2u);  // welcome, then the call
  EXPECT_THAT(b.peer->sent[1], HasSubstr(R"("method":"predict")"));
  EXPECT_EQ(a.peer->sent.size(), 1u);  // standby: only its welcome
  relay.Submit({"laptop", "predict", "/m.pkl", R"({"rows":[[2]]})", milliseconds(10'000), ""}, keep);
  EXPECT_EQ(b.peer->sent.size(), 2u);  // one call at a time: the second waits
  b.handlers.on_closed("closed by the peer");
  relay.OnRemoteGone("b", "closed by the peer");  // as the daemon wires on_disconnect
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].status.code(), StatusCode::kUnavailable);
  EXPECT_THAT(outcomes[0].status.message(), HasSubstr("disconnected during the call"));
  timers_.Advance(milliseconds(0));
  ASSERT_EQ(a.peer->sent.size(), 2u);  // the standby took the waiting call
  std::string id = a.peer->sent[1].substr(a.peer->sent[1].find("\"id\":\"") + 6);
  id = id.substr(0, id.find('"'));
  a.handlers.on_message(R"({"type":"reply","id":")" + id + R"(","result":{"predictions":[2]}})");
  timers_.Advance(milliseconds(0));
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_TRUE(outcomes[1].status.ok());
  EXPECT_EQ(outcomes[1].worker, "a");
}

// The last unmanaged worker of a kernel goes while calls wait for it: its call gets 502 and the
// waiting ones 503 at once (what `servable` says), not a 504 at their timeout.
TEST_F(RemoteWorkersTest, CallsWaitingForALostLastWorkerFailAtOnce) {
  process::FakeProcessLauncher launcher;
  workers::ObserverList observers;
  NullObserver null;
  observers.Add(&null);
  workers::WorkerPool pool(launcher, timers_, clock_, observers, {});
  RelayOptions o;
  o.remote_worker = [this](const std::string& kernel) { return hub_->Active(kernel); };
  Relay relay(*hub_, pool, timers_, clock_, o);
  relay.SetServable([&relay](const std::string& kernel) {
    return relay.Reachable(kernel).empty() ? Unavailable("no worker of " + kernel + " is connected")
                                           : Status::Ok();
  });
  Conn b = Register("b", "laptop");
  std::vector<CallOutcome> outcomes;
  auto keep = [&outcomes](CallOutcome out) { outcomes.push_back(std::move(out)); };
  relay.Submit({"laptop", "predict", "/m.pkl", R"({"rows":[[1]]})", milliseconds(10'000), ""}, keep);
  relay.Submit({"laptop", "predict", "/m.pkl", R"({"rows":[[2]]})", milliseconds(10'000), ""}, keep);
  EXPECT_EQ(relay.waiting("laptop"), 1u);
  b.handlers.on_closed("closed by the peer");
  relay.OnRemoteGone("b", "closed by the peer");
  timers_.Advance(milliseconds(0));
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_THAT(outcomes[0].status.message(), HasSubstr("disconnected during the call"));
  EXPECT_EQ(outcomes[1].status.code(), StatusCode::kUnavailable);
  EXPECT_THAT(outcomes[1].status.message(), HasSubstr("no worker of laptop is connected"));
  EXPECT_EQ(relay.waiting("laptop"), 0u);
}

}  // namespace
}  // namespace gsk::relay
