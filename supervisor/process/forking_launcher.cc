#include "supervisor/process/forking_launcher.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/crypto.h"
#include "supervisor/process/unique_fd.h"
#include "supervisor/protocol/frame_codec.h"

namespace gsk::process {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using internal::UniqueFd;

// The environment the template itself runs with: what every worker of the env shares, nothing
// of any one kernel (its secrets go to its workers only, in their fork requests).
constexpr const char* kTemplateEnv[] = {"PATH", "LANG", "LC_ALL", "VIRTUAL_ENV",
                                        "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE",
                                        "GSK_MODEL_CACHE_SIZE", "GSK_WORKER_VERBOSE"};

// Variables with which a worker's interpreter would start differently than its template did.
bool ChangesTheInterpreter(const std::string& name, const std::string& value) {
  if (name == "PYTHONUNBUFFERED" || name == "PYTHONDONTWRITEBYTECODE") return value != "1";
  return name.rfind("PYTHON", 0) == 0 || name.rfind("LD_", 0) == 0;
}

double SecondsOf(const std::map<std::string, std::string>& env, const char* name, double dflt) {
  auto it = env.find(name);
  if (it == env.end()) return dflt;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  return end != it->second.c_str() ? v : dflt;
}

json Limit(const std::optional<uint64_t>& v) { return v ? json(*v) : json(); }

// Writes a whole frame, waiting at most `timeout` for room.
Status WriteFrame(int fd, const std::string& frame, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  size_t done = 0;
  while (done < frame.size()) {
    ssize_t n = ::send(fd, frame.data() + done, frame.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return Unavailable(std::string("writing to the template: ") + std::strerror(errno));
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd, POLLOUT, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return DeadlineExceeded("the template takes no request");
    }
  }
  return Status::Ok();
}

}  // namespace

struct ForkingLauncher::Template {
  enum class State { kNone, kStarting, kReady, kFailed };
  Key key;
  fs::path env;
  std::string name;  // of its folder and log: the env's, plus a digest of the preload list
  State state = State::kNone;
  UniqueFd socket;  // ours; the template has the other end as its fd 3
  protocol::FrameDecoder decoder;
  std::optional<ProcessHandle> handle;
  Clock::time_point since;  // of the state
  int workers = 0;          // live workers of its env launched here: forked, or exec'd instead
  TimerId idle_timer = 0;
};

ForkingLauncher::ForkingLauncher(ProcessLauncher& inner, Timers& timers, ForkOptions options)
    : inner_(inner), timers_(timers), options_(std::move(options)) {}

ForkingLauncher::~ForkingLauncher() {
  for (auto& [env, t] : templates_) {
    timers_.Cancel(t->idle_timer);
    if (t->handle) inner_.Kill(*t->handle);
  }
}

std::string ForkingLauncher::WhyNotForkable(const ProcessSpec& spec) {
  if (!spec.forkable) return "not asked to (fork_server off, or the kernel opted out)";
  if (spec.argv.size() != 4 || spec.argv[1] != "-m" || spec.argv[2] != "giskard_worker_shim" ||
      spec.argv[3] != "serve-managed") {
    return "not a managed worker of the shim";
  }
  if (!spec.secret || spec.on_output || !spec.new_process_group || spec.inherit_fd >= 0) {
    return "not launched as a worker";
  }
  for (const auto& [name, value] : spec.env) {
    if (ChangesTheInterpreter(name, value)) return name + " changes how the interpreter starts";
  }
  return "";
}

ForkingLauncher::Counts ForkingLauncher::counts() const {
  Counts c = counts_;
  c.templates = 0;
  for (const auto& [env, t] : templates_) c.templates += t->handle.has_value();
  return c;
}

ForkingLauncher::Template& ForkingLauncher::TemplateFor(const fs::path& env,
                                                        const std::vector<std::string>& preload) {
  Key key{env, preload};
  auto& slot = templates_[key];
  if (!slot) {
    slot = std::make_unique<Template>();
    slot->key = std::move(key);
    slot->env = env;
    slot->name = env.filename().string();
    if (!preload.empty()) {
      std::string list;
      for (const std::string& path : preload) list += path + '\0';
      slot->name += "-preload-" + Sha256Hex(list).substr(0, 12);
    }
  }
  return *slot;
}

