#include "supervisor/api/router.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fake_clock.h"
#include "base/fake_timers.h"
#include "supervisor/relay/remote_workers.h"
#include "supervisor/service/model_blobs.h"
#include "supervisor/envs/fake_environments.h"

namespace gsk::api {
namespace {

using nlohmann::json;
constexpr const char* kToken = "0123456789abcdef0123456789abcdef";
constexpr const char* kDoc =
    R"({"name":"my-kernel","pythonVersion":"3.11","requestedDependencies":["scikit-learn==1.3.2"],
        "frozenDependencies":"joblib==1.3.2\nscikit-learn==1.3.2","type":"PROCESS",
        "version":"2.14.0"})";

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gsk-router-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    auto store = store::Store::Open(dir_ / "supervisor.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    service_ = std::make_unique<service::KernelService>(*store_, clock_, envs_,
                                                        service::ServiceOptions{});
    ASSERT_TRUE(service_->Load().ok());
    system_ = std::make_unique<service::SystemService>(*store_, clock_, service::DaemonFacts{},
                                                       service::StatusSources{});
    keys_ = std::make_unique<service::KeyService>(*store_, clock_);
    RouterOptions options;
    options.api_token = kToken;
    router_ = std::make_unique<Router>(
        Services{service_.get(), nullptr, system_.get(), nullptr, keys_.get()}, options);
  }
  void TearDown() override {
    auto check = store_->IntegrityCheck();
    ASSERT_TRUE(check.ok());
    EXPECT_EQ(*check, "ok");
    router_.reset();
    keys_.reset();
    system_.reset();
    service_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  HttpResponse Call(std::string method, std::string target, std::string body = "",
                    std::string content_type = "application/json",
                    std::string auth = std::string("Bearer ") + kToken) {
    HttpRequest r{std::move(method), std::move(target), std::move(content_type), std::move(auth),
                  std::move(body), false, "", ""};
    return router_->HandleNow(r);
  }
  static json Body(const HttpResponse& r) { return json::parse(r.body); }
  static std::string Code(const HttpResponse& r) { return Body(r)["error"]["code"]; }
  int64_t KernelCount() { return store_->CountKernels().ok() ? *store_->CountKernels() : 99; }

  std::filesystem::path dir_;
  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  envs::FakeEnvironments envs_;
  std::unique_ptr<service::KernelService> service_;
  std::unique_ptr<service::SystemService> system_;
  std::unique_ptr<service::KeyService> keys_;
  std::unique_ptr<Router> router_;
};

TEST_F(RouterTest, HealthzNeedsNoToken) {
  HttpResponse r = Call("GET", "/healthz", "", "", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["status"], "ok");
  router_->SetDraining(true);
  EXPECT_EQ(Call("GET", "/healthz").status, 503);
}

