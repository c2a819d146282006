// StoreObserver: a WorkerObserver that persists every transition as the worker's row in the
// Store plus an event ("worker.running", subject "worker/<id>"), in one transaction; a removed
// worker's row is deleted. Failures are logged: supervision goes on without the database.
// Not thread-safe: used on the pool's thread, which also owns the Store.
#pragma once

#include "supervisor/store/store.h"
#include "supervisor/workers/worker.h"

namespace gsk::workers {

store::WorkerRow ToRow(const WorkerInfo& worker);

class StoreObserver final : public WorkerObserver {
 public:
  explicit StoreObserver(store::Store& store) : store_(store) {}
  void OnTransition(const WorkerInfo& worker, WorkerState from, std::string_view reason) override;
  void OnRemoved(const WorkerInfo& worker) override;

 private:
  store::Store& store_;
};

}  // namespace gsk::workers
