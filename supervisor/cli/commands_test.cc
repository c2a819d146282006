// The client subcommands end to end through CLI11 parsing, against a real HTTP server on a Unix
// socket or 127.0.0.1, with an injected environment and captured output.
#include "supervisor/cli/commands.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "supervisor/cli/client_commands.h"
#include "supervisor/cli/commands_test_fixture.h"

namespace gsk::cli {
namespace {

using nlohmann::json;
using testing::CannedReply;
using testing::CommandsTest;
using testing::SeenRequest;
using testing::TcpHttpServer;
using testing::TempDir;
using testing::UnixHttpServer;

const char* kKernel = R"({"name":"demo","pythonVersion":"3.11","type":"PROCESS",
  "requestedDependencies":["numpy<2"],"frozenDependencies":"","workers":1,"env":{},
  "status":"pending","envHash":"abcdef0123456789","updatedAt":"2026-11-22T07:37:34.123Z"})";

TEST_F(CommandsTest, ListPrintsATableOverTheSocketGivenAfterTheSubcommand) {
  UnixHttpServer server({Socket()}, [](const SeenRequest&) {
    return CannedReply{200, std::string(R"({"count":1,"kernels":[)") + kKernel + "]}"};
  });
  EXPECT_EQ(Run("kernels list --socket " + Socket()), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "NAME  TYPE     PYTHON  STATUS   WORKERS  DEPS  ENV-HASH      UPDATED\n"
            "demo  PROCESS  3.11    pending        1     1  abcdef012345  2026-11-22 07:37:34Z\n");
  const auto& seen = server.Finish();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].target, "/api/v1/kernels");
}

TEST_F(CommandsTest, EmptyListSaysHowToCreateAKernel) {
  vars_["GISKARD_SUPERVISOR_SOCKET"] = Socket();
  UnixHttpServer server({Socket()}, [](const SeenRequest&) {
    return CannedReply{200, R"({"count":0,"kernels":[]})"};
  });
  EXPECT_EQ(Run("kernels list"), kExitOk);
  EXPECT_EQ(out_.str(),
            "no kernels; create one with: giskard-supervisor kernels create NAME "
            "--python 3.11 -r requirements.txt\n");
  EXPECT_EQ(Run("kernels list --json"), kExitOk);
  EXPECT_EQ(json::parse(out_.str()), json::parse(R"({"count":0,"kernels":[]})"));
}

TEST_F(CommandsTest, ShowOverTcpSendsTheTokenGivenBeforeTheSubcommand) {
  TcpHttpServer server(testing::Loopback(), [](const SeenRequest&) {
    return CannedReply{200, kKernel};
  });
  std::string url = "http://127.0.0.1:" + std::to_string(server.local_endpoint().port());
  EXPECT_EQ(Run("--url " + url + " --token s3cret kernels show demo"), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("name:       demo\n"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("requested dependencies (1):\n  numpy<2\n"), std::string::npos);
  const auto& seen = server.Finish();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].target, "/api/v1/kernels/demo");
  EXPECT_EQ(seen[0].authorization, "Bearer s3cret");
}

TEST_F(CommandsTest, CreatePostsTheDocumentBuiltFromFlagsAndPrintsWarnings) {
  files_["req.txt"] = "numpy<2\n# comment\n\npandas\n";
  UnixHttpServer server({Socket()}, [](const SeenRequest&) {
    json k = json::parse(kKernel);
    k["warnings"] = {"unknown field \"foo\" kept as is"};
    return CannedReply{201, k.dump()};
  });
  EXPECT_EQ(Run("kernels create demo --python 3.11 -r req.txt --requirement scikit-learn "
                "--env A=1 --workers 2 --type unmanaged --socket " +
                Socket()),
            kExitOk)
      << err_.str();
  EXPECT_NE(out_.str().find("created kernel demo\n"), std::string::npos) << out_.str();
  EXPECT_EQ(err_.str(), "warning: unknown field \"foo\" kept as is\n");
  const auto& seen = server.Finish();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/api/v1/kernels");
  EXPECT_EQ(json::parse(seen[0].body), json::parse(R"({"name":"demo","pythonVersion":"3.11",
      "requestedDependencies":["numpy<2","pandas","scikit-learn"],"type":"UNMANAGED",
      "workers":2,"env":{"A":"1"}})"));
}

