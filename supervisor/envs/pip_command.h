// The argv and environment of the build steps (venv creation, pip install, verification), built
// from the settings alone: no shell, and none of the daemon's own environment leaks in.
// Pure functions; thread-safe.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "supervisor/envs/env_options.h"

namespace gsk::envs {

struct Command {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
};

struct PipInputs {
  std::filesystem::path venv_dir;
  std::filesystem::path pip_wheel;          // pip-*.whl run with the venv's python
  std::filesystem::path requirements_file;  // written by the caller
  std::filesystem::path shim_wheel;         // the worker shim, always installed
  std::filesystem::path cache_dir;          // "" = no cache
  std::filesystem::path scratch_dir;        // HOME and TMPDIR of the build steps
  PackageIndex index;
  bool compile_bytecode = false;
};

// The environment every build step gets: a fixed PATH, C.UTF-8, HOME/TMPDIR in scratch_dir,
// pip's config files disabled.
std::map<std::string, std::string> BuildEnvironment(const std::filesystem::path& venv_dir,
                                                    const std::filesystem::path& scratch_dir);

Command VenvCommand(const std::filesystem::path& interpreter, const PipInputs& in);
Command PipInstallCommand(const PipInputs& in);
Command VerifyCommand(const PipInputs& in);

}  // namespace gsk::envs
