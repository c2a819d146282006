#include "supervisor/workers/store_observer.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <string>

namespace gsk::workers {

store::WorkerRow ToRow(const WorkerInfo& w) {
  store::WorkerRow row;
  row.id = w.id;
  row.kernel = w.kernel;
  row.state = std::string(StateName(w.state));
  row.pid = w.pid;
  row.process_start_ticks = w.process_start_ticks;
  row.token_hash = w.token_hash;
  row.restarts = w.restarts;
  row.quick_failures = w.quick_failures;
  row.exit_description = w.exit_description;
  row.last_error = w.last_error;
  row.python_version = w.python_version;
  row.env_json = w.env_json.empty() ? "{}" : w.env_json;
  row.log_file = w.log_file;
  row.created_at_ms = w.created_at_ms;
  row.updated_at_ms = w.updated_at_ms;
  row.started_at_ms = w.started_at_ms;
  return row;
}

void StoreObserver::OnTransition(const WorkerInfo& worker, WorkerState from,
                                 std::string_view reason) {
  store::Event event;
  event.ts_ms = worker.updated_at_ms;
  event.kind = "worker." + std::string(StateName(worker.state));
  event.subject = "worker/" + worker.id;
  event.actor = "supervisor";
  nlohmann::json detail = {
      {"kernel", worker.kernel}, {"from", StateName(from)}, {"to", StateName(worker.state)},
      {"reason", reason},        {"pid", worker.pid},       {"restarts", worker.restarts}};
  // Reasons may quote a worker's output or a path: never let bad UTF-8 throw here.
  event.detail_json = detail.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  Status status = store_.PutWorker(ToRow(worker), event);
  if (!status.ok()) {
    spdlog::error("event=store.write_failed worker={} state={} error=\"{}\"", worker.id, StateName(worker.state),
                  status.ToString());
  }
}

void StoreObserver::OnRemoved(const WorkerInfo& worker) {
  store::Event event;
  event.ts_ms = worker.updated_at_ms;
  event.kind = "worker.removed";
  event.subject = "worker/" + worker.id;
  event.actor = "supervisor";
  event.detail_json = nlohmann::json({{"kernel", worker.kernel}})
                          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  Status status = store_.DeleteWorker(worker.id, event);
  if (!status.ok() && status.code() != StatusCode::kNotFound) {
    spdlog::error("event=store.write_failed worker={} error=\"{}\"", worker.id, status.ToString());
  }
}

}  // namespace gsk::workers
