// ForkingLauncher: a ProcessLauncher for workers that forks them from a template process per
// virtualenv (a fork server) instead of starting a new interpreter each time. A template is the
// env's Python running the shim (`serve-template`) with its imports done; on request it
// double-forks a worker, which takes on its own identity (id, token, process group, working
// directory, HOME, environment, rlimits, log) and registers as any worker does. The worker is
// re-parented to the daemon (a child subreaper), so its exit and status are observed as for a
// launched process. A kernel may ask its template to preload models (ProcessSpec::preload): an
// env has one template per distinct list. Templates start with the env's first worker (which is started by exec while
// its template warms up), are started again after they die, and stop once their env has had no
// worker for `idle`. A launch that cannot fork (not a shim worker, a PYTHON*/LD_* variable
// that changes how the interpreter starts, a kernel that opted out, a template that fails or
// hangs) is an exec by the inner launcher. Not thread-safe: the core thread, like the inner
// launcher and the timers.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/timers.h"
#include "supervisor/process/process_launcher.h"

namespace gsk::process {

struct ForkOptions {
  // Each template runs in templates_dir/<name>/ and logs to logs_dir/<name>.log, where <name> is
  // the env's folder name, plus "-preload-" and a digest of the list if it preloads models.
  std::filesystem::path templates_dir;
  std::filesystem::path logs_dir;
  std::chrono::milliseconds idle{30'000};          // a template with no worker this long stops
  std::chrono::milliseconds fork_timeout{2'000};   // a fork request must be answered in this
  std::chrono::milliseconds ready_timeout{60'000};  // a template must be ready in this
  std::chrono::milliseconds retry_after{60'000};   // after a template failed: exec until then
};

class ForkingLauncher final : public ProcessLauncher {
 public:
  // REQUIRES: `inner` and `timers` outlive this launcher and call back on its thread.
  ForkingLauncher(ProcessLauncher& inner, Timers& timers, ForkOptions options);
  ~ForkingLauncher() override;
  ForkingLauncher(const ForkingLauncher&) = delete;
  ForkingLauncher& operator=(const ForkingLauncher&) = delete;

  // Forks `spec` from its env's template when it can (spec.forkable and a worker of the shim),
  // else launches it with the inner launcher.
  Result<ProcessHandle> Launch(ProcessSpec spec, ExitCallback on_exit) override;
  void Stop(const ProcessHandle& handle, std::chrono::milliseconds grace) override;
  void Kill(const ProcessHandle& handle) override;
  Result<ProcessHandle> Adopt(const AdoptSpec& spec, ExitCallback on_exit) override;

  // Why `spec` would not be forked, or "" when it would (for logs and tests).
  static std::string WhyNotForkable(const ProcessSpec& spec);

  struct Counts {
    int forked = 0;      // workers forked from a template
    int executed = 0;    // workers launched by exec instead
    int templates = 0;   // templates running now
  };
  Counts counts() const;

 private:
  struct Template;
  // A template is known by its env root and the models it preloads.
  using Key = std::pair<std::filesystem::path, std::vector<std::string>>;
  Template& TemplateFor(const std::filesystem::path& env, const std::vector<std::string>& preload);
  void StartTemplate(Template& t, const ProcessSpec& worker);
  bool CheckReady(Template& t);
  Result<ProcessHandle> Fork(Template& t, const ProcessSpec& spec, ExitCallback on_exit);
  void Retire(Template& t, const std::string& why);
  // `on_exit`, after counting the worker out of its env's template (see WorkerGone). The caller
  // counts it in (++t.workers) once it is launched.
  ExitCallback CountedIn(Template& t, ExitCallback on_exit);
  // One worker of the template's less (forked or exec'd): with none left, it stops after idle.
  void WorkerGone(const Key& key);

  ProcessLauncher& inner_;
  Timers& timers_;
  ForkOptions options_;
  std::map<Key, std::unique_ptr<Template>> templates_;
  Counts counts_;
  uint64_t next_request_ = 1;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace gsk::process
