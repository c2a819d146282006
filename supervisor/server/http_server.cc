#include "supervisor/server/http_server.h"

#include <sys/stat.h>

#include <list>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <spdlog/spdlog.h>

#include "supervisor/api/router.h"
#include "supervisor/server/request_framing.h"
#include "supervisor/server/websocket_peer.h"

namespace gsk::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

using TcpStream = beast::tcp_stream;
using SslStream = beast::ssl_stream<beast::tcp_stream>;
using UnixStream = beast::basic_stream<asio::local::stream_protocol>;

// The TCP or Unix stream under any TLS layer: its timeouts and its socket.
template <typename Stream>
auto& Lowest(Stream& stream) {
  return beast::get_lowest_layer(stream);
}

constexpr uint64_t kMaxDrainBytes = 256ull << 20;
// What a connection buffers beyond its header: a read window, and the whole of any chunk line
// or trailer section, which are therefore bounded by this too.
constexpr size_t kBufferLimit = kHeaderLimit + 64 * 1024;

http::response<http::string_body> ToBeast(api::HttpResponse&& r, unsigned version,
                                          bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "giskard-supervisor/" GSK_VERSION);
  res.set(http::field::content_type, r.content_type);
  res.set(http::field::cache_control, "no-store");
  for (auto& [name, value] : r.headers) res.set(name, value);
  res.body() = std::move(r.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

api::HttpResponse ParseErrorResponse(const beast::error_code& ec, uint64_t body_limit) {
  if (ec == http::error::body_limit) return api::PayloadTooLarge(body_limit);
  if (ec == http::error::header_limit) {
    return api::ErrorResponse(431, "HEADERS_TOO_LARGE", "request headers exceed 16 KiB");
  }
  if (ec == http::error::bad_transfer_encoding) {
    return api::ErrorResponse(400, "BAD_REQUEST",
                              "ambiguous request length: send Transfer-Encoding once, as "
                              "\"chunked\", and never with Content-Length");
  }
  if (ec == http::error::bad_content_length) {
    return api::ErrorResponse(400, "BAD_REQUEST",
                              "ambiguous request length: send Content-Length once, as a decimal "
                              "number, and never with Transfer-Encoding");
  }
  if (ec == http::error::buffer_overflow) {
    return api::ErrorResponse(431, "HEADERS_TOO_LARGE",
                              "a chunk line or the trailer section is too large");
  }
  return api::ErrorResponse(400, "BAD_REQUEST", "malformed HTTP request: " + ec.message());
}

// One open connection, as the listener sees it (to pick which one to close when full).
struct Connection {
  enum class State { kWaiting, kReading, kHandling, kWriting };
  State state = State::kWaiting;  // kWaiting: for the next request to start
  Clock::time_point since = Clock::now();
  const beast::flat_buffer* buffer = nullptr;  // bytes of a request that has begun
  std::function<void()> close;
};

struct Listener {
  bool trusted = false;
  int max_connections = 256;
  std::list<Connection> connections;
  uint64_t evicted = 0;

  // Closes the connection waiting longest with nothing received, else the one reading a
  // request for longest (a slow client). False when every connection is busy serving.
  bool EvictOne() {
    Connection* best = nullptr;
    auto rank = [](const Connection& c) {
      if (c.state == Connection::State::kWaiting && (c.buffer == nullptr || c.buffer->size() == 0)) {
        return 0;
      }
      if (c.state == Connection::State::kWaiting || c.state == Connection::State::kReading) return 1;
      return 2;
    };
    for (Connection& c : connections) {
      if (rank(c) == 2 || !c.close) continue;
      if (best == nullptr || rank(c) < rank(*best) || (rank(c) == rank(*best) && c.since < best->since)) {
        best = &c;
      }
    }
    if (best == nullptr) return false;
    auto close = std::move(best->close);
    best->close = nullptr;
    close();
    ++evicted;
    return true;
  }
};

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io_context, ServerOptions opts, Handler h, BodyLimit limit)
      : io(io_context), options(opts), handler(std::move(h)), body_limit(std::move(limit)) {}

  asio::io_context& io;
  ServerOptions options;
  Handler handler;
  BodyLimit body_limit;
  api::UpgradeHandler upgrade;
  std::unique_ptr<asio::ssl::context> tls;  // set: the TCP listener speaks HTTPS (and WSS)
  std::unique_ptr<asio::ip::tcp::acceptor> tcp_acceptor;
  std::unique_ptr<asio::local::stream_protocol::acceptor> unix_acceptor;
  Listener tcp;
  Listener unix;
  bool stopped = false;

  template <typename Acceptor, typename Stream>
  awaitable<void> AcceptLoop(Acceptor& acceptor, Listener& listener);
  template <typename Stream>
  awaitable<void> Session(Stream stream, Listener& listener);
  template <typename Stream>
  awaitable<void> RejectAndDrain(Stream& stream, api::HttpResponse response, unsigned version);
  awaitable<api::HttpResponse> Call(const api::HttpRequest& request);
  template <typename Stream>
  awaitable<bool> WriteFile(Stream& stream, const api::HttpResponse& response, unsigned version,
                            bool keep_alive, bool head);
  template <typename Stream>
  awaitable<void> ServeWebSocket(Stream stream, http::request<http::string_body> request,
                                 std::function<api::WebSocketHandlers(
                                     std::shared_ptr<api::WebSocketPeer>)> attach,
                                 Connection& conn);
  uint64_t BodyLimitFor(std::string_view method, std::string_view target) const {
    return body_limit ? body_limit(method, target) : options.max_body_bytes;
  }
};

