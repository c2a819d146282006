// The worker socket with real Unix sockets: the server on an io_context thread, a blocking
// client in the test thread.
#include "supervisor/relay/worker_socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <filesystem>
#include <condition_variable>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "supervisor/protocol/frame_codec.h"

namespace gsk::relay {
namespace {

using namespace protocol;  // NOLINT: the wire format under test

using nlohmann::json;
namespace fs = std::filesystem;

std::string Hello(const std::string& id, const std::string& token) {
  return json{{"type", "hello"},
              {"protocol", 1},
              {"workerId", id},
              {"reconnect", false},
              {"token", token},
              {"env", {{"pid", 4242}, {"pythonVersion", "3.11.7"}, {"processStartTime", 12.5}}}}
      .dump();
}

class Client {
 public:
  explicit Client(const fs::path& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    timeval tv{5, 0};  // no test hangs on a missing answer
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Client() { ::close(fd_); }
  bool connected() const { return connected_; }
  void SendRaw(const std::string& bytes) {
    ASSERT_EQ(::write(fd_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void Send(const std::string& json_text) { SendRaw(*EncodeFrame(json_text)); }
  // The next frame's JSON, or nullopt at end of stream.
  std::optional<json> Receive() {
    while (true) {
      auto next = decoder_.Next();
      if (!next.ok()) return std::nullopt;
      if (next->has_value()) return json::parse(**next);
      char buf[4096];
      ssize_t n = ::read(fd_, buf, sizeof(buf));
      if (n <= 0) return std::nullopt;
      decoder_.Feed(std::string_view(buf, static_cast<size_t>(n)));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  FrameDecoder decoder_;
};

class WorkerSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gsk-ws-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (server_) boost::asio::post(io_, [this] { server_->Close(); });
    work_.reset();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    fs::remove_all(dir_);
  }
  void StartServer(std::chrono::milliseconds heartbeat = std::chrono::seconds(5)) {
    WorkerSocketOptions o;
    o.path = dir_ / "workers.sock";
    o.heartbeat = heartbeat;
    o.on_hello = [this](const workers::Registration& r) -> Status {
      hellos_.push_back(r);
      if (r.token != "good") return Unauthenticated("wrong token for worker \"" + r.worker_id + "\"");
      return Status::Ok();
    };
    o.on_disconnect = [this](const std::string& id) {
      std::lock_guard<std::mutex> lock(mu_);
      disconnected_.push_back(id);
      cv_.notify_all();
    };
    server_ = std::make_unique<WorkerSocket>(io_, o);
    ASSERT_TRUE(server_->Listen().ok());
    thread_ = std::thread([this] { io_.run(); });
  }
  fs::path Path() const { return dir_ / "workers.sock"; }
  // The first disconnection reported (later ones, at teardown, are ignored).
  std::string WaitDisconnected() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(5), [this] { return !disconnected_.empty(); })) {
      return "(none)";
    }
    return disconnected_.front();
  }

  fs::path dir_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::unique_ptr<WorkerSocket> server_;
  std::thread thread_;
  std::vector<workers::Registration> hellos_;  // written on the io thread, read after join
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> disconnected_;  // written on the io thread
};

TEST_F(WorkerSocketTest, TheSocketIsOwnerOnly) {
  StartServer();
  struct stat st {};
  ASSERT_EQ(::stat(Path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(WorkerSocketTest, AnAcceptedHelloGetsWelcomeAndAHangUpIsReported) {
  StartServer();
  {
    Client c(Path());
    ASSERT_TRUE(c.connected());
    c.Send(Hello("k-1", "good"));
    auto welcome = c.Receive();
    ASSERT_TRUE(welcome.has_value());
    EXPECT_EQ((*welcome)["type"], "welcome");
    EXPECT_EQ((*welcome)["protocol"], 1);
    EXPECT_EQ((*welcome)["heartbeatSeconds"], 5.0);
    EXPECT_EQ((*welcome)["supervisorPid"], ::getpid());
  }
  EXPECT_EQ(WaitDisconnected(), "k-1");
}

TEST_F(WorkerSocketTest, ARefusedHelloGetsAnErrorThenEndOfStream) {
  StartServer();
  Client c(Path());
  c.Send(Hello("k-1", "bad"));
  auto error = c.Receive();
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ((*error)["type"], "error");
  EXPECT_EQ((*error)["error"]["type"], "AuthenticationFailed");
  EXPECT_NE((*error)["error"]["message"].get<std::string>().find("wrong token"), std::string::npos);
  EXPECT_FALSE(c.Receive().has_value());
}

TEST_F(WorkerSocketTest, MalformedFirstFramesAreProtocolErrors) {
  StartServer();
  for (std::string bad : {std::string("not json"), std::string(R"({"type":"heartbeat"})"),
                          std::string(R"({"type":"hello","protocol":1})")}) {
    Client c(Path());
    c.Send(bad);
    auto error = c.Receive();
    ASSERT_TRUE(error.has_value()) << bad;
    EXPECT_EQ((*error)["error"]["type"], "ProtocolError") << bad;
    EXPECT_FALSE(c.Receive().has_value());
  }
  Client huge(Path());
  huge.SendRaw("\x7f\xff\xff\xff");
  auto error = huge.Receive();
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ((*error)["error"]["type"], "ProtocolError");
}

TEST_F(WorkerSocketTest, HeartbeatsFlowAndASilentWorkerIsDisconnected) {
  StartServer(std::chrono::milliseconds(40));
  Client c(Path());
  c.Send(Hello("k-2", "good"));
  ASSERT_EQ((*c.Receive())["type"], "welcome");
  auto heartbeat = c.Receive();
  ASSERT_TRUE(heartbeat.has_value());
  EXPECT_EQ((*heartbeat)["type"], "heartbeat");
  EXPECT_TRUE((*heartbeat)["ts"].is_number());
  // The client says nothing more: after 3 heartbeats of silence the server hangs up.
  EXPECT_EQ(WaitDisconnected(), "k-2");
}

TEST_F(WorkerSocketTest, ARedialReplacesTheOldConnection) {
  StartServer();
  Client first(Path());
  first.Send(Hello("k-3", "good"));
  ASSERT_EQ((*first.Receive())["type"], "welcome");
  Client second(Path());
  second.Send(Hello("k-3", "good"));
  ASSERT_EQ((*second.Receive())["type"], "welcome");
  // The old connection is closed and reported before the new hello is handled.
  EXPECT_FALSE(first.Receive().has_value());
  EXPECT_EQ(WaitDisconnected(), "k-3");
}

TEST_F(WorkerSocketTest, RequestsReachTheWorkerAndRepliesComeBackByIdOrFailOnHangUp) {
  StartServer();
  auto client = std::make_unique<Client>(Path());
  Client& c = *client;
  c.Send(Hello("k-4", "good"));
  ASSERT_EQ((*c.Receive())["type"], "welcome");
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> replies;
  auto record = [&](Result<std::string> reply) {
    std::lock_guard<std::mutex> lock(mu);
    replies.push_back(reply.ok() ? *reply : "lost: " + reply.status().message());
    cv.notify_all();
  };
  auto request = [&](const std::string& worker, const std::string& id) {
    std::promise<Status> sent;
    boost::asio::post(io_, [&] {
      sent.set_value(server_->Request(worker, id,
                                      R"({"type":"request","id":")" + id +
                                          R"(","method":"ping","params":{}})",
                                      record));
    });
    return sent.get_future().get();
  };
  EXPECT_EQ(request("nobody", "r0").code(), StatusCode::kUnavailable);
  ASSERT_TRUE(request("k-4", "r1").ok());
  ASSERT_TRUE(request("k-4", "r2").ok());
  auto first = c.Receive();
  auto second = c.Receive();
  ASSERT_TRUE(first && second);
  EXPECT_EQ((*first)["id"], "r1");
  EXPECT_EQ((*second)["method"], "ping");
  // Replies out of order are matched by id; an unknown id is ignored.
  c.Send(R"({"type":"reply","id":"r2","result":{"pong":2}})");
  c.Send(R"({"type":"reply","id":"zz","result":{}})");
  c.Send(R"({"type":"reply","id":"r1","result":{"pong":1}})");
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return replies.size() == 2; }));
    EXPECT_NE(replies[0].find("\"pong\":2"), std::string::npos);
    EXPECT_NE(replies[1].find("\"pong\":1"), std::string::npos);
  }
  ASSERT_TRUE(request("k-4", "r3").ok());
  ASSERT_TRUE(c.Receive().has_value());
  client.reset();  // hangs up with r3 unanswered
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return replies.size() == 3; }));
  EXPECT_EQ(replies[2].rfind("lost: ", 0), 0u) << replies[2];
}

