#include "supervisor/relay/remote_workers.h"

#include <algorithm>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "supervisor/relay/messages.h"

namespace gsk::relay {
namespace {

constexpr uint16_t kCloseNormal = 1000;
constexpr uint16_t kClosePolicy = 1008;

void ReadEnvFacts(const std::string& env_json, RemoteWorkerInfo& info) {
  nlohmann::json env = nlohmann::json::parse(env_json, nullptr, false);
  if (!env.is_object()) return;
  const auto& pid = env.value("pid", nlohmann::json());
  if (pid.is_number_integer() && pid.get<int64_t>() > 0 && pid.get<int64_t>() <= INT32_MAX) {
    info.pid = static_cast<int>(pid.get<int64_t>());
  }
  const auto& host = env.value("hostname", nlohmann::json());
  if (host.is_string()) info.hostname = host.get<std::string>().substr(0, 255);
}

}  // namespace

struct RemoteWorkers::Connection {
  uint64_t id = 0;
  std::shared_ptr<api::WebSocketPeer> peer;
  RemoteWorkerInfo info;  // hello.remote and hello.key_name set at attach
  bool registered = false;
  bool refused = false;
  TimerId hello_timer = 0;
  int64_t last_seen_mono = 0;
  std::map<std::string, ReplyHandler> pending;  // requests sent, by id
};

RemoteWorkers::RemoteWorkers(Timers& timers, const Clock& clock, RemoteWorkersOptions options)
    : timers_(timers), clock_(clock), options_(std::move(options)) {
  std::weak_ptr<int> alive = alive_;
  tick_ = timers_.After(options_.heartbeat, [this, alive] {
    if (alive.lock()) Tick();
  });
}

RemoteWorkers::~RemoteWorkers() {
  CloseAll();
  timers_.Cancel(tick_);
}

api::WebSocketHandlers RemoteWorkers::Attach(std::shared_ptr<api::WebSocketPeer> peer,
                                             RemoteHello origin) {
  auto c = std::make_unique<Connection>();
  c->id = next_conn_++;
  c->peer = std::move(peer);
  c->info.hello.remote = std::move(origin.remote);
  c->info.hello.key_name = std::move(origin.key_name);
  c->last_seen_mono = clock_.MonotonicMillis();
  uint64_t id = c->id;
  std::weak_ptr<int> alive = alive_;
  c->hello_timer = timers_.After(options_.hello_timeout, [this, alive, id] {
    if (!alive.lock()) return;
    auto it = connections_.find(id);
    if (it == connections_.end() || it->second->registered) return;
    spdlog::warn("event=worker.remote_no_hello remote={}", it->second->info.hello.remote);
    it->second->peer->Close(kClosePolicy, "no hello in time");
  });
  if (closed_) c->peer->Close(1001, "the supervisor is stopping");
  connections_.emplace(id, std::move(c));
  api::WebSocketHandlers handlers;
  handlers.on_message = [this, alive, id](std::string text) {
    if (alive.lock()) OnMessage(id, std::move(text));
  };
  handlers.on_closed = [this, alive, id](const std::string& why) {
    if (alive.lock()) OnClosed(id, why);
  };
  return handlers;
}

void RemoteWorkers::OnMessage(uint64_t conn_id, std::string text) {
  auto it = connections_.find(conn_id);
  if (it == connections_.end()) return;
  Connection& c = *it->second;
  if (c.refused) return;
  c.last_seen_mono = clock_.MonotonicMillis();
  c.info.last_seen_ms = clock_.NowUnixMillis();
  if (!c.registered) return OnHello(c, text);
  Result<Frame> frame = ParseFrame(text);
  if (!frame.ok()) return Refuse(c, "ProtocolError", frame.status().message());
  if (frame->type == "reply") {
    auto p = c.pending.find(frame->id);
    if (p == c.pending.end()) return;  // an unknown id: ignored, as the protocol says
    ReplyHandler handler = std::move(p->second);
    c.pending.erase(p);
    // Straight to its handler, as the managed workers' socket does: this is the connection's
    // read loop, never inside Request, so the caller cannot be re-entered (and a zero-delay
    // timer would cost a turn). `c` may be gone once the handler returns: not used past here.
    handler(Result<std::string>(std::move(text)));
  } else if (frame->type == "error") {
    spdlog::warn("event=worker.remote_error worker={} error={}", c.info.hello.worker_id,
                 frame->error);
  }
  // heartbeat and unknown types: it is alive, nothing more.
}

void RemoteWorkers::OnHello(Connection& c, const std::string& text) {
  RemoteHello hello = c.info.hello;  // keeps remote and key_name
  if (Status s = ParseRemoteHello(text, hello); !s.ok()) {
    return Refuse(c, s.code() == StatusCode::kFailedPrecondition ? "ProtocolVersion" : "ProtocolError",
                  s.message());
  }
  if (closed_) return Refuse(c, "Unavailable", "the supervisor is stopping");
  Status accepted = options_.on_hello ? options_.on_hello(hello) : Status::Ok();
  if (!accepted.ok()) {
    return Refuse(c, accepted.code() == StatusCode::kAlreadyExists ? "NameTaken" : "Refused",
                  accepted.message());
  }
  // A worker that redialed: its older connection (if the server has not noticed it broke yet)
  // gives way, without a second entry.
  if (auto old = by_worker_.find(hello.worker_id); old != by_worker_.end()) {
    auto oc = connections_.find(old->second);
    if (oc != connections_.end()) {
      spdlog::info("event=worker.remote_replaced worker={}", hello.worker_id);
      oc->second->peer->Close(kCloseNormal, "replaced by a newer connection of this worker");
      OnClosed(old->second, "replaced by a newer connection");
    }
  }
  timers_.Cancel(c.hello_timer);
  c.registered = true;
  c.info.hello = std::move(hello);
  c.info.connected_at_ms = clock_.NowUnixMillis();
  ReadEnvFacts(c.info.hello.env_json, c.info);
  const std::string& kernel = c.info.hello.name;
  by_worker_[c.info.hello.worker_id] = c.id;
  by_kernel_[kernel].push_back(c.info.hello.worker_id);
  c.peer->Send(WelcomeMessage(static_cast<double>(options_.heartbeat.count()) / 1000.0,
                              options_.supervisor_pid));
  spdlog::info("event=worker.remote_registered worker={} kernel={} remote={} key={} reconnect={} "
               "python={}",
               c.info.hello.worker_id, kernel, c.info.hello.remote, c.info.hello.key_name,
               c.info.hello.reconnect, c.info.hello.python_version);
  if (options_.on_connected) options_.on_connected(kernel);
}

void RemoteWorkers::Refuse(Connection& c, std::string_view type, std::string_view message) {
  spdlog::warn("event=worker.remote_refused remote={} type={} error=\"{}\"", c.info.hello.remote,
               type, message);
  c.refused = true;
  c.peer->Send(ErrorMessage(type, message));
  c.peer->Close(kClosePolicy, std::string(type));
}

void RemoteWorkers::OnClosed(uint64_t conn_id, const std::string& why) {
  auto it = connections_.find(conn_id);
  if (it == connections_.end()) return;
  std::unique_ptr<Connection> c = std::move(it->second);
  connections_.erase(it);
  timers_.Cancel(c->hello_timer);
  for (auto& [id, handler] : c->pending) {
    Deliver(std::move(handler), Unavailable("the connection to worker " +
                                            c->info.hello.worker_id + " closed: " + why));
  }
  if (!c->registered) return;
  const std::string& worker = c->info.hello.worker_id;
  auto w = by_worker_.find(worker);
  if (w == by_worker_.end() || w->second != conn_id) return;  // replaced already
  by_worker_.erase(w);
  const std::string& kernel = c->info.hello.name;
  auto& list = by_kernel_[kernel];
  list.erase(std::remove(list.begin(), list.end(), worker), list.end());
  if (list.empty()) by_kernel_.erase(kernel);
  spdlog::info("event=worker.remote_disconnected worker={} kernel={} why=\"{}\"", worker, kernel,
               why);
  if (!closed_ && options_.on_disconnect) options_.on_disconnect(worker, kernel, why);
}

// Heartbeats out, and silent workers closed (3 intervals with nothing received).
void RemoteWorkers::Tick() {
  int64_t now = clock_.MonotonicMillis();
  int64_t silence = 3 * options_.heartbeat.count();
  std::string beat = HeartbeatMessage(static_cast<double>(clock_.NowUnixMillis()) / 1000.0);
  std::vector<uint64_t> silent;
  for (auto& [id, c] : connections_) {
    if (!c->registered || c->refused) continue;
    if (now - c->last_seen_mono > silence) {
      silent.push_back(id);
    } else {
      c->peer->Send(beat);
    }
  }
  for (uint64_t id : silent) {
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    spdlog::warn("event=worker.remote_silent worker={}", it->second->info.hello.worker_id);
    it->second->peer->Close(kClosePolicy, "silent for 3 heartbeats");
    OnClosed(id, "silent for " + std::to_string(silence / 1000) + " s (3 heartbeats): lost");
  }
  std::weak_ptr<int> alive = alive_;
  tick_ = timers_.After(options_.heartbeat, [this, alive] {
    if (alive.lock()) Tick();
  });
}

void RemoteWorkers::Deliver(ReplyHandler handler, Result<std::string> reply) {
  // On a later turn: OnClosed also runs inside CloseByKey, Tick and a redial's hello, whose
  // callers (and the relay's handlers, which may send again) must not see a handler run there.
  auto shared = std::make_shared<std::pair<ReplyHandler, Result<std::string>>>(std::move(handler),
                                                                              std::move(reply));
  timers_.After(std::chrono::milliseconds(0),
                [shared] { shared->first(std::move(shared->second)); });
}

Status RemoteWorkers::Request(const std::string& worker_id, const std::string& request_id,
                              std::string frame, ReplyHandler on_reply) {
  auto w = by_worker_.find(worker_id);
  if (closed_ || w == by_worker_.end()) return Unavailable("worker " + worker_id + " is not connected");
  Connection& c = *connections_.at(w->second);
  if (!c.peer->Send(std::move(frame))) {
    return Unavailable("worker " + worker_id + " is disconnecting");
  }
  c.pending[request_id] = std::move(on_reply);
  return Status::Ok();
}

bool RemoteWorkers::Connected(const std::string& worker_id) const {
  return !closed_ && by_worker_.count(worker_id) != 0;
}

std::string RemoteWorkers::Active(const std::string& kernel) const {
  auto it = by_kernel_.find(kernel);
  return it == by_kernel_.end() || it->second.empty() ? "" : it->second.back();
}

int RemoteWorkers::Count(const std::string& kernel) const {
  auto it = by_kernel_.find(kernel);
  return it == by_kernel_.end() ? 0 : static_cast<int>(it->second.size());
}

std::vector<RemoteWorkerInfo> RemoteWorkers::List(const std::string& kernel) const {
  std::vector<RemoteWorkerInfo> out;
  for (const auto& [name, workers] : by_kernel_) {
    if (!kernel.empty() && name != kernel) continue;
    for (auto w = workers.rbegin(); w != workers.rend(); ++w) {
      if (auto info = Get(*w)) out.push_back(std::move(*info));
    }
  }
  return out;
}

std::optional<RemoteWorkerInfo> RemoteWorkers::Get(const std::string& worker_id) const {
  auto w = by_worker_.find(worker_id);
  if (w == by_worker_.end()) return std::nullopt;
  RemoteWorkerInfo info = connections_.at(w->second)->info;
  info.active = Active(info.hello.name) == worker_id;
  return info;
}

void RemoteWorkers::CloseByKey(const std::string& key_name) {
  std::vector<uint64_t> ids;
  for (auto& [id, c] : connections_) {
    if (c->info.hello.key_name == key_name) ids.push_back(id);
  }
  for (uint64_t id : ids) {
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    Refuse(*it->second, "KeyRevoked", "the API key \"" + key_name + "\" was revoked");
    OnClosed(id, "its API key was revoked");
  }
}

void RemoteWorkers::CloseAll() {
  if (closed_) return;
  closed_ = true;
  for (auto& [id, c] : connections_) c->peer->Close(1001, "the supervisor is stopping");
}

}  // namespace gsk::relay
