#include "supervisor/relay/worker_socket.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <set>

#include <spdlog/spdlog.h>

#include "supervisor/protocol/frame_codec.h"
#include "supervisor/relay/messages.h"

namespace gsk::relay {

using namespace protocol;  // NOLINT: the wire format this file speaks

namespace asio = boost::asio;
using Socket = asio::local::stream_protocol::socket;
using ErrorCode = boost::system::error_code;

namespace {

double UnixSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* ErrorType(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument ? "ProtocolError" : "AuthenticationFailed";
}

}  // namespace

class Connection;

struct WorkerSocket::Impl {
  Impl(asio::io_context& context, WorkerSocketOptions o)
      : io(context), options(std::move(o)), acceptor(context) {}

  void Accept();
  void Registered(const std::string& worker_id, Connection* connection);
  void Closed(const std::shared_ptr<Connection>& connection, bool report);

  asio::io_context& io;
  WorkerSocketOptions options;
  asio::local::stream_protocol::acceptor acceptor;
  std::set<std::shared_ptr<Connection>> connections;
  std::map<std::string, Connection*> by_worker;
  std::weak_ptr<Impl> weak_self;
  int64_t ticks_per_second = ::sysconf(_SC_CLK_TCK);
  bool closed = false;
};

// One worker's connection: framed reads, a write queue, a heartbeat timer and a silence timer.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Socket socket, std::weak_ptr<WorkerSocket::Impl> server)
      : socket_(std::move(socket)),
        server_(std::move(server)),
        silence_(socket_.get_executor()),
        heartbeat_(socket_.get_executor()) {}

  void Start(std::chrono::milliseconds hello_timeout) {
    ArmSilence(hello_timeout);
    Read();
  }