Result<ProcessHandle> ForkingLauncher::Launch(ProcessSpec spec, ExitCallback on_exit) {
  if (!WhyNotForkable(spec).empty()) {
    ++counts_.executed;
    return inner_.Launch(std::move(spec), std::move(on_exit));
  }
  fs::path python = spec.argv[0];
  Template& t = TemplateFor(python.parent_path().parent_path(), spec.preload);
  timers_.Cancel(t.idle_timer);
  t.idle_timer = 0;
  if (t.state == Template::State::kFailed && Clock::now() - t.since > options_.retry_after) {
    t.state = Template::State::kNone;
  }
  if (t.state == Template::State::kNone) StartTemplate(t, spec);
  if (t.state == Template::State::kStarting) CheckReady(t);
  std::error_code ec;
  if (t.state == Template::State::kReady && !fs::exists(python, ec)) {
    Retire(t, "its interpreter " + python.string() + " is gone");
  }
  if (t.state == Template::State::kReady) {
    Result<ProcessHandle> forked = Fork(t, spec, on_exit);
    if (forked.ok()) {
      ++counts_.forked;
      return forked;
    }
    Retire(t, forked.status().message());
  }
  ++counts_.executed;  // this one the classic way, while the template warms up or is away
  // It uses the env all the same: the template stays while it runs.
  Result<ProcessHandle> launched =
      inner_.Launch(std::move(spec), CountedIn(t, std::move(on_exit)));
  if (launched.ok()) ++t.workers;
  return launched;
}

void ForkingLauncher::StartTemplate(Template& t, const ProcessSpec& worker) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    t.state = Template::State::kFailed;
    t.since = Clock::now();
    return;
  }
  t.socket.reset(fds[0]);
  UniqueFd theirs(fds[1]);
  const std::string& name = t.name;
  ProcessSpec spec;
  spec.argv = {worker.argv[0], "-m", "giskard_worker_shim", "serve-template"};
  for (const char* key : kTemplateEnv) {
    if (auto it = worker.env.find(key); it != worker.env.end()) spec.env[key] = it->second;
  }
  spec.cwd = options_.templates_dir / name;
  spec.env["HOME"] = spec.cwd.string();
  spec.env["GSK_TEMPLATE_FD"] = std::to_string(kSecretFd);
  if (!worker.preload.empty()) spec.env["GSK_TEMPLATE_PRELOAD"] = json(worker.preload).dump();
  std::error_code ec;
  fs::create_directories(spec.cwd, ec);
  fs::create_directories(options_.logs_dir, ec);
  spec.log_file = options_.logs_dir / (name + ".log");
  spec.inherit_fd = theirs.get();
  std::weak_ptr<int> alive = alive_;
  Key key = t.key;
  Result<ProcessHandle> launched =
      inner_.Launch(std::move(spec), [this, alive, key](const ExitInfo& exit) {
        if (!alive.lock()) return;
        auto it = templates_.find(key);
        if (it == templates_.end()) return;
        Template& dead = *it->second;
        dead.handle.reset();
        dead.socket.reset();
        if (dead.state == Template::State::kStarting || dead.state == Template::State::kReady) {
          spdlog::warn("event=template.exited env={} exit=\"{}\"", dead.name,
                       exit.Describe());
          dead.state = Template::State::kNone;  // started again with the next worker
        }
      });
  if (!launched.ok()) {
    spdlog::warn("event=template.start_failed env={} error=\"{}\"", name,
                 launched.status().message());
    t.socket.reset();
    t.state = Template::State::kFailed;
    t.since = Clock::now();
    return;
  }
  t.handle = *launched;
  t.decoder = protocol::FrameDecoder();
  t.state = Template::State::kStarting;
  t.since = Clock::now();
  spdlog::info("event=template.starting env={} pid={} preload={}", name, launched->pid(),
               worker.preload.size());
}

// Reads what the template said so far, without waiting: its "ready".
bool ForkingLauncher::CheckReady(Template& t) {
  char buf[4096];
  while (true) {
    ssize_t n = ::recv(t.socket.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      t.decoder.Feed(std::string_view(buf, static_cast<size_t>(n)));
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      Retire(t, "it closed its socket before it was ready");
      return false;
    }
    break;
  }
  Result<std::optional<std::string>> frame = t.decoder.Next();
  if (frame.ok() && frame->has_value()) {
    json message = json::parse(**frame, nullptr, false);
    if (message.is_object() && message.value("type", "") == "ready") {
      t.state = Template::State::kReady;
      spdlog::info("event=template.ready env={} pid={} preloaded={} after_ms={}", t.name,
                   t.handle ? t.handle->pid() : 0, message.value("preloaded", json::array()).size(),
                   std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t.since)
                       .count());
      return true;
    }
    Retire(t, "it said " + std::string(**frame).substr(0, 300));
    return false;
  }
  if (!frame.ok()) Retire(t, frame.status().message());
  if (t.state == Template::State::kStarting && Clock::now() - t.since > options_.ready_timeout) {
    Retire(t, "it was not ready within its start timeout");
  }
  return false;
}

