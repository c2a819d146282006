// The WorkerPool's requests and the events that come from the relay (registration,
// disconnection). The state machine itself is in worker_lifecycle.cc.
#include "supervisor/workers/worker_pool.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace gsk::workers {

std::string_view StateName(WorkerState state) {
  switch (state) {
    case WorkerState::kStarting:
      return "starting";
    case WorkerState::kRunning:
      return "running";
    case WorkerState::kBackoff:
      return "backoff";
    case WorkerState::kStopping:
      return "stopping";
    case WorkerState::kStopped:
      return "stopped";
    case WorkerState::kExited:
      return "exited";
    case WorkerState::kFatal:
      return "fatal";
  }
  return "unknown";
}

WorkerPool::WorkerPool(process::ProcessLauncher& launcher, Timers& timers, const Clock& clock,
                       WorkerObserver& observer, WorkerPoolOptions options)
    : launcher_(launcher),
      timers_(timers),
      clock_(clock),
      observer_(observer),
      options_(std::move(options)) {}

WorkerPool::~WorkerPool() {
  for (auto& [id, w] : workers_) CancelTimer(*w);
  if (launch_timer_ != 0) timers_.Cancel(launch_timer_);
}

Status WorkerPool::SetWanted(const std::string& kernel, int n, LaunchTemplate launch) {
  if (kernel.empty()) return InvalidArgument("a kernel name is required to start workers");
  if (n < 0) return InvalidArgument("wanted workers must be 0 or more, not " + std::to_string(n));
  if (launch.argv.empty() && n > 0) {
    return InvalidArgument("no command to launch the workers of kernel \"" + kernel + "\"");
  }
  if (shutting_down_) return FailedPrecondition("the supervisor is stopping; no worker starts");
  Kernel& k = kernels_[kernel];
  k.wanted = n;
  if (!launch.argv.empty()) k.launch = std::move(launch);

  std::vector<Worker*> kept;  // the kernel's workers not already on their way out
  for (auto& [id, w] : workers_) {
    if (w->info.kernel == kernel && w->after_stop != AfterStop::kRemove) kept.push_back(w.get());
  }
  std::sort(kept.begin(), kept.end(), [](Worker* a, Worker* b) { return a->seq < b->seq; });
  if (static_cast<int>(kept.size()) > n) {
    std::vector<std::string> newest;
    for (size_t i = static_cast<size_t>(n); i < kept.size(); ++i)
      newest.push_back(kept[i]->info.id);
    for (const std::string& id : newest) {
      if (Worker* w = Find(id))
        BeginStop(*w, AfterStop::kRemove, "scaling down to " + std::to_string(n));
    }
  }
  return FillUp(kernel, "scaling up to " + std::to_string(n));
}

Status WorkerPool::FillUp(const std::string& kernel, std::string_view why) {
  auto k = kernels_.find(kernel);
  if (k == kernels_.end() || shutting_down_) return Status::Ok();
  int have = 0;
  for (const auto& [id, w] : workers_) {
    if (w->info.kernel == kernel && w->after_stop != AfterStop::kRemove) ++have;
  }
  for (; have < k->second.wanted; ++have) {
    GSK_ASSIGN_OR_RETURN(std::string id, NewWorkerId(kernel));
    auto w = std::make_unique<Worker>();
    w->seq = next_seq_++;
    w->info.id = id;
    w->info.kernel = kernel;
    w->info.created_at_ms = w->info.updated_at_ms = clock_.NowUnixMillis();
    Worker& added = *workers_.emplace(id, std::move(w)).first->second;
    if (options_.launch_one_per_turn) {
      QueueLaunch(added, std::string(why));
    } else {
      Launch(added, why);
    }
  }
  return Status::Ok();
}

process::AdoptSpec WorkerPool::AdoptSpecOf(const AdoptRecord& record) const {
  process::AdoptSpec spec;
  spec.pid = record.pid;
  spec.start_time_ticks = record.process_start_ticks;
  spec.own_group = true;  // every worker is launched as the leader of its own group
  spec.log_file = record.log_file;
  auto k = kernels_.find(record.kernel);
  spec.log_rotate_bytes = k != kernels_.end() ? k->second.launch.log_rotate_bytes : 0;
  if (spec.log_rotate_bytes == 0) spec.log_rotate_bytes = options_.adopted_log_rotate_bytes;
  return spec;
}

