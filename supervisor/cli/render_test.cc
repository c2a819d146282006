#include "supervisor/cli/render.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "supervisor/cli/client_commands.h"

namespace gsk::cli {
namespace {

using nlohmann::json;

const char* kKernel = R"({
  "name": "fraud-model", "pythonVersion": "3.11",
  "requestedDependencies": ["numpy<2,>=1.24", "scikit-learn==1.3.2"],
  "frozenDependencies": "joblib==1.3.2\nnumpy==1.26.4\nscikit-learn==1.3.2",
  "type": "PROCESS", "version": "2.14.0", "workers": 1,
  "env": {"OPENAI_API_KEY": "sk-****"}, "status": "pending",
  "envHash": "5f0c1234567890abcdef", "lastError": null, "generation": 1,
  "createdAt": "2026-11-22T07:37:34.123Z", "updatedAt": "2026-11-22T07:38:00.5Z",
  "hubId": 42})";

TEST(ExitCodeTest, MapsHttpStatuses) {
  EXPECT_EQ(ExitCodeForHttpStatus(200), kExitOk);
  EXPECT_EQ(ExitCodeForHttpStatus(201), kExitOk);
  for (int s : {400, 413, 415, 422}) EXPECT_EQ(ExitCodeForHttpStatus(s), kExitInvalidInput) << s;
  EXPECT_EQ(ExitCodeForHttpStatus(401), kExitUnauthenticated);
  EXPECT_EQ(ExitCodeForHttpStatus(403), kExitUnauthenticated);
  EXPECT_EQ(ExitCodeForHttpStatus(404), kExitNotFound);
  EXPECT_EQ(ExitCodeForHttpStatus(409), kExitConflict);
  EXPECT_EQ(ExitCodeForHttpStatus(429), kExitConflict);
  EXPECT_EQ(ExitCodeForHttpStatus(503), kExitUnreachable);
  for (int s : {302, 405, 500, 502}) EXPECT_EQ(ExitCodeForHttpStatus(s), kExitInternal) << s;
}

TEST(RenderTest, KernelTable) {
  json kernels = json::array({json::parse(kKernel),
                              {{"name", "b"},
                               {"type", "UNMANAGED"},
                               {"pythonVersion", "3.9"},
                               {"status", "ready"},
                               {"workers", 12},
                               {"requestedDependencies", json::array()}}});
  EXPECT_EQ(RenderKernelTable(kernels),
            "NAME         TYPE       PYTHON  STATUS   WORKERS          DEPS  ENV-HASH      "
            "UPDATED\n"
            "fraud-model  PROCESS    3.11    pending        1  2 (3 frozen)  5f0c12345678  "
            "2026-11-22 07:38:00Z\n"
            "b            UNMANAGED  3.9     ready         12             0  -             -\n");
}

TEST(RenderTest, KernelDetails) {
  EXPECT_EQ(RenderKernelDetails(json::parse(kKernel)),
            "name:       fraud-model\n"
            "type:       PROCESS\n"
            "python:     3.11\n"
            "version:    2.14.0\n"
            "status:     pending\n"
            "workers:    1\n"
            "env hash:   5f0c1234567890abcdef\n"
            "generation: 1\n"
            "created:    2026-11-22 07:37:34Z\n"
            "updated:    2026-11-22 07:38:00Z\n"
            "last error: -\n"
            "requested dependencies (2):\n"
            "  numpy<2,>=1.24\n"
            "  scikit-learn==1.3.2\n"
            "frozen dependencies (3):\n"
            "  joblib==1.3.2\n"
            "  numpy==1.26.4\n"
            "  scikit-learn==1.3.2\n"
            "env (1):\n"
            "  OPENAI_API_KEY=sk-****\n"
            "other fields (1):\n"
            "  hubId: 42\n");
}

TEST(RenderTest, KernelDetailsWithErrorAndNoDeps) {
  std::string out =
      RenderKernelDetails({{"name", "k"},
                           {"lastError", "pip failed: no matching distribution for nump"},
                           {"requestedDependencies", json::array()},
                           {"frozenDependencies", ""}});
  EXPECT_NE(out.find("last error: pip failed: no matching distribution for nump\n"),
            std::string::npos);
  EXPECT_NE(out.find("requested dependencies: none\n"), std::string::npos);
  EXPECT_NE(out.find("frozen dependencies: none\n"), std::string::npos);
  EXPECT_NE(out.find("env: none\n"), std::string::npos);
}

TEST(RenderTest, DaemonStatus) {
  json status = json::parse(R"({"version":"0.1.0","pid":1234,"startedAt":"2026-11-22T07:00:00Z",
      "uptimeSeconds":3725,"stateDir":"/var/lib/gs","listen":"127.0.0.1:40051",
      "adminSocket":"/run/gs/admin.sock","schemaVersion":1,"kernels":3,"future":true})");
  EXPECT_EQ(RenderDaemonStatus(status),
            "version:        0.1.0\n"
            "pid:            1234\n"
            "started:        2026-11-22 07:00:00Z\n"
            "uptime:         1h 2m 5s\n"
            "state dir:      /var/lib/gs\n"
            "listen:         127.0.0.1:40051\n"
            "admin socket:   /run/gs/admin.sock\n"
            "schema version: 1\n"
            "kernels:        3\n"
            "future:         true\n");
}

