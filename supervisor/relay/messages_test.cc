#include "supervisor/relay/messages.h"

#include "supervisor/relay/remote_workers.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace gsk::relay {
namespace {

using nlohmann::json;

std::string Example(const std::string& name) {
  std::ifstream in(std::string(GSK_PROTOCOL_EXAMPLES) + "/" + name);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_FALSE(text.str().empty()) << name;
  return text.str();
}

TEST(MessagesTest, ParsesTheExampleHello) {
  auto r = ParseHello(Example("hello.json"), 100);
  ASSERT_TRUE(r.ok()) << r.status().message();
  json hello = json::parse(Example("hello.json"));
  EXPECT_EQ(r->worker_id, hello["workerId"]);
  EXPECT_EQ(r->token, hello["token"]);
  EXPECT_EQ(r->pid, hello["env"]["pid"]);
  EXPECT_EQ(r->python_version, hello["env"]["pythonVersion"]);
  EXPECT_EQ(r->process_start_ticks, 9123456);  // 91234.56 s at 100 ticks per second
  EXPECT_EQ(json::parse(r->env_json), hello["env"]);
}

TEST(MessagesTest, ParsesTheReconnectHello) {
  auto r = ParseHello(Example("hello-reconnect.json"), 100);
  ASSERT_TRUE(r.ok()) << r.status().message();
}

TEST(MessagesTest, ParsesTheExampleUnmanagedHello) {
  RemoteHello r;
  r.remote = "10.0.0.7:5555";
  ASSERT_TRUE(ParseRemoteHello(Example("hello-unmanaged.json"), r).ok());
  json hello = json::parse(Example("hello-unmanaged.json"));
  EXPECT_EQ(r.worker_id, hello["workerId"]);
  EXPECT_EQ(r.name, hello["name"]);
  EXPECT_FALSE(r.reconnect);
  EXPECT_EQ(r.python_version, hello["env"]["pythonVersion"]);
  EXPECT_EQ(json::parse(r.env_json), hello["env"]);
  EXPECT_EQ(r.remote, "10.0.0.7:5555");  // left as it was
}

TEST(MessagesTest, AnUnmanagedHelloHasNoTokenForThisSocket) {
  auto r = ParseHello(Example("hello-unmanaged.json"), 100);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("token"), std::string::npos);
}

TEST(MessagesTest, MalformedHellosNameTheField) {
  json good = json::parse(Example("hello.json"));
  struct Case {
    std::string pointer;
    json value;
    std::string field;
  } cases[] = {
      {"/workerId", 7, "workerId"},
      {"/workerId", "", "workerId"},
      {"/token", nullptr, "token"},
      {"/env", "x", "env"},
      {"/env/pid", -1, "env.pid"},
      {"/env/pid", "12", "env.pid"},
      {"/env/processStartTime", "soon", "env.processStartTime"},
      {"/env/pythonVersion", 3.11, "env.pythonVersion"},
      {"/protocol", "1", "protocol"},
  };
  for (const Case& c : cases) {
    json doc = good;
    doc[json::json_pointer(c.pointer)] = c.value;
    auto r = ParseHello(doc.dump(), 100);
    ASSERT_FALSE(r.ok()) << c.pointer;
    EXPECT_NE(r.status().message().find(c.field), std::string::npos) << r.status().message();
  }
  json other = good;
  other["protocol"] = 2;
  auto r = ParseHello(other.dump(), 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(ParseHello("[1]", 100).ok());
  EXPECT_FALSE(ParseHello("not json", 100).ok());
  EXPECT_FALSE(ParseHello(Example("heartbeat.json"), 100).ok());
}

TEST(MessagesTest, OwnMessagesHaveTheExamplesShape) {
  json welcome = json::parse(WelcomeMessage(5, 1042));
  EXPECT_EQ(welcome, json::parse(Example("welcome.json")));
  json error = json::parse(ErrorMessage("AuthenticationFailed", "unknown worker id or token"));
  EXPECT_EQ(error, json::parse(Example("error.json")));
  json heartbeat = json::parse(HeartbeatMessage(1716285600.125));
  EXPECT_EQ(heartbeat, json::parse(Example("heartbeat.json")));
  EXPECT_EQ(*MessageType(Example("reply.json")), "reply");
  EXPECT_FALSE(MessageType(R"({"type":1})").ok());
}

}  // namespace
}  // namespace gsk::relay
