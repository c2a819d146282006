// WorkerSocket: the Unix socket that managed workers dial (worker-shim/PROTOCOL.md). It accepts
// connections, reads framed JSON, hands each hello to `on_hello` (the worker pool decides), and
// answers welcome or error; then it exchanges heartbeats, closes connections that go silent
// for 3 heartbeats, and reports a registered worker's lost connection to `on_disconnect`. It
// carries requests to a registered worker and routes each reply back to its caller by id.
// Asio stays in the .cc file. Not thread-safe: lives on the core io_context thread, and calls
// back on it.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "supervisor/relay/worker_links.h"
#include "supervisor/workers/worker.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace gsk::relay {

struct WorkerSocketOptions {
  std::filesystem::path path;  // created with mode 0600; a stale socket file is replaced
  std::chrono::milliseconds heartbeat = workers::Timings{}.heartbeat;
  std::chrono::milliseconds hello_timeout{10000};  // a connection must say hello within this
  int max_connections = 4096;
  // OK: the worker is registered (welcome is sent). An error is sent to the worker as
  // AuthenticationFailed (kUnauthenticated, kNotFound, kFailedPrecondition) and it is closed.
  std::function<Status(const workers::Registration&)> on_hello;
  std::function<void(const std::string& worker_id)> on_disconnect;
};

class WorkerSocket final : public WorkerLinks {
 public:
  WorkerSocket(boost::asio::io_context& io, WorkerSocketOptions options);
  ~WorkerSocket() override;
  WorkerSocket(const WorkerSocket&) = delete;
  WorkerSocket& operator=(const WorkerSocket&) = delete;

  // Binds and listens. kFailedPrecondition naming the path (too long, directory missing, in use
  // by another live listener).
  Status Listen();
  // Stops accepting and closes every connection without reporting disconnections (shutdown).
  void Close();

  int connections() const;

  // As WorkerLinks says; also kInvalidArgument (and no call) for a frame over the protocol's
  // limit. A reply is handed over from the read that brings it, without a copy.
  Status Request(const std::string& worker_id, const std::string& request_id, std::string frame,
                 ReplyHandler on_reply) override;
  bool Connected(const std::string& worker_id) const override;

 private:
  friend class Connection;  // worker_socket.cc
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace gsk::relay
