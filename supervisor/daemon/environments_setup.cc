#include "supervisor/daemon/environments_setup.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace gsk::daemon {
namespace {

namespace fs = std::filesystem;

std::string Getenv(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

fs::path NewestWheelIn(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("giskard_worker_shim-", 0) == 0 && e.path().extension() == ".whl") {
      found.push_back(e.path());
    }
  }
  std::sort(found.begin(), found.end());
  return found.empty() ? fs::path() : found.back();
}

}  // namespace

Result<fs::path> FindShimWheel(const config::Config& config) {
  if (!config.shim_wheel.empty()) {
    std::error_code ec;
    if (!fs::is_regular_file(config.shim_wheel, ec)) {
      return NotFound("[python] shim_wheel " + config.shim_wheel + " is not a file");
    }
    return fs::path(config.shim_wheel);
  }
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  std::vector<fs::path> dirs;
  if (!ec) dirs.push_back(exe.parent_path().parent_path() / "worker-shim/dist");
  dirs.emplace_back("/usr/share/giskard-supervisor");
  std::string looked;
  for (const auto& dir : dirs) {
    fs::path wheel = NewestWheelIn(dir);
    if (!wheel.empty()) return wheel;
    looked += (looked.empty() ? "" : ", ") + dir.string();
  }
  return NotFound("the worker-shim wheel was not found in " + looked +
                  "; build the worker_shim_wheel target or set [python] shim_wheel");
}

std::vector<python::Interpreter> DiscoverConfiguredInterpreters(const config::Config& config) {
  python::DiscoveryOptions o;
  o.configured = config.python_interpreters;
  o.path_env = Getenv("PATH");
  o.pyenv_root = Getenv("PYENV_ROOT");
  o.home = Getenv("HOME");
  return python::DiscoverInterpreters(o);
}

envs::EnvOptions MakeEnvOptions(const config::Config& config,
                                std::vector<python::Interpreter> interpreters,
                                fs::path shim_wheel) {
  envs::EnvOptions o;
  o.envs_dir = config.EnvsDir();
  o.logs_dir = config.BuildLogsDir();
  o.scratch_dir = config.state_dir / "tmp";
  o.pip_cache_dir = config.PipCacheDir();
  o.shim_wheel = std::move(shim_wheel);
  o.index = config.packages.index;
  o.limits = config.builds;
  o.interpreters = std::move(interpreters);
  return o;
}

envs::RunnerOptions MakeRunnerOptions(const envs::EnvOptions& o) {
  envs::RunnerOptions r;
  r.shim_wheel = o.shim_wheel;
  r.pip_cache_dir = o.pip_cache_dir;
  r.scratch_dir = o.scratch_dir;
  r.index = o.index;
  r.compile_bytecode = o.limits.compile_bytecode;
  return r;
}

}  // namespace gsk::daemon
