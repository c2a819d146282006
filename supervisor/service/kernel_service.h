// KernelService: the transport-free kernel registry. It validates documents with kernel-spec,
// enforces limits, and writes kernels and their audit events to the store in one transaction.
// Not thread-safe: lives on the supervisor's core thread, like the store it uses.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/clock.h"
#include "base/result.h"
#include "kernel-spec/kernel_spec.h"
#include "supervisor/envs/environments.h"
#include "supervisor/store/store.h"

namespace gsk::service {

struct ServiceOptions {
  spec::ParseOptions parse;
  int64_t max_kernels = 100000;
  std::string index_fingerprint;  // from config::Config::IndexFingerprint()
};

// Who asked: recorded as the actor of audit events.
struct Caller {
  std::string actor = "rest";
};

struct WriteOutcome {
  store::KernelRow row;
  bool changed = false;               // false for an idempotent repeat of the same document
  std::vector<std::string> warnings;  // from parsing, e.g. unknown fields kept
};

class KernelService {
 public:
  // `store`, `clock` and `envs` must outlive the service. Without `envs` (nullptr) managed
  // kernels stay "pending": nothing builds their environments.
  KernelService(store::Store* store, const Clock* clock, ServiceOptions options,
                envs::Environments* envs = nullptr);

  // Creates a kernel from a Hub document. Posting the identical document again is a no-op that
  // returns the existing kernel (changed == false); a different document for an existing name
  // is kAlreadyExists. kInvalidArgument for bad documents (detail "field"), with detail
  // ("reason","invalid_json") when the body is not a JSON object. kResourceExhausted at
  // [limits] max_kernels.
  Result<WriteOutcome> Create(std::string_view body, const Caller& caller);
  // Replaces the document of an existing kernel. The body's "name", when present, must match.
  Result<WriteOutcome> Replace(const std::string& name, std::string_view body,
                               const Caller& caller);
  Result<store::KernelRow> Get(const std::string& name);
  Result<std::vector<store::KernelRow>> List();
  Status Delete(const std::string& name, const Caller& caller);
  // Builds the kernel's environment again. kFailedPrecondition for unmanaged kernels or while a
  // build of it runs.
  Result<store::KernelRow> Rebuild(const std::string& name, const Caller& caller);

  struct LogChunk {
    std::string text;
    uint64_t next_offset = 0;
    uint64_t size = 0;      // bytes in the log now
    bool complete = false;  // the build is over: no more bytes will come
  };
  // Up to `limit` bytes of the kernel's env build log from `offset`.
  Result<LogChunk> BuildLog(const std::string& name, uint64_t offset, uint64_t limit);

  // POST /kernels/{name}/stop (true) and /start (false): whether the kernel's workers run.
  // kFailedPrecondition for unmanaged kernels.
  Result<store::KernelRow> SetWorkersStopped(const std::string& name, bool stopped,
                                             const Caller& caller);

  // Called with the kernel's name after every change this service makes to it (create,
  // replace, delete, rebuild, start, stop), on the same thread, before the call returns.
  void SetOnChange(std::function<void(const std::string& name)> on_change) {
    on_change_ = std::move(on_change);
  }

  // At startup: asks for the env of every managed kernel again (failed ones are not retried).
  void ResumeEnvironments();

  std::optional<envs::BuildProgress> Progress(const store::KernelRow& row) const;

  const ServiceOptions& options() const { return options_; }

 private:
  store::KernelRow NewRow(const spec::KernelSpec& spec, std::string spec_json) const;
  store::Event MakeEvent(std::string kind, const std::string& name, const Caller& caller,
                         const store::KernelRow& row) const;

  // Asks for the env; a ready or failed one sets the status of this kernel only, unless
  // `every_kernel` (startup: one call per env for all its kernels).
  void EnsureEnv(const spec::KernelSpec& spec, const std::string& hash, bool retry_failed,
                 bool every_kernel = false);
  void Changed(const std::string& name);
  Result<store::KernelRow> Reload(const std::string& name);

  store::Store* store_;
  const Clock* clock_;
  ServiceOptions options_;
  envs::Environments* envs_;
  std::function<void(const std::string& name)> on_change_;
};

// The kernel as REST returns it: the normalized document with env values masked, plus status,
// envHash, lastError, generation, createdAt, updatedAt, and "build" while one runs.
nlohmann::json KernelToJson(const store::KernelRow& row,
                            const std::optional<envs::BuildProgress>& progress = std::nullopt);

// Masks a secret for display: "sk-****" for values of 12+ characters, else "****".
std::string MaskSecret(std::string_view value);

}  // namespace gsk::service
