// WorkerLinks: how the relay reaches registered workers: a request frame to one of them, and
// its reply routed back by id. The worker socket implements it (and a test fake does). Core
// thread only.
#pragma once

#include <functional>
#include <string>

#include "base/result.h"

namespace gsk::relay {

// A reply's whole frame (JSON text), or kUnavailable when the connection closed first.
using ReplyHandler = std::function<void(Result<std::string> reply_frame)>;

class WorkerLinks {
 public:
  virtual ~WorkerLinks() = default;
  // Sends `frame` (a request message whose id is `request_id`) to the registered worker
  // `worker_id`; `on_reply` is called once, never inside Request: with the reply carrying that
  // id (as the reply is read, from the connection's read handler) or, on a later turn, with
  // kUnavailable when the connection closes first. kUnavailable now (and no call) when the
  // worker has no registered connection.
  virtual Status Request(const std::string& worker_id, const std::string& request_id,
                         std::string frame, ReplyHandler on_reply) = 0;
  // Whether `worker_id` has a registered connection.
  virtual bool Connected(const std::string& worker_id) const = 0;
};

// Two kinds of links as one: requests go to whichever has the worker connected (managed
// workers on the Unix socket, unmanaged ones on WebSockets).
class EitherLinks final : public WorkerLinks {
 public:
  EitherLinks(WorkerLinks& first, WorkerLinks& second) : first_(first), second_(second) {}
  Status Request(const std::string& worker_id, const std::string& request_id, std::string frame,
                 ReplyHandler on_reply) override {
    WorkerLinks& links = first_.Connected(worker_id) ? first_ : second_;
    return links.Request(worker_id, request_id, std::move(frame), std::move(on_reply));
  }
  bool Connected(const std::string& worker_id) const override {
    return first_.Connected(worker_id) || second_.Connected(worker_id);
  }

 private:
  WorkerLinks& first_;
  WorkerLinks& second_;
};

}  // namespace gsk::relay
