// WorkerPool: launches and supervises the worker processes of kernels, as an explicit state
// machine with supervisord's states (worker.h) driven by events: requests (SetWanted, Stop,
// Restart, StopAll), a worker's registration and disconnection (from the relay), process exits
// (from the launcher) and timers (registration deadline, backoff, reconnection). Every
// transition goes to the observer and to the log. Not thread-safe: it belongs to the thread that
// runs the launcher's and the timers' io_context, like its collaborators.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "supervisor/process/process_launcher.h"
#include "base/timers.h"
#include "supervisor/workers/worker.h"
#include "base/crypto.h"

namespace gsk::workers {

struct WorkerPoolOptions : Timings {
  std::string supervisor_socket;  // GSK_SUPERVISOR_SOCKET for the workers
  // Log rotation size for adopted workers (their kernel's launch is not known yet); 0 = none.
  uint64_t adopted_log_rotate_bytes = 0;
  // Launch the new workers of a burst (SetWanted, replacements) one per event-loop turn (a 0 ms
  // timer each) rather than all in one call, so that hellos and requests are served between
  // launches: each launch waits for its child's exec, which takes long on a loaded machine.
  // Until launched, such a worker shows as starting, without a pid.
  bool launch_one_per_turn = false;
  // Makes a new worker id; default "<kernel>-<8 random hex digits>". Must be unique.
  std::function<std::string(const std::string& kernel)> new_worker_id;
};

class WorkerPool {
 public:
  // REQUIRES: the collaborators outlive the pool; `launcher`'s and `timers`' callbacks run on
  // the thread that calls the pool.
  WorkerPool(process::ProcessLauncher& launcher, Timers& timers, const Clock& clock,
             WorkerObserver& observer, WorkerPoolOptions options);
  // Cancels the pool's timers and ignores later exits. Processes keep running: stop them first
  // (StopAll), or let the launcher's destruction kill them.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Keeps `n` workers for `kernel`: launches new ones, or stops and then forgets the newest.
  // Stopped and fatal workers count (Restart brings them back). `launch` is used for every
  // launch from now on. kInvalidArgument for n < 0 or an empty argv or kernel;
  // kFailedPrecondition after StopAll.
  Status SetWanted(const std::string& kernel, int n, LaunchTemplate launch);
  int Wanted(const std::string& kernel) const;

  // Takes charge again of a worker that a previous supervisor launched and that may still run.
  // kNotFound (the record is then forgotten: OnRemoved) when its process is gone or is not the
  // one recorded. Otherwise a running worker waits, connected = false, up to reconnect_deadline
  // for its shim to register again; a starting one gets a fresh registration_deadline; a
  // stopping one is stopped and then forgotten. Call before SetWanted for its kernel, so that
  // it is counted.
  Status Adopt(const AdoptRecord& record);

  // SIGTERM, then SIGKILL after stop_grace; the worker stays, stopped. kNotFound if unknown.
  Status Stop(const std::string& id);
  // Stops the worker and forgets it; its kernel still wants as many workers, so a new one (with
  // a new id) is launched once it is gone. kNotFound if unknown.
  Status Delete(const std::string& id);
  // Stops the worker if it runs, then launches it afresh (a fatal worker gets its retries back).
  // kNotFound if unknown; kFailedPrecondition after StopAll or while it is being removed.
  Status Restart(const std::string& id);
  // SIGKILLs a running worker's process group now, for `why` (a model call that ran past its
  // timeout); it is then restarted at once, like a worker that exited after running long
  // enough, whatever its uptime (this is not one of its own early exits). kNotFound if unknown;
  // kFailedPrecondition if it has no running process.
  Status Kill(const std::string& id, std::string_view why);
  // Stops every worker and launches no more; calls `on_done` once no worker process is left
  // (at once if there is none).
  void StopAll(std::function<void()> on_done);

