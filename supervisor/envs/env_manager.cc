#include "supervisor/envs/env_manager.h"

#include <algorithm>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace gsk::envs {
namespace {

namespace fs = std::filesystem;
constexpr const char* kReadyMarker = ".gsk-env.json";

std::string Mb(int64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

std::string Short(const std::string& hash) { return hash.substr(0, 12); }

}  // namespace

std::string_view EnvStatusName(EnvStatus status) {
  switch (status) {
    case EnvStatus::kPending: return "pending";
    case EnvStatus::kBuilding: return "building";
    case EnvStatus::kReady: return "ready";
    case EnvStatus::kFailed: return "failed";
  }
  return "pending";
}

int64_t DirectorySize(const fs::path& dir) {
  std::error_code ec;
  int64_t total = 0;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied,
                                           ec), end;
       !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec) && !it->is_symlink(fec)) {
      total += static_cast<int64_t>(it->file_size(fec));
    }
  }
  return total;
}

EnvManager::EnvManager(store::Store& store, BuildRunner& runner, Timers& timers,
                       const Clock& clock, EnvOptions options)
    : store_(store), runner_(runner), timers_(timers), clock_(clock),
      options_(std::move(options)) {}

EnvManager::~EnvManager() {
  Shutdown();
  for (auto& [hash, build] : builds_) timers_.Cancel(build->deadline);
}

fs::path EnvManager::EnvPath(const std::string& hash) const {
  return options_.envs_dir / hash.substr(0, 32);
}

fs::path EnvManager::LogPath(const std::string& hash) const {
  return options_.logs_dir / (hash.substr(0, 32) + ".log");
}

EnvState EnvManager::State(const std::string& hash) const {
  if (auto b = builds_.find(hash); b != builds_.end()) {
    BuildProgress progress = b->second->pip.progress();
    if (!b->second->running) progress.phase = "queued";
    return {b->second->running ? EnvStatus::kBuilding : EnvStatus::kPending, "", progress};
  }
  auto row = rows_.find(hash);
  if (row == rows_.end()) return {};
  const std::string& s = row->second.status;
  if (s == "ready") return {EnvStatus::kReady, "", std::nullopt};
  if (s == "failed") return {EnvStatus::kFailed, row->second.last_error, std::nullopt};
  // "pending" or "building" with no build: left by a supervisor that stopped; it resumes.
  return {EnvStatus::kPending, "", std::nullopt};
}

