// EnvManager: the build queue of managed environments, as a state machine driven by events:
// requests (Ensure, Release, Rebuild), a build's end (from the BuildRunner) and its deadline
// (from the Timers). An env is keyed by the kernel-spec env hash and shared by every kernel
// with that hash. It joins requests for the same env, runs at most `max_concurrent` builds,
// cancels a build no kernel needs any more, enforces the timeout and the disk budget, and
// collects unused envs least recently used first. An env is marked ready in the store only
// after every step succeeded and its marker file is written, so a crash at any point leaves no
// half-built env marked ready. It is the one writer of the envs table. Not thread-safe: lives
// on the core thread with its collaborators.
#pragma once

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "base/timers.h"
#include "supervisor/envs/build_runner.h"
#include "supervisor/envs/env_options.h"
#include "supervisor/envs/environments.h"
#include "supervisor/envs/pip_output.h"
#include "supervisor/store/store.h"

namespace gsk::envs {

class EnvManager final : public Environments {
 public:
  // All references must outlive the manager. `runner` runs the build steps.
  EnvManager(store::Store& store, BuildRunner& runner, Timers& timers, const Clock& clock,
             EnvOptions options);
  ~EnvManager() override;
  EnvManager(const EnvManager&) = delete;
  EnvManager& operator=(const EnvManager&) = delete;

  // At startup, before any Ensure: removes what an interrupted build left (directories of envs
  // not marked ready, rows of builds no kernel needs, unknown directories) and loads the envs.
  Status Recover();

  void Ensure(const EnvRequest& request, bool retry_failed) override;
  void Release(const std::string& hash) override;
  Status Rebuild(const EnvRequest& request) override;
  EnvState State(const std::string& hash) const override;
  std::filesystem::path EnvPath(const std::string& hash) const override;
  std::filesystem::path LogPath(const std::string& hash) const override;
  void SetOnChange(std::function<void(const std::string& hash)> on_change) override {
    on_change_ = std::move(on_change);
  }

  const std::vector<python::Interpreter>& interpreters() const { return options_.interpreters; }
  int running_builds() const { return running_; }

  // Deletes unreferenced ready envs, least recently used first, until the total is within the
  // disk budget. Runs after every successful build.
  void CollectGarbage();

  // Stops every build; their rows stay as they are and the next Recover + Ensure restarts them.
  void Shutdown();

 private:
  struct Build {
    EnvRequest request;
    store::EnvRow row;  // what the build will write once it ends
    PipOutput pip;
    std::ofstream log;
    TimerId deadline = 0;
    bool running = false;
    bool cancelled = false;
    bool timed_out = false;
  };

  void Enqueue(const EnvRequest& request);
  void StartQueued();
  void StartBuild(Build& build);
  Result<python::Interpreter> CheckBeforeBuild(Build& build);
  void OnBuildDone(const std::string& hash, const StepOutcome& outcome);
  void OnDeadline(const std::string& hash);
  void Succeed(Build& build);
  void Fail(Build& build, const std::string& reason);
  void Finish(const std::string& hash);
  void Notify(const std::string& hash);
  void Log(Build& build, std::string_view line);
  // Writes the env's row (and updates the cache) with an event of `kind`.
  Status WriteEnv(store::EnvRow row, const std::string& kind);
  Status DeleteEnv(const std::string& hash, const std::string& kind, const std::string& reason);
  store::EnvRow RowFor(const EnvRequest& request) const;
  int64_t References(const std::string& hash);
  int64_t ReferencedBytes(const std::string& except_hash);

  store::Store& store_;
  BuildRunner& runner_;
  Timers& timers_;
  const Clock& clock_;
  EnvOptions options_;
  std::map<std::string, store::EnvRow> rows_;            // the envs table, as written
  std::map<std::string, std::unique_ptr<Build>> builds_;  // queued or running, by hash
  std::vector<std::string> queue_;
  int running_ = 0;
  bool shutting_down_ = false;
  std::function<void(const std::string& hash)> on_change_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

// Total size in bytes of the regular files under `dir` (symlinks not followed).
int64_t DirectorySize(const std::filesystem::path& dir);

}  // namespace gsk::envs