TEST_F(CommandsTest, CreateFromDocumentOverridesTheName) {
  files_["kernel.json"] = R"({"name":"old","pythonVersion":"3.10","foo":1})";
  UnixHttpServer server({Socket()}, [](const SeenRequest&) { return CannedReply{200, kKernel}; });
  EXPECT_EQ(Run("kernels create -f kernel.json renamed --socket " + Socket()), kExitOk);
  EXPECT_NE(out_.str().find("already exists with this document"), std::string::npos);
  const auto& seen = server.Finish();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(json::parse(seen[0].body),
            json::parse(R"({"name":"renamed","pythonVersion":"3.10","foo":1})"));
}

TEST_F(CommandsTest, CreateUsageErrorsSendNothing) {
  EXPECT_EQ(Run("kernels create demo --python 3.11 -r missing.txt --socket /nonexistent.sock"),
            kExitUsage);
  EXPECT_EQ(err_.str(),
            "error: cannot read requirements file: missing.txt: No such file or directory\n");
  EXPECT_EQ(Run("kernels create demo --socket /nonexistent.sock"), kExitUsage);
  EXPECT_NE(err_.str().find("--python"), std::string::npos);
  EXPECT_EQ(Run("kernels create -f missing.json --socket /nonexistent.sock"), kExitUsage);
  EXPECT_EQ(Run("kernels create -f k.json --python 3.11"), kExitUsage);  // CLI11: excludes
  EXPECT_EQ(Run("kernels create demo --python 3.11 --type DOCKER"), kExitUsage);
  files_["bad.json"] = "{not json";
  EXPECT_EQ(Run("kernels create -f bad.json name --socket /nonexistent.sock"), kExitInvalidInput);
}

TEST_F(CommandsTest, ServerErrorsMapToExitCodes) {
  int status = 0;
  std::string body;
  UnixHttpServer server({Socket()}, [&](const SeenRequest&) { return CannedReply{status, body}; });
  vars_["GISKARD_SUPERVISOR_SOCKET"] = Socket();
  status = 404;
  body = R"({"error":{"code":"NOT_FOUND","message":"kernel \"x\" not found"}})";
  EXPECT_EQ(Run("kernels delete x"), kExitNotFound);
  EXPECT_EQ(err_.str(), "error: kernel \"x\" not found\n");
  status = 422;
  body = R"({"error":{"code":"INVALID_ARGUMENT","message":"bad python",
             "details":{"field":"pythonVersion"}}})";
  EXPECT_EQ(Run("kernels create k --python 3.99"), kExitInvalidInput);
  EXPECT_EQ(err_.str(), "error: bad python\nfield: pythonVersion\n");
  status = 409;
  body = R"({"error":{"code":"ALREADY_EXISTS","message":"kernel k exists"}})";
  EXPECT_EQ(Run("kernels create k --python 3.11"), kExitConflict);
  status = 500;
  body = R"({"error":{"code":"INTERNAL","message":"disk on fire"}})";
  EXPECT_EQ(Run("status"), kExitInternal);
}

TEST_F(CommandsTest, AuthenticationFailureSaysWhereTheTokenCameFrom) {
  TcpHttpServer server(testing::Loopback(), [](const SeenRequest&) {
    return CannedReply{401, R"({"error":{"code":"UNAUTHENTICATED","message":"bad token"}})"};
  });
  vars_["GISKARD_SUPERVISOR_URL"] =
      "http://127.0.0.1:" + std::to_string(server.local_endpoint().port());
  vars_["GISKARD_SUPERVISOR_TOKEN"] = "wrong";
  EXPECT_EQ(Run("kernels list"), kExitUnauthenticated);
  EXPECT_NE(err_.str().find("error: bad token\n"), std::string::npos);
  EXPECT_NE(err_.str().find("token from $GISKARD_SUPERVISOR_TOKEN"), std::string::npos);
  EXPECT_NE(err_.str().find("api-token"), std::string::npos);
}

