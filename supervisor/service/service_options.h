// The kernel registry's settings. Each default is spelled here only; the daemon's config embeds
// this struct. A value type, not synchronized.
#pragma once

#include <cstdint>
#include <string>

#include "kernel-spec/requirement.h"

namespace gsk::service {

struct ServiceOptions {
  spec::ParseOptions parse;      // what a document may hold ([packages] allow_*, [limits])
  int64_t max_kernels = 100000;  // [limits] max_kernels
  // envs::PackageIndex::Fingerprint() of the running configuration: part of every env hash.
  std::string index_fingerprint;
};

}  // namespace gsk::service