Status WorkerPool::Adopt(const AdoptRecord& record) {
  if (record.id.empty() || record.kernel.empty() || workers_.count(record.id) != 0) {
    return InvalidArgument("cannot adopt worker \"" + record.id + "\": no id, no kernel or a duplicate");
  }
  auto w = std::make_unique<Worker>();
  w->seq = next_seq_++;
  WorkerInfo& info = w->info;
  info.id = record.id;
  info.kernel = record.kernel;
  info.state = record.state;
  info.restarts = record.restarts;
  info.python_version = record.python_version;
  info.env_json = record.env_json;
  info.log_file = record.log_file;
  info.created_at_ms = record.created_at_ms;
  info.updated_at_ms = clock_.NowUnixMillis();
  std::optional<Sha256Digest> token = DigestFromHex(record.token_hash);
  std::weak_ptr<int> alive = alive_;
  Result<process::ProcessHandle> handle =
      token ? launcher_.Adopt(AdoptSpecOf(record),
                              [this, alive, id = record.id](const process::ExitInfo& exit) {
                                if (alive.lock()) OnExit(id, exit);
                              })
            : Result<process::ProcessHandle>(InvalidArgument("its token digest is unreadable"));
  if (!handle.ok()) {
    spdlog::warn("event=worker.lost worker={} kernel={} pid={} error=\"{}\"", record.id,
                 record.kernel, record.pid, handle.status().message());
    info.state = WorkerState::kExited;
    info.pid = 0;
    info.last_error = "lost while the supervisor was down: " + handle.status().message();
    observer_.OnRemoved(info);
    return NotFound("worker \"" + record.id + "\" is gone: " + handle.status().message());
  }
  kernels_.try_emplace(record.kernel);
  w->handle = *handle;
  w->has_process = true;
  w->token = *token;
  info.pid = record.pid;
  info.process_start_ticks = record.process_start_ticks;
  info.token_hash = record.token_hash;
  info.connected = false;
  Worker& adopted = *workers_.emplace(record.id, std::move(w)).first->second;
  spdlog::info("event=worker.adopted worker={} kernel={} pid={} state={}", record.id,
               record.kernel, record.pid, StateName(record.state));
  if (record.state == WorkerState::kRunning) {
    int64_t now = clock_.NowUnixMillis();
    adopted.info.started_at_ms = record.started_at_ms > 0 ? record.started_at_ms : now;
    adopted.running_since_mono_ms =
        clock_.MonotonicMillis() - std::max<int64_t>(0, now - adopted.info.started_at_ms);
    SetTimer(adopted, options_.reconnect_deadline, &WorkerPool::OnReconnectDeadline);
  } else if (record.state == WorkerState::kStarting) {
    SetTimer(adopted, options_.registration_deadline, &WorkerPool::OnRegistrationDeadline);
  } else {
    // It was on its way out; once stopped it is forgotten, and SetWanted decides what its
    // kernel gets instead (a stopped leftover would otherwise hold a place).
    adopted.info.state = WorkerState::kRunning;  // so that BeginStop signals it
    BeginStop(adopted, AfterStop::kRemove, "it was stopping when the supervisor went down");
  }
  return Status::Ok();
}

int WorkerPool::Wanted(const std::string& kernel) const {
  auto it = kernels_.find(kernel);
  return it == kernels_.end() ? 0 : it->second.wanted;
}

Status WorkerPool::Stop(const std::string& id) {
  Worker* w = Find(id);
  if (w == nullptr) return NotFound("no worker \"" + id + "\"");
  if (w->after_stop == AfterStop::kRemove) return Status::Ok();  // already on its way out
  BeginStop(*w, AfterStop::kStay, "stop requested");
  return Status::Ok();
}

Status WorkerPool::Delete(const std::string& id) {
  Worker* w = Find(id);
  if (w == nullptr) return NotFound("no worker \"" + id + "\"");
  if (w->after_stop == AfterStop::kRemove) return Status::Ok();
  BeginStop(*w, AfterStop::kRemove, "deleted");
  return Status::Ok();
}

Status WorkerPool::Restart(const std::string& id) {
  Worker* w = Find(id);
  if (w == nullptr) return NotFound("no worker \"" + id + "\"");
  if (shutting_down_) return FailedPrecondition("the supervisor is stopping; no worker starts");
  if (w->after_stop == AfterStop::kRemove) {
    return FailedPrecondition("worker \"" + id +
                              "\" is being removed (its kernel was scaled down)");
  }
  if (w->has_process) {
    BeginStop(*w, AfterStop::kRestart, "restart requested");
    return Status::Ok();
  }
  CancelTimer(*w);
  w->info.quick_failures = 0;
  ++w->info.restarts;
  Launch(*w, "restart requested");
  return Status::Ok();
}

void WorkerPool::StopAll(std::function<void()> on_done) {
  shutting_down_ = true;
  on_stopped_all_ = std::move(on_done);
  std::vector<std::string> ids;
  for (const auto& [id, w] : workers_) ids.push_back(id);
  for (const std::string& id : ids) {
    Worker* w = Find(id);
    if (w == nullptr) continue;
    if (w->has_process || w->queued || w->info.state == WorkerState::kBackoff) {
      BeginStop(*w, w->after_stop == AfterStop::kRemove ? AfterStop::kRemove : AfterStop::kStay,
                "the supervisor is stopping");
    }
  }
  MaybeFinishStopAll();
}

