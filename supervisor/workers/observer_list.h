// ObserverList: a WorkerObserver that tells several others, in the order they were added (the
// store first, so that what others see is already durable). Not thread-safe: the pool's thread.
#pragma once

#include <vector>

#include "supervisor/workers/worker.h"

namespace gsk::workers {

class ObserverList final : public WorkerObserver {
 public:
  // REQUIRES: `observer` outlives this list.
  void Add(WorkerObserver* observer) { observers_.push_back(observer); }

  void OnTransition(const WorkerInfo& worker, WorkerState from, std::string_view reason) override {
    for (WorkerObserver* o : observers_) o->OnTransition(worker, from, reason);
  }
  void OnRemoved(const WorkerInfo& worker) override {
    for (WorkerObserver* o : observers_) o->OnRemoved(worker);
  }

 private:
  std::vector<WorkerObserver*> observers_;
};

}  // namespace gsk::workers
