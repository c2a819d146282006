#include "supervisor/service/worker_service.h"

#include <algorithm>
#include <set>
#include <fstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "supervisor/service/log_chunk.h"
#include "supervisor/store/store.h"

namespace gsk::service {
namespace {

std::optional<workers::WorkerState> StateFromName(const std::string& name) {
  using workers::WorkerState;
  for (WorkerState s : {WorkerState::kStarting, WorkerState::kRunning, WorkerState::kBackoff,
                        WorkerState::kStopping, WorkerState::kStopped, WorkerState::kExited,
                        WorkerState::kFatal}) {
    if (workers::StateName(s) == name) return s;
  }
  return std::nullopt;
}

std::string Seconds(std::chrono::milliseconds d) {
  std::string text = std::to_string(static_cast<double>(d.count()) / 1000.0);
  while (!text.empty() && text.back() == '0') text.pop_back();
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

}  // namespace

WorkerService::WorkerService(store::Store& store, workers::WorkerPool& pool,
                             KernelService& kernels, const Clock& clock,
                             WorkerServiceOptions options)
    : store_(store), pool_(pool), kernels_(kernels), clock_(clock), options_(std::move(options)) {}

void WorkerService::AdoptFromStore() {
  auto rows = store_.ListWorkers();
  if (!rows.ok()) {
    spdlog::error("event=workers.adopt_failed error=\"{}\"", rows.status().message());
    return;
  }
  int adopted = 0;
  for (const store::WorkerRow& row : *rows) {
    std::optional<workers::WorkerState> state = StateFromName(row.state);
    bool had_process = row.pid > 0 && state && (*state == workers::WorkerState::kStarting ||
                                                *state == workers::WorkerState::kRunning ||
                                                *state == workers::WorkerState::kStopping);
    if (!had_process) {
      // Nothing to adopt: the pool starts afresh for its kernel.
      store::Event e{0, clock_.NowUnixMillis(), "worker.removed", "worker/" + row.id,
                     "supervisor", nlohmann::json{{"reason", "no process after restart"}}.dump()};
      (void)store_.DeleteWorker(row.id, e);
      continue;
    }
    workers::AdoptRecord r;
    r.id = row.id;
    r.kernel = row.kernel;
    r.state = *state;
    r.pid = static_cast<int>(row.pid);
    r.process_start_ticks = row.process_start_ticks;
    r.token_hash = row.token_hash;
    r.restarts = row.restarts;
    r.python_version = row.python_version;
    r.env_json = row.env_json;
    r.log_file = row.log_file;
    r.created_at_ms = row.created_at_ms;
    r.started_at_ms = row.started_at_ms;
    if (pool_.Adopt(r).ok()) ++adopted;
  }
  spdlog::info("event=workers.adopted count={} recorded={}", adopted, rows->size());
}

Result<workers::LaunchTemplate> WorkerService::Template(const Kernel& k) const {
  std::filesystem::path env = options_.env_path(k.env_hash);
  workers::LaunchTemplate t;
  t.argv = {(env / "bin/python").string(), "-m", "giskard_worker_shim", "serve-managed"};
  // A clean base: nothing of the supervisor's own environment reaches model code.
  t.env = {{"PATH", (env / "bin").string() + ":/usr/local/bin:/usr/bin:/bin"},
           {"LANG", "C.UTF-8"},
           {"LC_ALL", "C.UTF-8"},
           {"VIRTUAL_ENV", env.string()},
           {"PYTHONUNBUFFERED", "1"},
           {"PYTHONDONTWRITEBYTECODE", "1"},
           {"GSK_KERNEL", k.name()}};
  for (const auto& [key, value] : k.spec.env) t.env[key] = value;
  const workers::WorkerPoolOptions& timings = pool_.options();
  t.env["GSK_HEARTBEAT_SECONDS"] = Seconds(timings.heartbeat);
  t.env["GSK_ORPHAN_GRACE_SECONDS"] = Seconds(timings.reconnect_deadline);
  t.env["GSK_MODEL_CACHE_SIZE"] = std::to_string(options_.models_per_worker);
  t.cwd = options_.work_dir;
  t.cwd_per_worker = true;  // also HOME, unless the kernel's env sets it
  t.log_dir = options_.log_dir;
  t.log_rotate_bytes = options_.log_rotate_bytes;
  t.limits = options_.limits;
  t.forkable = options_.fork_server && k.spec.fork_server;
  for (const std::string& model : k.spec.preload_models) {
    if (!t.forkable || !resolve_model_) break;
    Result<std::filesystem::path> real = resolve_model_(model);
    if (real.ok()) {
      t.preload.push_back(real->string());
    } else {  // checked when the kernel was written: it moved since; calls will say why
      spdlog::warn("event=workers.preload_skipped kernel={} model=\"{}\" error=\"{}\"", k.name(),
                   model, real.status().message());
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(options_.work_dir, ec);
  std::filesystem::create_directories(options_.log_dir, ec);
  if (ec) return Internal("creating " + options_.log_dir.string() + ": " + ec.message());
  return t;
}

void WorkerService::Reconcile(const std::string& kernel) {
  Result<const Kernel*> found = kernels_.Get(kernel);
  const Kernel* k = found.ok() ? *found : nullptr;
  int wanted = 0;
  if (k != nullptr && k->managed() && !k->workers_stopped &&
      kernels_.StateOf(*k).status == KernelStatus::kReady) {
    wanted = k->spec.workers;
  }
  if (wanted == 0) {
    if (pool_.Wanted(kernel) > 0 || pool_.HasWorkers(kernel)) (void)pool_.SetWanted(kernel, 0, {});
    launched_generation_.erase(kernel);
    return;
  }
  auto launch = Template(*k);
  if (!launch.ok()) {
    spdlog::error("event=workers.reconcile_failed kernel={} error=\"{}\"", kernel,
                  launch.status().message());
    return;
  }
  // A changed launch (env variables, say) reaches running workers by restarting them; a change
  // of the number of workers only scales.
  std::string fingerprint;
  for (const std::string& arg : launch->argv) fingerprint += arg + '\0';
  for (const auto& [key, value] : launch->env) fingerprint += key + '=' + value + '\0';
  for (const std::string& model : launch->preload) fingerprint += "preload " + model + '\0';
  auto previous = launched_generation_.find(kernel);
  bool changed = previous != launched_generation_.end() && previous->second != fingerprint;
  launched_generation_[kernel] = fingerprint;
  if (Status s = pool_.SetWanted(kernel, wanted, std::move(*launch)); !s.ok()) {
    spdlog::error("event=workers.reconcile_failed kernel={} error=\"{}\"", kernel, s.message());
    return;
  }
  if (changed) {
    // Only those with a process: a worker stopped by hand (or fatal) stays as it is.
    for (const workers::WorkerInfo& w : pool_.List(kernel)) {
      if (w.pid > 0) (void)pool_.Restart(w.id);
    }
  }
}

void WorkerService::ReconcileEnv(const std::string& env_hash) {
  std::vector<std::string> names;
  for (const Kernel* k : kernels_.List()) {
    if (k->env_hash == env_hash) names.push_back(k->name());
  }
  for (const std::string& name : names) Reconcile(name);
}

void WorkerService::ReconcileAll() {
  std::set<std::string> names;
  for (const Kernel* k : kernels_.List()) names.insert(k->name());
  // Workers adopted for kernels deleted while the supervisor was down are stopped.
  for (const workers::WorkerInfo& w : pool_.List()) names.insert(w.kernel);
  for (const std::string& name : names) Reconcile(name);
}

Result<const Kernel*> WorkerService::StartKernel(const std::string& name,
                                                 std::optional<int> workers,
                                                 const Caller& caller) {
  GSK_ASSIGN_OR_RETURN(const Kernel* k, kernels_.Get(name));
  if (!k->managed()) return kernels_.SetWorkersStopped(name, false, caller);  // says why not
  if (workers) GSK_RETURN_IF_ERROR(kernels_.SetWorkers(name, *workers, caller).status());
  return kernels_.SetWorkersStopped(name, false, caller);
}

Result<const Kernel*> WorkerService::StopKernel(const std::string& name, const Caller& caller) {
  return kernels_.SetWorkersStopped(name, true, caller);
}

std::vector<workers::WorkerInfo> WorkerService::List(const std::string& kernel) const {
  return pool_.List(kernel);
}

Status WorkerService::NotFoundWorker(const std::string& id) const {
  return NotFound("worker \"" + id + "\" does not exist; list them with GET /api/v1/workers")
      .WithDetail("id", id);
}

Result<workers::WorkerInfo> WorkerService::Get(const std::string& id) const {
  std::optional<workers::WorkerInfo> w = pool_.Get(id);
  if (!w) return NotFoundWorker(id);
  return *w;
}

Result<workers::WorkerInfo> WorkerService::Stop(const std::string& id) {
  GSK_RETURN_IF_ERROR(Get(id).status());
  GSK_RETURN_IF_ERROR(pool_.Stop(id));
  return Get(id);
}

Result<workers::WorkerInfo> WorkerService::Start(const std::string& id) {
  GSK_ASSIGN_OR_RETURN(workers::WorkerInfo w, Get(id));
  using workers::WorkerState;
  if (w.state == WorkerState::kStarting || w.state == WorkerState::kRunning ||
      w.state == WorkerState::kBackoff) {
    return w;  // already on its way
  }
  if (w.state == WorkerState::kStopping) {
    return FailedPrecondition("worker \"" + id + "\" is stopping; start it once it is stopped");
  }
  GSK_RETURN_IF_ERROR(pool_.Restart(id));
  return Get(id);
}

Result<workers::WorkerInfo> WorkerService::Restart(const std::string& id) {
  GSK_RETURN_IF_ERROR(Get(id).status());
  GSK_RETURN_IF_ERROR(pool_.Restart(id));
  return Get(id);
}

Status WorkerService::Delete(const std::string& id) {
  GSK_RETURN_IF_ERROR(Get(id).status());
  return pool_.Delete(id);
}

int WorkerService::Running(const std::string& kernel) const {
  return pool_.CountRunning(kernel);
}

Result<LogChunk> WorkerService::Logs(const std::string& id, uint64_t offset,
                                     uint64_t limit) const {
  GSK_ASSIGN_OR_RETURN(workers::WorkerInfo w, Get(id));
  std::string path = w.log_file.empty() ? (options_.log_dir / (id + ".log")).string() : w.log_file;
  return ReadLogChunk(path, offset, limit);
}

}  // namespace gsk::service
