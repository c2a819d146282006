// libFuzzer target for kernel-spec: the kernel document parser and the requirement line parser
// on arbitrary bytes. Besides crashes and sanitizer reports it checks that nothing throws, that
// error messages can go into a JSON body, and that normalizing is idempotent: what ToJson or
// Canonical() produce parses again to the same thing.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "kernel-spec/kernel_spec.h"

namespace {

using gsk::spec::ParseOptions;

[[noreturn]] void Fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "kernel_spec_fuzz: %s: %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

void CheckMessage(const gsk::Status& status) {
  try {
    (void)nlohmann::json(status.message()).dump();
  } catch (const nlohmann::json::exception&) {
    Fail("message is not valid UTF-8", status.message());
  }
}

void FuzzDocument(std::string_view text, const ParseOptions& options) {
  auto spec = gsk::spec::ParseKernelDocument(text, options);
  if (!spec.ok()) {
    CheckMessage(spec.status());
    return;
  }
  const std::string once = gsk::spec::ToJson(*spec, false).dump();
  auto again = gsk::spec::ParseKernelDocument(once, options);
  if (!again.ok()) Fail(again.status().message().c_str(), once);
  if (gsk::spec::ToJson(*again, false).dump() != once) Fail("ToJson is not stable", once);
  if (gsk::spec::EnvHash(*again, "x") != gsk::spec::EnvHash(*spec, "x")) {
    Fail("hash is not stable", once);
  }
  (void)gsk::spec::ToJson(*spec, true).dump();
}

void FuzzLine(std::string_view line, const ParseOptions& options) {
  auto req = gsk::spec::ParseRequirement(line, options);
  if (!req.ok()) {
    CheckMessage(req.status());
    return;
  }
  const std::string canonical = req->Canonical();
  auto again = gsk::spec::ParseRequirement(canonical, options);
  if (!again.ok()) Fail(again.status().message().c_str(), canonical);
  if (again->Canonical() != canonical) Fail("Canonical() is not stable", canonical);
  if (again->PinnedVersion() != req->PinnedVersion()) Fail("pin changed", canonical);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ParseOptions strict;
  ParseOptions open;
  open.allow_pip_options = true;
  open.allow_direct_urls = true;
  open.allow_local_paths = true;
  FuzzDocument(text, strict);
  FuzzDocument(text, open);
  for (std::string_view rest = text; !rest.empty();) {
    std::size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    FuzzLine(line, strict);
    FuzzLine(line, open);
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return 0;
}
