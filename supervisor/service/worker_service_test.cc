// WorkerService on a real store (temporary SQLite file), a fake launcher, fake timers and a
// fake clock: what the pool is asked to run for the kernels in the store.
#include "supervisor/service/worker_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "base/fake_clock.h"
#include "base/fake_timers.h"
#include "supervisor/envs/fake_environments.h"
#include "supervisor/process/fake_process_launcher.h"
#include "supervisor/workers/store_observer.h"

namespace gsk::service {
namespace {

using ::testing::HasSubstr;

class WorkerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gsk-worker-service-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    auto store = store::Store::Open(dir_ / "supervisor.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    kernels_ = std::make_unique<KernelService>(*store_, clock_, envs_, ServiceOptions{});
    ASSERT_TRUE(kernels_->Load().ok());
    observer_ = std::make_unique<workers::StoreObserver>(*store_);
    workers::WorkerPoolOptions pool_options;
    pool_options.supervisor_socket = (dir_ / "workers.sock").string();
    pool_ = std::make_unique<workers::WorkerPool>(launcher_, timers_, clock_, *observer_,
                                                  pool_options);
    WorkerServiceOptions o;
    o.env_path = [this](const std::string& hash) { return dir_ / "envs" / hash; };
    o.work_dir = dir_ / "workers";
    o.log_dir = dir_ / "logs/workers";
    o.limits.open_files = 256;
    service_ = std::make_unique<WorkerService>(*store_, *pool_, *kernels_, clock_, o);
    kernels_->SetOnChange([this](const std::string& name) { service_->Reconcile(name); });
    envs_.SetOnChange([this](const std::string& hash) { service_->ReconcileEnv(hash); });
  }
  void TearDown() override {
    auto check = store_->IntegrityCheck();
    ASSERT_TRUE(check.ok());
    EXPECT_EQ(*check, "ok");
    service_.reset();
    pool_.reset();
    std::filesystem::remove_all(dir_);
  }
  // A managed kernel whose env the (fake) builder then declares ready.
  std::string ReadyKernel(const std::string& name, const std::string& extra = "") {
    auto created = kernels_->Create(R"({"name":")" + name +
                                        R"(","pythonVersion":"3.11","type":"PROCESS")" + extra +
                                        "}",
                                    Caller{});
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    std::string hash = created->kernel->env_hash;
    envs_.Finish(hash, envs::EnvStatus::kReady);
    return hash;
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  FakeTimers timers_{clock_};
  process::FakeProcessLauncher launcher_;
  std::unique_ptr<store::Store> store_;
  envs::FakeEnvironments envs_;
  std::unique_ptr<KernelService> kernels_;
  std::unique_ptr<workers::StoreObserver> observer_;
  std::unique_ptr<workers::WorkerPool> pool_;
  std::unique_ptr<WorkerService> service_;
};

TEST_F(WorkerServiceTest, APendingKernelGetsNoWorkersAndAReadyOneGetsItsWorkers) {
  auto created = kernels_->Create(R"({"name":"k","pythonVersion":"3.11","workers":2})", Caller{});
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(launcher_.launches().empty());  // pending: no env yet
  envs_.Finish(created->kernel->env_hash, envs::EnvStatus::kReady);
  ASSERT_EQ(launcher_.launches().size(), 2u);
  EXPECT_EQ(service_->List("k").size(), 2u);
  auto rows = store_->ListWorkers("k");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 2u);  // tracked in SQLite from the first transition
}

TEST_F(WorkerServiceTest, TheLaunchIsTheShimInTheEnvWithACleanEnvironmentPlusTheKernels) {
  std::string hash = ReadyKernel("k", R"(,"env":{"OPENAI_API_KEY":"sk-secret-value-1234"})");
  ASSERT_EQ(launcher_.launches().size(), 1u);
  const process::ProcessSpec& spec = launcher_.launches()[0].spec;
  std::string env = (dir_ / "envs" / hash).string();
  EXPECT_EQ(spec.argv, (std::vector<std::string>{env + "/bin/python", "-m", "giskard_worker_shim",
                                                 "serve-managed"}));
  EXPECT_EQ(spec.env.at("OPENAI_API_KEY"), "sk-secret-value-1234");
  EXPECT_EQ(spec.env.at("VIRTUAL_ENV"), env);
  EXPECT_EQ(spec.env.at("PATH").rfind(env + "/bin:", 0), 0u);
  EXPECT_EQ(spec.env.at("GSK_SUPERVISOR_SOCKET"), (dir_ / "workers.sock").string());
  EXPECT_EQ(spec.env.at("HOME"), spec.cwd.string());  // its own directory
  EXPECT_EQ(spec.cwd.parent_path(), dir_ / "workers");
  EXPECT_EQ(spec.limits.open_files, 256u);
  // Nothing of this test process's environment: only what the service and pool put there.
  for (const auto& [key, value] : spec.env) {
    EXPECT_TRUE(key == "PATH" || key == "LANG" || key == "LC_ALL" || key == "VIRTUAL_ENV" ||
                key == "PYTHONUNBUFFERED" || key == "PYTHONDONTWRITEBYTECODE" || key == "HOME" ||
                key == "OPENAI_API_KEY" || key.rfind("GSK_", 0) == 0)
        << key;
  }
}

