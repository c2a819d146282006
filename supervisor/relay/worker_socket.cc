#include "supervisor/relay/worker_socket.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
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
    ErrorCode ec;
    socket_.non_blocking(true, ec);  // WriteNext's first attempt must not block
    if (ec) return Close(false);
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
    if (!pending_.empty()) {
      // On a later turn: Close may run inside a caller's Request.
      std::string why = "the connection to worker " + worker_id_ + " closed during the call";
      asio::post(socket_.get_executor(), [server = server_, pending = std::move(pending_), why] {
        if (server.expired()) return;
        for (const auto& [id, handler] : pending) handler(Unavailable(why));
      });
      pending_.clear();
    }
    if (auto server = server_.lock()) server->Closed(shared_from_this(), report && registered_);
  }

  // kInvalidArgument (and nothing sent) for a frame over the protocol's limit. The handler is
  // called with the reply from the read that brings it (a later turn), or posted by Close.
  Status SendRequest(const std::string& request_id, std::string frame, ReplyHandler on_reply) {
    GSK_ASSIGN_OR_RETURN(auto header, FrameHeader(frame.size()));
    pending_.emplace(request_id, std::move(on_reply));  // before the write: it may fail and Close
    Queue(header, std::move(frame));
    return Status::Ok();
  }

  const std::string& worker_id() const { return worker_id_; }

 private:
  struct Outgoing {
    std::array<char, 4> header;
    std::string payload;
    size_t sent = 0;  // bytes of header then payload already written
  };
  // At most what one read takes: a large reply arrives in as few reads as the socket allows.
  static constexpr size_t kReadBytes = size_t{1} << 20;

  // Reads straight into the decoder: a large reply lands in the string handed to its caller.
  void Read() {
    std::span<char> into = decoder_.Prepare(kReadBytes);
    socket_.async_read_some(asio::buffer(into.data(), into.size()),
                            [self = shared_from_this()](ErrorCode ec, size_t n) {
      if (self->closed_) return;
      if (ec) return self->Close(true);  // EOF or ECONNRESET: the worker hung up
      self->decoder_.Commit(n);
      while (!self->closed_ && !self->closing_) {
        Result<std::optional<std::string>> frame = self->decoder_.Next();
        if (!frame.ok()) return self->FailAndClose("ProtocolError", frame.status().message());
        if (!frame->has_value()) break;
        self->Handle(std::move(**frame));
      }
      if (!self->closed_ && !self->closing_) self->Read();
    });
  }

  void Handle(std::string payload) {
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
      (void)Send(WelcomeMessage(std::chrono::duration<double>(heartbeat).count(), ::getpid()));
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
          handler(std::move(payload));  // `frame` views it: not used past here
        }
      }
      // heartbeat and unknown types: nothing to do beyond noting the worker is alive.
    }
    if (!closed_) ArmSilence(3 * heartbeat);  // the reply's handler may have closed it
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
      (void)self->Send(HeartbeatMessage(UnixSeconds()));  // small: within the limit
      self->ScheduleHeartbeat(every);
    });
  }

  // Queues `json` as a frame. kInvalidArgument (and nothing queued) over the protocol's limit.
  Status Send(std::string json) {
    GSK_ASSIGN_OR_RETURN(auto header, FrameHeader(json.size()));
    Queue(header, std::move(json));
    return Status::Ok();
  }

  // The header goes beside the payload, so that the payload is never copied.
  void Queue(std::array<char, 4> header, std::string payload) {
    queue_.push_back(Outgoing{header, std::move(payload), 0});
    if (!writing_) WriteNext();
  }

  // What is left of a frame to write.
  static std::array<asio::const_buffer, 2> Unsent(const Outgoing& o) {
    size_t h = std::min(o.sent, o.header.size());
    size_t p = o.sent - h;
    return {asio::buffer(o.header.data() + h, o.header.size() - h),
            asio::buffer(o.payload.data() + p, o.payload.size() - p)};
  }

  // Writes what the socket takes now (most frames fit: no completion handler, one turn of the
  // event loop less per call), and again each time it is writable until the queue is empty.
  void WriteNext() {
    writing_ = true;
    while (!queue_.empty() && !closed_) {
      Outgoing& next = queue_.front();
      ErrorCode ec;
      next.sent += socket_.write_some(Unsent(next), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) break;
      if (ec) return Close(true);
      if (next.sent < next.header.size() + next.payload.size()) break;  // the socket is full
      queue_.pop_front();
    }
    if (queue_.empty() || closed_) {
      writing_ = false;
      if (closing_) Close(true);
      return;
    }
    socket_.async_wait(Socket::wait_write, [self = shared_from_this()](ErrorCode ec) {
      if (self->closed_) return;
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
    if (!Send(ErrorMessage(type, message)).ok()) Close(true);
  }

  Socket socket_;
  std::weak_ptr<WorkerSocket::Impl> server_;
  asio::steady_timer silence_;
  asio::steady_timer heartbeat_;
  FrameDecoder decoder_;
  std::deque<Outgoing> queue_;
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
  return it->second->SendRequest(request_id, std::move(frame), std::move(on_reply));
}

bool WorkerSocket::Connected(const std::string& worker_id) const {
  return !impl_->closed && impl_->by_worker.count(worker_id) != 0;
}

}  // namespace gsk::relay
