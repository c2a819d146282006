#include "supervisor/cli/connection.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace gsk::cli {
namespace {

struct FakeHost {
  std::map<std::string, std::string> vars;
  std::set<std::string> existing;
  std::map<std::string, std::string> files;

  HostEnvironment Env() const {
    HostEnvironment env;
    env.getenv = [this](const std::string& name) -> std::optional<std::string> {
      auto it = vars.find(name);
      if (it == vars.end() || it->second.empty()) return std::nullopt;
      return it->second;
    };
    env.exists = [this](const std::string& path) { return existing.count(path) > 0; };
    env.read_file = [this](const std::string& path) -> std::optional<std::string> {
      auto it = files.find(path);
      if (it == files.end()) return std::nullopt;
      return it->second;
    };
    return env;
  }
};

ConnectionFlags MakeFlags(std::map<std::string, std::string> m) {
  ConnectionFlags f;
  f.url = m["url"];
  f.token = m["token"];
  f.token_file = m["token_file"];
  f.socket = m["socket"];
  f.state_dir = m["state_dir"];
  return f;
}

ConnectionTarget Select(const ConnectionFlags& flags, const FakeHost& host) {
  auto t = SelectConnection(flags, host.Env());
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? *t : ConnectionTarget{};
}

TEST(ConnectionTest, UrlFlagBeatsEverythingElse) {
  FakeHost host;
  host.vars = {{"GISKARD_SUPERVISOR_URL", "http://env:1"}, {"GISKARD_SUPERVISOR_SOCKET", "/s"}};
  ConnectionFlags flags =
      MakeFlags({{"url", "http://flag:2"}, {"socket", "/sock"}, {"state_dir", "/state"}});
  ConnectionTarget t = Select(flags, host);
  EXPECT_EQ(t.kind, ConnectionTarget::Kind::kTcp);
  EXPECT_EQ(t.url.host, "flag");
  EXPECT_EQ(t.url.port, 2);
  EXPECT_EQ(t.chosen_by, "--url");
}

TEST(ConnectionTest, UrlFromEnvironmentBeatsSocketFlag) {
  FakeHost host;
  host.vars = {{"GISKARD_SUPERVISOR_URL", "http://env:1"}};
  ConnectionTarget t = Select(MakeFlags({{"socket", "/sock"}}), host);
  EXPECT_EQ(t.kind, ConnectionTarget::Kind::kTcp);
  EXPECT_EQ(t.url.host, "env");
  EXPECT_EQ(t.chosen_by, "$GISKARD_SUPERVISOR_URL");
}

TEST(ConnectionTest, TokenPrecedence) {
  FakeHost host;
  host.vars = {{"GISKARD_SUPERVISOR_TOKEN", "from-env"}};
  host.files = {{"/tok", "from-file\n"}, {"/state/api-token", "from-state\n"}};
  ConnectionFlags flags = MakeFlags({{"url", "http://h:1"},
                                     {"token", "from-flag"},
                                     {"token_file", "/tok"},
                                     {"state_dir", "/state"}});
  EXPECT_EQ(Select(flags, host).token, "from-flag");
  flags.token.clear();
  EXPECT_EQ(Select(flags, host).token, "from-env");
  host.vars.clear();
  ConnectionTarget t = Select(flags, host);
  EXPECT_EQ(t.token, "from-file");
  EXPECT_EQ(t.token_source, "--token-file /tok");
  flags.token_file.clear();
  t = Select(flags, host);
  EXPECT_EQ(t.token, "from-state");
  EXPECT_EQ(t.token_source, "/state/api-token");
  host.files.clear();
  t = Select(flags, host);
  EXPECT_EQ(t.token, "");
  EXPECT_EQ(t.token_source, "");
}

TEST(ConnectionTest, TokenFromDefaultStateDirs) {
  FakeHost host;
  host.vars = {{"HOME", "/home/u"}};
  host.files = {{"/home/u/.local/state/giskard-supervisor/api-token", "t1"},
                {"/var/lib/giskard-supervisor/api-token", "t2"}};
  EXPECT_EQ(Select(MakeFlags({{"url", "http://h:1"}}), host).token, "t1");
  host.files.erase(host.files.begin());
  EXPECT_EQ(Select(MakeFlags({{"url", "http://h:1"}}), host).token, "t2");
}

TEST(ConnectionTest, UnreadableTokenFileIsAUsageError) {
  FakeHost host;
  auto t =
      SelectConnection(MakeFlags({{"url", "http://h:1"}, {"token_file", "/missing"}}), host.Env());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("/missing"), std::string::npos);
}

TEST(ConnectionTest, SocketFlagThenEnvThenStateDir) {
  FakeHost host;
  host.vars = {{"GISKARD_SUPERVISOR_SOCKET", "/env.sock"}};
  ConnectionFlags flags = MakeFlags({{"socket", "/flag.sock"}, {"state_dir", "/state"}});
  ConnectionTarget t = Select(flags, host);
  EXPECT_EQ(t.kind, ConnectionTarget::Kind::kUnix);
  EXPECT_EQ(t.socket_path, "/flag.sock");
  flags.socket.clear();
  EXPECT_EQ(Select(flags, host).socket_path, "/env.sock");
  host.vars.clear();
  EXPECT_EQ(Select(flags, host).socket_path, "/state/admin.sock");
  EXPECT_EQ(Select(flags, host).token, "");  // never a token over the socket
}

TEST(ConnectionTest, DefaultSearchTakesFirstExistingSocket) {
  FakeHost host;
  host.vars = {
      {"STATE_DIRECTORY", "/var/lib/gs:/other"}, {"XDG_STATE_HOME", "/x"}, {"HOME", "/home/u"}};
  std::vector<std::string> expected = {"/run/giskard-supervisor/admin.sock",
                                       "/var/lib/gs/admin.sock", "/x/giskard-supervisor/admin.sock",
                                       "/home/u/.local/state/giskard-supervisor/admin.sock"};
  EXPECT_EQ(DefaultSocketCandidates(host.Env()), expected);
  host.existing = {expected[2], expected[3]};
  ConnectionTarget t = Select({}, host);
  EXPECT_EQ(t.socket_path, expected[2]);
  EXPECT_EQ(t.tried, expected);
  host.existing.clear();
  EXPECT_EQ(Select({}, host).socket_path, expected[0]);  // none exists: the system one
}

TEST(ConnectionTest, ParsesUrls) {
  auto u = ParseHttpUrl("http://127.0.0.1:40051");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 40051);
  EXPECT_EQ(u->base_path, "");
  u = ParseHttpUrl("example.org/proxy/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "example.org");
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->base_path, "/proxy");
  u = ParseHttpUrl("http://[::1]:8080");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 8080);
  for (const char* bad : {"https://h:1", "ftp://h", "http://:80", "http://h:0", "http://h:x",
                          "http://h:70000", "http://[::1", "http://u@h:1"}) {
    EXPECT_FALSE(ParseHttpUrl(bad).ok()) << bad;
  }
}

TEST(ConnectionTest, BadUrlIsAUsageError) {
  FakeHost host;
  auto t = SelectConnection(MakeFlags({{"url", "https://h"}}), host.Env());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("https"), std::string::npos);
}

}  // namespace
}  // namespace gsk::cli