template <typename Acceptor, typename Stream>
awaitable<void> HttpServer::Impl::AcceptLoop(Acceptor& acceptor, Listener& listener) {
  auto self = shared_from_this();
  while (!stopped) {
    auto [ec, socket] = co_await acceptor.async_accept(kTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || stopped) break;
      spdlog::warn("event=http.accept_failed error=\"{}\"", ec.message());
      continue;
    }
    if constexpr (!std::is_same_v<Stream, UnixStream>) {
      beast::error_code ignored;
      socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    }
    if constexpr (std::is_same_v<Stream, SslStream>) {
      asio::co_spawn(io, Session<Stream>(Stream(TcpStream(std::move(socket)), *tls), listener),
                     asio::detached);
    } else {
      asio::co_spawn(io, Session<Stream>(Stream(std::move(socket)), listener), asio::detached);
    }
  }
}

template <typename Stream>
awaitable<void> HttpServer::Impl::RejectAndDrain(Stream& stream, api::HttpResponse response,
                                                 unsigned version) {
  auto res = ToBeast(std::move(response), version, false);
  Lowest(stream).expires_after(options.read_timeout);
  auto [wec, wn] = co_await http::async_write(stream, res, kTuple);
  if (wec) co_return;
  // Read and discard what the client is still sending, for a bounded time and size, so that it
  // sees our answer instead of a connection reset. Nothing of it is parsed.
  beast::error_code ignored;
  Lowest(stream).socket().shutdown(asio::socket_base::shutdown_send, ignored);
  std::array<char, 64 * 1024> sink;
  uint64_t drained = 0;
  Lowest(stream).expires_after(std::chrono::seconds(5));
  while (drained < kMaxDrainBytes) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
    if (ec) break;
    drained += n;
  }
}

// Writes `response` with its file as the body; false when the connection is done for.
template <typename Stream>
awaitable<bool> HttpServer::Impl::WriteFile(Stream& stream, const api::HttpResponse& response,
                                            unsigned version, bool keep_alive, bool head) {
  http::file_body::value_type file;
  beast::error_code ec;
  file.open(response.file_path.c_str(), beast::file_mode::scan, ec);
  if (ec) {
    auto res = ToBeast(api::ErrorResponse(404, "NOT_FOUND", "the file of this answer is gone"),
                       version, keep_alive);
    Lowest(stream).expires_after(options.read_timeout);
    auto [wec, wn] = co_await http::async_write(stream, res, kTuple);
    co_return !wec;
  }
  http::response<http::file_body> res{static_cast<http::status>(response.status), version};
  res.set(http::field::server, "giskard-supervisor/" GSK_VERSION);
  res.set(http::field::content_type, response.content_type);
  res.set(http::field::cache_control, "no-store");
  for (const auto& [name, value] : response.headers) res.set(name, value);
  uint64_t size = file.size();
  res.body() = std::move(file);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  if (head) {
    http::response<http::empty_body> head_res{res.result(), version};
    for (const auto& field : res) head_res.set(field.name_string(), field.value());
    head_res.content_length(size);
    Lowest(stream).expires_after(options.read_timeout);
    auto [wec, wn] = co_await http::async_write(stream, head_res, kTuple);
    co_return !wec;
  }
  // A slow reader gets the read timeout per megabyte, at least.
  Lowest(stream).expires_after(options.read_timeout * static_cast<int>(1 + size / (1u << 20)));
  auto [wec, wn] = co_await http::async_write(stream, res, kTuple);
  co_return !wec;
}

