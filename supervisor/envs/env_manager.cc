#include "supervisor/envs/env_manager.h"

#include <algorithm>
#include <fstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "supervisor/envs/pip_command.h"

namespace gsk::envs {
namespace {

namespace fs = std::filesystem;
constexpr const char* kReadyMarker = ".gsk-env.json";

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

std::string Mb(int64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

}  // namespace

struct EnvManager::Build {
  EnvRequest request;
  store::EnvRow row;
  python::Interpreter interpreter;
  PipOutput pip;
  std::ofstream log;
  std::optional<process::ProcessHandle> current;
  std::unique_ptr<boost::asio::steady_timer> deadline;
  bool running = false;
  bool cancelled = false;
  bool timed_out = false;
};

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

EnvManager::EnvManager(boost::asio::io_context& io, store::Store* store,
                       process::ProcessLauncher* launcher, const Clock* clock,
                       EnvManagerOptions options)
    : io_(io), store_(store), launcher_(launcher), clock_(clock), options_(std::move(options)) {}

EnvManager::~EnvManager() { Shutdown(); }

fs::path EnvManager::EnvPath(const std::string& hash) const {
  return options_.envs_dir / hash.substr(0, 32);
}

fs::path EnvManager::LogPath(const std::string& hash) const {
  return options_.logs_dir / (hash.substr(0, 32) + ".log");
}

const std::vector<python::Interpreter>& EnvManager::interpreters() const {
  return options_.interpreters;
}

int EnvManager::running_builds() const { return running_; }

std::optional<BuildProgress> EnvManager::Progress(const std::string& hash) const {
  auto it = builds_.find(hash);
  if (it == builds_.end()) return std::nullopt;
  return it->second->pip.progress();
}

Status EnvManager::WriteEnv(store::EnvRow& row, const std::string& kind) {
  row.updated_at_ms = clock_->NowUnixMillis();
  store::Event e;
  e.ts_ms = row.updated_at_ms;
  e.kind = kind;
  e.subject = "env/" + row.hash;
  e.actor = "supervisor";
  nlohmann::json detail = {{"python", row.interpreter_version}, {"status", row.status}};
  if (!row.last_error.empty()) detail["error"] = row.last_error;
  if (row.size_bytes > 0) detail["sizeBytes"] = row.size_bytes;
  e.detail_json = detail.dump();
  Status s = store_->PutEnv(row, e);
  if (!s.ok()) spdlog::error("event=store.write_failed env={} error=\"{}\"", row.hash, s.message());
  return s;
}

Status EnvManager::Recover() {
  std::error_code ec;
  fs::create_directories(options_.envs_dir, ec);
  fs::create_directories(options_.logs_dir, ec);
  fs::create_directories(options_.scratch_dir, ec);
  if (ec) return Internal("cannot create " + options_.envs_dir.string() + ": " + ec.message());
  GSK_ASSIGN_OR_RETURN(auto rows, store_->ListEnvs());
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
  for (const auto& row : rows) {
    GSK_ASSIGN_OR_RETURN(int64_t refs, store_->CountKernelsWithEnv(row.hash));
    if (refs == 0 && row.status != "ready") {
      store::Event e{0, clock_->NowUnixMillis(), "env.deleted", "env/" + row.hash, "supervisor",
                     R"({"reason":"no kernel uses it"})"};
      GSK_RETURN_IF_ERROR(store_->DeleteEnv(row.hash, e));
    }
  }
  return Status::Ok();
}

void EnvManager::Ensure(const EnvRequest& request, bool retry_failed) {
  if (builds_.count(request.hash)) {
    auto& b = *builds_[request.hash];
    SetStatus(request, b.running ? "building" : "pending", "");  // it joins the build
    return;
  }
  auto existing = store_->GetEnv(request.hash);
  if (existing.ok() && existing->has_value()) {
    store::EnvRow row = **existing;
    bool intact = fs::exists(EnvPath(row.hash) / kReadyMarker);
    if (row.status == "ready" && intact) {
      (void)store_->TouchEnv(row.hash, clock_->NowUnixMillis());
      // No Notify: whoever asked (a kernel create or replace, the startup) reconciles the kernel
      // itself, and a notice per call would cost O(kernels) each time thousands share an env.
      SetStatus(request, "ready", "");
      return;
    }
    if (row.status == "failed" && !retry_failed) {
      SetStatus(request, "failed", row.last_error);
      return;
    }
  }
  auto build = std::make_unique<Build>();
  build->request = request;
  builds_[request.hash] = std::move(build);
  queue_.push_back(request.hash);
  (void)store_->SetKernelsStatus(request.hash, "pending", "", clock_->NowUnixMillis());
  StartQueued();
}

Status EnvManager::Rebuild(const EnvRequest& request) {
  if (builds_.count(request.hash)) {
    return FailedPrecondition("the environment is being built right now; wait for the build to "
                              "finish (kernels logs NAME -f) and rebuild afterwards");
  }
  std::error_code ec;
  fs::remove_all(EnvPath(request.hash), ec);
  Ensure(request, /*retry_failed=*/true);
  Notify(request.hash);
  return Status::Ok();
}

void EnvManager::StartQueued() {
  while (!shutting_down_ && running_ < options_.builds.max_concurrent && !queue_.empty()) {
    std::string hash = queue_.front();
    queue_.erase(queue_.begin());
    auto it = builds_.find(hash);
    if (it == builds_.end()) continue;
    // A hash whose previous build is still being cancelled waits for that build to end.
    if (it->second->running) continue;
    StartBuild(*it->second);
  }
}

void EnvManager::StartBuild(Build& b) {
  ++running_;
  b.running = true;
  int64_t now = clock_->NowUnixMillis();
  auto previous = store_->GetEnv(b.request.hash);
  b.row = previous.ok() && previous->has_value() ? **previous : store::EnvRow{};
  b.row.hash = b.request.hash;
  b.row.python_version = b.request.python_minor;
  b.row.path = EnvPath(b.request.hash).string();
  b.row.requirements = Join(b.request.requirements);
  b.row.status = "building";
  b.row.last_error.clear();
  b.row.size_bytes = 0;
  b.row.attempts += 1;
  if (b.row.created_at_ms == 0) b.row.created_at_ms = now;
  b.row.last_used_at_ms = now;
  b.row.build_started_at_ms = now;
  b.row.build_finished_at_ms = 0;
  b.log.open(LogPath(b.request.hash), std::ios::trunc);
  Log(b, "# giskard-supervisor: building env " + b.request.hash);
  Log(b, "# python " + b.request.python_minor + "; requirements:");
  for (const auto& r : b.request.requirements) Log(b, "#   " + r);

  std::error_code exists_ec;
  if (options_.shim_wheel.empty() || !fs::is_regular_file(options_.shim_wheel, exists_ec)) {
    return Fail(b, "the worker-shim wheel is missing (" + options_.shim_wheel.string() +
                       "); build the worker_shim_wheel target or set [python] shim_wheel");
  }
  auto interpreter = python::PickInterpreter(options_.interpreters, b.request.python_minor);
  if (!interpreter.ok()) return Fail(b, interpreter.status().message());
  b.interpreter = *interpreter;
  b.row.interpreter = b.interpreter.path.string();
  b.row.interpreter_version = b.interpreter.version;
  int64_t budget = options_.builds.disk_budget_mb << 20;
  int64_t used = ReferencedBytes(b.request.hash);
  if (used >= budget) {
    return Fail(b, "the disk budget of " + Mb(budget) + " is used up by environments that "
                   "kernels still use (" + Mb(used) + "); delete kernels or raise "
                   "[builds] disk_budget_mb");
  }
  if (!WriteEnv(b.row, "env.build_started").ok()) return Fail(b, "cannot record the build");
  spdlog::info("event=env.build_started env={} python={} interpreter={} requirements={}",
               b.request.hash.substr(0, 12), b.interpreter.version, b.row.interpreter,
               b.request.requirements.size());
  std::error_code ec;
  fs::remove_all(b.row.path, ec);
  b.deadline = std::make_unique<boost::asio::steady_timer>(io_);
  b.deadline->expires_after(std::chrono::seconds(options_.builds.timeout_seconds));
  std::string hash = b.request.hash;
  b.deadline->async_wait([this, hash](const boost::system::error_code& wec) {
    auto it = builds_.find(hash);
    if (wec || it == builds_.end() || !it->second->current) return;
    it->second->timed_out = true;
    launcher_->Kill(*it->second->current);
  });
  PipInputs in;
  in.venv_dir = b.row.path;
  in.scratch_dir = options_.scratch_dir;
  auto cmd = VenvCommand(b.interpreter.path, in);
  RunStep(b, "creating-venv", std::move(cmd.argv), std::move(cmd.env), &EnvManager::InstallStep);
}

void EnvManager::Log(Build& b, std::string_view line) {
  if (b.log) {
    b.log << line << '\n';
    b.log.flush();  // `kernels logs -f` reads the file while the build runs
  }
}

void EnvManager::RunStep(Build& b, const std::string& phase, std::vector<std::string> argv,
                         std::map<std::string, std::string> env,
                         void (EnvManager::*next)(Build&)) {
  b.pip.mutable_progress().phase = phase;
  std::string shown;
  for (const auto& a : argv) shown += (shown.empty() ? "" : " ") + a;
  Log(b, "$ " + shown);
  process::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.env = std::move(env);
  spec.cwd = options_.scratch_dir;
  std::string hash = b.request.hash;
  spec.on_output = [this, hash](std::string_view line) {
    auto it = builds_.find(hash);
    if (it == builds_.end()) return;
    it->second->pip.OnLine(line);
    Log(*it->second, line);
  };
  auto launched = launcher_->Launch(std::move(spec), [this, hash, phase,
                                                       next](const process::ExitInfo& exit) {
    auto it = builds_.find(hash);
    if (it == builds_.end()) return;
    Build& build = *it->second;
    build.current.reset();
    Log(build, "# " + phase + ": " + exit.Describe());
    if (build.cancelled) return Finish(hash);
    if (build.timed_out) {
      return Fail(build, "the build took longer than " +
                             std::to_string(options_.builds.timeout_seconds) +
                             " s and was stopped; raise [builds] timeout_seconds if it needs "
                             "more time");
    }
    if (shutting_down_) return;
    if (!exit.success()) {
      std::string reason = build.pip.FailureReason();
      if (reason.empty()) reason = phase + " " + exit.Describe() + "; see the build log";
      return Fail(build, reason);
    }
    (this->*next)(build);
  });
  if (!launched.ok()) return Fail(b, phase + ": " + launched.status().message());
  b.current = *launched;
}

void EnvManager::InstallStep(Build& b) {
  PipInputs in;
  in.venv_dir = b.row.path;
  in.pip_wheel = b.interpreter.pip_wheel;
  in.requirements_file = LogPath(b.request.hash).replace_extension(".requirements.txt");
  in.shim_wheel = options_.shim_wheel;
  in.cache_dir = options_.pip_cache_dir;
  in.scratch_dir = options_.scratch_dir;
  in.packages = options_.packages;
  in.compile_bytecode = options_.builds.compile_bytecode;
  std::ofstream req(in.requirements_file, std::ios::trunc);
  req << Join(b.request.requirements);
  req.close();
  if (!req) return Fail(b, "cannot write " + in.requirements_file.string());
  auto cmd = PipInstallCommand(in);
  RunStep(b, "installing", std::move(cmd.argv), std::move(cmd.env), &EnvManager::VerifyStep);
}

void EnvManager::VerifyStep(Build& b) {
  PipInputs in;
  in.venv_dir = b.row.path;
  in.scratch_dir = options_.scratch_dir;
  auto cmd = VerifyCommand(in);
  RunStep(b, "verifying", std::move(cmd.argv), std::move(cmd.env), &EnvManager::Succeed);
}

int64_t EnvManager::ReferencedBytes(const std::string& except_hash) {
  auto rows = store_->ListEnvs();
  if (!rows.ok()) return 0;
  int64_t total = 0;
  for (const auto& row : *rows) {
    auto refs = store_->CountKernelsWithEnv(row.hash);
    if (row.hash != except_hash && row.status == "ready" && refs.ok() && *refs > 0) {
      total += row.size_bytes;
    }
  }
  return total;
}

void EnvManager::SetStatus(const EnvRequest& request, const std::string& status,
                           const std::string& last_error) {
  int64_t now = clock_->NowUnixMillis();
  if (request.kernel.empty()) {
    (void)store_->SetKernelsStatus(request.hash, status, last_error, now);
  } else {
    (void)store_->SetKernelStatus(request.kernel, status, last_error, now);
  }
}

void EnvManager::Notify(const std::string& hash) {
  if (!on_change_) return;
  // Later, on the same thread: the caller may be in the middle of a kernel write.
  boost::asio::post(io_, [this, hash] {
    if (on_change_ && !shutting_down_) on_change_(hash);
  });
}

void EnvManager::Succeed(Build& b) {
  b.row.size_bytes = DirectorySize(b.row.path);
  int64_t budget = options_.builds.disk_budget_mb << 20;
  CollectGarbage();
  int64_t used = ReferencedBytes(b.request.hash);
  if (used + b.row.size_bytes > budget) {
    return Fail(b, "the environment takes " + Mb(b.row.size_bytes) + " and environments in use "
                   "take " + Mb(used) + ", over the disk budget of " + Mb(budget) +
                   "; delete kernels or raise [builds] disk_budget_mb");
  }
  nlohmann::json marker = {{"hash", b.row.hash},
                           {"python", b.interpreter.version},
                           {"interpreter", b.row.interpreter},
                           {"requirements", b.request.requirements}};
  std::ofstream(fs::path(b.row.path) / kReadyMarker) << marker.dump(2) << "\n";
  b.pip.mutable_progress().phase = "done";
  b.row.status = "ready";
  b.row.build_finished_at_ms = clock_->NowUnixMillis();
  b.row.last_used_at_ms = b.row.build_finished_at_ms;
  Log(b, "# ready: " + Mb(b.row.size_bytes) + " in " +
             std::to_string(b.row.build_finished_at_ms - b.row.build_started_at_ms) + " ms");
  if (!WriteEnv(b.row, "env.ready").ok()) return Fail(b, "cannot record the finished build");
  spdlog::info("event=env.ready env={} size_bytes={} build_ms={}", b.row.hash.substr(0, 12),
               b.row.size_bytes, b.row.build_finished_at_ms - b.row.build_started_at_ms);
  Notify(b.request.hash);
  Finish(b.request.hash);
}

void EnvManager::Fail(Build& b, const std::string& reason) {
  b.row.status = "failed";
  b.row.last_error = reason;
  b.row.build_finished_at_ms = clock_->NowUnixMillis();
  Log(b, "# failed: " + reason);
  spdlog::warn("event=env.build_failed env={} error=\"{}\"", b.request.hash.substr(0, 12), reason);
  if (b.row.path.empty()) b.row.path = EnvPath(b.request.hash).string();
  if (b.row.created_at_ms == 0) b.row.created_at_ms = b.row.build_finished_at_ms;
  (void)WriteEnv(b.row, "env.build_failed");
  std::error_code ec;
  fs::remove_all(b.row.path, ec);  // a failed env is never used; keep only its log
  Notify(b.request.hash);
  Finish(b.request.hash);
}

void EnvManager::Finish(const std::string& hash) {
  auto it = builds_.find(hash);
  if (it == builds_.end()) return;
  Build& b = *it->second;
  if (b.deadline) b.deadline->cancel();
  if (b.cancelled) {
    std::error_code ec;
    fs::remove_all(EnvPath(hash), ec);
    store::Event e{0, clock_->NowUnixMillis(), "env.cancelled", "env/" + hash, "supervisor",
                   R"({"reason":"no kernel uses it any more"})"};
    (void)store_->DeleteEnv(hash, e);
    spdlog::info("event=env.build_cancelled env={}", hash.substr(0, 12));
  }
  if (b.running) --running_;
  builds_.erase(it);
  boost::asio::post(io_, [this] { StartQueued(); });
}

void EnvManager::Release(const std::string& hash) {
  auto refs = store_->CountKernelsWithEnv(hash);
  if (!refs.ok() || *refs > 0) return;
  auto it = builds_.find(hash);
  if (it != builds_.end()) {
    Build& b = *it->second;
    b.cancelled = true;
    if (b.current) {
      launcher_->Kill(*b.current);  // Finish runs from the exit callback
    } else if (!b.running) {
      queue_.erase(std::remove(queue_.begin(), queue_.end(), hash), queue_.end());
      Finish(hash);
    }
    return;
  }
  auto row = store_->GetEnv(hash);
  if (row.ok() && row->has_value() && (*row)->status == "failed") {
    store::Event e{0, clock_->NowUnixMillis(), "env.deleted", "env/" + hash, "supervisor",
                   R"({"reason":"failed and no kernel uses it"})"};
    (void)store_->DeleteEnv(hash, e);
  }
  (void)store_->TouchEnv(hash, clock_->NowUnixMillis());
}

void EnvManager::CollectGarbage() {
  auto rows = store_->ListEnvs();
  if (!rows.ok()) return;
  int64_t budget = options_.builds.disk_budget_mb << 20;
  int64_t total = 0;
  std::vector<store::EnvRow> unused;
  for (const auto& row : *rows) {
    total += row.size_bytes;
    auto refs = store_->CountKernelsWithEnv(row.hash);
    if (row.status == "ready" && refs.ok() && *refs == 0 && !builds_.count(row.hash)) {
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
    store::Event e{0, clock_->NowUnixMillis(), "env.collected", "env/" + row.hash, "supervisor",
                   nlohmann::json{{"sizeBytes", row.size_bytes}}.dump()};
    if (store_->DeleteEnv(row.hash, e).ok()) total -= row.size_bytes;
    spdlog::info("event=env.collected env={} size_bytes={}", row.hash.substr(0, 12),
                 row.size_bytes);
  }
}

void EnvManager::Shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  for (auto& [hash, build] : builds_) {
    if (build->current) launcher_->Kill(*build->current);
    if (build->deadline) build->deadline->cancel();
  }
}

}  // namespace gsk::envs