  // A worker's hello. OK: the worker is running (or, after OnDisconnected, adopted again).
  // kNotFound for an unknown id; kUnauthenticated for a wrong token or a process that is not
  // the one launched (pid and start time); kFailedPrecondition when the worker is not waiting
  // for a registration: no process, too late, or already registered and connected (a replay).
  Status OnRegistered(const Registration& registration);
  // The worker's connection broke. If it does not register again within reconnect_deadline it
  // is killed, and restarted like any worker that exits.
  void OnDisconnected(const std::string& id);

  std::optional<WorkerInfo> Get(const std::string& id) const;
  // Ordered by id; only the workers of `kernel` unless it is empty.
  std::vector<WorkerInfo> List(const std::string& kernel = "") const;
  // How many workers of `kernel` are running (no copies: it is asked for every kernel listed).
  int CountRunning(const std::string& kernel) const;
  // The ids of `kernel`'s running workers, ordered by id (no copies of their info).
  std::vector<std::string> RunningIds(const std::string& kernel) const;
  bool HasWorkers(const std::string& kernel) const;
  const WorkerPoolOptions& options() const { return options_; }

 private:
  enum class AfterStop { kStay, kRestart, kRemove };
  struct Worker {
    WorkerInfo info;
    uint64_t seq = 0;  // creation order, for scaling down the newest first
    process::ProcessHandle handle;
    bool has_process = false;
    Sha256Digest token{};
    TimerId timer = 0;  // the one timer of the current state, 0 if none
    int64_t running_since_mono_ms = 0;
    bool deadline_missed = false;
    bool queued = false;  // waiting in launch_queue_ (launch_one_per_turn)
    std::string killed_for;  // set by Kill: why its coming exit was asked for
    AfterStop after_stop = AfterStop::kStay;
  };
  struct Kernel {
    int wanted = 0;
    LaunchTemplate launch;
  };

  // worker_lifecycle.cc: the state machine's internal events.
  void Launch(Worker& w, std::string_view why);
  Result<process::ProcessSpec> MakeSpec(Worker& w);
  void OnExit(const std::string& id, const process::ExitInfo& exit);
  void OnRunningExit(Worker& w);
  void OnRegistrationDeadline(const std::string& id);
  void OnReconnectDeadline(const std::string& id);
  void QuickFailure(Worker& w, const std::string& why);
  void BeginStop(Worker& w, AfterStop after, std::string_view why);
  void FinishStop(Worker& w);
  void Remove(const std::string& id);
  void Transition(Worker& w, WorkerState to, std::string_view reason);
  void SetTimer(Worker& w, std::chrono::milliseconds delay,
                void (WorkerPool::*handler)(const std::string&));
  void CancelTimer(Worker& w);
  void OnBackoffDone(const std::string& id);
  void MaybeFinishStopAll();
  void QueueLaunch(Worker& w, std::string why);
  void PumpLaunches();
  std::chrono::milliseconds BackoffDelay(int64_t failures) const;

  // worker_pool.cc
  Result<std::string> NewWorkerId(const std::string& kernel);
  process::AdoptSpec AdoptSpecOf(const AdoptRecord& record) const;
  // Launches new workers until `kernel` has as many as it wants (not counting those on their
  // way out).
  Status FillUp(const std::string& kernel, std::string_view why);
  Worker* Find(const std::string& id);

  process::ProcessLauncher& launcher_;
  Timers& timers_;
  const Clock& clock_;
  WorkerObserver& observer_;
  WorkerPoolOptions options_;
  std::map<std::string, Kernel> kernels_;
  std::map<std::string, std::unique_ptr<Worker>> workers_;  // by id
  uint64_t next_seq_ = 1;
  std::vector<std::pair<std::string, std::string>> launch_queue_;  // (id, why), oldest first
  TimerId launch_timer_ = 0;
  bool shutting_down_ = false;
  std::function<void()> on_stopped_all_;
  // Exit callbacks hold a weak reference: they do nothing once the pool is gone.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace gsk::workers
