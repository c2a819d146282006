#include "supervisor/envs/build_runner.h"

#include <fstream>
#include <optional>

#include "supervisor/envs/pip_command.h"

namespace gsk::envs {

struct BuildRunner::Run {
  BuildJob job;
  Callbacks callbacks;
  std::optional<process::ProcessHandle> current;
  bool cancelled = false;
};

BuildRunner::BuildRunner(process::ProcessLauncher& launcher, Timers& timers,
                         RunnerOptions options)
    : launcher_(launcher), timers_(timers), options_(std::move(options)) {}

BuildRunner::~BuildRunner() { Abandon(); }

void BuildRunner::Start(const BuildJob& job, Callbacks callbacks) {
  auto run = std::make_unique<Run>();
  run->job = job;
  run->callbacks = std::move(callbacks);
  runs_[job.hash] = std::move(run);
  PipInputs in;
  in.venv_dir = job.venv_dir;
  in.scratch_dir = options_.scratch_dir;
  Command cmd = VenvCommand(job.interpreter.path, in);
  RunStep(job.hash, "creating-venv", std::move(cmd.argv), std::move(cmd.env),
          &BuildRunner::Install);
}

void BuildRunner::Cancel(const std::string& hash) {
  auto it = runs_.find(hash);
  if (it == runs_.end()) return;
  it->second->cancelled = true;
  if (it->second->current) launcher_.Kill(*it->second->current);
}

void BuildRunner::Abandon() {
  auto runs = std::move(runs_);
  runs_.clear();
  for (auto& [hash, run] : runs) {
    if (run->current) launcher_.Kill(*run->current);
  }
}

void BuildRunner::RunStep(const std::string& hash, std::string phase,
                          std::vector<std::string> argv, std::map<std::string, std::string> env,
                          void (BuildRunner::*next)(Run&)) {
  Run& run = *runs_.at(hash);
  std::string shown;
  for (const auto& a : argv) shown += (shown.empty() ? "" : " ") + a;
  if (run.callbacks.on_step) run.callbacks.on_step(phase, shown);
  process::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.env = std::move(env);
  spec.cwd = options_.scratch_dir;
  std::weak_ptr<int> alive = alive_;
  spec.on_output = [this, alive, hash](std::string_view line) {
    if (!alive.lock()) return;
    auto it = runs_.find(hash);
    if (it != runs_.end() && it->second->callbacks.on_line) it->second->callbacks.on_line(line);
  };
  auto on_exit = [this, alive, hash, phase, next](const process::ExitInfo& exit) {
    if (!alive.lock()) return;
    auto it = runs_.find(hash);
    if (it == runs_.end()) return;  // abandoned
    Run& r = *it->second;
    r.current.reset();
    if (r.cancelled) return Finish(hash, {false, true, phase, exit.Describe()});
    if (!exit.success()) return Finish(hash, {false, false, phase, exit.Describe()});
    (this->*next)(r);
  };
  Result<process::ProcessHandle> launched = launcher_.Launch(std::move(spec), std::move(on_exit));
  if (!launched.ok()) {
    // Reported on a later turn: on_done is never called inside Start.
    std::string what = launched.status().message();
    timers_.After(std::chrono::milliseconds(0), [this, alive, hash, phase, what] {
      if (alive.lock() && runs_.count(hash)) Finish(hash, {false, false, phase, what});
    });
    return;
  }
  run.current = *launched;
}

void BuildRunner::Install(Run& run) {
  PipInputs in;
  in.venv_dir = run.job.venv_dir;
  in.pip_wheel = run.job.interpreter.pip_wheel;
  in.requirements_file = run.job.requirements_file;
  in.shim_wheel = options_.shim_wheel;
  in.cache_dir = options_.pip_cache_dir;
  in.scratch_dir = options_.scratch_dir;
  in.index = options_.index;
  in.compile_bytecode = options_.compile_bytecode;
  std::ofstream req(in.requirements_file, std::ios::trunc);
  for (const auto& line : run.job.requirements) req << line << '\n';
  req.close();
  if (!req) {
    return Finish(run.job.hash,
                  {false, false, "installing", "cannot write " + in.requirements_file.string()});
  }
  Command cmd = PipInstallCommand(in);
  RunStep(run.job.hash, "installing", std::move(cmd.argv), std::move(cmd.env),
          &BuildRunner::Verify);
}

void BuildRunner::Verify(Run& run) {
  PipInputs in;
  in.venv_dir = run.job.venv_dir;
  in.scratch_dir = options_.scratch_dir;
  Command cmd = VerifyCommand(in);
  RunStep(run.job.hash, "verifying", std::move(cmd.argv), std::move(cmd.env),
          &BuildRunner::Succeed);
}

void BuildRunner::Succeed(Run& run) { Finish(run.job.hash, {true, false, "verifying", ""}); }

void BuildRunner::Finish(const std::string& hash, StepOutcome outcome) {
  auto it = runs_.find(hash);
  if (it == runs_.end()) return;
  std::unique_ptr<Run> run = std::move(it->second);
  runs_.erase(it);
  if (run->callbacks.on_done) run->callbacks.on_done(outcome);
}

}  // namespace gsk::envs