TEST_F(RouterTest, CreateListShowDelete) {
  HttpResponse created = Call("POST", "/api/v1/kernels", kDoc);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(Body(created)["status"], "pending");
  EXPECT_EQ(Call("POST", "/api/v1/kernels", kDoc).status, 200);  // idempotent retry
  HttpResponse list = Call("GET", "/api/v1/kernels");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(Body(list)["count"], 1);
  EXPECT_EQ(Body(list)["kernels"][0]["name"], "my-kernel");
  HttpResponse show = Call("GET", "/api/v1/kernels/my-kernel");
  ASSERT_EQ(show.status, 200);
  EXPECT_EQ(Body(show)["frozenDependencies"], "joblib==1.3.2\nscikit-learn==1.3.2");
  EXPECT_EQ(Call("DELETE", "/api/v1/kernels/my-kernel").status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/kernels/my-kernel").status, 404);
}

TEST_F(RouterTest, TokenIsRequiredAndChecked) {
  for (const char* auth : {"", "Bearer wrong", "Basic abc", "Bearer ",
                           "bearer 0123456789abcdef0123456789abcdef"}) {
    HttpResponse r = Call("GET", "/api/v1/kernels", "", "", auth);
    EXPECT_EQ(r.status, 401) << auth;
    EXPECT_EQ(Code(r), "UNAUTHENTICATED");
    ASSERT_FALSE(r.headers.empty());
    EXPECT_EQ(r.headers[0].first, "WWW-Authenticate");
  }
  HttpRequest trusted{"GET", "/api/v1/kernels", "", "", "", true, "", ""};
  EXPECT_EQ(router_->HandleNow(trusted).status, 200);
}

TEST_F(RouterTest, BadRequestsGetTheRightStatusAndWriteNothing) {
  struct Case {
    std::string method, target, body, content_type;
    int status;
    std::string code;
  } cases[] = {
      {"POST", "/api/v1/kernels", R"({"name":"../x","pythonVersion":"3.11"})",
       "application/json", 422, "INVALID_ARGUMENT"},
      {"POST", "/api/v1/kernels",
       R"({"name":"x","pythonVersion":"3.11","requestedDependencies":["--index-url http://x"]})",
       "application/json", 422, "INVALID_ARGUMENT"},
      {"POST", "/api/v1/kernels", "{oops", "application/json", 400, "INVALID_JSON"},
      {"POST", "/api/v1/kernels", "[1,2]", "application/json", 400, "INVALID_JSON"},
      {"POST", "/api/v1/kernels", kDoc, "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"},
      {"POST", "/api/v1/kernels", kDoc, "", 415, "UNSUPPORTED_MEDIA_TYPE"},
      {"PATCH", "/api/v1/kernels", kDoc, "application/json", 405, "METHOD_NOT_ALLOWED"},
      {"POST", "/api/v1/kernels/x", kDoc, "application/json", 405, "METHOD_NOT_ALLOWED"},
      {"GET", "/api/v2/kernels", "", "", 404, "NOT_FOUND"},
      {"GET", "/nope", "", "", 404, "NOT_FOUND"},
      {"GET", "/api/v1/kernels/..", "", "", 400, "BAD_REQUEST"},
      {"GET", "/api/v1/kernels/%2e%2e%2fx", "", "", 404, "NOT_FOUND"},
      {"GET", "/api/v1/kernels/%zz", "", "", 400, "BAD_REQUEST"},  // not a valid target
      {"GET", "/api/v1/kernels/x?a=%", "", "", 400, "BAD_REQUEST"},
      {"GET", "/api/v1/kernels/x/build-log?offset=-1", "", "", 400, "BAD_REQUEST"},
      {"GET", "http://host/api/v1/kernels", "", "", 400, "BAD_REQUEST"},
      {"PUT", "/api/v1/kernels/x", "", "", 415, "UNSUPPORTED_MEDIA_TYPE"},
      {"GET", "/api/v1/events?limit=0", "", "", 400, "BAD_REQUEST"},
      {"GET", "/api/v1/events?bogus=1", "", "", 400, "BAD_REQUEST"},
  };
  for (const auto& c : cases) {
    HttpResponse r = Call(c.method, c.target, c.body, c.content_type);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.target << " " << r.body;
    EXPECT_EQ(Code(r), c.code) << c.target;
    EXPECT_FALSE(Body(r)["error"]["message"].get<std::string>().empty());
  }
  EXPECT_EQ(KernelCount(), 0);
  auto events = store_->ListEvents({});
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(events->empty());
}

TEST_F(RouterTest, StatusAndEventsComeFromTheSystemService) {
  ASSERT_EQ(Call("POST", "/api/v1/kernels", kDoc).status, 201);
  HttpResponse events = Call("GET", "/api/v1/events?subject=kernel%2Fmy-kernel&limit=5");
  ASSERT_EQ(events.status, 200) << events.body;
  ASSERT_EQ(Body(events)["events"].size(), 1u);
  EXPECT_EQ(Body(events)["events"][0]["kind"], "kernel.created");
  HttpResponse status = Call("GET", "/api/v1/status");
  ASSERT_EQ(status.status, 200);
  EXPECT_EQ(Body(status)["schemaVersion"], store::Store::LatestSchemaVersion());
}

TEST_F(RouterTest, KernelStatusIsItsEnvs) {
  HttpResponse created = Call("POST", "/api/v1/kernels", kDoc);
  ASSERT_EQ(created.status, 201);
  std::string hash = Body(created)["envHash"];
  EXPECT_EQ(Body(created)["build"]["phase"], "queued");
  envs_.Finish(hash, envs::EnvStatus::kFailed, "No matching distribution found for x");
  json shown = Body(Call("GET", "/api/v1/kernels/my-kernel"));
  EXPECT_EQ(shown["status"], "failed");
  EXPECT_EQ(shown["lastError"], "No matching distribution found for x");
  EXPECT_FALSE(shown.contains("build"));
  envs_.Finish(hash, envs::EnvStatus::kReady);
  EXPECT_EQ(Body(Call("GET", "/api/v1/kernels/my-kernel"))["status"], "ready");
}

TEST_F(RouterTest, AWorkerKeyOpensTheWorkerEndpointOnlyUntilRevoked) {
  HttpResponse created = Call("POST", "/api/v1/keys", R"({"name":"laptop"})");
  ASSERT_EQ(created.status, 201) << created.body;
  std::string key = Body(created)["key"];
  EXPECT_EQ(key.rfind("gsk_", 0), 0u);
  EXPECT_EQ(key.size(), 68u);
  HttpResponse listed = Call("GET", "/api/v1/keys");
  ASSERT_EQ(Body(listed)["count"], 1);
  EXPECT_FALSE(Body(listed)["keys"][0].contains("key"));  // shown once, at creation
  EXPECT_EQ(listed.body.find(key), std::string::npos);
  std::string bearer = "Bearer " + key;
  for (const char* admin : {"/api/v1/kernels", "/api/v1/keys", "/api/v1/status", "/api/v1/events"}) {
    HttpResponse r = Call("GET", admin, "", "", bearer);
    EXPECT_EQ(r.status, 403) << admin;
    EXPECT_EQ(Code(r), "FORBIDDEN");
  }
  EXPECT_EQ(Call("POST", "/api/v1/kernels", kDoc, "application/json", bearer).status, 403);
  EXPECT_EQ(Call("GET", "/api/v1/workers/connect", "", "", bearer).status, 426);
  EXPECT_EQ(Call("POST", "/api/v1/keys", R"({"name":"laptop"})").status, 409);
  EXPECT_EQ(Call("POST", "/api/v1/keys", R"({"name":"../x"})").status, 422);
  EXPECT_EQ(Call("DELETE", "/api/v1/keys/laptop").status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/workers/connect", "", "", bearer).status, 401);
  EXPECT_EQ(Call("DELETE", "/api/v1/keys/laptop").status, 404);
}

// The upgrade decision of the worker endpoint: only a key (or the admin token) opens it; the
// name of a managed kernel is refused before upgrading, with a message the worker prints.
TEST_F(RouterTest, TheWorkerEndpointUpgradesForAKeyAndRefusesAManagedKernelsName) {
  FakeTimers timers(clock_);
  relay::RemoteWorkers remote(timers, clock_, {});
  service::ModelBlobs blobs(dir_ / "blobs");
  RouterOptions options;
  options.api_token = kToken;
  Router router(Services{service_.get(), nullptr, system_.get(), nullptr, keys_.get(), &remote,
                         &blobs},
                options);
  HttpResponse created = Call("POST", "/api/v1/keys", R"({"name":"laptop"})");
  std::string bearer = "Bearer " + std::string(Body(created)["key"]);
  ASSERT_EQ(Call("POST", "/api/v1/kernels", kDoc).status, 201);
  auto upgrade = [&](const std::string& target, const std::string& auth, const std::string& name) {
    HttpRequest r{"GET", target, "", auth, "", false, "10.0.0.7:5555", name};
    return router.Upgrade(r);
  };
  WebSocketAccept ok = upgrade("/api/v1/workers/connect", bearer, "laptop");
  EXPECT_FALSE(ok.refusal.has_value());
  EXPECT_TRUE(static_cast<bool>(ok.attach));
  EXPECT_FALSE(upgrade("/api/v1/workers/connect", std::string("Bearer ") + kToken, "").refusal);
  WebSocketAccept wrong = upgrade("/api/v1/workers/connect", "Bearer gsk_wrong", "laptop");
  ASSERT_TRUE(wrong.refusal.has_value());
  EXPECT_EQ(wrong.refusal->status, 401);
  WebSocketAccept taken = upgrade("/api/v1/workers/connect", bearer, "my-kernel");
  ASSERT_TRUE(taken.refusal.has_value());
  EXPECT_EQ(taken.refusal->status, 409);
  EXPECT_NE(taken.refusal->body.find("managed kernel"), std::string::npos);
  WebSocketAccept elsewhere = upgrade("/api/v1/kernels", bearer, "");
  ASSERT_TRUE(elsewhere.refusal.has_value());
  EXPECT_EQ(elsewhere.refusal->status, 404);
  router.SetDraining(true);
  EXPECT_EQ(upgrade("/api/v1/workers/connect", bearer, "laptop").refusal->status, 503);
  router.SetDraining(false);

  // Model blobs: a key fetches those a call named, nothing else; the wheel needs no credentials.
  std::filesystem::create_directories(dir_ / "models");
  std::ofstream(dir_ / "models/m.pkl") << "model bytes";
  auto ref = blobs.Describe(dir_ / "models/m.pkl");
  ASSERT_TRUE(ref.ok());
  HttpRequest fetch{"GET", "/api/v1/model-blobs/" + ref->sha256, "", bearer, "", false, "", ""};
  HttpResponse got = router.HandleNow(fetch);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.file_path, (dir_ / "models/m.pkl").string());
  fetch.target = "/api/v1/model-blobs/" + std::string(64, 'a');
  EXPECT_EQ(router.HandleNow(fetch).status, 404);
  fetch.target = "/api/v1/model-blobs/not-a-hash";
  EXPECT_EQ(router.HandleNow(fetch).status, 400);
  fetch.target = "/api/v1/model-blobs/..%2F..%2Fetc%2Fpasswd";
  int traversal = router.HandleNow(fetch).status;
  EXPECT_TRUE(traversal == 400 || traversal == 404) << traversal;
  HttpRequest listing{"GET", "/downloads/", "", "", "", false, "", ""};
  EXPECT_EQ(router.HandleNow(listing).status, 200);
  listing.target = "/downloads/giskard_worker_shim-0.1.0-py3-none-any.whl";
  EXPECT_EQ(router.HandleNow(listing).status, 404);  // this router serves no wheel
}

TEST_F(RouterTest, ValidationErrorsNameTheField) {
  HttpResponse r = Call("POST", "/api/v1/kernels", R"({"name":"../x","pythonVersion":"3.11"})");
  ASSERT_EQ(r.status, 422);
  EXPECT_EQ(Body(r)["error"]["details"]["field"], "name");
}

TEST_F(RouterTest, MethodNotAllowedListsAllowedMethods) {
  HttpResponse r = Call("DELETE", "/api/v1/kernels");
  ASSERT_EQ(r.status, 405);
  ASSERT_FALSE(r.headers.empty());
  EXPECT_EQ(r.headers[0].second, "GET, POST");
}

TEST_F(RouterTest, StatusMappingIsComplete) {
  EXPECT_EQ(StatusResponse(NotFound("x")).status, 404);
  EXPECT_EQ(StatusResponse(AlreadyExists("x")).status, 409);
  EXPECT_EQ(StatusResponse(ResourceExhausted("x")).status, 429);
  EXPECT_EQ(StatusResponse(Unavailable("x")).status, 503);
  EXPECT_EQ(StatusResponse(Internal("x")).status, 500);
  EXPECT_EQ(PayloadTooLarge(1024).status, 413);
  EXPECT_EQ(Body(PayloadTooLarge(1024))["error"]["code"], "PAYLOAD_TOO_LARGE");
}

TEST_F(RouterTest, PutReplacesAndRejectsRenames) {
  ASSERT_EQ(Call("POST", "/api/v1/kernels", kDoc).status, 201);
  json doc = json::parse(kDoc);
  doc["workers"] = 2;
  HttpResponse r = Call("PUT", "/api/v1/kernels/my-kernel", doc.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["generation"], 2);
  EXPECT_EQ(Body(r)["workers"], 2);
  doc["name"] = "other";
  EXPECT_EQ(Call("PUT", "/api/v1/kernels/my-kernel", doc.dump()).status, 422);
}

}  // namespace
}  // namespace gsk::api
