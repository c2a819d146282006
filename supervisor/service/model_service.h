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
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "supervisor/relay/relay.h"
#include "supervisor/service/kernel_service.h"
#include "supervisor/service/model_blobs.h"
#include "supervisor/service/service_options.h"
#include "supervisor/workers/worker_pool.h"

namespace gsk::service {

struct PredictAnswer {
  // The worker's reply frame, kept whole so that its predictions are never copied on their
  // way to the answer; the result object is the text [result_begin, result_begin + result_size).
  std::string reply;
  size_t result_begin = 0;
  size_t result_size = 0;
  std::string worker;
  int64_t duration_ms = 0;  // on the worker, from the send to the reply
  int64_t queued_ms = 0;    // waiting for a free worker

  std::string_view result() const {
    return std::string_view(reply).substr(result_begin, result_size);
  }
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

// The configured model roots, and where a model path leads under them. A path is accepted
// when, as written, it lies under a root (in its configured or its resolved spelling), and,
// with every symlink resolved, under a resolved root. A resolution is reused for kReuseMillis
// at most, and only while one stat of the path finds the very file it led to (see
// model_service.cc). Not thread-safe: lives on the core thread.
class ModelRoots {
 public:
  static constexpr int64_t kReuseMillis = 1000;
  static constexpr size_t kMaxRemembered = 1024;

  // `clock` must outlive this.
  ModelRoots(std::vector<std::filesystem::path> configured, const Clock& clock);

  // Resolves the roots (creating a missing one). kFailedPrecondition naming a root that cannot
  // be used, or when none is configured.
  Status Init();

  // The model path as the workers will open it: absolute, symlinks resolved, under a root. A
  // relative `text` is taken under the first root. kInvalidArgument (detail "field": "model")
  // for an empty path; kFailedPrecondition with detail "reason": "forbidden" for a path outside
  // the roots; kNotFound when it does not exist. REQUIRES: Init() succeeded.
  Result<std::filesystem::path> Resolve(const std::string& text);

 private:
  struct Known {  // a resolution, and the file it led to (see model_service.cc)
    std::filesystem::path real;
    uint64_t device = 0;
    uint64_t inode = 0;
    int64_t ctime_ns = 0;
    int64_t resolved_ms = 0;
  };
  Result<std::filesystem::path> ResolveAfresh(const std::string& text,
                                              const std::filesystem::path& asked);
  void Remember(const std::string& key, const std::filesystem::path& real);

  std::vector<std::filesystem::path> configured_;
  const Clock& clock_;
  std::vector<std::filesystem::path> roots_;      // canonical
  std::vector<std::filesystem::path> written_;    // as configured (absolute, normalized)
  std::unordered_map<std::string, Known> known_;  // by the path as asked (absolute, normalized)
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
  // The model path as the workers will open it: see ModelRoots::Resolve.
  Result<std::filesystem::path> ResolveModel(const std::string& path) {
    return roots_.Resolve(path);
  }

  const ModelOptions& options() const { return options_; }
  // Where unmanaged kernels' calls get their model's blob (see ModelBlobs); nullptr: their
  // workers get only the path, which works for a worker on this host only.
  void SetBlobs(ModelBlobs* blobs) { blobs_ = blobs; }

 private:
  struct Envelope;
  // `remote`: the call goes to an unmanaged worker, so its params also name the model's blob.
  Result<Envelope> ReadEnvelope(std::string_view body, bool needs_rows, bool remote);

  KernelService& kernels_;
  workers::WorkerPool& pool_;
  relay::Relay& relay_;
  ModelOptions options_;
  SystemClock clock_;
  ModelRoots roots_;
  ModelBlobs* blobs_ = nullptr;
};

// What a worker's reply says: OK with its result object's text (a view into `reply_frame`), or
// the error it carries, as a Status (see ModelService::Predict).
Result<std::string_view> ReplyResult(std::string_view reply_frame);

}  // namespace gsk::service
