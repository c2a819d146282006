// The WorkerPool's state machine: launches, exits, timers and the transitions they cause.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "supervisor/workers/worker_pool.h"

namespace gsk::workers {
namespace {

std::string Ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace

Result<process::ProcessSpec> WorkerPool::MakeSpec(Worker& w) {
  const LaunchTemplate& launch = kernels_.at(w.info.kernel).launch;
  GSK_ASSIGN_OR_RETURN(std::string token, RandomHex(32));
  process::ProcessSpec spec;
  spec.argv = launch.argv;
  spec.env = launch.env;
  if (!options_.supervisor_socket.empty()) {
    spec.env["GSK_SUPERVISOR_SOCKET"] = options_.supervisor_socket;
  }
  spec.env["GSK_WORKER_ID"] = w.info.id;
  // On an inherited pipe, not in the environment, which /proc/<pid>/environ would show.
  spec.env["GSK_WORKER_TOKEN_FD"] = std::to_string(process::kSecretFd);
  spec.secret = token;
  spec.cwd = launch.cwd;
  if (launch.cwd_per_worker && !launch.cwd.empty()) {
    spec.cwd = launch.cwd / w.info.id;
    std::error_code ec;
    std::filesystem::create_directories(spec.cwd, ec);
    if (ec) return Internal("creating the working directory " + spec.cwd.string() + ": " + ec.message());
    std::filesystem::permissions(spec.cwd, std::filesystem::perms::owner_all, ec);
    if (!spec.env.count("HOME")) spec.env["HOME"] = spec.cwd.string();
  }
  spec.limits = launch.limits;
  spec.new_process_group = true;
  spec.forkable = launch.forkable;
  spec.preload = launch.preload;
  if (!launch.log_dir.empty()) {
    spec.log_file = launch.log_dir / (w.info.id + ".log");
    spec.log_rotate_bytes = launch.log_rotate_bytes;
  }
  // Only the digest outlives the launch: the token itself lives in the worker alone.
  w.token = Sha256(token);
  return spec;
}

void WorkerPool::QueueLaunch(Worker& w, std::string why) {
  w.queued = true;
  w.info.state = WorkerState::kStarting;  // shown as such; the transition comes with the launch
  launch_queue_.emplace_back(w.info.id, std::move(why));
  if (launch_timer_ == 0) {
    launch_timer_ = timers_.After(std::chrono::milliseconds(0), [this] {
      launch_timer_ = 0;
      PumpLaunches();
    });
  }
}

void WorkerPool::PumpLaunches() {
  while (!launch_queue_.empty()) {
    auto [id, why] = std::move(launch_queue_.front());
    launch_queue_.erase(launch_queue_.begin());
    Worker* w = Find(id);
    // Stopped, deleted or restarted since it was queued: nothing to do for it.
    if (w == nullptr || !w->queued || w->info.state != WorkerState::kStarting) continue;
    w->info.state = WorkerState::kStopped;
    Launch(*w, why);
    break;  // one launch per turn
  }
  if (!launch_queue_.empty() && launch_timer_ == 0) {
    launch_timer_ = timers_.After(std::chrono::milliseconds(0), [this] {
      launch_timer_ = 0;
      PumpLaunches();
    });
  }
}

void WorkerPool::Launch(Worker& w, std::string_view why) {
  w.queued = false;
  if (shutting_down_) {
    if (w.info.state != WorkerState::kStopped)
      Transition(w, WorkerState::kStopped, "shutting down");
    return;
  }
  Result<process::ProcessSpec> spec = MakeSpec(w);
  if (!spec.ok()) {
    QuickFailure(w, "could not launch: " + spec.status().message());
    return;
  }
  std::string log_file = spec->log_file.string();
  std::weak_ptr<int> alive = alive_;
  std::string id = w.info.id;
  Result<process::ProcessHandle> handle =
      launcher_.Launch(std::move(spec).value(), [this, alive, id](const process::ExitInfo& exit) {
        if (alive.lock()) OnExit(id, exit);
      });
  if (!handle.ok()) {
    QuickFailure(w, "could not launch: " + handle.status().message());
    return;
  }
  w.handle = *handle;
  w.has_process = true;
  w.deadline_missed = false;
  w.info.pid = handle->pid();
  w.info.process_start_ticks = handle->start_time_ticks();
  w.info.token_hash = HexEncode(w.token);
  w.info.connected = false;
  w.info.started_at_ms = 0;
  w.info.log_file = log_file;
  Transition(w, WorkerState::kStarting, why);
  SetTimer(w, options_.registration_deadline, &WorkerPool::OnRegistrationDeadline);
}

void WorkerPool::OnRegistrationDeadline(const std::string& id) {
  Worker* w = Find(id);
  if (w == nullptr || w->info.state != WorkerState::kStarting || !w->has_process) return;
  w->deadline_missed = true;
  w->info.last_error = "did not register within " + Ms(options_.registration_deadline);
  spdlog::warn("event=worker.killing worker={} pid={} reason=\"{}\"", id, w->info.pid, w->info.last_error);
  launcher_.Kill(w->handle);
}

void WorkerPool::OnReconnectDeadline(const std::string& id) {
  Worker* w = Find(id);
  if (w == nullptr || w->info.state != WorkerState::kRunning || w->info.connected) return;
  w->info.last_error =
      "lost its connection and did not reconnect within " + Ms(options_.reconnect_deadline);
  spdlog::warn("event=worker.killing worker={} pid={} reason=\"{}\"", id, w->info.pid, w->info.last_error);
  launcher_.Kill(w->handle);
}

void WorkerPool::OnExit(const std::string& id, const process::ExitInfo& exit) {
  Worker* w = Find(id);
  if (w == nullptr || !w->has_process || w->handle.pid() != exit.pid) return;
  CancelTimer(*w);
  w->has_process = false;
  w->info.pid = 0;
  w->info.process_start_ticks = 0;
  w->info.connected = false;
  w->info.started_at_ms = 0;
  w->info.exit_description = exit.Describe();
  switch (w->info.state) {
    case WorkerState::kStopping:
      FinishStop(*w);
      break;
    case WorkerState::kStarting:
      QuickFailure(*w, w->deadline_missed ? w->info.last_error + "; " + w->info.exit_description
                                          : w->info.exit_description + " before registering");
      break;
    case WorkerState::kRunning:
      OnRunningExit(*w);
      break;
    default:  // no process in the other states
      break;
  }
  MaybeFinishStopAll();
}

void WorkerPool::OnRunningExit(Worker& w) {
  auto ran = std::chrono::milliseconds(clock_.MonotonicMillis() - w.running_since_mono_ms);
  if (!w.killed_for.empty()) {
    std::string why = std::move(w.killed_for);
    w.killed_for.clear();
    w.info.last_error = why;
    Transition(w, WorkerState::kExited, why + "; " + w.info.exit_description);
    ++w.info.restarts;
    Launch(w, "restarting after it was killed");
    return;
  }
  if (ran < options_.start_seconds) {
    QuickFailure(w, w.info.exit_description + " after " + Ms(ran) + " of running (less than " +
                        Ms(options_.start_seconds) + ")");
    return;
  }
  w.info.quick_failures = 0;
  Transition(w, WorkerState::kExited, w.info.exit_description + " after " + Ms(ran));
  ++w.info.restarts;
  Launch(w, "restarting after an exit");
}

void WorkerPool::QuickFailure(Worker& w, const std::string& why) {
  ++w.info.quick_failures;
  w.info.last_error = why;
  if (w.info.quick_failures >= options_.max_quick_failures) {
    Transition(w, WorkerState::kFatal,
               why + "; gave up after " + std::to_string(w.info.quick_failures) +
                   " early exits in a row (restart it once the cause is fixed)");
    return;
  }
  std::chrono::milliseconds delay = BackoffDelay(w.info.quick_failures);
  Transition(w, WorkerState::kBackoff, why + "; retrying in " + Ms(delay));
  SetTimer(w, delay, &WorkerPool::OnBackoffDone);
}

void WorkerPool::OnBackoffDone(const std::string& id) {
  Worker* w = Find(id);
  if (w == nullptr || w->info.state != WorkerState::kBackoff) return;
  ++w->info.restarts;
  Launch(*w, "retrying after backoff");
}

std::chrono::milliseconds WorkerPool::BackoffDelay(int64_t failures) const {
  std::chrono::milliseconds delay = options_.backoff_initial;
  for (int64_t i = 1; i < failures && delay < options_.backoff_max; ++i) delay *= 2;
  return std::min(delay, options_.backoff_max);
}

void WorkerPool::BeginStop(Worker& w, AfterStop after, std::string_view why) {
  w.after_stop = after;
  CancelTimer(w);
  if (w.has_process) {
    if (w.info.state != WorkerState::kStopping) {
      Transition(w, WorkerState::kStopping, why);
      launcher_.Stop(w.handle, options_.stop_grace);
    }
    return;
  }
  FinishStop(w);
}

// The worker has no process any more: settle what the stop was for.
void WorkerPool::FinishStop(Worker& w) {
  if (w.info.state != WorkerState::kStopped) {
    std::string reason = w.info.state == WorkerState::kStopping
                             ? "stopped (" + w.info.exit_description + ")"
                             : std::string("stopped");
    Transition(w, WorkerState::kStopped, reason);
  }
  AfterStop after = std::exchange(w.after_stop, AfterStop::kStay);
  if (after == AfterStop::kRestart) {
    w.info.quick_failures = 0;
    ++w.info.restarts;
    Launch(w, "restart requested");
  } else if (after == AfterStop::kRemove) {
    Remove(w.info.id);  // `w` is gone
  }
}

void WorkerPool::Remove(const std::string& id) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  std::unique_ptr<Worker> w = std::move(it->second);
  workers_.erase(it);
  CancelTimer(*w);
  spdlog::info("event=worker.removed worker={} kernel={}", id, w->info.kernel);
  observer_.OnRemoved(w->info);
  // A deleted worker is replaced; one removed by scaling down is not (the kernel wants fewer).
  if (Status s = FillUp(w->info.kernel, "replacing deleted worker " + id); !s.ok()) {
    spdlog::warn("event=worker.replace_failed kernel={} error=\"{}\"", w->info.kernel, s.message());
  }
  auto k = kernels_.find(w->info.kernel);
  if (k != kernels_.end() && k->second.wanted == 0 &&
      std::none_of(workers_.begin(), workers_.end(),
                   [&](const auto& e) { return e.second->info.kernel == k->first; })) {
    kernels_.erase(k);
  }
}

void WorkerPool::Transition(Worker& w, WorkerState to, std::string_view reason) {
  WorkerState from = w.info.state;
  w.info.state = to;
  w.info.updated_at_ms = clock_.NowUnixMillis();
  bool bad = to == WorkerState::kBackoff || to == WorkerState::kFatal;
  spdlog::log(bad ? spdlog::level::warn : spdlog::level::info,
              "event=worker.{} worker={} kernel={} from={} pid={} reason=\"{}\"", StateName(to),
              w.info.id, w.info.kernel, StateName(from), w.info.pid, reason);
  observer_.OnTransition(w.info, from, reason);
}

void WorkerPool::SetTimer(Worker& w, std::chrono::milliseconds delay,
                          void (WorkerPool::*handler)(const std::string&)) {
  CancelTimer(w);
  std::string id = w.info.id;
  w.timer = timers_.After(delay, [this, id, handler] {
    if (Worker* found = Find(id)) found->timer = 0;
    (this->*handler)(id);
  });
}

void WorkerPool::CancelTimer(Worker& w) {
  if (w.timer != 0) timers_.Cancel(std::exchange(w.timer, 0));
}

void WorkerPool::MaybeFinishStopAll() {
  if (!on_stopped_all_) return;
  for (const auto& [id, w] : workers_) {
    if (w->has_process || w->info.state == WorkerState::kBackoff) return;
  }
  std::function<void()> done = std::move(on_stopped_all_);
  on_stopped_all_ = nullptr;
  done();
}

}  // namespace gsk::workers
