// `kernels logs`, `kernels rebuild` and `--wait` against a real HTTP server on a Unix socket that
// plays the daemon, its answers changing with each sleep of the fake clock (so a build "goes on"
// while the client waits, and no test waits for real).
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "supervisor/cli/commands_test_fixture.h"

namespace gsk::cli {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::CannedReply;
using testing::CommandsTest;
using testing::ReplyFn;
using testing::SeenRequest;
using testing::UnixHttpServer;

std::string Kernel(const std::string& status, json build = nullptr, json last_error = nullptr,
                   const std::string& type = "PROCESS") {
  json k = {{"name", "demo"},
            {"pythonVersion", "3.11"},
            {"type", type},
            {"status", status},
            {"lastError", last_error},
            {"envHash", "abc"},
            {"requestedDependencies", json::array({"gsk-beta>=1.1"})}};
  if (!build.is_null()) k["build"] = std::move(build);
  return k.dump();
}

json Build(const std::string& phase, const std::string& current = "", int collected = 0,
           int to_install = 0) {
  return {{"phase", phase},
          {"current", current},
          {"collected", collected},
          {"toInstall", to_install},
          {"installed", 0}};
}

uint64_t QueryNumber(const std::string& target, const std::string& key) {
  std::size_t at = target.find(key + "=");
  return at == std::string::npos ? 0 : std::stoull(target.substr(at + key.size() + 1));
}

// The build log as the daemon has it at some tick: the whole file, and whether the build ended.
struct LogState {
  std::string text;
  bool complete = false;
};

class BuildCommandsTest : public CommandsTest {
 protected:
  BuildCommandsTest() { vars_["GISKARD_SUPERVISOR_SOCKET"] = Socket(); }

  template <class T>
  const T& AtTick(const std::vector<T>& schedule) const {
    return schedule[std::min<std::size_t>(static_cast<std::size_t>(ticks()), schedule.size() - 1)];
  }

  // GET .../build-log answers from `logs` (by tick) as the daemon does, honoring offset and
  // limit; GET .../demo answers `kernel`.
  ReplyFn LogDaemon(std::vector<LogState> logs, std::string kernel) {
    return [this, logs, kernel](const SeenRequest& r) -> std::optional<CannedReply> {
      if (r.target.find("/build-log?") == std::string::npos) return CannedReply{200, kernel};
      const LogState& state = AtTick(logs);
      uint64_t offset = QueryNumber(r.target, "offset");
      uint64_t size = state.text.size();
      std::string chunk =
          offset >= size ? "" : state.text.substr(offset, QueryNumber(r.target, "limit"));
      uint64_t next = offset >= size ? size : offset + chunk.size();
      return CannedReply{200,
                         chunk,
                         "text/plain; charset=utf-8",
                         {{"X-Log-Size", std::to_string(size)},
                          {"X-Next-Offset", std::to_string(next)},
                          {"X-Build-Complete", state.complete ? "true" : "false"}}};
    };
  }

  // POST /api/v1/kernels answers 201 with states[0], POST .../rebuild 202 with states[0], GET
  // .../demo the state at the current tick.
  ReplyFn BuildDaemon(std::vector<std::string> states) {
    return [this, states](const SeenRequest& r) -> std::optional<CannedReply> {
      if (r.method == "POST")
        return CannedReply{r.target.ends_with("/rebuild") ? 202 : 201, states[0]};
      return CannedReply{200, AtTick(states)};
    };
  }
};

const char* kLog = "Collecting gsk-alpha==2.0.0\nInstalling collected packages: gsk-alpha\n";

TEST_F(BuildCommandsTest, LogsPagesThroughTheWholeLogWithoutWaiting) {
  log_chunk_bytes_ = 16;
  UnixHttpServer server({Socket()}, LogDaemon({{kLog, true}}, Kernel("ready")));
  EXPECT_EQ(Run("kernels logs demo"), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), kLog);
  EXPECT_EQ(err_.str(), "");
  EXPECT_TRUE(sleeps_.empty());
  const auto& seen = server.Finish();
  ASSERT_EQ(seen.size(), 5u);  // 69 bytes in pages of 16
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].target, "/api/v1/kernels/demo/build-log?offset=0&limit=16");
  EXPECT_EQ(seen[4].target, "/api/v1/kernels/demo/build-log?offset=64&limit=16");
}

TEST_F(BuildCommandsTest, LogsWithoutFollowPrintsWhatThereIsOfARunningBuild) {
  UnixHttpServer server({Socket()}, LogDaemon({{"Collecting x\n", false}}, Kernel("building")));
  EXPECT_EQ(Run("kernels logs demo"), kExitOk);
  EXPECT_EQ(out_.str(), "Collecting x\n");
  EXPECT_TRUE(sleeps_.empty());
  EXPECT_EQ(Run("kernels logs demo --json"), kExitOk);
  EXPECT_EQ(json::parse(out_.str()),
            json::parse(R"({"name":"demo","size":13,"complete":false,"text":"Collecting x\n"})"));
}