Status WorkerPool::Kill(const std::string& id, std::string_view why) {
  Worker* w = Find(id);
  if (w == nullptr) return NotFound("worker \"" + id + "\" does not exist");
  if (!w->has_process || w->info.state != WorkerState::kRunning) {
    return FailedPrecondition("worker \"" + id + "\" is not running");
  }
  w->killed_for = std::string(why);
  spdlog::warn("event=worker.killing worker={} pid={} reason=\"{}\"", id, w->info.pid, why);
  launcher_.Kill(w->handle);
  return Status::Ok();
}

Status WorkerPool::OnRegistered(const Registration& r) {
  Worker* w = Find(r.worker_id);
  if (w == nullptr) return NotFound("unknown worker id \"" + r.worker_id + "\"");
  if (!DigestsEqual(Sha256(r.token), w->token)) {
    spdlog::warn("event=worker.registration_refused worker={} reason=\"wrong token\"", r.worker_id);
    return Unauthenticated("wrong token for worker \"" + r.worker_id + "\"");
  }
  bool reconnect = w->info.state == WorkerState::kRunning && !w->info.connected;
  if (!w->has_process || (w->info.state != WorkerState::kStarting && !reconnect) ||
      w->deadline_missed) {
    spdlog::warn("event=worker.registration_refused worker={} state={}", r.worker_id,
                 StateName(w->info.state));
    return FailedPrecondition("worker \"" + r.worker_id + "\" is " +
                              std::string(StateName(w->info.state)) +
                              (w->info.connected ? " and connected: its token was used already"
                                                 : ": not expecting a registration"));
  }
  int64_t ticks = w->handle.start_time_ticks();
  if (r.pid != w->handle.pid() || (ticks != 0 && r.process_start_ticks != ticks)) {
    spdlog::warn("event=worker.registration_refused worker={} pid={} start={} launched_pid={} launched_start={}",
                 r.worker_id, r.pid, r.process_start_ticks, w->handle.pid(), ticks);
    return Unauthenticated("worker \"" + r.worker_id + "\" registered from pid " +
                           std::to_string(r.pid) + ", not from the process it was launched as");
  }
  CancelTimer(*w);
  w->info.connected = true;
  w->info.python_version = r.python_version;
  w->info.env_json = r.env_json;
  if (reconnect) {
    spdlog::info("event=worker.reconnected worker={} kernel={}", w->info.id, w->info.kernel);
    return Status::Ok();
  }
  w->running_since_mono_ms = clock_.MonotonicMillis();
  w->info.started_at_ms = clock_.NowUnixMillis();
  w->info.last_error.clear();
  Transition(*w, WorkerState::kRunning, "registered");
  return Status::Ok();
}

void WorkerPool::OnDisconnected(const std::string& id) {
  Worker* w = Find(id);
  if (w == nullptr || w->info.state != WorkerState::kRunning || !w->info.connected) return;
  w->info.connected = false;
  spdlog::warn("event=worker.disconnected worker={} kernel={} reconnect_ms={}", id,
               w->info.kernel, options_.reconnect_deadline.count());
  SetTimer(*w, options_.reconnect_deadline, &WorkerPool::OnReconnectDeadline);
}

std::optional<WorkerInfo> WorkerPool::Get(const std::string& id) const {
  auto it = workers_.find(id);
  if (it == workers_.end()) return std::nullopt;
  return it->second->info;
}

std::vector<WorkerInfo> WorkerPool::List(const std::string& kernel) const {
  std::vector<WorkerInfo> out;
  for (const auto& [id, w] : workers_) {
    if (kernel.empty() || w->info.kernel == kernel) out.push_back(w->info);
  }
  return out;
}

int WorkerPool::CountRunning(const std::string& kernel) const {
  int n = 0;
  for (const auto& [id, w] : workers_) {
    if (w->info.kernel == kernel && w->info.state == WorkerState::kRunning) ++n;
  }
  return n;
}

std::vector<std::string> WorkerPool::RunningIds(const std::string& kernel) const {
  std::vector<std::string> ids;
  for (const auto& [id, w] : workers_) {
    if (w->info.kernel == kernel && w->info.state == WorkerState::kRunning) ids.push_back(id);
  }
  return ids;
}

bool WorkerPool::HasWorkers(const std::string& kernel) const {
  for (const auto& [id, w] : workers_) {
    if (w->info.kernel == kernel) return true;
  }
  return false;
}

Result<std::string> WorkerPool::NewWorkerId(const std::string& kernel) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string id;
    if (options_.new_worker_id) {
      id = options_.new_worker_id(kernel);
    } else {
      GSK_ASSIGN_OR_RETURN(std::string suffix, RandomHex(4));
      id = kernel + "-" + suffix;
    }
    if (!id.empty() && workers_.find(id) == workers_.end()) return id;
  }
  return Internal("could not make a unique worker id for kernel \"" + kernel + "\"");
}

WorkerPool::Worker* WorkerPool::Find(const std::string& id) {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : it->second.get();
}

}  // namespace gsk::workers