TEST_F(CommandsTest, UnreachableDaemonNamesTheSocketAndTheWayOut) {
  EXPECT_EQ(Run("status --socket " + Socket()), kExitUnreachable);
  EXPECT_NE(err_.str().find(Socket()), std::string::npos) << err_.str();
  EXPECT_NE(err_.str().find("giskard-supervisor serve"), std::string::npos);
  EXPECT_NE(err_.str().find("--url"), std::string::npos);
  EXPECT_NE(err_.str().find("--socket"), std::string::npos);
}

TEST_F(CommandsTest, DefaultSearchListsEveryPathTried) {
  vars_["HOME"] = "/home/nobody-here";
  EXPECT_EQ(Run("kernels list"), kExitUnreachable);
  EXPECT_NE(err_.str().find("looked for the admin socket at: /run/giskard-supervisor/admin.sock, "
                            "/home/nobody-here/.local/state/giskard-supervisor/admin.sock"),
            std::string::npos)
      << err_.str();
}

TEST_F(CommandsTest, StatusPrintsKeyValues) {
  UnixHttpServer server({Socket()}, [](const SeenRequest&) {
    return CannedReply{200, R"({"version":"9.9.9","pid":7,"kernels":2})"};
  });
  EXPECT_EQ(Run("--state-dir " + dir_.path().string() + " status"), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "daemon: reachable at unix socket " + Socket() +
                            "\nversion: 9.9.9\npid:     7\nkernels: 2\n");
}

TEST_F(CommandsTest, VersionWorksWithAndWithoutADaemon) {
  EXPECT_EQ(Run("version --socket " + Socket()), kExitOk);
  EXPECT_NE(out_.str().find(std::string("client: ") + GSK_VERSION + "\n"), std::string::npos);
  EXPECT_NE(out_.str().find("daemon: not reachable"), std::string::npos) << out_.str();
  EXPECT_EQ(Run("version --url https://nope"), kExitOk);
  EXPECT_NE(out_.str().find("daemon: not reachable (invalid --url"), std::string::npos);

  UnixHttpServer server({Socket()}, [](const SeenRequest&) {
    return CannedReply{200, R"({"version":"9.9.9"})"};
  });
  EXPECT_EQ(Run("version --json --socket " + Socket()), kExitOk);
  json v = json::parse(out_.str());
  EXPECT_EQ(v["client"]["version"], GSK_VERSION);
  EXPECT_EQ(v["daemon"]["version"], "9.9.9");
  EXPECT_EQ(v["daemon"]["reachable"], true);
}

TEST_F(CommandsTest, ClientOptionsWithoutAClientCommandAreRefused) {
  // Another component's subcommand with its own --state-dir, like `serve`.
  CLI::App app{"test"};
  app.require_subcommand(1);
  std::string serve_state_dir;
  bool served = false;
  CLI::App* serve = app.add_subcommand("serve");
  serve->add_option("--state-dir", serve_state_dir);
  serve->callback([&] { served = true; });
  int exit_code = -1;
  AddClientCommands(app, &exit_code, CommandEnv{});
  EXPECT_THROW(app.parse("--state-dir /x serve", false), CLI::ValidationError);
  EXPECT_FALSE(served);
  app.parse("serve --state-dir /y", false);
  EXPECT_TRUE(served);
  EXPECT_EQ(serve_state_dir, "/y");
}

TEST_F(CommandsTest, MissingSubcommandIsAUsageError) {
  EXPECT_EQ(Run("kernels"), kExitUsage);
  EXPECT_EQ(Run("kernels show"), kExitUsage);
}

}  // namespace
}  // namespace gsk::cli