TEST_F(BuildCommandsTest, FollowWaitsForTheBuildAndStopsOnceCompleteAndRead) {
  log_chunk_bytes_ = 16;
  std::string log = kLog;
  // Nothing yet; the build starts; more output; the build ends with 30 bytes still unread.
  UnixHttpServer server({Socket()}, LogDaemon({{"", false},
                                               {log.substr(0, 10), false},
                                               {log.substr(0, 10), false},
                                               {log.substr(0, 40), false},
                                               {log, true}},
                                              Kernel("pending", Build("queued"))));
  EXPECT_EQ(Run("kernels logs demo -f"), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), log);
  EXPECT_EQ(err_.str(),
            "waiting for the build of kernel demo to start (pending: queued (waiting for a build "
            "slot))\n");
  EXPECT_EQ(sleeps_, std::vector<milliseconds>(4, milliseconds(250)));
  const auto& seen = server.Finish();
  EXPECT_EQ(seen.back().target, "/api/v1/kernels/demo/build-log?offset=56&limit=16");
}

TEST_F(BuildCommandsTest, FollowStartsOverWhenARebuildRestartsTheLog) {
  UnixHttpServer server(
      {Socket()}, LogDaemon({{"old build output\n", false}, {"new\n", true}}, Kernel("ready")));
  EXPECT_EQ(Run("kernels logs demo --follow"), kExitOk);
  EXPECT_EQ(out_.str(), "old build output\nnew\n");
  EXPECT_EQ(err_.str(), "--- the build log restarted: a new build began ---\n");
}

TEST_F(BuildCommandsTest, FollowJsonPrintsOneLinePerChunk) {
  UnixHttpServer server({Socket()}, LogDaemon({{"a\n", false}, {"a\nb\n", true}}, Kernel("ready")));
  EXPECT_EQ(Run("kernels logs demo -f --json"), kExitOk);
  EXPECT_EQ(out_.str(),
            "{\"offset\":0,\"text\":\"a\\n\"}\n{\"offset\":2,\"text\":\"b\\n\"}\n"
            "{\"complete\":true,\"name\":\"demo\",\"size\":4}\n");
}

TEST_F(BuildCommandsTest, FollowOfAnUnmanagedKernelDoesNotWait) {
  UnixHttpServer server({Socket()},
                        LogDaemon({{"", false}}, Kernel("pending", nullptr, nullptr, "UNMANAGED")));
  EXPECT_EQ(Run("kernels logs demo -f"), kExitOk);
  EXPECT_EQ(out_.str(), "");
  EXPECT_NE(err_.str().find("kernel demo is unmanaged"), std::string::npos) << err_.str();
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(BuildCommandsTest, LogsOfAnUnknownKernelExits4) {
  UnixHttpServer server({Socket()}, [](const SeenRequest&) {
    return CannedReply{404, R"({"error":{"code":"NOT_FOUND","message":"kernel \"x\" not found"}})"};
  });
  EXPECT_EQ(Run("kernels logs x -f"), kExitNotFound);
  EXPECT_EQ(err_.str(), "error: kernel \"x\" not found\n");
}

TEST_F(BuildCommandsTest, RebuildPrintsTheNewStatus) {
  UnixHttpServer server({Socket()}, BuildDaemon({Kernel("building", Build("creating-venv"))}));
  EXPECT_EQ(Run("kernels rebuild demo"), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "rebuilding kernel demo: building: creating the virtualenv\n"
            "follow it with: giskard-supervisor kernels logs demo -f\n");
  EXPECT_EQ(Run("kernels rebuild demo --json"), kExitOk);
  EXPECT_EQ(json::parse(out_.str())["status"], "building");
  const auto& seen = server.Finish();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/api/v1/kernels/demo/rebuild");
  EXPECT_EQ(seen[0].body, "");
  EXPECT_EQ(seen[0].content_type, "");
}

TEST_F(BuildCommandsTest, RebuildConflictExits5WithTheServersMessage) {
  UnixHttpServer server({Socket()}, [](const SeenRequest&) {
    return CannedReply{409, R"({"error":{"code":"FAILED_PRECONDITION",
        "message":"the environment is being built right now"}})"};
  });
  EXPECT_EQ(Run("kernels rebuild demo --wait"), kExitConflict);
  EXPECT_EQ(err_.str(), "error: the environment is being built right now\n");
  EXPECT_EQ(out_.str(), "");
}

