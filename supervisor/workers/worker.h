// The vocabulary of worker supervision: supervisord's states, a worker's public snapshot, how
// to launch one, what its registration carries, and the observer of transitions. Value types,
// not synchronized.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "supervisor/process/process_launcher.h"

namespace gsk::workers {

// How workers are supervised in time ([workers] in the config). Each default is spelled here only.
struct Timings {
  // A launched worker must register (valid hello) within this, or it is killed and the launch
  // counts as an early exit.
  std::chrono::milliseconds registration_deadline{30'000};
  // supervisord's startsecs: an exit within this of becoming running is an early exit too.
  std::chrono::milliseconds start_seconds{10'000};
  // Delay before the k-th consecutive retry: min(backoff_initial * 2^(k-1), backoff_max).
  std::chrono::milliseconds backoff_initial{1'000};
  std::chrono::milliseconds backoff_max{60'000};
  // This many consecutive early exits make the worker fatal (no more retries until Restart).
  int max_quick_failures = 5;
  // Stop sends SIGTERM to the worker's process group, then SIGKILL after this.
  std::chrono::milliseconds stop_grace{10'000};
  // A running worker whose connection broke is killed (and restarted) unless it registers
  // again within this; also how long a worker keeps redialing a supervisor that went away.
  std::chrono::milliseconds reconnect_deadline{60'000};
  // Both sides of a worker's connection send a heartbeat this often; 3 missed: the link is dead.
  std::chrono::milliseconds heartbeat{5'000};
};

// supervisord's process states, which admins know.
enum class WorkerState { kStarting, kRunning, kBackoff, kStopping, kStopped, kExited, kFatal };

// "starting", "running", ... (the store's and the REST API's spelling).
std::string_view StateName(WorkerState state);

// How the workers of one kernel are launched. The pool adds GSK_SUPERVISOR_SOCKET,
// GSK_WORKER_ID and GSK_WORKER_TOKEN_FD to `env`, and hands the one-time token on that fd.
struct LaunchTemplate {
  std::vector<std::string> argv;  // e.g. {venv/bin/python, -m, giskard_worker_shim, serve-managed}
  std::map<std::string, std::string> env;  // the complete environment otherwise
  std::filesystem::path cwd;
  // Each worker runs in cwd/<worker id>, created (mode 0700) at launch, instead of cwd itself;
  // it is also the worker's HOME unless `env` sets one.
  bool cwd_per_worker = false;
  // Each worker's output goes to log_dir/<worker id>.log (rotated at log_rotate_bytes); empty:
  // output is discarded.
  std::filesystem::path log_dir;
  uint64_t log_rotate_bytes = 0;
  process::ResourceLimits limits;
  bool forkable = false;  // ProcessSpec::forkable: a fork server may fork these workers
  std::vector<std::string> preload;  // ProcessSpec::preload: models their template loads first
};

// What a worker's hello says about it (see worker-shim/PROTOCOL.md).
struct Registration {
  std::string worker_id;
  std::string token;
  int pid = 0;
  // env.processStartTime converted to clock ticks (round(seconds * CLK_TCK)); 0 if unknown.
  int64_t process_start_ticks = 0;
  std::string python_version;   // env.pythonVersion
  std::string env_json = "{}";  // the hello's env object, as received
};

// A worker that a previous supervisor launched, as its store row recorded it (for Adopt).
struct AdoptRecord {
  std::string id;
  std::string kernel;
  WorkerState state = WorkerState::kRunning;  // starting, running or stopping: it had a process
  int pid = 0;
  int64_t process_start_ticks = 0;
  std::string token_hash;  // hex SHA-256 of its one-time token
  int64_t restarts = 0;
  std::string python_version;
  std::string env_json = "{}";
  std::string log_file;
  int64_t created_at_ms = 0;
  int64_t started_at_ms = 0;
};

// A worker as the pool sees it now.
struct WorkerInfo {
  std::string id;
  std::string kernel;
  WorkerState state = WorkerState::kStopped;
  int pid = 0;  // 0 when no process
  int64_t process_start_ticks = 0;
  std::string token_hash;      // hex SHA-256 of the current one-time token ("" before a launch)
  bool connected = false;      // registered and its connection is up
  int64_t restarts = 0;        // launches after the first
  int64_t quick_failures = 0;  // consecutive early exits
  std::string exit_description;
  std::string last_error;
  std::string python_version;
  std::string env_json = "{}";
  std::string log_file;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t started_at_ms = 0;  // running since, Unix ms (0 when not running)
};

// Told of every state change, on the pool's thread, after the pool's own bookkeeping.
// REQUIRES: implementations do not call back into the pool's mutating methods.
class WorkerObserver {
 public:
  virtual ~WorkerObserver() = default;
  // `worker.state` is the new state; `reason` says why, for humans ("registered", "exited with
  // code 1 within 10000 ms of starting; retrying in 2000 ms", ...).
  virtual void OnTransition(const WorkerInfo& worker, WorkerState from,
                            std::string_view reason) = 0;
  // The pool forgot the worker (it was stopped while scaling down); its process is gone.
  virtual void OnRemoved(const WorkerInfo& worker) = 0;
};

}  // namespace gsk::workers
