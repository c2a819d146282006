// Startup helpers that turn the config into what the env builder needs: the interpreters found
// on this machine and the worker-shim wheel. Called once on the main thread before serving.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "base/result.h"
#include "supervisor/config/config.h"
#include "supervisor/envs/build_runner.h"
#include "supervisor/envs/env_options.h"
#include "supervisor/python/interpreters.h"

namespace gsk::daemon {

// [python] shim_wheel, else the wheel the build put next to the binary
// (<build>/worker-shim/dist), else /usr/share/giskard-supervisor. kNotFound says where it looked.
Result<std::filesystem::path> FindShimWheel(const config::Config& config);

std::vector<python::Interpreter> DiscoverConfiguredInterpreters(const config::Config& config);

envs::EnvOptions MakeEnvOptions(const config::Config& config,
                                std::vector<python::Interpreter> interpreters,
                                std::filesystem::path shim_wheel);
envs::RunnerOptions MakeRunnerOptions(const envs::EnvOptions& options);

}  // namespace gsk::daemon