// Hands the request to the handler and waits for its reply, which may come on a later turn.
// (A timer that never expires on its own is the wait: the reply cancels it. GCC 12 mishandles
// captures in the operand of co_await, so nothing is captured by value around one.)
awaitable<api::HttpResponse> HttpServer::Impl::Call(const api::HttpRequest& request) {
  struct Pending {
    explicit Pending(asio::io_context& io) : wake(io, asio::steady_timer::time_point::max()) {}
    std::optional<api::HttpResponse> response;
    asio::steady_timer wake;
  };
  auto pending = std::make_shared<Pending>(io);
  handler(request, [pending](api::HttpResponse r) {
    if (pending->response) return;  // answered already
    pending->response = std::move(r);
    pending->wake.cancel();
  });
  while (!pending->response) {
    co_await pending->wake.async_wait(kTuple);
    if (!pending->response && stopped) co_return api::ErrorResponse(503, "UNAVAILABLE", "stopping");
  }
  co_return std::move(*pending->response);
}

template <typename Stream>
awaitable<void> HttpServer::Impl::Session(Stream stream, Listener& listener) {
  auto self = shared_from_this();
  if constexpr (std::is_same_v<Stream, SslStream>) {
    Lowest(stream).expires_after(options.read_timeout);
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kTuple);
    if (hec) {
      spdlog::debug("event=http.tls_handshake_failed error=\"{}\"", hec.message());
      co_return;
    }
  }
  if (static_cast<int>(listener.connections.size()) >= listener.max_connections &&
      !listener.EvictOne()) {
    co_await RejectAndDrain(stream,
                            api::ErrorResponse(503, "UNAVAILABLE",
                                               "too many connections busy; retry later"),
                            11);
    co_return;
  }
  beast::flat_buffer buffer(kBufferLimit);
  // Beast reads as much as the buffer has room for: a large body then takes few reads.
  buffer.reserve(64 * 1024);
  auto conn = listener.connections.insert(listener.connections.end(), Connection{});
  conn->buffer = &buffer;
  conn->close = [&stream] {
    beast::error_code ignored;
    Lowest(stream).socket().shutdown(asio::socket_base::shutdown_both, ignored);
    Lowest(stream).socket().close(ignored);
  };
  bool first = true;
  bool upgraded = false;  // the stream went to a WebSocket session
  auto on_chunk = [](std::uint64_t, beast::string_view extensions, beast::error_code& ec) {
    if (extensions.size() > kMaxChunkExtensionBytes) ec = http::error::bad_chunk_extension;
  };
  while (!stopped) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(boost::none);  // the route's limit is known, and checked, once the header is
    parser.on_chunk_header(on_chunk);
    conn->state = Connection::State::kWaiting;
    conn->since = Clock::now();
    // An idle keep-alive connection waits idle_timeout for the next request to start; once it
    // started, the whole request must arrive within read_timeout.
    Lowest(stream).expires_after(first ? options.read_timeout : options.idle_timeout);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, kTuple);
    if (hec == http::error::end_of_stream || hec == beast::error::timeout ||
        hec == asio::error::operation_aborted || hec == asio::error::connection_reset ||
        hec == asio::error::bad_descriptor || !conn->close) {
      break;
    }
    if (hec) {
      co_await RejectAndDrain(stream, ParseErrorResponse(hec, 0), 11);
      break;
    }
    conn->state = Connection::State::kReading;
    auto& header = parser.get();
    if (Status framing = CheckFraming(FramingOf(header)); !framing.ok()) {
      // The length of this request is ambiguous: whatever follows it is not read as a request.
      co_await RejectAndDrain(stream, api::ErrorResponse(400, "BAD_REQUEST", framing.message()),
                              header.version());
      break;
    }
    uint64_t max_body = BodyLimitFor(header.method_string(), header.target());
    if (parser.content_length() && *parser.content_length() > max_body) {
      co_await RejectAndDrain(stream, api::PayloadTooLarge(max_body), header.version());
      break;
    }
    parser.body_limit(max_body);
    Lowest(stream).expires_after(options.read_timeout);
    if (beast::iequals(header[http::field::expect], "100-continue")) {
      http::response<http::empty_body> cont{http::status::continue_, 11};
      auto [cec, cn] = co_await http::async_write(stream, cont, kTuple);
      if (cec) break;
    }
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, kTuple);
    if (ec) {
      if (ec == beast::error::timeout || ec == asio::error::operation_aborted || !conn->close) break;
      co_await RejectAndDrain(stream, ParseErrorResponse(ec, max_body), header.version());
      break;
    }
    first = false;
    auto& req = parser.get();
    api::HttpRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    request.content_type = std::string(req[http::field::content_type]);
    request.authorization = std::string(req[http::field::authorization]);
    request.body = std::move(req.body());
    request.trusted = listener.trusted;
    bool keep_alive = req.keep_alive();
    unsigned version = req.version();
    bool head = req.method() == http::verb::head;
    conn->state = Connection::State::kHandling;
    std::optional<api::HttpResponse> refused;
    if constexpr (!std::is_same_v<Stream, UnixStream>) {
      if (upgrade && beast::websocket::is_upgrade(req)) {
        beast::error_code ignored;
        auto endpoint = Lowest(stream).socket().remote_endpoint(ignored);
        request.remote = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
        request.worker_name = std::string(req["X-Giskard-Worker-Name"]);
        api::WebSocketAccept accept = upgrade(request);
        if (!accept.refusal) {
          upgraded = true;
          co_await ServeWebSocket(std::move(stream), std::move(req), std::move(accept.attach),
                                  *conn);
          break;
        }
        refused = std::move(accept.refusal);
        keep_alive = false;
      }
    }
    // (Not a conditional expression around co_await: GCC 12 destroys its temporaries twice.)
    api::HttpResponse response;
    if (refused) {
      response = std::move(*refused);
    } else {
      response = co_await Call(request);
    }
    if (!conn->close) break;  // closed meanwhile
    conn->state = Connection::State::kWriting;
    keep_alive = keep_alive && !stopped;
    if (!response.file_path.empty()) {
      // A large body: streamed from its file (it may have gone meanwhile: then 404).
      if (!co_await WriteFile(stream, response, version, keep_alive, head)) break;
      if (!keep_alive) break;
      continue;
    }
    auto res = ToBeast(std::move(response), version, keep_alive);
    if (head) res.body().clear();
    Lowest(stream).expires_after(options.read_timeout);
    auto [wec, wn] = co_await http::async_write(stream, res, kTuple);
    if (wec || !keep_alive) break;
  }
  if (!upgraded) {
    beast::error_code ignored;
    Lowest(stream).socket().shutdown(asio::socket_base::shutdown_send, ignored);
  }
  listener.connections.erase(conn);
}

