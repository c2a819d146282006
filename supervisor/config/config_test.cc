#include "supervisor/config/config.h"

#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

namespace gsk::config {
namespace {

TEST(ConfigTest, DefaultsAreSafe) {
  Config c;
  EXPECT_EQ(c.server.listen, "127.0.0.1:40051");
  EXPECT_EQ(c.server.admin_socket_mode, 0600u);
  EXPECT_FALSE(c.kernels.parse.allow_pip_options);
  EXPECT_FALSE(c.kernels.parse.allow_direct_urls);
  EXPECT_FALSE(c.kernels.parse.allow_local_paths);
}

TEST(ConfigTest, ReadsEverySection) {
  auto c = LoadTomlString(R"(
[server]
listen = "127.0.0.1:0"
admin_socket_mode = "0660"
max_body_bytes = 2048
[state]
dir = "/tmp/x"
[python]
interpreters = ["/usr/bin/python3.11"]
[packages]
index_url = "http://127.0.0.1:8080/simple"
find_links = ["/srv/wheels"]
offline = true
[limits]
max_kernels = 10
[builds]
timeout_seconds = 60
max_concurrent = 1
disk_budget_mb = 100
[log]
level = "debug"
)",
                          "test.toml", Config{});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server.listen, "127.0.0.1:0");
  EXPECT_EQ(c->server.admin_socket_mode, 0660u);
  EXPECT_EQ(c->server.http.max_body_bytes, 2048u);
  EXPECT_EQ(c->state_dir, "/tmp/x");
  EXPECT_EQ(c->python_interpreters.size(), 1u);
  EXPECT_TRUE(c->packages.index.offline);
  EXPECT_EQ(c->kernels.max_kernels, 10);
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->builds.timeout_seconds, 60);
  EXPECT_EQ(c->builds.max_concurrent, 1);
  EXPECT_EQ(c->builds.disk_budget_mb, 100);
  EXPECT_NE(c->IndexFingerprint(), Config{}.IndexFingerprint());
}

TEST(ConfigTest, ErrorsNameTheKeyAndFile) {
  struct Case {
    const char* toml;
    const char* fragment;
  } cases[] = {
      {"[server]\nlisten = 5\n", "test.toml: [server] listen: expected a string"},
      {"[server]\nlisen = \"x\"\n", "[server] lisen: unknown key"},
      {"[servr]\n", "unknown section or key \"servr\""},
      {"[server]\nmax_body_bytes = 1\n", "max_body_bytes: must be between"},
      {"[server]\nadmin_socket_mode = \"0044\"\n", "admin_socket_mode"},
      {"[packages]\nfind_links = \"x\"\n", "expected an array of strings"},
      {"[server\n", "test.toml:1:"},
      {"[server]\ntls_certificate = \"/c.pem\"\n", "tls_private_key: set both"},
      {"[server]\ntls_private_key = \"/k.pem\"\n", "tls_certificate: set both"},
  };
  for (const auto& tc : cases) {
    auto c = LoadTomlString(tc.toml, "test.toml", Config{});
    ASSERT_FALSE(c.ok()) << tc.toml;
    EXPECT_NE(c.status().message().find(tc.fragment), std::string::npos)
        << c.status().message();
  }
}

TEST(ConfigTest, ResolveValidatesListenAndLevel) {
  Config c;
  c.state_dir = "/tmp/gsk-state";
  c.server.listen = "localhost";
  EXPECT_FALSE(Resolve(c).ok());
  c.server.listen = "127.0.0.1:40051";
  c.log_level = "loud";
  EXPECT_FALSE(Resolve(c).ok());
  c.log_level = "info";
  auto r = Resolve(c);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->DatabasePath(), "/tmp/gsk-state/supervisor.db");
  c.server.admin_socket = "/tmp/" + std::string(120, 'a');
  EXPECT_FALSE(Resolve(c).ok());
}

// packaging/config.toml documents every key as a commented "# key = value" line: with all of
// them uncommented, the real parser must accept the file (so the docs cannot drift).
TEST(ConfigTest, ShippedConfigLoadsWithEveryDocumentedKey) {
  std::ifstream in(std::string(GSK_SOURCE_DIR) + "/packaging/config.toml");
  ASSERT_TRUE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  auto shipped = LoadTomlString(text.str(), "config.toml", Config{});
  ASSERT_TRUE(shipped.ok()) << shipped.status().ToString();
  std::string full = std::regex_replace(text.str(), std::regex("(^|\n)# ([a-z_]+ = )"), "$1$2");
  ASSERT_NE(full, text.str());
  auto uncommented = LoadTomlString(full, "config.toml", Config{});
  ASSERT_TRUE(uncommented.ok()) << uncommented.status().ToString();
  EXPECT_EQ(uncommented->builds.timeout_seconds, Config{}.builds.timeout_seconds);
  EXPECT_EQ(uncommented->kernels.max_kernels, Config{}.kernels.max_kernels);
}

TEST(ConfigTest, ParsesHostPort) {
  auto hp = ParseHostPort("[::1]:8080");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, 8080);
  EXPECT_FALSE(ParseHostPort("127.0.0.1:70000").ok());
  EXPECT_FALSE(ParseHostPort(":80").ok());
  EXPECT_FALSE(ParseHostPort("127.0.0.1:8a").ok());
}

}  // namespace
}  // namespace gsk::config

namespace gsk::config {
namespace {

TEST(ConfigTest, ReadsTheWorkersSectionWithFractionalSeconds) {
  auto c = LoadTomlString(R"(
[workers]
socket = "/run/x/workers.sock"
registration_timeout_seconds = 2.5
start_seconds = 0
backoff_initial_seconds = 0.1
backoff_max_seconds = 3
max_quick_failures = 4
stop_timeout_seconds = 1
reconnect_seconds = 90
heartbeat_seconds = 0.5
memory_limit_mb = 512
open_files = 1024
max_processes = 64
log_rotate_bytes = 0
)",
                          "t.toml", Config{});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->workers.socket, "/run/x/workers.sock");
  EXPECT_EQ(c->workers.registration_deadline.count(), 2500);
  EXPECT_EQ(c->workers.start_seconds.count(), 0);
  EXPECT_EQ(c->workers.backoff_initial.count(), 100);
  EXPECT_EQ(c->workers.backoff_max.count(), 3000);
  EXPECT_EQ(c->workers.max_quick_failures, 4);
  EXPECT_EQ(c->workers.heartbeat.count(), 500);
  EXPECT_EQ(c->workers.memory_limit_mb, 512);
  EXPECT_EQ(c->workers.log_rotate_bytes, 0);
}

TEST(ConfigTest, BadWorkerSettingsNameTheKey) {
  for (const char* text : {"[workers]\nstop_timeout_seconds = \"10\"\n",
                           "[workers]\nheartbeat_seconds = 0\n",
                           "[workers]\nbackoff_initial_seconds = 5\nbackoff_max_seconds = 1\n",
                           "[workers]\nmax_quick_failures = 0\n", "[workers]\nrestarts = 3\n"}) {
    auto c = LoadTomlString(text, "t.toml", Config{});
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_NE(c.status().message().find("t.toml: [workers] "), std::string::npos)
        << c.status().message();
  }
  Config long_socket;
  long_socket.state_dir = "/tmp";
  long_socket.workers.socket = "/tmp/" + std::string(120, 'x');
  auto r = Resolve(long_socket);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("[workers] socket"), std::string::npos);
}

}  // namespace
}  // namespace gsk::config