Result<ProcessHandle> ForkingLauncher::Fork(Template& t, const ProcessSpec& spec,
                                            ExitCallback on_exit) {
  std::map<std::string, std::string> env = spec.env;
  env.erase("GSK_WORKER_TOKEN_FD");  // the token comes in the request, to the worker's memory
  json limits = {{"address_space_bytes", Limit(spec.limits.address_space_bytes)},
                 {"open_files", Limit(spec.limits.open_files)},
                 {"processes", Limit(spec.limits.processes)},
                 {"core_bytes", Limit(spec.limits.core_bytes)}};
  std::string id = "f" + std::to_string(next_request_++);
  json request = {{"type", "fork"},
                  {"id", id},
                  {"workerId", env["GSK_WORKER_ID"]},
                  {"token", *spec.secret},
                  {"socket", env["GSK_SUPERVISOR_SOCKET"]},
                  {"heartbeatSeconds", SecondsOf(env, "GSK_HEARTBEAT_SECONDS", 5)},
                  {"orphanGraceSeconds", SecondsOf(env, "GSK_ORPHAN_GRACE_SECONDS", 60)},
                  {"env", env},
                  {"cwd", spec.cwd.string()},
                  {"logFile", spec.log_file.string()},
                  {"limits", limits}};
  GSK_ASSIGN_OR_RETURN(std::string frame,
                       protocol::EncodeFrame(request.dump(-1, ' ', false,
                                                          json::error_handler_t::replace)));
  GSK_RETURN_IF_ERROR(WriteFrame(t.socket.get(), frame, options_.fork_timeout));
  auto deadline = Clock::now() + options_.fork_timeout;
  while (true) {
    Result<std::optional<std::string>> next = t.decoder.Next();
    if (!next.ok()) return next.status();
    if (next->has_value()) {
      json reply = json::parse(**next, nullptr, false);
      if (!reply.is_object() || reply.value("id", "") != id) {
        return Internal("the template answered out of turn: " + (**next).substr(0, 200));
      }
      if (reply.value("type", "") != "forked") {
        return Internal("the template could not fork: " + reply.value("error", std::string("?")));
      }
      int pid = reply.value("pid", 0);
      Result<int64_t> ticks = ProcessStartTime(pid);
      if (pid <= 0 || !ticks.ok()) return Internal("the forked worker is already gone");
      AdoptSpec adopt{pid, *ticks, true, spec.log_file, spec.log_rotate_bytes};
      GSK_ASSIGN_OR_RETURN(ProcessHandle handle,
                           inner_.Adopt(adopt, CountedIn(t, std::move(on_exit))));
      ++t.workers;
      return handle;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{t.socket.get(), POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return DeadlineExceeded("the template did not answer a fork within " +
                              std::to_string(options_.fork_timeout.count()) + " ms");
    }
    char buf[4096];
    ssize_t n = ::recv(t.socket.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return Unavailable("the template closed its socket");
    if (n > 0) t.decoder.Feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

// The template cannot be used: it is killed, and workers are exec'd until retry_after.
void ForkingLauncher::Retire(Template& t, const std::string& why) {
  spdlog::warn("event=template.retired env={} reason=\"{}\"", t.name, why);
  t.state = Template::State::kFailed;
  t.since = Clock::now();
  t.socket.reset();
  if (t.handle) inner_.Kill(*t.handle);
}

ProcessLauncher::ExitCallback ForkingLauncher::CountedIn(Template& t, ExitCallback on_exit) {
  std::weak_ptr<int> alive = alive_;
  return [this, alive, key = t.key, on_exit = std::move(on_exit)](const ExitInfo& exit) {
    if (alive.lock()) WorkerGone(key);
    on_exit(exit);
  };
}

void ForkingLauncher::WorkerGone(const Key& key) {
  auto it = templates_.find(key);
  if (it == templates_.end()) return;
  Template& t = *it->second;
  if (--t.workers > 0 || !t.handle) return;
  // No worker of this env left: the template stops unless one comes back soon.
  std::weak_ptr<int> alive = alive_;
  timers_.Cancel(t.idle_timer);
  t.idle_timer = timers_.After(options_.idle, [this, alive, key] {
    if (!alive.lock()) return;
    auto found = templates_.find(key);
    if (found == templates_.end()) return;
    Template& idle = *found->second;
    idle.idle_timer = 0;
    if (idle.workers > 0 || !idle.handle) return;
    spdlog::info("event=template.stopping env={} reason=\"no worker of its env\"",
                 idle.name);
    idle.state = Template::State::kNone;
    idle.socket.reset();  // it exits at EOF
    inner_.Stop(*idle.handle, std::chrono::seconds(5));
  });
}

void ForkingLauncher::Stop(const ProcessHandle& handle, std::chrono::milliseconds grace) {
  inner_.Stop(handle, grace);
}

void ForkingLauncher::Kill(const ProcessHandle& handle) { inner_.Kill(handle); }

Result<ProcessHandle> ForkingLauncher::Adopt(const AdoptSpec& spec, ExitCallback on_exit) {
  return inner_.Adopt(spec, std::move(on_exit));
}

}  // namespace gsk::process