// The connection stays in its listener's list, never chosen to make room (it is "handling"),
// and closed by Stop through the peer.
template <typename Stream>
awaitable<void> HttpServer::Impl::ServeWebSocket(
    Stream stream, http::request<http::string_body> request,
    std::function<api::WebSocketHandlers(std::shared_ptr<api::WebSocketPeer>)> attach,
    Connection& conn) {
  auto self = shared_from_this();
  auto peer = std::make_shared<BeastWebSocketPeer<Stream>>(std::move(stream), options);
  std::weak_ptr<BeastWebSocketPeer<Stream>> weak = peer;
  conn.state = Connection::State::kHandling;
  conn.close = [weak] {
    if (auto p = weak.lock()) p->Abort();
  };
  co_await peer->Run(std::move(request), std::move(attach));
}

HttpServer::HttpServer(asio::io_context& io, ServerOptions options, Handler handler,
                       BodyLimit body_limit)
    : impl_(std::make_shared<Impl>(io, options, std::move(handler), std::move(body_limit))) {
  int max = options.max_connections > 0 ? options.max_connections : 256;
  impl_->tcp.max_connections = max;
  impl_->unix.max_connections = max;
  impl_->unix.trusted = true;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::SetUpgradeHandler(api::UpgradeHandler upgrade) {
  impl_->upgrade = std::move(upgrade);
}

Status HttpServer::UseTls(const std::filesystem::path& certificate_chain,
                          const std::filesystem::path& private_key) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  beast::error_code ec;
  ctx->use_certificate_chain_file(certificate_chain.string(), ec);
  if (ec) {
    return InvalidArgument("[server] tls_certificate " + certificate_chain.string() +
                           " cannot be used: " + ec.message() +
                           " (give a PEM file: the certificate, then its chain)")
        .WithDetail("field", "server.tls_certificate");
  }
  ctx->use_private_key_file(private_key.string(), asio::ssl::context::pem, ec);
  if (ec) {
    return InvalidArgument("[server] tls_private_key " + private_key.string() +
                           " cannot be used: " + ec.message() +
                           " (give the PEM private key of the certificate, unencrypted)")
        .WithDetail("field", "server.tls_private_key");
  }
  impl_->tls = std::move(ctx);
  return Status::Ok();
}

