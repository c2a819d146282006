#include "supervisor/service/kernel_service.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fake_clock.h"
#include "supervisor/envs/fake_environments.h"

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
    Make();
  }
  void Make(std::string fingerprint = "") {
    ServiceOptions options;
    options.max_kernels = 3;
    options.index_fingerprint = std::move(fingerprint);
    service_ = std::make_unique<KernelService>(*store_, clock_, envs_, options);
    ASSERT_TRUE(service_->Load().ok());
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
  envs::FakeEnvironments envs_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<KernelService> service_;
};

TEST_F(KernelServiceTest, CreatesAHubKernelPendingWithAnEvent) {
  auto out = service_->Create(kHubDocument, Caller{"rest"});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(out->changed);
  EXPECT_EQ(service_->StateOf(*out->kernel).status, KernelStatus::kPending);
  EXPECT_EQ(out->kernel->env_hash.size(), 64u);
  ASSERT_EQ(envs_.ensured.size(), 1u);  // its env was asked for
  EXPECT_EQ(envs_.ensured[0].hash, out->kernel->env_hash);
  EXPECT_EQ(envs_.ensured[0].python_minor, "3.11");
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
  EXPECT_TRUE(service_->List().empty());
  EXPECT_TRUE(envs_.ensured.empty());
}

