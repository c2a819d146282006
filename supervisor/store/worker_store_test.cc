#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "supervisor/store/store.h"

namespace gsk::store {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

WorkerRow MakeWorker(const std::string& id, const std::string& kernel) {
  WorkerRow w;
  w.id = id;
  w.kernel = kernel;
  w.state = "starting";
  w.pid = 4242;
  w.process_start_ticks = 987654;
  w.token_hash = std::string(64, 'a');
  w.log_file = "/var/log/giskard/workers/" + id + ".log";
  w.created_at_ms = 1000;
  w.updated_at_ms = 1000;
  return w;
}

Event MakeEvent(const std::string& kind, const std::string& subject) {
  Event e;
  e.ts_ms = 2000;
  e.kind = kind;
  e.subject = subject;
  e.actor = "supervisor";
  e.detail_json = R"({"to":"running"})";
  return e;
}

class WorkerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "gsk-worker-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    Result<std::unique_ptr<Store>> store = Store::Open(dir_ / "supervisor.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    if (store_) {
      EXPECT_EQ(store_->IntegrityCheck().value(), "ok");
    }
    store_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  std::vector<Event> EventsOf(const std::string& subject) {
    EventFilter filter;
    filter.subject = subject;
    return store_->ListEvents(filter).value();
  }

  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(WorkerStoreTest, PutGetListDeleteWithEvents) {
  WorkerRow a = MakeWorker("k1-aaaa", "k1");
  ASSERT_TRUE(store_->PutWorker(a, MakeEvent("worker.starting", "worker/k1-aaaa")).ok());
  ASSERT_TRUE(
      store_->PutWorker(MakeWorker("k2-bbbb", "k2"), MakeEvent("worker.starting", "worker/k2-bbbb"))
          .ok());
  a.state = "running";
  a.python_version = "3.11.2";
  a.env_json = R"({"pythonVersion":"3.11.2","packages":[{"name":"numpy","version":"1.26.4"}]})";
  a.started_at_ms = 1500;
  a.updated_at_ms = 1500;
  a.restarts = 2;
  a.quick_failures = 1;
  a.exit_description = "exited with code 1";
  a.last_error = "boom";
  ASSERT_TRUE(store_->PutWorker(a, MakeEvent("worker.running", "worker/k1-aaaa")).ok());

  WorkerRow got = store_->GetWorker("k1-aaaa").value().value();
  EXPECT_EQ(got.kernel, "k1");
  EXPECT_EQ(got.state, "running");
  EXPECT_EQ(got.pid, 4242);
  EXPECT_EQ(got.process_start_ticks, 987654);
  EXPECT_EQ(got.token_hash, a.token_hash);
  EXPECT_EQ(got.restarts, 2);
  EXPECT_EQ(got.quick_failures, 1);
  EXPECT_EQ(got.exit_description, "exited with code 1");
  EXPECT_EQ(got.last_error, "boom");
  EXPECT_EQ(got.python_version, "3.11.2");
  EXPECT_EQ(got.env_json, a.env_json);
  EXPECT_EQ(got.log_file, a.log_file);
  EXPECT_EQ(got.created_at_ms, 1000);
  EXPECT_EQ(got.updated_at_ms, 1500);
  EXPECT_EQ(got.started_at_ms, 1500);
  EXPECT_EQ(EventsOf("worker/k1-aaaa").size(), 2u);

  EXPECT_EQ(store_->ListWorkers().value().size(), 2u);
  std::vector<WorkerRow> k2 = store_->ListWorkers("k2").value();
  ASSERT_EQ(k2.size(), 1u);
  EXPECT_EQ(k2[0].id, "k2-bbbb");
  EXPECT_TRUE(store_->ListWorkers("none").value().empty());

  ASSERT_TRUE(store_->DeleteWorker("k1-aaaa", MakeEvent("worker.removed", "worker/k1-aaaa")).ok());
  EXPECT_FALSE(store_->GetWorker("k1-aaaa").value().has_value());
  EXPECT_EQ(EventsOf("worker/k1-aaaa").size(), 3u);
  Status missing = store_->DeleteWorker("k1-aaaa", MakeEvent("worker.removed", "worker/x"));
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("k1-aaaa"));
  EXPECT_EQ(EventsOf("worker/k1-aaaa").size(), 3u);  // no event for a failed delete
}

TEST_F(WorkerStoreTest, SchemaRulesRefuseBadRowsAndWriteNothing) {
  WorkerRow w = MakeWorker("w1", "k1");
  w.state = "sleeping";
  EXPECT_EQ(store_->PutWorker(w, MakeEvent("worker.x", "worker/w1")).code(),
            StatusCode::kInvalidArgument);
  w.state = "running";
  w.env_json = "{not json";
  EXPECT_EQ(store_->PutWorker(w, MakeEvent("worker.x", "worker/w1")).code(),
            StatusCode::kInvalidArgument);
  w = MakeWorker("", "k1");
  EXPECT_EQ(store_->PutWorker(w, MakeEvent("worker.x", "worker/")).code(),
            StatusCode::kInvalidArgument);
  w = MakeWorker("w1", "k1");
  EXPECT_EQ(store_->PutWorker(w, MakeEvent("", "worker/w1")).code(),
            StatusCode::kInvalidArgument);  // the event is refused: the row is rolled back
  EXPECT_TRUE(store_->ListWorkers().value().empty());
  EXPECT_TRUE(EventsOf("worker/w1").empty());
}

TEST_F(WorkerStoreTest, WorkerRowsOutliveTheirKernel) {
  KernelRow k;
  k.name = "k1";
  k.type = "PROCESS";
  k.spec_json = R"({"name":"k1"})";
  k.env_hash = "h";
  k.created_at_ms = k.updated_at_ms = 1;
  ASSERT_TRUE(store_->InsertKernel(k, MakeEvent("kernel.created", "kernel/k1")).ok());
  WorkerRow w = MakeWorker("k1-w", "k1");
  w.state = "stopping";
  ASSERT_TRUE(store_->PutWorker(w, MakeEvent("worker.stopping", "worker/k1-w")).ok());
  ASSERT_TRUE(store_->DeleteKernel("k1", MakeEvent("kernel.deleted", "kernel/k1")).ok());
  EXPECT_EQ(store_->GetWorker("k1-w").value()->state, "stopping");
}

}  // namespace
}  // namespace gsk::store
