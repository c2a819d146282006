// Relay: model calls from the REST API to a kernel's workers, over the workers' own
// connections, one call at a time per worker. A call waits in its kernel's bounded queue for an
// idle running worker (preferring one that has its model loaded) within its deadline. A call
// that outlives its deadline on a worker has that worker killed and replaced; a worker that
// exits or hangs up mid-call fails its call naming the exit. It learns of workers coming and
// going as an observer of the pool. Nothing of a call is decoded here: its params and the
// worker's reply are JSON text passed through. Not thread-safe: lives on the core thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/clock.h"
#include "base/status.h"
#include "base/timers.h"
#include "supervisor/relay/worker_links.h"
#include "supervisor/workers/worker.h"
#include "supervisor/workers/worker_pool.h"

namespace gsk::relay {

// What the request message adds around a call's params (its type, id and method).
inline constexpr size_t kRequestHeadroom = 128;

struct CallRequest {
  std::string kernel;
  std::string method;  // "predict", "load_model"
  std::string model;   // the resolved model path: workers that loaded it are preferred
  // The request's params: the text of a JSON object, sent as is. Built with kRequestHeadroom
  // bytes of spare capacity, it becomes the request message without being copied.
  std::string params;
  std::chrono::milliseconds timeout{60'000};  // from Submit to the reply
  std::string worker;  // "" = any worker of the kernel; else this one only
};

struct CallOutcome {
  // OK: the worker replied (with a result or an error: see `reply`). kResourceExhausted: the
  // kernel's queue is full (detail "retryAfterSeconds"). kUnavailable: no worker can serve, or
  // the worker was lost mid-call (detail "reason": "worker_lost"). kDeadlineExceeded: no
  // worker was free in time, or the worker did not answer in time (it was killed).
  Status status;
  std::string worker;   // who ran it
  std::string reply;    // the reply frame, JSON text, when OK
  int64_t queued_ms = 0;    // from Submit to the send
  int64_t duration_ms = 0;  // from the send to the reply
};

struct RelayOptions {
  int queue_size = 100;  // calls waiting per kernel, beyond those a worker runs
  // How long a call whose connection broke waits to learn how its worker exited.
  std::chrono::milliseconds exit_wait{2'000};
  // OK when `kernel` can be served (it exists, runs, its env did not fail, its workers are not
  // all fatal), else why not. Asked at Submit and again while calls wait.
  std::function<Status(const std::string& kernel)> servable;
  // How many models a worker keeps loaded (the shim's GSK_MODEL_CACHE_SIZE), to guess which
  // worker has a model.
  int models_per_worker = 4;
  // The connected unmanaged worker that `kernel`'s calls go to, "" when none (not set: no
  // unmanaged workers). Such workers are not the pool's: they are never killed, and they go
  // through OnRemoteGone.
  std::function<std::string(const std::string& kernel)> remote_worker;
};

class Relay final : public workers::WorkerObserver {
 public:
  using Done = std::function<void(CallOutcome outcome)>;

  // REQUIRES: the collaborators outlive the relay and call back on its thread.
  Relay(WorkerLinks& links, workers::WorkerPool& pool, Timers& timers, const Clock& clock,
        RelayOptions options);
  ~Relay() override;
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Runs the call on a worker of its kernel; `done` is called once, never inside Submit.
  void Submit(CallRequest request, Done done);
  // Asks `servable` again for every kernel with waiting calls, failing those that cannot be
  // served any more (call after a kernel or env change).
  void Recheck();
  // A worker registered (its welcome is out): it may take calls, from the next turn.
  void OnConnected(const std::string& worker_id);
  // An unmanaged worker of `kernel` registered; one lost its connection (its call fails now).
  void OnRemoteConnected(const std::string& kernel);
  void OnRemoteGone(const std::string& worker_id, const std::string& why);

  void OnTransition(const workers::WorkerInfo& worker, workers::WorkerState from,
                    std::string_view reason) override;
  void OnRemoved(const workers::WorkerInfo& worker) override;

  size_t waiting(const std::string& kernel) const;
  // The running workers of `kernel` with a connection: those that can take a call now or soon.
  std::vector<std::string> Reachable(const std::string& kernel) const;
  void SetServable(std::function<Status(const std::string& kernel)> servable) {
    options_.servable = std::move(servable);
  }

 private:
  struct Call;
  struct Slot {
    uint64_t call = 0;              // the call the worker runs, 0 when idle
    std::list<std::string> models;  // loaded models, most recent first (a guess of its cache)
  };

  void Dispatch(const std::string& kernel);
  // The workers that may take `kernel`'s calls: its running managed workers, or its active
  // unmanaged one.
  std::vector<std::string> Candidates(const std::string& kernel) const;
  void DispatchLater(const std::string& kernel);
  void RecheckLater();  // Recheck() on the next turn, if any call waits
  void Send(Call& call, const std::string& worker);
  void OnReply(uint64_t id, const std::string& worker, Result<std::string> reply);
  void OnDeadline(uint64_t id);
  void OnWorkerGone(const workers::WorkerInfo& worker);
  void Finish(uint64_t id, CallOutcome outcome);
  void Unqueue(const Call& call);
  std::optional<std::string> KernelOfRemote(const std::string& worker_id);

  WorkerLinks& links_;
  workers::WorkerPool& pool_;
  Timers& timers_;
  const Clock& clock_;
  RelayOptions options_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Call>> calls_;
  std::map<std::string, std::deque<uint64_t>> queues_;  // kernel -> waiting calls, oldest first
  std::map<std::string, Slot> slots_;                   // worker id -> what it runs and holds
  // Unmanaged workers busy with a call that timed out -> their kernel (to dispatch once free).
  std::map<std::string, std::string> remote_kernels_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace gsk::relay
