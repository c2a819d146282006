// EnvManager: builds and caches the virtualenvs of managed kernels. An env is keyed by the
// kernel-spec env hash and shared by every kernel with that hash; one build per hash at a time,
// at most `max_concurrent` builds, each under a timeout. A build creates a venv without pip,
// installs with the real pip run from its wheel, installs the worker shim and checks that it
// imports; only then is the env marked ready in the store (so a crash at any point leaves no
// half-built env marked ready). Not thread-safe: lives on the core io_context thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "supervisor/config/config.h"
#include "supervisor/envs/environments.h"
#include "supervisor/envs/pip_output.h"
#include "supervisor/process/process_launcher.h"
#include "supervisor/python/interpreters.h"
#include "supervisor/store/store.h"

namespace boost::asio {
class io_context;
}

namespace gsk::envs {

struct EnvManagerOptions {
  std::filesystem::path envs_dir;
  std::filesystem::path logs_dir;
  std::filesystem::path scratch_dir;
  std::filesystem::path pip_cache_dir;  // "" = no cache
  std::filesystem::path shim_wheel;
  config::PackagesConfig packages;
  config::BuildsConfig builds;
  std::vector<python::Interpreter> interpreters;
};

class EnvManager final : public Environments {
 public:
  // All pointers must outlive the manager.
  EnvManager(boost::asio::io_context& io, store::Store* store, process::ProcessLauncher* launcher,
             const Clock* clock, EnvManagerOptions options);
  ~EnvManager() override;
  EnvManager(const EnvManager&) = delete;
  EnvManager& operator=(const EnvManager&) = delete;

  // At startup, before any Ensure: removes what an interrupted build left (directories of envs
  // not marked ready, rows of builds nobody needs any more, unknown directories).
  Status Recover();

  // Makes sure the env exists for the kernels that refer to `request.hash` (already in the
  // store): a ready env is reused at once (kernels become "ready"); otherwise a build is queued
  // or joined. A failed env is built again only when `retry_failed`.
  void Ensure(const EnvRequest& request, bool retry_failed) override;
  // Forgets the env's build when no kernel refers to the hash any more: a queued or running
  // build is cancelled and its files removed; a ready env stays cached for reuse until GC.
  void Release(const std::string& hash) override;
  // Builds the env again from scratch (kernels go back to "building"). kFailedPrecondition
  // while a build of the same env is queued or running.
  Status Rebuild(const EnvRequest& request) override;

  std::optional<BuildProgress> Progress(const std::string& hash) const override;
  std::filesystem::path LogPath(const std::string& hash) const override;
  std::filesystem::path EnvPath(const std::string& hash) const;
  const std::vector<python::Interpreter>& interpreters() const;
  int running_builds() const;

  // Deletes unreferenced ready envs, least recently used first, until the total is within the
  // disk budget. Runs after every successful build.
  void CollectGarbage();

  // Stops every build (their rows stay "building"; the next Recover + Ensure restarts them).
  void Shutdown();

  // Called with an env's hash, soon after (posted to the io_context, never inside the call that
  // caused it), when a build of it ended (ready or failed) or a rebuild sent its kernels back to
  // building. Not when Ensure finds the env ready at once: the caller knows that already.
  void SetOnChange(std::function<void(const std::string& hash)> on_change) {
    on_change_ = std::move(on_change);
  }

 private:
  struct Build;
  void StartQueued();
  void StartBuild(Build& build);
  void RunStep(Build& build, const std::string& phase, std::vector<std::string> argv,
               std::map<std::string, std::string> env, void (EnvManager::*next)(Build&));
  void InstallStep(Build& build);
  void VerifyStep(Build& build);
  void Succeed(Build& build);
  void Notify(const std::string& hash);
  // The status of the asking kernel, or of every kernel of the env (request.kernel empty).
  void SetStatus(const EnvRequest& request, const std::string& status,
                 const std::string& last_error);
  void Fail(Build& build, const std::string& reason);
  void Finish(const std::string& hash);
  void Log(Build& build, std::string_view line);
  Status WriteEnv(store::EnvRow& row, const std::string& kind);
  int64_t ReferencedBytes(const std::string& except_hash);

  boost::asio::io_context& io_;
  store::Store* store_;
  process::ProcessLauncher* launcher_;
  const Clock* clock_;
  EnvManagerOptions options_;
  std::map<std::string, std::unique_ptr<Build>> builds_;  // queued or running, by hash
  std::vector<std::string> queue_;
  int running_ = 0;
  bool shutting_down_ = false;
  std::function<void(const std::string& hash)> on_change_;
};

// Total size in bytes of the regular files under `dir` (symlinks not followed).
int64_t DirectorySize(const std::filesystem::path& dir);

}  // namespace gsk::envs