  // Closes at once; `report` tells the server to report a registered worker as disconnected.
  // Requests still waiting for their reply get kUnavailable.
  void Close(bool report) {
    if (closed_) return;
    closed_ = true;
    ErrorCode ignored;
    silence_.cancel();
    heartbeat_.cancel();
    socket_.shutdown(Socket::shutdown_both, ignored);
    socket_.close(ignored);
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& [id, handler] : pending) {
      handler(Unavailable("the connection to worker " + worker_id_ + " closed during the call"));
    }
    if (auto server = server_.lock()) server->Closed(shared_from_this(), report && registered_);
  }

  void SendRequest(const std::string& request_id, std::string frame, ReplyHandler on_reply) {
    pending_.emplace(request_id, std::move(on_reply));
    Send(frame);
  }

  const std::string& worker_id() const { return worker_id_; }

 private:
  void Read() {
    socket_.async_read_some(asio::buffer(buffer_), [self = shared_from_this()](ErrorCode ec,
                                                                              size_t n) {
      if (self->closed_) return;
      if (ec) return self->Close(true);  // EOF or ECONNRESET: the worker hung up
      self->decoder_.Feed(std::string_view(self->buffer_.data(), n));
      while (!self->closed_ && !self->closing_) {
        Result<std::optional<std::string>> frame = self->decoder_.Next();
        if (!frame.ok()) return self->FailAndClose("ProtocolError", frame.status().message());
        if (!frame->has_value()) break;
        self->Handle(**frame);
      }
      if (!self->closed_ && !self->closing_) self->Read();
    });
  }

  void Handle(const std::string& payload) {
    auto server = server_.lock();
    if (!server) return Close(false);
    std::chrono::milliseconds heartbeat = server->options.heartbeat;
    if (!registered_) {
      Result<workers::Registration> hello = ParseHello(payload, server->ticks_per_second);
      if (!hello.ok()) return FailAndClose(ErrorType(hello.status()), hello.status().message());
      worker_id_ = hello->worker_id;
      // A worker redials before this side noticed its old connection die: the old one goes.
      if (auto it = server->by_worker.find(worker_id_);
          it != server->by_worker.end() && it->second != this) {
        it->second->Close(true);
      }
      Status accepted = server->options.on_hello ? server->options.on_hello(*hello)
                                                 : Unavailable("no worker is expected");
      if (!accepted.ok()) return FailAndClose("AuthenticationFailed", accepted.message());
      registered_ = true;
      server->Registered(worker_id_, this);
      Send(WelcomeMessage(std::chrono::duration<double>(heartbeat).count(), ::getpid()));
      ScheduleHeartbeat(heartbeat);
    } else {
      Result<Frame> frame = ParseFrame(payload);
      if (!frame.ok()) return FailAndClose("ProtocolError", frame.status().message());
      if (frame->type == "error") {
        spdlog::warn("event=worker.protocol_error worker={} message={}", worker_id_, payload);
      } else if (frame->type == "reply") {
        auto it = pending_.find(frame->id);
        if (it == pending_.end()) {
          spdlog::warn("event=worker.unexpected_reply worker={} id={}", worker_id_, frame->id);
        } else {
          ReplyHandler handler = std::move(it->second);
          pending_.erase(it);
          handler(std::string(payload));
        }
      }
      // heartbeat and unknown types: nothing to do beyond noting the worker is alive.
    }
    ArmSilence(3 * heartbeat);
  }

  void ArmSilence(std::chrono::milliseconds after) {
    silence_.expires_after(after);
    silence_.async_wait([self = shared_from_this()](ErrorCode ec) {
      if (ec || self->closed_) return;
      spdlog::warn("event=worker.connection_silent worker={}", self->worker_id_);
      self->Close(true);
    });
  }

  void ScheduleHeartbeat(std::chrono::milliseconds every) {
    heartbeat_.expires_after(every);
    heartbeat_.async_wait([self = shared_from_this(), every](ErrorCode ec) {
      if (ec || self->closed_ || self->closing_) return;
      self->Send(HeartbeatMessage(UnixSeconds()));
      self->ScheduleHeartbeat(every);
    });
  }

  void Send(const std::string& json) {
    Result<std::string> frame = EncodeFrame(json);
    if (!frame.ok()) return;
    queue_.push_back(std::move(*frame));
    if (!writing_) WriteNext();
  }

  void WriteNext() {
    if (queue_.empty() || closed_) {
      writing_ = false;
      if (closing_) Close(true);
      return;
    }
    writing_ = true;
    asio::async_write(socket_, asio::buffer(queue_.front()),
                      [self = shared_from_this()](ErrorCode ec, size_t) {
                        if (self->closed_) return;
                        self->queue_.pop_front();
                        if (ec) return self->Close(true);
                        self->WriteNext();
                      });
  }

  // Says why, then closes once the error frame is written.
  void FailAndClose(std::string_view type, std::string_view message) {
    spdlog::warn("event=worker.refused worker={} type={} error=\"{}\"", worker_id_, type, message);
    closing_ = true;
    silence_.cancel();
    heartbeat_.cancel();
    Send(ErrorMessage(type, message));
  }

  Socket socket_;
  std::weak_ptr<WorkerSocket::Impl> server_;
  asio::steady_timer silence_;
  asio::steady_timer heartbeat_;
  std::array<char, 16384> buffer_{};
  FrameDecoder decoder_;
  std::deque<std::string> queue_;
  std::map<std::string, ReplyHandler> pending_;  // requests sent, by id
  std::string worker_id_;
  bool registered_ = false;
  bool writing_ = false;
  bool closing_ = false;  // an error frame is on its way; then close
  bool closed_ = false;
};