Result<uint16_t> HttpServer::ListenTcp(const std::string& host, uint16_t port) {
  beast::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) {
    return InvalidArgument("listen address \"" + host + "\" is not an IP address (" +
                           ec.message() + "); use 127.0.0.1, 0.0.0.0 or ::1");
  }
  auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(impl_->io);
  asio::ip::tcp::endpoint endpoint(address, port);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                       ec.message() + " (is another service using the port? set --listen)");
  }
  uint16_t bound = acceptor->local_endpoint().port();
  impl_->tcp_acceptor = std::move(acceptor);
  if (impl_->tls) {
    asio::co_spawn(impl_->io,
                   impl_->AcceptLoop<asio::ip::tcp::acceptor, SslStream>(*impl_->tcp_acceptor,
                                                                         impl_->tcp),
                   asio::detached);
  } else {
    asio::co_spawn(impl_->io,
                   impl_->AcceptLoop<asio::ip::tcp::acceptor, TcpStream>(*impl_->tcp_acceptor,
                                                                         impl_->tcp),
                   asio::detached);
  }
  return bound;
}

Status HttpServer::ListenUnix(const std::filesystem::path& path, uint32_t mode) {
  std::error_code fec;
  std::filesystem::create_directories(path.parent_path(), fec);
  std::filesystem::remove(path, fec);  // a stale socket: the caller holds the state lock
  beast::error_code ec;
  auto acceptor = std::make_unique<asio::local::stream_protocol::acceptor>(impl_->io);
  asio::local::stream_protocol::endpoint endpoint(path.string());
  acceptor->open(endpoint.protocol(), ec);
  // Bind under a umask that leaves no window in which others could connect.
  mode_t old_mask = ::umask(0177);
  if (!ec) acceptor->bind(endpoint, ec);
  ::umask(old_mask);
  if (!ec && ::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) {
    ec = beast::error_code(errno, beast::system_category());
  }
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable("cannot listen on admin socket " + path.string() + ": " + ec.message());
  impl_->unix_acceptor = std::move(acceptor);
  asio::co_spawn(impl_->io,
                 impl_->AcceptLoop<asio::local::stream_protocol::acceptor, UnixStream>(
                     *impl_->unix_acceptor, impl_->unix),
                 asio::detached);
  return Status::Ok();
}

void HttpServer::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  beast::error_code ignored;
  if (impl_->tcp_acceptor) impl_->tcp_acceptor->close(ignored);
  if (impl_->unix_acceptor) impl_->unix_acceptor->close(ignored);
  // Each close makes its session's pending read fail; the session then removes itself.
  for (Listener* listener : {&impl_->tcp, &impl_->unix}) {
    for (Connection& c : listener->connections) {
      if (!c.close) continue;
      auto close = std::move(c.close);
      c.close = nullptr;
      close();
    }
  }
}

int HttpServer::open_connections() const {
  return static_cast<int>(impl_->tcp.connections.size() + impl_->unix.connections.size());
}

uint64_t HttpServer::evicted_connections() const { return impl_->tcp.evicted + impl_->unix.evicted; }

}  // namespace gsk::server
