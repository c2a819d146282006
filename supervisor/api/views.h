// Views: every JSON shape the REST API returns, in one place: kernels, workers, events, the
// daemon's status and errors. Pure functions of service values; thread-safe.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/status.h"
#include "supervisor/service/kernel.h"
#include "supervisor/service/system_service.h"
#include "supervisor/store/store.h"
#include "supervisor/workers/worker.h"

namespace gsk::api {

// The kernel's normalized document (env values masked) plus what the supervisor adds: status,
// envHash, lastError, generation, started, runningWorkers, createdAt, updatedAt, and "build"
// while its env is queued or building.
nlohmann::json KernelView(const service::Kernel& kernel, const service::KernelState& state,
                          int running_workers);

// A worker; with `environment`, also what its hello reported.
nlohmann::json WorkerView(const workers::WorkerInfo& worker, bool environment, int64_t now_ms);

nlohmann::json EventsView(const std::vector<store::Event>& events);

nlohmann::json StatusView(const service::DaemonStatus& status);

// {"error": {"code", "message", "details"}}.
nlohmann::json ErrorView(std::string_view code, std::string_view message,
                         const std::vector<Status::Detail>& details);

}  // namespace gsk::api