TEST_F(WorkerServiceTest, StopAndStartPersistAndDrive) {
  ReadyKernel("k");
  int pid = launcher_.launches()[0].handle.pid();
  auto stopped = service_->StopKernel("k", Caller{});
  ASSERT_TRUE(stopped.ok());
  EXPECT_TRUE((*stopped)->workers_stopped);
  EXPECT_TRUE((*store_->GetKernel("k"))->workers_stopped);  // survives a restart
  ASSERT_TRUE(launcher_.Exit(pid, 0));                      // it stopped on SIGTERM
  EXPECT_TRUE(service_->List("k").empty());
  auto started = service_->StartKernel("k", 3, Caller{});
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  EXPECT_FALSE((*started)->workers_stopped);
  EXPECT_EQ(service_->List("k").size(), 3u);
  EXPECT_EQ(service_->StartKernel("k", -1, Caller{}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->StartKernel("nope", std::nullopt, Caller{}).status().code(),
            StatusCode::kNotFound);
}

TEST_F(WorkerServiceTest, ChangingTheEnvVariablesRestartsRunningWorkersButScalingDoesNot) {
  ReadyKernel("k", R"(,"env":{"A":"1"})");
  ASSERT_EQ(launcher_.launches().size(), 1u);
  int first = launcher_.launches()[0].handle.pid();
  auto scaled = kernels_->Replace("k", R"({"pythonVersion":"3.11","workers":2,"env":{"A":"1"}})",
                                  Caller{});
  ASSERT_TRUE(scaled.ok()) << scaled.status().ToString();
  EXPECT_EQ(launcher_.launches().size(), 2u);
  EXPECT_TRUE(launcher_.stops().empty());
  auto changed = kernels_->Replace("k", R"({"pythonVersion":"3.11","workers":2,"env":{"A":"2"}})",
                                   Caller{});
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(launcher_.stops().size(), 2u);  // both restart with the new environment
  ASSERT_TRUE(launcher_.Exit(first, 0));
  EXPECT_EQ(launcher_.launches().back().spec.env.at("A"), "2");
}

TEST_F(WorkerServiceTest, DeletingTheKernelStopsItsWorkers) {
  ReadyKernel("k");
  ASSERT_TRUE(kernels_->Delete("k", Caller{}).ok());
  ASSERT_EQ(launcher_.stops().size(), 1u);
  ASSERT_TRUE(launcher_.Exit(launcher_.launches()[0].handle.pid(), 0));
  EXPECT_TRUE(service_->List("").empty());
  EXPECT_TRUE(store_->ListWorkers("")->empty());
}

TEST_F(WorkerServiceTest, AFailedOrRebuildingEnvStopsTheWorkers) {
  std::string hash = ReadyKernel("k");
  ASSERT_EQ(launcher_.launches().size(), 1u);
  envs_.Finish(hash, envs::EnvStatus::kFailed, "disk full");
  ASSERT_EQ(launcher_.stops().size(), 1u);
  ASSERT_TRUE(launcher_.Exit(launcher_.launches()[0].handle.pid(), 0));
  EXPECT_TRUE(service_->List("k").empty());
}

TEST_F(WorkerServiceTest, UnknownWorkersAreNotFoundWithAHint) {
  auto w = service_->Get("k-1");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(w.status().message(), HasSubstr("GET /api/v1/workers"));
  EXPECT_EQ(service_->Delete("k-1").code(), StatusCode::kNotFound);
}

TEST_F(WorkerServiceTest, AdoptionDropsRowsWithoutAProcess) {
  ReadyKernel("k");
  std::string id = service_->List("k")[0].id;
  ASSERT_TRUE(launcher_.Exit(launcher_.launches()[0].handle.pid(), 1));  // backoff: no process
  // A new supervisor on the same store: the row has no live process, so it is dropped, and
  // the kernel gets a fresh worker.
  process::FakeProcessLauncher launcher2;
  FakeTimers timers2(clock_);
  workers::WorkerPool pool2(launcher2, timers2, clock_, *observer_, {});
  WorkerServiceOptions o;
  o.env_path = [this](const std::string& hash) { return dir_ / "envs" / hash; };
  o.work_dir = dir_ / "workers";
  o.log_dir = dir_ / "logs/workers";
  WorkerService service2(*store_, pool2, *kernels_, clock_, o);
  service2.AdoptFromStore();
  EXPECT_FALSE((*store_->GetWorker(id)).has_value());
  service2.ReconcileAll();
  ASSERT_EQ(launcher2.launches().size(), 1u);
  EXPECT_NE(service2.List("k")[0].id, id);
}

}  // namespace
}  // namespace gsk::service