void WorkerSocket::Impl::Accept() {
  // The handler holds the Impl: it may run after the WorkerSocket is gone (aborted).
  acceptor.async_accept([this, self = weak_self.lock()](ErrorCode ec, Socket socket) {
    if (closed) return;
    if (!ec) {
      if (static_cast<int>(connections.size()) >= options.max_connections) {
        spdlog::warn("event=worker.connection_refused reason=max_connections limit={}",
                     options.max_connections);
      } else {
        // The Impl is owned by a shared_ptr (WorkerSocket::impl_); connections hold it weakly.
        auto connection = std::make_shared<Connection>(std::move(socket), weak_self);
        connections.insert(connection);
        connection->Start(options.hello_timeout);
      }
    } else if (ec == asio::error::operation_aborted) {
      return;
    }
    Accept();
  });
}

void WorkerSocket::Impl::Registered(const std::string& worker_id, Connection* connection) {
  by_worker[worker_id] = connection;
}

void WorkerSocket::Impl::Closed(const std::shared_ptr<Connection>& connection, bool report) {
  connections.erase(connection);
  const std::string& id = connection->worker_id();
  auto it = by_worker.find(id);
  // Only the worker's current connection speaks for it: an older one may close after it redialed.
  if (it == by_worker.end() || it->second != connection.get()) return;
  by_worker.erase(it);
  if (report && !closed && options.on_disconnect) options.on_disconnect(id);
}

WorkerSocket::WorkerSocket(asio::io_context& io, WorkerSocketOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {
  impl_->weak_self = impl_;
}

WorkerSocket::~WorkerSocket() { Close(); }

Status WorkerSocket::Listen() {
  const std::filesystem::path& path = impl_->options.path;
  if (path.string().size() >= sizeof(sockaddr_un{}.sun_path)) {
    return FailedPrecondition("worker socket path " + path.string() + " is longer than " +
                              std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                              " bytes; set [workers] socket to a shorter path");
  }
  std::error_code fec;
  std::filesystem::create_directories(path.parent_path(), fec);
  std::filesystem::remove(path, fec);  // a stale socket: the caller holds the state lock
  ErrorCode ec;
  asio::local::stream_protocol::endpoint endpoint(path.string());
  impl_->acceptor.open(endpoint.protocol(), ec);
  mode_t old_mask = ::umask(0177);  // owner-only from the start: no window for others
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  ::umask(old_mask);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return FailedPrecondition("cannot listen on worker socket " + path.string() + ": " +
                              ec.message() + " (set [workers] socket)");
  }
  impl_->Accept();
  return Status::Ok();
}

void WorkerSocket::Close() {
  if (!impl_ || impl_->closed) return;
  impl_->closed = true;
  ErrorCode ignored;
  impl_->acceptor.close(ignored);
  auto connections = impl_->connections;
  for (const auto& c : connections) c->Close(false);
  impl_->connections.clear();
  impl_->by_worker.clear();
  std::error_code fec;
  std::filesystem::remove(impl_->options.path, fec);
}

int WorkerSocket::connections() const { return static_cast<int>(impl_->connections.size()); }

Status WorkerSocket::Request(const std::string& worker_id, const std::string& request_id,
                             std::string frame, ReplyHandler on_reply) {
  auto it = impl_->by_worker.find(worker_id);
  if (impl_->closed || it == impl_->by_worker.end()) {
    return Unavailable("worker " + worker_id + " is not connected");
  }
  // Delivered on a later turn, whatever happens: callers never see their handler run inside
  // their own call.
  std::weak_ptr<Impl> weak = impl_;
  ReplyHandler later = [weak, on_reply = std::move(on_reply)](Result<std::string> reply) mutable {
    auto impl = weak.lock();
    if (!impl) return;
    asio::post(impl->io, [on_reply = std::move(on_reply), reply = std::move(reply)]() mutable {
      on_reply(std::move(reply));
    });
  };
  it->second->SendRequest(request_id, std::move(frame), std::move(later));
  return Status::Ok();
}

bool WorkerSocket::Connected(const std::string& worker_id) const {
  return !impl_->closed && impl_->by_worker.count(worker_id) != 0;
}

}  // namespace gsk::relay
