// RemoteWorkers: the unmanaged workers, each on a WebSocket of the worker endpoint
// (worker-shim/PROTOCOL.md). A connection says hello with its name (the name of its kernel);
// `on_hello` decides (and creates the UNMANAGED kernel on first sight); then welcome,
// heartbeats both ways, and requests and replies by id as on the managed workers' socket. A
// kernel's calls go to its most recently registered worker; earlier ones wait as standby and
// take over, most recent first, when it goes. A hello with a known workerId (a worker that
// redialed) replaces that worker's older connection, so nothing is listed twice. Silent
// connections (3 heartbeats) are closed. Not thread-safe: the core thread, like its timers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "base/timers.h"
#include "supervisor/api/http_types.h"
#include "supervisor/relay/worker_links.h"

namespace gsk::relay {

// An unmanaged worker's hello, and where it came from.
struct RemoteHello {
  std::string worker_id;
  std::string name;  // its kernel's name
  bool reconnect = false;
  std::string python_version;  // env.pythonVersion, e.g. "3.11.7"
  std::string env_json = "{}";  // the hello's env object, as received
  std::string remote;    // the peer's address:port
  std::string key_name;  // the API key it authenticated with
};

struct RemoteWorkerInfo {
  RemoteHello hello;
  int pid = 0;               // env.pid: on the worker's machine
  std::string hostname;      // env.hostname when the worker reports it
  int64_t connected_at_ms = 0;
  int64_t last_seen_ms = 0;  // Unix ms of its last message
  bool active = false;       // its kernel's calls go to it
};

struct RemoteWorkersOptions {
  std::chrono::milliseconds heartbeat{5'000};
  std::chrono::milliseconds hello_timeout{10'000};
  int supervisor_pid = 0;
  // OK: register. An error is sent to the worker (NameTaken for kAlreadyExists, else
  // Refused), which exits without redialing; then the connection is closed.
  std::function<Status(const RemoteHello&)> on_hello;
  std::function<void(const std::string& kernel)> on_connected;
  // A registered worker's connection is gone (`why`); its calls in flight fail.
  std::function<void(const std::string& worker_id, const std::string& kernel,
                     const std::string& why)>
      on_disconnect;
};

class RemoteWorkers final : public WorkerLinks {
 public:
  // REQUIRES: `timers` and `clock` outlive this and call back on its thread.
  RemoteWorkers(Timers& timers, const Clock& clock, RemoteWorkersOptions options);
  ~RemoteWorkers() override;
  RemoteWorkers(const RemoteWorkers&) = delete;
  RemoteWorkers& operator=(const RemoteWorkers&) = delete;

  // A new connection (its handshake done): the handlers the server calls for it.
  api::WebSocketHandlers Attach(std::shared_ptr<api::WebSocketPeer> peer, RemoteHello origin);

  Status Request(const std::string& worker_id, const std::string& request_id, std::string frame,
                 ReplyHandler on_reply) override;
  bool Connected(const std::string& worker_id) const override;

  // The worker `kernel`'s calls go to ("" when none is registered).
  std::string Active(const std::string& kernel) const;
  int Count(const std::string& kernel) const;
  // Registered workers (of `kernel`, or all when ""), by kernel then most recent first.
  std::vector<RemoteWorkerInfo> List(const std::string& kernel = "") const;
  std::optional<RemoteWorkerInfo> Get(const std::string& worker_id) const;
  // Closes the connections opened with the key `key_name` (it was revoked).
  void CloseByKey(const std::string& key_name);
  // Closes every connection without reporting (shutdown).
  void CloseAll();

 private:
  struct Connection;
  void OnMessage(uint64_t conn_id, std::string text);
  void OnHello(Connection& c, const std::string& text);
  void OnClosed(uint64_t conn_id, const std::string& why);
  void Refuse(Connection& c, std::string_view type, std::string_view message);
  void Tick();
  void Deliver(ReplyHandler handler, Result<std::string> reply);

  Timers& timers_;
  const Clock& clock_;
  RemoteWorkersOptions options_;
  uint64_t next_conn_ = 1;
  std::map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::map<std::string, uint64_t> by_worker_;                  // registered worker -> connection
  std::map<std::string, std::vector<std::string>> by_kernel_;  // kernel -> workers, oldest first
  TimerId tick_ = 0;
  bool closed_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace gsk::relay
