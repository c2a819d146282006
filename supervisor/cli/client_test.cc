// HttpClient against a real HTTP server on a Unix socket and on 127.0.0.1.
#include "supervisor/cli/client.h"

#include <gtest/gtest.h>

#include "supervisor/cli/test_http_server.h"

namespace gsk::cli {
namespace {

using testing::CannedReply;
using testing::SeenRequest;
using testing::TcpHttpServer;
using testing::TempDir;
using testing::UnixHttpServer;

ConnectionTarget UnixTarget(const std::string& path) {
  ConnectionTarget t;
  t.kind = ConnectionTarget::Kind::kUnix;
  t.socket_path = path;
  t.token = "must-not-be-sent";
  return t;
}

ConnectionTarget TcpTarget(uint16_t port, std::string token, std::string base_path = "") {
  ConnectionTarget t;
  t.kind = ConnectionTarget::Kind::kTcp;
  t.url = {"127.0.0.1", port, std::move(base_path)};
  t.url_text = "http://127.0.0.1:" + std::to_string(port);
  t.token = std::move(token);
  return t;
}

ClientOptions Quick() {
  ClientOptions o;
  o.connect_timeout = std::chrono::milliseconds(2000);
  o.request_timeout = std::chrono::milliseconds(2000);
  return o;
}

TEST(HttpClientTest, TalksHttpOverTheUnixSocketWithoutToken) {
  TempDir dir;
  std::string path = (dir.path() / "admin.sock").string();
  UnixHttpServer server({path}, [](const SeenRequest&) {
    return CannedReply{201, R"({"name":"k"})"};
  });
  HttpClient client(UnixTarget(path), Quick());
  auto reply = client.Send("POST", "/api/v1/kernels", R"({"name":"k"})");
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->status, 201);
  EXPECT_EQ(reply->body, R"({"name":"k"})");
  EXPECT_EQ(reply->content_type, "application/json");
  const auto& seen = server.Finish();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/api/v1/kernels");
  EXPECT_EQ(seen[0].host, "localhost");
  EXPECT_EQ(seen[0].authorization, "");
  EXPECT_EQ(seen[0].content_type, "application/json");
  EXPECT_EQ(seen[0].body, R"({"name":"k"})");
}

TEST(HttpClientTest, SendsTheBearerTokenOverTcp) {
  TcpHttpServer server(testing::Loopback(), [](const SeenRequest&) {
    return CannedReply{200, R"({"kernels":[],"count":0})"};
  });
  uint16_t port = server.local_endpoint().port();
  HttpClient client(TcpTarget(port, "s3cret", "/prefix"), Quick());
  auto reply = client.Send("GET", "/api/v1/kernels");
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->status, 200);
  const auto& seen = server.Finish();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].target, "/prefix/api/v1/kernels");
  EXPECT_EQ(seen[0].host, "127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(seen[0].authorization, "Bearer s3cret");
  EXPECT_EQ(seen[0].content_type, "");
}

TEST(HttpClientTest, KeepsTheHeadersOfTheAnswer) {
  TempDir dir;
  std::string path = (dir.path() / "admin.sock").string();
  UnixHttpServer server({path}, [](const SeenRequest&) {
    return CannedReply{200,
                       "log text",
                       "text/plain; charset=utf-8",
                       {{"X-Next-Offset", "8"}, {"X-Build-Complete", "false"}}};
  });
  auto reply = HttpClient(UnixTarget(path), Quick()).Send("GET", "/api/v1/kernels/k/build-log");
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->body, "log text");
  EXPECT_EQ(reply->content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(reply->Header("x-next-offset"), "8");
  EXPECT_EQ(reply->Header("X-Build-Complete"), "false");
  EXPECT_EQ(reply->Header("X-Log-Size"), std::nullopt);
}

TEST(HttpClientTest, ReturnsErrorStatusesAsReplies) {
  TempDir dir;
  std::string path = (dir.path() / "admin.sock").string();
  UnixHttpServer server({path}, [](const SeenRequest&) {
    return CannedReply{404, R"({"error":{"code":"NOT_FOUND","message":"no kernel x"}})"};
  });
  auto reply = HttpClient(UnixTarget(path), Quick()).Send("GET", "/api/v1/kernels/x");
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->status, 404);
}

TEST(HttpClientTest, MissingSocketIsUnavailableAndNamesThePath) {
  TempDir dir;
  std::string path = (dir.path() / "nothing.sock").string();
  auto reply = HttpClient(UnixTarget(path), Quick()).Send("GET", "/api/v1/status");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(reply.status().message().find(path), std::string::npos);
  EXPECT_NE(reply.status().message().find("no socket file"), std::string::npos);
}

TEST(HttpClientTest, RefusedTcpConnectionIsUnavailable) {
  uint16_t port = 0;
  {  // a port that was free a moment ago; nothing listens on it any more
    TcpHttpServer server(testing::Loopback(), [](const SeenRequest&) { return CannedReply{}; });
    port = server.local_endpoint().port();
  }
  auto reply = HttpClient(TcpTarget(port, ""), Quick()).Send("GET", "/api/v1/status");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(reply.status().message().find("refused"), std::string::npos);
}

TEST(HttpClientTest, ADaemonThatNeverAnswersHitsTheDeadline) {
  TempDir dir;
  std::string path = (dir.path() / "admin.sock").string();
  UnixHttpServer server({path}, [](const SeenRequest&) { return std::nullopt; });
  ClientOptions options = Quick();
  options.request_timeout = std::chrono::milliseconds(100);
  auto reply = HttpClient(UnixTarget(path), options).Send("GET", "/api/v1/status");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(reply.status().message().find("100 ms"), std::string::npos);
}

TEST(HttpClientTest, EncodesPathSegments) {
  EXPECT_EQ(EncodePathSegment("fraud-model_1.0~x"), "fraud-model_1.0~x");
  EXPECT_EQ(EncodePathSegment("a b/c?d%"), "a%20b%2Fc%3Fd%25");
}

}  // namespace
}  // namespace gsk::cli