TEST_F(BuildCommandsTest, CreateWaitShowsEachChangeThenHowLongItTook) {
  UnixHttpServer server(
      {Socket()}, BuildDaemon({Kernel("pending", Build("queued")),
                               Kernel("building", Build("resolving", "gsk-beta>=1.1", 3)),
                               Kernel("building", Build("resolving", "gsk-beta>=1.1", 3)),
                               Kernel("building", Build("installing", "", 5, 5)),
                               Kernel("building", Build("verifying", "", 5, 5)), Kernel("ready")}));
  EXPECT_EQ(Run("kernels create demo --python 3.11 --requirement gsk-beta>=1.1 --wait"), kExitOk)
      << err_.str();
  EXPECT_EQ(out_.str(), "created kernel demo\nready in 1.0 s\n");
  EXPECT_EQ(err_.str(),
            "pending: queued (waiting for a build slot)\n"
            "building: resolving gsk-beta>=1.1 (3 collected)\n"
            "building: installing 5 packages\n"
            "building: verifying\n");
  EXPECT_EQ(sleeps_, std::vector<milliseconds>(5, milliseconds(200)));
  const auto& seen = server.Finish();
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen[1].method, "GET");
  EXPECT_EQ(seen[1].target, "/api/v1/kernels/demo");
}

TEST_F(BuildCommandsTest, CreateFromDocumentWaitsToo) {
  files_["kernel.json"] = R"({"name":"demo","pythonVersion":"3.11"})";
  UnixHttpServer server({Socket()}, BuildDaemon({Kernel("building"), Kernel("ready")}));
  EXPECT_EQ(Run("kernels create -f kernel.json --wait --json"), kExitOk) << err_.str();
  EXPECT_EQ(json::parse(out_.str())["status"], "ready");  // only the final document
  EXPECT_EQ(err_.str(), "building\n");
}

TEST_F(BuildCommandsTest, WaitForAFailedBuildExits8WithTheReason) {
  UnixHttpServer server(
      {Socket()},
      BuildDaemon({Kernel("building", Build("resolving", "gsk-nope==9.9", 1)),
                   Kernel("failed", nullptr, "No matching distribution found for gsk-nope==9.9")}));
  EXPECT_EQ(Run("kernels rebuild demo --wait"), kExitBuildFailed);
  EXPECT_EQ(out_.str(), "rebuilding kernel demo\n");
  EXPECT_EQ(err_.str(),
            "building: resolving gsk-nope==9.9 (1 collected)\n"
            "failed: No matching distribution found for gsk-nope==9.9\n"
            "the whole pip output: giskard-supervisor kernels logs demo\n");
  EXPECT_EQ(Run("kernels rebuild demo --wait --json"), kExitBuildFailed);
  EXPECT_EQ(json::parse(out_.str())["lastError"],
            "No matching distribution found for gsk-nope==9.9");
}

TEST_F(BuildCommandsTest, WaitGivesUpAfterTheTimeout) {
  UnixHttpServer server({Socket()}, BuildDaemon({Kernel("building", Build("installing"))}));
  EXPECT_EQ(Run("kernels create demo --python 3.11 --wait --wait-timeout 1"), kExitInternal);
  EXPECT_EQ(sleeps_.size(), 5u);
  EXPECT_NE(err_.str().find("error: kernel demo is still building after 1 s (--wait-timeout)"),
            std::string::npos)
      << err_.str();
  EXPECT_NE(err_.str().find("kernels logs demo -f"), std::string::npos);
}

TEST_F(BuildCommandsTest, WaitReturnsAtOnceForUnmanagedKernelsAndReadyOnes) {
  UnixHttpServer server({Socket()},
                        BuildDaemon({Kernel("pending", nullptr, nullptr, "UNMANAGED")}));
  EXPECT_EQ(Run("kernels create demo --python 3.11 --type UNMANAGED --wait"), kExitOk);
  EXPECT_EQ(out_.str(), "created kernel demo\n");
  EXPECT_EQ(err_.str(), "kernel demo is unmanaged: there is no environment to wait for\n");
  server.Finish();
  UnixHttpServer cached({Socket() + "2"}, BuildDaemon({Kernel("ready")}));
  EXPECT_EQ(Run("kernels create demo --python 3.11 --wait --socket " + Socket() + "2"), kExitOk);
  EXPECT_EQ(out_.str(), "created kernel demo\nready in 0.0 s\n");
  EXPECT_TRUE(sleeps_.empty());
  EXPECT_EQ(cached.Finish().size(), 1u);
}

TEST_F(BuildCommandsTest, WaitTimeoutNeedsWaitAndAPositiveNumber) {
  EXPECT_EQ(Run("kernels rebuild demo --wait-timeout 5"), kExitUsage);
  EXPECT_EQ(Run("kernels rebuild demo --wait --wait-timeout 0"), kExitUsage);
  EXPECT_EQ(Run("kernels logs"), kExitUsage);
}

}  // namespace
}  // namespace gsk::cli