TEST_F(WorkerSocketTest, LargeRequestsAndRepliesGoThroughWhole) {
  StartServer();
  Client c(Path());
  c.Send(Hello("k-5", "good"));
  ASSERT_EQ((*c.Receive())["type"], "welcome");
  std::string rows = "\"" + std::string(3 << 20, 'r') + "\"";  // a 3 MiB JSON string
  std::string request =
      R"({"type":"request","id":"big","method":"predict","params":{"n":)" + rows + "}}";
  // Shared: the handler may run at teardown, after a failed assertion left the test.
  auto replied = std::make_shared<std::promise<std::string>>();
  std::promise<Status> sent;
  boost::asio::post(io_, [&, replied] {
    sent.set_value(server_->Request("k-5", "big", request, [replied](Result<std::string> reply) {
      replied->set_value(reply.ok() ? *reply : "lost: " + reply.status().message());
    }));
  });
  ASSERT_TRUE(sent.get_future().get().ok());
  auto received = c.Receive();
  ASSERT_TRUE(received.has_value());
  EXPECT_EQ((*received)["params"]["n"].get<std::string>().size() + 2, rows.size());
  // The big reply, then a heartbeat in the same write: both are taken apart.
  std::string reply = R"({"type":"reply","id":"big","result":{"predictions":)" + rows + "}}";
  c.SendRaw(*EncodeFrame(reply) + *EncodeFrame(R"({"type":"heartbeat","ts":1})"));
  auto answer = replied->get_future();
  ASSERT_EQ(answer.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(answer.get() == reply);  // not EXPECT_EQ: no 3 MiB diff on failure

  std::promise<Status> too_big;
  boost::asio::post(io_, [&] {
    too_big.set_value(server_->Request("k-5", "huge", std::string(kMaxFrameBytes + 1, ' '),
                                       [](Result<std::string>) {}));
  });
  EXPECT_EQ(too_big.get_future().get().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gsk::relay
