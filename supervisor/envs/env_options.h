// The settings of managed environments: where they live, how pip reaches packages, and the
// limits of builds. Each default is spelled here only; the daemon's config embeds these structs.
// Value types, not synchronized.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "supervisor/python/interpreters.h"

namespace gsk::envs {

// [packages]: where pip looks for distributions.
struct PackageIndex {
  std::string index_url;  // "" = pip's default
  std::vector<std::string> extra_index_urls;
  std::vector<std::string> find_links;
  bool offline = false;  // --no-index: find_links only
  std::vector<std::string> trusted_hosts;

  // The settings that change what pip would install; part of every env hash, so that an env
  // built from one index is never used for a kernel that asks another.
  std::string Fingerprint() const {
    std::string out = "index_url=" + index_url + "\n";
    for (const auto& u : extra_index_urls) out += "extra_index_url=" + u + "\n";
    for (const auto& f : find_links) out += "find_links=" + f + "\n";
    out += std::string("offline=") + (offline ? "1" : "0") + "\n";
    return out;
  }
};

// [builds]
struct BuildLimits {
  int timeout_seconds = 1800;      // a whole build: venv, pip, verification
  int max_concurrent = 2;          // builds running at once; others wait, "pending"
  int64_t disk_budget_mb = 20480;  // envs on disk; unused ones are collected, least recent first
  bool compile_bytecode = false;   // pip --no-compile unless true
};

struct EnvOptions {
  std::filesystem::path envs_dir;       // <state>/envs: one directory per env
  std::filesystem::path logs_dir;       // <state>/logs/builds: one log per env
  std::filesystem::path scratch_dir;    // HOME and TMPDIR of the build steps
  std::filesystem::path pip_cache_dir;  // "" = no cache
  std::filesystem::path shim_wheel;     // installed into every env
  PackageIndex index;
  BuildLimits limits;
  std::vector<python::Interpreter> interpreters;  // discovered at start
};

}  // namespace gsk::envs