Status EnvManager::WriteEnv(store::EnvRow row, const std::string& kind) {
  row.updated_at_ms = clock_.NowUnixMillis();
  nlohmann::json detail = {{"python", row.interpreter_version}, {"status", row.status}};
  if (!row.last_error.empty()) detail["error"] = row.last_error;
  if (row.size_bytes > 0) detail["sizeBytes"] = row.size_bytes;
  store::Event e{0, row.updated_at_ms, kind, "env/" + row.hash, "supervisor",
                 detail.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
  Status s = store_.PutEnv(row, e);
  if (!s.ok()) {
    spdlog::error("event=store.write_failed env={} error=\"{}\"", Short(row.hash), s.message());
    return s;
  }
  rows_[row.hash] = std::move(row);
  return s;
}

Status EnvManager::DeleteEnv(const std::string& hash, const std::string& kind,
                             const std::string& reason) {
  store::Event e{0, clock_.NowUnixMillis(), kind, "env/" + hash, "supervisor",
                 nlohmann::json{{"reason", reason}}.dump()};
  Status s = store_.DeleteEnv(hash, e);
  if (s.ok()) rows_.erase(hash);
  return s;
}

int64_t EnvManager::References(const std::string& hash) {
  Result<int64_t> refs = store_.CountKernelsWithEnv(hash);
  return refs.ok() ? *refs : 1;  // when in doubt, keep it
}

Status EnvManager::Recover() {
  std::error_code ec;
  for (const fs::path& dir : {options_.envs_dir, options_.logs_dir, options_.scratch_dir}) {
    fs::create_directories(dir, ec);
    if (ec) return Internal("cannot create " + dir.string() + ": " + ec.message());
  }
  GSK_ASSIGN_OR_RETURN(std::vector<store::EnvRow> rows, store_.ListEnvs());
  std::map<std::string, const store::EnvRow*> by_dir;
  for (const auto& row : rows) by_dir[EnvPath(row.hash).filename().string()] = &row;
  for (const auto& entry : fs::directory_iterator(options_.envs_dir, ec)) {
    auto it = by_dir.find(entry.path().filename().string());
    bool keep = it != by_dir.end() && it->second->status == "ready" &&
                fs::exists(entry.path() / kReadyMarker);
    if (!keep) {
      spdlog::info("event=env.cleanup path={} reason=\"{}\"", entry.path().string(),
                   it == by_dir.end() ? "unknown directory" : "left by an interrupted build");
      fs::remove_all(entry.path(), ec);
    }
  }
  rows_.clear();
  for (auto& row : rows) {
    GSK_ASSIGN_OR_RETURN(int64_t refs, store_.CountKernelsWithEnv(row.hash));
    if (refs == 0 && row.status != "ready") {
      store::Event e{0, clock_.NowUnixMillis(), "env.deleted", "env/" + row.hash, "supervisor",
                     R"({"reason":"no kernel uses it"})"};
      GSK_RETURN_IF_ERROR(store_.DeleteEnv(row.hash, e));
      continue;
    }
    std::string hash = row.hash;
    rows_.emplace(std::move(hash), std::move(row));
  }
  return Status::Ok();
}

void EnvManager::Ensure(const EnvRequest& request, bool retry_failed) {
  if (builds_.count(request.hash) != 0) return;  // it joins the build
  if (auto it = rows_.find(request.hash); it != rows_.end()) {
    const store::EnvRow& row = it->second;
    if (row.status == "ready" && fs::exists(EnvPath(row.hash) / kReadyMarker)) {
      if (store_.TouchEnv(row.hash, clock_.NowUnixMillis()).ok()) {
        it->second.last_used_at_ms = clock_.NowUnixMillis();
      }
      return;
    }
    if (row.status == "failed" && !retry_failed) return;
  }
  Enqueue(request);
}

void EnvManager::Enqueue(const EnvRequest& request) {
  auto build = std::make_unique<Build>();
  build->request = request;
  builds_[request.hash] = std::move(build);
  queue_.push_back(request.hash);
  store::EnvRow row = RowFor(request);
  row.status = "pending";
  (void)WriteEnv(std::move(row), "env.queued");
  StartQueued();
}

store::EnvRow EnvManager::RowFor(const EnvRequest& request) const {
  auto it = rows_.find(request.hash);
  store::EnvRow row = it != rows_.end() ? it->second : store::EnvRow{};
  int64_t now = clock_.NowUnixMillis();
  row.hash = request.hash;
  row.python_version = request.python_minor;
  row.path = EnvPath(request.hash).string();
  row.requirements.clear();
  for (const auto& r : request.requirements) row.requirements += r + "\n";
  row.last_error.clear();
  row.size_bytes = 0;
  if (row.created_at_ms == 0) row.created_at_ms = now;
  row.last_used_at_ms = now;
  return row;
}

Status EnvManager::Rebuild(const EnvRequest& request) {
  if (builds_.count(request.hash) != 0) {
    return FailedPrecondition("the environment is being built right now; wait for the build to "
                              "finish (kernels logs NAME -f) and rebuild afterwards");
  }
  std::error_code ec;
  fs::remove_all(EnvPath(request.hash), ec);
  Enqueue(request);
  Notify(request.hash);
  return Status::Ok();
}

void EnvManager::StartQueued() {
  while (!shutting_down_ && running_ < options_.limits.max_concurrent && !queue_.empty()) {
    std::string hash = queue_.front();
    queue_.erase(queue_.begin());
    auto it = builds_.find(hash);
    if (it != builds_.end() && !it->second->running) StartBuild(*it->second);
  }
}

void EnvManager::Log(Build& b, std::string_view line) {
  if (b.log) {
    b.log << line << '\n';
    b.log.flush();  // `kernels logs -f` reads the file while the build runs
  }
}

// What must hold before a build starts: the shim wheel, an interpreter, room on disk.
Result<python::Interpreter> EnvManager::CheckBeforeBuild(Build& b) {
  std::error_code ec;
  if (options_.shim_wheel.empty() || !fs::is_regular_file(options_.shim_wheel, ec)) {
    return FailedPrecondition("the worker-shim wheel is missing (" + options_.shim_wheel.string() +
                              "); build the worker_shim_wheel target or set [python] shim_wheel");
  }
  GSK_ASSIGN_OR_RETURN(python::Interpreter interpreter,
                       python::PickInterpreter(options_.interpreters, b.request.python_minor));
  b.row.interpreter = interpreter.path.string();
  b.row.interpreter_version = interpreter.version;
  int64_t budget = options_.limits.disk_budget_mb << 20;
  int64_t used = ReferencedBytes(b.request.hash);
  if (used >= budget) {
    return ResourceExhausted("the disk budget of " + Mb(budget) + " is used up by environments "
                             "that kernels still use (" + Mb(used) + "); delete kernels or "
                             "raise [builds] disk_budget_mb");
  }
  return interpreter;
}

void EnvManager::StartBuild(Build& b) {
  ++running_;
  b.running = true;
  const std::string hash = b.request.hash;
  b.row = RowFor(b.request);
  store::EnvRow& row = b.row;
  row.status = "building";
  row.attempts += 1;
  row.build_started_at_ms = clock_.NowUnixMillis();
  row.build_finished_at_ms = 0;
  b.log.open(LogPath(hash), std::ios::trunc);
  Log(b, "# giskard-supervisor: building env " + hash);
  Log(b, "# python " + b.request.python_minor + "; requirements:");
  for (const auto& r : b.request.requirements) Log(b, "#   " + r);
  Result<python::Interpreter> interpreter = CheckBeforeBuild(b);
  if (!interpreter.ok()) return Fail(b, interpreter.status().message());
  if (!WriteEnv(row, "env.build_started").ok()) return Fail(b, "cannot record the build");
  spdlog::info("event=env.build_started env={} python={} interpreter={} requirements={}",
               Short(hash), interpreter->version, row.interpreter,
               b.request.requirements.size());
  std::error_code ec;
  fs::remove_all(row.path, ec);
  std::weak_ptr<int> alive = alive_;
  b.deadline = timers_.After(std::chrono::seconds(options_.limits.timeout_seconds),
                             [this, alive, hash] {
                               if (alive.lock()) OnDeadline(hash);
                             });
  BuildJob job{hash, row.path, *interpreter, b.request.requirements,
               fs::path(LogPath(hash)).replace_extension(".requirements.txt")};
  BuildRunner::Callbacks callbacks;
  callbacks.on_step = [this, hash](std::string_view phase, std::string_view command) {
    auto it = builds_.find(hash);
    if (it == builds_.end()) return;
    it->second->pip.mutable_progress().phase = std::string(phase);
    Log(*it->second, "$ " + std::string(command));
  };
  callbacks.on_line = [this, hash](std::string_view line) {
    auto it = builds_.find(hash);
    if (it == builds_.end()) return;
    it->second->pip.OnLine(line);
    Log(*it->second, line);
  };
  callbacks.on_done = [this, alive, hash](const StepOutcome& outcome) {
    if (alive.lock()) OnBuildDone(hash, outcome);
  };
  runner_.Start(job, std::move(callbacks));
}

void EnvManager::OnDeadline(const std::string& hash) {
  auto it = builds_.find(hash);
  if (it == builds_.end() || !it->second->running) return;
  it->second->deadline = 0;
  it->second->timed_out = true;
  runner_.Cancel(hash);
}

void EnvManager::OnBuildDone(const std::string& hash, const StepOutcome& outcome) {
  auto it = builds_.find(hash);
  if (it == builds_.end()) return;
  Build& b = *it->second;
  if (!outcome.what.empty()) Log(b, "# " + outcome.phase + ": " + outcome.what);
  if (b.cancelled) return Finish(hash);
  if (b.timed_out) {
    return Fail(b, "the build took longer than " +
                       std::to_string(options_.limits.timeout_seconds) +
                       " s and was stopped; raise [builds] timeout_seconds if it needs more time");
  }
  if (shutting_down_) return;
  if (!outcome.ok) {
    std::string reason = b.pip.FailureReason();
    if (reason.empty()) reason = outcome.phase + " " + outcome.what + "; see the build log";
    return Fail(b, reason);
  }
  Succeed(b);
}

int64_t EnvManager::ReferencedBytes(const std::string& except_hash) {
  int64_t total = 0;
  for (const auto& [hash, row] : rows_) {
    if (hash != except_hash && row.status == "ready" && References(hash) > 0) {
      total += row.size_bytes;
    }
  }
  return total;
}

void EnvManager::Notify(const std::string& hash) {
  std::weak_ptr<int> alive = alive_;
  // Later: the caller may be in the middle of a kernel write.
  timers_.After(std::chrono::milliseconds(0), [this, alive, hash] {
    if (alive.lock() && on_change_ && !shutting_down_) on_change_(hash);
  });
}

void EnvManager::Succeed(Build& b) {
  store::EnvRow row = b.row;
  row.size_bytes = DirectorySize(row.path);
  int64_t budget = options_.limits.disk_budget_mb << 20;
  CollectGarbage();
  int64_t used = ReferencedBytes(b.request.hash);
  if (used + row.size_bytes > budget) {
    return Fail(b, "the environment takes " + Mb(row.size_bytes) + " and environments in use "
                   "take " + Mb(used) + ", over the disk budget of " + Mb(budget) +
                   "; delete kernels or raise [builds] disk_budget_mb");
  }
  nlohmann::json marker = {{"hash", row.hash},
                           {"python", row.interpreter_version},
                           {"interpreter", row.interpreter},
                           {"requirements", b.request.requirements}};
  std::ofstream out(fs::path(row.path) / kReadyMarker);
  out << marker.dump(2) << "\n";
  out.close();
  if (!out) return Fail(b, "cannot write the marker file in " + row.path);
  b.pip.mutable_progress().phase = "done";
  row.status = "ready";
  row.build_finished_at_ms = clock_.NowUnixMillis();
  row.last_used_at_ms = row.build_finished_at_ms;
  int64_t took = row.build_finished_at_ms - row.build_started_at_ms;
  Log(b, "# ready: " + Mb(row.size_bytes) + " in " + std::to_string(took) + " ms");
  int64_t size = row.size_bytes;
  if (!WriteEnv(std::move(row), "env.ready").ok()) return Fail(b, "cannot record the build");
  spdlog::info("event=env.ready env={} size_bytes={} build_ms={}", Short(b.request.hash), size,
               took);
  std::string hash = b.request.hash;
  Notify(hash);
  Finish(hash);
}

void EnvManager::Fail(Build& b, const std::string& reason) {
  store::EnvRow row = b.row;
  row.status = "failed";
  row.last_error = reason;
  row.build_finished_at_ms = clock_.NowUnixMillis();
  Log(b, "# failed: " + reason);
  spdlog::warn("event=env.build_failed env={} error=\"{}\"", Short(b.request.hash), reason);
  std::error_code ec;
  fs::remove_all(row.path, ec);  // a failed env is never used; keep only its log
  (void)WriteEnv(std::move(row), "env.build_failed");
  std::string hash = b.request.hash;
  Notify(hash);
  Finish(hash);
}

void EnvManager::Finish(const std::string& hash) {
  auto it = builds_.find(hash);
  if (it == builds_.end()) return;
  Build& b = *it->second;
  timers_.Cancel(b.deadline);
  if (b.cancelled) {
    std::error_code ec;
    fs::remove_all(EnvPath(hash), ec);
    (void)DeleteEnv(hash, "env.cancelled", "no kernel uses it any more");
    spdlog::info("event=env.build_cancelled env={}", Short(hash));
  }
  if (b.running) --running_;
  builds_.erase(it);
  std::weak_ptr<int> alive = alive_;
  timers_.After(std::chrono::milliseconds(0), [this, alive] {
    if (alive.lock()) StartQueued();
  });
}

void EnvManager::Release(const std::string& hash) {
  if (References(hash) > 0) return;
  if (auto it = builds_.find(hash); it != builds_.end()) {
    Build& b = *it->second;
    b.cancelled = true;
    if (b.running) {
      runner_.Cancel(hash);  // Finish runs when the runner reports the end
    } else {
      queue_.erase(std::remove(queue_.begin(), queue_.end(), hash), queue_.end());
      Finish(hash);
    }
    return;
  }
  auto row = rows_.find(hash);
  if (row == rows_.end()) return;
  if (row->second.status != "ready") {
    (void)DeleteEnv(hash, "env.deleted", "not built and no kernel uses it");
    return;
  }
  if (store_.TouchEnv(hash, clock_.NowUnixMillis()).ok()) {
    row->second.last_used_at_ms = clock_.NowUnixMillis();
  }
}

void EnvManager::CollectGarbage() {
  int64_t budget = options_.limits.disk_budget_mb << 20;
  int64_t total = 0;
  std::vector<store::EnvRow> unused;
  for (const auto& [hash, row] : rows_) {
    total += row.size_bytes;
    if (row.status == "ready" && builds_.count(hash) == 0 && References(hash) == 0) {
      unused.push_back(row);
    }
  }
  std::sort(unused.begin(), unused.end(), [](const auto& a, const auto& b) {
    return a.last_used_at_ms < b.last_used_at_ms;
  });
  for (const auto& row : unused) {
    if (total <= budget) break;
    std::error_code ec;
    fs::remove_all(EnvPath(row.hash), ec);
    if (DeleteEnv(row.hash, "env.collected", "over the disk budget").ok()) total -= row.size_bytes;
    spdlog::info("event=env.collected env={} size_bytes={}", Short(row.hash), row.size_bytes);
  }
}

void EnvManager::Shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  runner_.Abandon();
}

}  // namespace gsk::envs