// A model to preload is checked when the kernel is written, by create and by replace.
TEST_F(KernelServiceTest, PreloadModelsAreCheckedWhenWritten) {
  service_->SetModelPathCheck([](const std::string& path) {
    return path == "iris.pkl" ? Status::Ok()
                              : FailedPrecondition("model: " + path + " is outside the model roots");
  });
  auto refused = service_->Create(
      R"({"name":"k","pythonVersion":"3.11","preloadModels":["iris.pkl","/etc/passwd"]})", {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(), "preloadModels[1]: /etc/passwd is outside the model roots");
  EXPECT_EQ(EventCount(), 0u);
  auto created =
      service_->Create(R"({"name":"k","pythonVersion":"3.11","preloadModels":["iris.pkl"]})", {});
  ASSERT_TRUE(created.ok()) << created.status().message();
  EXPECT_EQ(created->kernel->spec.preload_models, std::vector<std::string>{"iris.pkl"});
  auto replaced =
      service_->Replace("k", R"({"name":"k","pythonVersion":"3.11","preloadModels":["x"]})", {});
  ASSERT_FALSE(replaced.ok());
  EXPECT_EQ(replaced.status().message(), "preloadModels[0]: x is outside the model roots");
  EXPECT_EQ((*service_->Get("k"))->spec.preload_models, std::vector<std::string>{"iris.pkl"});
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
  EXPECT_EQ(out->kernel->generation, 2);
  EXPECT_GT(out->kernel->updated_at_ms, out->kernel->created_at_ms);
  EXPECT_EQ(out->kernel->spec.workers, 3);
  EXPECT_EQ(envs_.ensured.size(), 1u);  // same env: not asked again
  EXPECT_TRUE(envs_.released.empty());
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

TEST_F(KernelServiceTest, StatusIsDerivedFromTheEnvNeverCopied) {
  auto out = service_->Create(kHubDocument, {});
  ASSERT_TRUE(out.ok());
  std::string hash = out->kernel->env_hash;
  envs_.Finish(hash, envs::EnvStatus::kFailed, "No matching distribution found for x==1");
  KernelState state = service_->StateOf(*service_->Get("fraud-model").value());
  EXPECT_EQ(state.status, KernelStatus::kFailed);
  EXPECT_EQ(state.last_error, "No matching distribution found for x==1");
  envs_.Finish(hash, envs::EnvStatus::kReady);
  EXPECT_EQ(service_->StateOf(*service_->Get("fraud-model").value()).status, KernelStatus::kReady);
  // Nothing about the status is in the kernel's row.
  auto unmanaged = service_->Create(R"({"name":"u","pythonVersion":"3.11","type":"UNMANAGED"})", {});
  ASSERT_TRUE(unmanaged.ok());
  EXPECT_EQ(service_->StateOf(*unmanaged->kernel).status, KernelStatus::kReady);
  EXPECT_EQ(envs_.ensured.size(), 1u);  // an unmanaged kernel has no env to build
}

TEST_F(KernelServiceTest, ChangingTheEnvAsksForTheNewOneAndReleasesTheOld) {
  auto out = service_->Create(kHubDocument, {});
  ASSERT_TRUE(out.ok());
  std::string old_hash = out->kernel->env_hash;
  nlohmann::json doc = nlohmann::json::parse(kHubDocument);
  doc["pythonVersion"] = "3.12";
  auto replaced = service_->Replace("fraud-model", doc.dump(), {});
  ASSERT_TRUE(replaced.ok()) << replaced.status().ToString();
  EXPECT_NE(replaced->kernel->env_hash, old_hash);
  ASSERT_EQ(envs_.ensured.size(), 2u);
  EXPECT_EQ(envs_.ensured[1].hash, replaced->kernel->env_hash);
  EXPECT_EQ(envs_.released, std::vector<std::string>{old_hash});
  std::string new_hash = replaced->kernel->env_hash;
  ASSERT_TRUE(service_->Delete("fraud-model", {}).ok());
  EXPECT_EQ(envs_.released.back(), new_hash);
}

TEST_F(KernelServiceTest, ChangedIndexSettingsRehashEveryKernelAtStart) {
  auto out = service_->Create(kHubDocument, {});
  ASSERT_TRUE(out.ok());
  std::string before = out->kernel->env_hash;
  // The same store read by a supervisor whose package index settings differ.
  Make("index_url=http://127.0.0.1:9/simple\n");
  const Kernel* k = service_->Get("fraud-model").value();
  EXPECT_NE(k->env_hash, before);
  EXPECT_EQ(store_->GetKernel("fraud-model").value()->env_hash, k->env_hash);  // written
  EXPECT_EQ(k->generation, 1);  // the document did not change
  const std::string rehashed = k->env_hash;  // k dies with the Delete below
  auto events = store_->ListEvents({});
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->back().kind, "kernels.rehashed");
  // A new kernel with the same document gets the same hash as the rehashed one.
  ASSERT_TRUE(service_->Delete("fraud-model", {}).ok());
  auto again = service_->Create(kHubDocument, {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->kernel->env_hash, rehashed);
  // Read again with the same settings: nothing to rewrite.
  size_t event_count = EventCount();
  Make("index_url=http://127.0.0.1:9/simple\n");
  EXPECT_EQ(EventCount(), event_count);
}

TEST_F(KernelServiceTest, AStoredDocumentThatTodaysRulesRefuseIsKeptAndShownFailed) {
  store::KernelRow row;
  row.name = "legacy";
  row.type = "PROCESS";
  row.spec_json = R"({"name":"legacy","pythonVersion":"3.11","version":"beta",)"
                  R"("requestedDependencies":["--index-url http://x"]})";
  row.env_hash = "old";
  row.created_at_ms = row.updated_at_ms = 1;
  ASSERT_TRUE(store_->InsertKernel(row, {0, 1, "kernel.created", "kernel/legacy", "t", "{}"}).ok());
  Make();
  const Kernel* k = service_->Get("legacy").value();
  KernelState state = service_->StateOf(*k);
  EXPECT_EQ(state.status, KernelStatus::kFailed);
  EXPECT_NE(state.last_error.find("pip option"), std::string::npos) << state.last_error;
  service_->ResumeEnvironments();
  EXPECT_TRUE(envs_.ensured.empty());  // neither built nor run
  EXPECT_EQ(service_->Rebuild("legacy", {}).status().code(), StatusCode::kFailedPrecondition);
  // Replacing it with a valid document brings it back.
  auto fixed = service_->Replace("legacy", R"({"pythonVersion":"3.11"})", {});
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  EXPECT_TRUE(fixed->kernel->problem.empty());
  EXPECT_EQ(envs_.ensured.size(), 1u);
}

TEST_F(KernelServiceTest, ResumeAsksOncePerEnvWithoutRetryingFailures) {
  for (const char* name : {"a", "b", "c"}) {
    std::string doc = std::string(R"({"name":")") + name + R"(","pythonVersion":"3.11"})";
    ASSERT_TRUE(service_->Create(doc, {}).ok());
  }
  envs_.ensured.clear();
  service_->ResumeEnvironments();
  ASSERT_EQ(envs_.ensured.size(), 1u);  // three kernels, one env
}

TEST_F(KernelServiceTest, SetWorkersWritesANewGenerationWithinTheLimit) {
  ASSERT_TRUE(service_->Create(kHubDocument, {}).ok());
  auto k = service_->SetWorkers("fraud-model", 4, {});
  ASSERT_TRUE(k.ok());
  EXPECT_EQ((*k)->spec.workers, 4);
  EXPECT_EQ((*k)->generation, 2);
  EXPECT_EQ(service_->SetWorkers("fraud-model", 65, {}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gsk::service
