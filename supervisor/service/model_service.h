// ModelService: the transport-free face of model calls. It reads a call's envelope (never its
// rows), checks the model path (under the configured roots once symlinks are resolved, so that
// no worker opens anything else), says why a kernel cannot serve, and hands calls to the relay;
// it turns a worker's reply into an answer or an error the API maps to HTTP. Not thread-safe:
// lives on the core thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "supervisor/relay/relay.h"
#include "supervisor/service/kernel_service.h"
#include "supervisor/service/service_options.h"
#include "supervisor/workers/worker_pool.h"

namespace gsk::service {

struct PredictAnswer {
  std::string result;  // the worker's result object, JSON text, as it sent it
  std::string worker;
  int64_t duration_ms = 0;  // on the worker, from the send to the reply
  int64_t queued_ms = 0;    // waiting for a free worker
};

struct WorkerLoad {
  std::string worker;
  Status status;       // OK: `result` is the worker's load_model result (JSON text)
  std::string result;
};

struct LoadAnswer {
  std::string model;  // the resolved path
  std::vector<WorkerLoad> workers;
};

class ModelService {
 public:
  // The collaborators must outlive the service. Makes `relay` ask Servable.
  ModelService(KernelService& kernels, workers::WorkerPool& pool, relay::Relay& relay,
               ModelOptions options);

  // Resolves the roots (creating a missing one). kFailedPrecondition naming a root that cannot
  // be used.
  Status Init();

  // POST /kernels/{name}/predict with `body` {"model", "columns"?, "rows" | "records",
  // "timeoutSeconds"?}. `done` is called once: at once for a call refused before it reaches a
  // worker, else on a later turn. Errors: kNotFound;
  // kInvalidArgument with detail "reason" invalid_json (not an object), invalid_input (the rows
  // or a field), model_error or model_load_error (raised in the worker, with "type" and
  // "traceback"); kFailedPrecondition "forbidden" (a path outside the roots); kUnavailable
  // (cannot serve: why; or "worker_lost"); kDeadlineExceeded; kResourceExhausted (queue full).
  void Predict(const std::string& kernel, std::string_view body,
               std::function<void(Result<PredictAnswer>)> done);
  // POST /kernels/{name}/models with {"model", "timeoutSeconds"?}: loads it on every running
  // worker of the kernel. An error when no worker could load it.
  void Load(const std::string& kernel, std::string_view body,
            std::function<void(Result<LoadAnswer>)> done);

  // OK when calls to `kernel` can be served now or once its workers run; else why not.
  Status Servable(const std::string& kernel) const;
  // The model path as the workers will open it: absolute, symlinks resolved, under a root.
  Result<std::filesystem::path> ResolveModel(const std::string& path) const;

  const ModelOptions& options() const { return options_; }

 private:
  struct Envelope;
  Result<Envelope> ReadEnvelope(std::string_view body, bool needs_rows) const;

  KernelService& kernels_;
  workers::WorkerPool& pool_;
  relay::Relay& relay_;
  ModelOptions options_;
  std::vector<std::filesystem::path> roots_;    // canonical
  std::vector<std::filesystem::path> written_;  // as configured (absolute, normalized)
};

// What a worker's reply says: OK with its result object's text, or the error it carries, as a
// Status (see ModelService::Predict).
Result<std::string> ReplyResult(const std::string& reply_frame);

}  // namespace gsk::service
