// BuildRunner: runs the steps of env builds as processes: `python -m venv --without-pip`, pip
// run from its wheel by the venv's own Python (the kernel's requirements and the worker shim),
// then an import check. It knows nothing of queues, limits or the store: EnvManager says what to
// build and hears back how it went. The launcher and the timers are injected, so that tests run
// builds on fakes. Not thread-safe: core thread, like the launcher and timers it uses.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/timers.h"
#include "supervisor/envs/env_options.h"
#include "supervisor/process/process_launcher.h"
#include "supervisor/python/interpreters.h"

namespace gsk::envs {

struct BuildJob {
  std::string hash;
  std::filesystem::path venv_dir;  // built in place: console scripts point at their real home
  python::Interpreter interpreter;
  std::vector<std::string> requirements;    // canonical lines
  std::filesystem::path requirements_file;  // written by the runner, read by pip
};

struct RunnerOptions {
  std::filesystem::path shim_wheel;
  std::filesystem::path pip_cache_dir;  // "" = no cache
  std::filesystem::path scratch_dir;    // the steps' HOME, TMPDIR and working directory
  PackageIndex index;
  bool compile_bytecode = false;
};

// How a build's steps ended.
struct StepOutcome {
  bool ok = false;
  bool cancelled = false;  // by Cancel
  std::string phase;       // the step that ended it: "creating-venv", "installing", "verifying"
  std::string what;        // "exited with code 1", or why the step could not start
};

class BuildRunner {
 public:
  struct Callbacks {
    // Each step as it starts: its phase and the command line shown in the build log.
    std::function<void(std::string_view phase, std::string_view command)> on_step;
    std::function<void(std::string_view line)> on_line;  // the steps' output, line by line
    std::function<void(const StepOutcome& outcome)> on_done;  // once, never inside Start
  };

  // REQUIRES: `launcher` and `timers` outlive the runner and call back on its thread.
  BuildRunner(process::ProcessLauncher& launcher, Timers& timers, RunnerOptions options);
  ~BuildRunner();
  BuildRunner(const BuildRunner&) = delete;
  BuildRunner& operator=(const BuildRunner&) = delete;

  // Starts the steps of `job`. REQUIRES: no build of job.hash runs.
  void Start(const BuildJob& job, Callbacks callbacks);
  // Kills the running step of `hash`'s build; its on_done follows with cancelled = true.
  void Cancel(const std::string& hash);
  // Kills every step and forgets the builds: no on_done follows (shutdown).
  void Abandon();
  bool Running(const std::string& hash) const { return runs_.count(hash) != 0; }

 private:
  struct Run;
  void RunStep(const std::string& hash, std::string phase, std::vector<std::string> argv,
               std::map<std::string, std::string> env, void (BuildRunner::*next)(Run&));
  void Install(Run& run);
  void Verify(Run& run);
  void Succeed(Run& run);
  void Finish(const std::string& hash, StepOutcome outcome);

  process::ProcessLauncher& launcher_;
  Timers& timers_;
  RunnerOptions options_;
  std::map<std::string, std::unique_ptr<Run>> runs_;  // by hash
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace gsk::envs
