// Views: every JSON shape the REST API returns, in one place: kernels, workers, events, the
// daemon's status and errors. Pure functions of service values; thread-safe.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/status.h"
#include "supervisor/service/kernel.h"
#include "supervisor/service/model_service.h"
#include "supervisor/service/system_service.h"
#include "supervisor/store/store.h"
#include "supervisor/relay/remote_workers.h"
#include "supervisor/workers/worker.h"

namespace gsk::api {

// The kernel's normalized document (env values masked) plus what the supervisor adds: status,
// envHash, lastError, generation, started, runningWorkers, createdAt, updatedAt, and "build"
// while its env is queued or building.
nlohmann::json KernelView(const service::Kernel& kernel, const service::KernelState& state,
                          int running_workers);

// A worker; with `environment`, also what its hello reported.
nlohmann::json WorkerView(const workers::WorkerInfo& worker, bool environment, int64_t now_ms);
// An unmanaged worker, in the same shape plus "managed": false, "active", "remoteAddress",
// "hostname" and "keyName".
nlohmann::json RemoteWorkerView(const relay::RemoteWorkerInfo& worker, bool environment,
                                int64_t now_ms);

nlohmann::json EventsView(const std::vector<store::Event>& events);

// A worker API key without its secret: {"name", "createdAt", "lastUsedAt"}.
nlohmann::json KeyView(const store::KeyRow& key);

// The answer of a predict call as JSON text: the worker's result object as it sent it (its
// rows are not decoded and re-encoded), plus "worker", "durationMs" and "queuedMs". Built in
// the memory of the answer's reply frame, which it takes.
std::string PredictView(service::PredictAnswer answer);

// {"model", "loaded": N, "workers": [{"worker", ...result} | {"worker", "error": {...}}]}.
nlohmann::json LoadView(const service::LoadAnswer& answer);

nlohmann::json StatusView(const service::DaemonStatus& status);

// {"error": {"code", "message", "details"}}.
nlohmann::json ErrorView(std::string_view code, std::string_view message,
                         const std::vector<Status::Detail>& details);

}  // namespace gsk::api