TEST(RenderTest, DaemonStatusWithInterpretersAndBuilds) {
  json status = json::parse(R"({"version":"0.1.0","kernels":2,"runningBuilds":1,"workers":4,
      "interpreters":[
        {"version":"3.11.2","path":"/usr/bin/python3.11","source":"system","usable":true},
        {"version":"3.7.17","path":"/opt/py37/bin/python3.7","source":"config","usable":false,
         "problem":"the worker shim needs Python 3.8 or later"}]})");
  EXPECT_EQ(RenderDaemonStatus(status),
            "version:        0.1.0\n"
            "kernels:        2\n"
            "workers:        4\n"
            "running builds: 1\n"
            "interpreters (2):\n"
            "  VERSION  PATH                     SOURCE  USABLE\n"
            "  3.11.2   /usr/bin/python3.11      system  yes\n"
            "  3.7.17   /opt/py37/bin/python3.7  config  no: the worker shim needs Python 3.8 or "
            "later\n");
  EXPECT_EQ(RenderDaemonStatus(json::parse(R"({"interpreters":[]})")),
            "interpreters: none found (install python3.X, or list its path in [python] "
            "interpreters in the config and restart the daemon)\n");
}

TEST(RenderTest, KernelDetailsShowTheBuildWhileItRuns) {
  json kernel = json::parse(kKernel);
  kernel["status"] = "building";
  kernel["build"] = {{"phase", "resolving"},
                     {"current", "numpy<2,>=1.24"},
                     {"collected", 2},
                     {"toInstall", 0},
                     {"installed", 0}};
  std::string out = RenderKernelDetails(kernel);
  EXPECT_NE(out.find("status:     building\n"
                     "build:      resolving numpy<2,>=1.24 (2 collected)\n"
                     "workers:    1\n"),
            std::string::npos)
      << out;
  EXPECT_TRUE(out.ends_with("other fields (1):\n  hubId: 42\n")) << out;  // not "build"
}

TEST(RenderTest, BuildStatusLine) {
  auto line = [](const char* status, json build) {
    json k = {{"status", status}};
    if (!build.is_null()) k["build"] = std::move(build);
    return BuildStatusLine(k);
  };
  EXPECT_EQ(line("pending", nullptr), "pending");
  EXPECT_EQ(line("pending", {{"phase", "queued"}}), "pending: queued (waiting for a build slot)");
  EXPECT_EQ(line("building", {{"phase", "creating-venv"}}), "building: creating the virtualenv");
  EXPECT_EQ(
      line("building", {{"phase", "resolving"}, {"current", "gsk-beta>=1.1"}, {"collected", 3}}),
      "building: resolving gsk-beta>=1.1 (3 collected)");
  EXPECT_EQ(line("building", {{"phase", "resolving"},
                              {"current", "/wheels/gsk_alpha-2.0.0-py3-none-any.whl"},
                              {"collected", 2}}),
            "building: resolving gsk_alpha-2.0.0-py3-none-any.whl (2 collected)");
  EXPECT_EQ(line("building", {{"phase", "resolving"}, {"current", ""}, {"collected", 0}}),
            "building: resolving (0 collected)");
  EXPECT_EQ(line("building", {{"phase", "installing"}, {"toInstall", 1}}),
            "building: installing 1 package");
  EXPECT_EQ(line("building", {{"phase", "installing"}, {"toInstall", 5}}),
            "building: installing 5 packages");
  EXPECT_EQ(line("building", {{"phase", "verifying"}}), "building: verifying");
  EXPECT_EQ(line("building", {{"phase", "something-new"}}), "building: something-new");
  EXPECT_EQ(BuildStatusLine(json::array()), "-");
}

TEST(RenderTest, ServerErrors) {
  EXPECT_EQ(RenderServerError(422,
                              R"({"error":{"code":"INVALID_ARGUMENT",
                   "message":"pythonVersion \"3.99\" is not available",
                   "details":{"field":"pythonVersion"}}})",
                              "unix socket /s"),
            "error: pythonVersion \"3.99\" is not available\nfield: pythonVersion\n");
  EXPECT_EQ(RenderServerError(404, R"({"error":{"code":"NOT_FOUND","message":"no kernel x"}})",
                              "unix socket /s"),
            "error: no kernel x\n");
  EXPECT_EQ(RenderServerError(502, "<html>Bad Gateway</html>", "http://h:1"),
            "error: HTTP 502 from http://h:1: <html>Bad Gateway</html>\n");
}

TEST(RenderTest, ShortTime) {
  EXPECT_EQ(ShortTime("2026-11-22T07:37:34.123Z"), "2026-11-22 07:37:34Z");
  EXPECT_EQ(ShortTime("2026-11-22T07:37:34Z"), "2026-11-22 07:37:34Z");
  EXPECT_EQ(ShortTime("yesterday"), "yesterday");
}

TEST(RenderTest, KernelDetailsShowWorkersWhenTheDaemonSupervisesThem) {
  json k = json::parse(kKernel);
  k["runningWorkers"] = 1;
  k["started"] = true;
  std::string text = RenderKernelDetails(k);
  EXPECT_NE(text.find("workers:    1\nrunning:    1\nstarted:    true\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("other fields (2)"), std::string::npos) << text;
}

}  // namespace
}  // namespace gsk::cli
