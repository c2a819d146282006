#include "supervisor/service/kernel_service.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fake_clock.h"

namespace gsk::service {
namespace {

constexpr const char* kHubDocument = R"({
  "name": "fraud-model", "pythonVersion": "3.11",
  "requestedDependencies": ["scikit-learn==1.3.2", "Numpy>=1.24"],
  "frozenDependencies": "joblib==1.3.2\nnumpy==1.26.4\nscikit-learn==1.3.2",
  "type": "PROCESS", "version": "2.14.0",
  "env": {"OPENAI_API_KEY": "sk-abcdefghijklmnopqrstuvwxyz"}
})";

class KernelServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gsk-service-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    auto store = store::Store::Open(dir_ / "supervisor.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    ServiceOptions options;
    options.max_kernels = 3;
    service_ = std::make_unique<KernelService>(store_.get(), &clock_, options);
  }
  void TearDown() override {
    auto check = store_->IntegrityCheck();
    ASSERT_TRUE(check.ok());
    EXPECT_EQ(*check, "ok");
    service_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  size_t EventCount() {
    auto events = store_->ListEvents({});
    return events.ok() ? events->size() : 0;
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<KernelService> service_;
};

TEST_F(KernelServiceTest, CreatesAHubKernelPendingWithAnEvent) {
  auto out = service_->Create(kHubDocument, Caller{"rest"});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(out->changed);
  EXPECT_EQ(out->row.status, "pending");
  EXPECT_EQ(out->row.env_hash.size(), 64u);
  auto events = store_->ListEvents({});
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].kind, "kernel.created");
  EXPECT_EQ((*events)[0].subject, "kernel/fraud-model");
  EXPECT_EQ((*events)[0].actor, "rest");
}

TEST_F(KernelServiceTest, RepeatIsIdempotentAndADifferentDocumentConflicts) {
  ASSERT_TRUE(service_->Create(kHubDocument, {}).ok());
  auto again = service_->Create(kHubDocument, {});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed);
  auto other = service_->Create(R"({"name":"fraud-model","pythonVersion":"3.10"})", {});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(EventCount(), 1u);
}

TEST_F(KernelServiceTest, InvalidDocumentsWriteNothing) {
  for (const char* body : {R"({"name":"../x","pythonVersion":"3.11"})",
                           R"({"name":"x","pythonVersion":"3.11",
                               "requestedDependencies":["--index-url http://x"]})",
                           "{not json", "[]"}) {
    auto out = service_->Create(body, {});
    ASSERT_FALSE(out.ok()) << body;
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << body;
  }
  EXPECT_EQ(EventCount(), 0u);
  auto list = service_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(KernelServiceTest, EnforcesMaxKernels) {
  for (int i = 0; i < 3; ++i) {
    std::string doc = R"({"name":"k)" + std::to_string(i) + R"(","pythonVersion":"3.11"})";
    ASSERT_TRUE(service_->Create(doc, {}).ok());
  }
  auto out = service_->Create(R"({"name":"k9","pythonVersion":"3.11"})", {});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(out.status().message().find("max_kernels"), std::string::npos);
}

TEST_F(KernelServiceTest, ReplaceBumpsGenerationAndKeepsStatusWhenEnvUnchanged) {
  ASSERT_TRUE(service_->Create(kHubDocument, {}).ok());
  clock_.Advance(1000);
  nlohmann::json doc = nlohmann::json::parse(kHubDocument);
  doc["workers"] = 3;  // does not change the environment
  auto out = service_->Replace("fraud-model", doc.dump(), {});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->row.generation, 2);
  EXPECT_GT(out->row.updated_at_ms, out->row.created_at_ms);
  doc["name"] = "other";
  auto renamed = service_->Replace("fraud-model", doc.dump(), {});
  ASSERT_FALSE(renamed.ok());
  EXPECT_EQ(renamed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->Replace("missing", kHubDocument, {}).status().code(),
            StatusCode::kNotFound);
}

TEST_F(KernelServiceTest, DeleteRemovesAndRecords) {
  ASSERT_TRUE(service_->Create(kHubDocument, {}).ok());
  ASSERT_TRUE(service_->Delete("fraud-model", {"admin-socket"}).ok());
  EXPECT_EQ(service_->Get("fraud-model").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->Delete("fraud-model", {}).code(), StatusCode::kNotFound);
  EXPECT_EQ(EventCount(), 2u);
}

TEST_F(KernelServiceTest, JsonViewMasksSecretsAndAddsStatusFields) {
  auto out = service_->Create(kHubDocument, {});
  ASSERT_TRUE(out.ok());
  nlohmann::json view = KernelToJson(out->row);
  EXPECT_EQ(view["env"]["OPENAI_API_KEY"], "sk-****");
  EXPECT_EQ(view["status"], "pending");
  EXPECT_TRUE(view["lastError"].is_null());
  EXPECT_EQ(view["createdAt"], "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(view.dump().find("abcdefghij"), std::string::npos);
  EXPECT_EQ(MaskSecret("short"), "****");
}

}  // namespace
}  // namespace gsk::service
