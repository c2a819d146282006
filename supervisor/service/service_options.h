// The kernel registry's settings. Each default is spelled here only; the daemon's config embeds
// this struct. A value type, not synchronized.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "kernel-spec/requirement.h"

namespace gsk::service {

struct ServiceOptions {
  spec::ParseOptions parse;      // what a document may hold ([packages] allow_*, [limits])
  int64_t max_kernels = 100000;  // [limits] max_kernels
  // envs::PackageIndex::Fingerprint() of the running configuration: part of every env hash.
  std::string index_fingerprint;
};

// [models]: where models may be loaded from and how calls are bounded.
struct ModelOptions {
  // A model path must lie under one of these once symlinks are resolved; empty: the daemon
  // uses <state>/models. A relative path in a call is taken under the first root.
  std::vector<std::filesystem::path> roots;
  std::chrono::milliseconds call_timeout{60'000};         // when a call names none
  std::chrono::milliseconds max_call_timeout{3'600'000};  // the most a call may ask for
  int queue_size = 100;                   // calls waiting per kernel; more get 429
  uint64_t max_request_bytes = 15 << 20;  // a call's body (within the 16 MiB frame limit)
  int models_per_worker = 4;              // models a worker keeps loaded (LRU)
};

}  // namespace gsk::service
