#include "supervisor/server/http_server.h"

#include <sys/stat.h>

#include <list>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "supervisor/api/router.h"

namespace gsk::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

using TcpStream = beast::tcp_stream;
using UnixStream = beast::basic_stream<asio::local::stream_protocol>;

constexpr uint32_t kHeaderLimit = 16 * 1024;
constexpr uint64_t kMaxDrainBytes = 256ull << 20;

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
  return api::ErrorResponse(400, "BAD_REQUEST", "malformed HTTP request: " + ec.message());
}

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io_context, ServerOptions opts, Handler h)
      : io(io_context), options(opts), handler(std::move(h)) {}

  asio::io_context& io;
  ServerOptions options;
  Handler handler;
  std::unique_ptr<asio::ip::tcp::acceptor> tcp_acceptor;
  std::unique_ptr<asio::local::stream_protocol::acceptor> unix_acceptor;
  std::list<std::function<void()>> closers;  // one per open connection
  bool stopped = false;

  template <typename Acceptor, typename Stream>
  awaitable<void> AcceptLoop(Acceptor& acceptor, bool trusted);
  template <typename Stream>
  awaitable<void> Session(Stream stream, bool trusted);
  template <typename Stream>
  awaitable<void> RejectAndDrain(Stream& stream, api::HttpResponse response, unsigned version);
};

template <typename Acceptor, typename Stream>
awaitable<void> HttpServer::Impl::AcceptLoop(Acceptor& acceptor, bool trusted) {
  auto self = shared_from_this();
  while (!stopped) {
    auto [ec, socket] = co_await acceptor.async_accept(kTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || stopped) break;
      spdlog::warn("event=http.accept_failed error=\"{}\"", ec.message());
      continue;
    }
    if (trusted) {
      // Already guarded by the socket file's permissions; no further checks needed here.
    } else {
      beast::error_code ignored;
      socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    }
    asio::co_spawn(io, Session<Stream>(Stream(std::move(socket)), trusted), asio::detached);
  }
}

template <typename Stream>
awaitable<void> HttpServer::Impl::RejectAndDrain(Stream& stream, api::HttpResponse response,
                                                 unsigned version) {
  auto res = ToBeast(std::move(response), version, false);
  stream.expires_after(options.read_timeout);
  auto [wec, wn] = co_await http::async_write(stream, res, kTuple);
  if (wec) co_return;
  // Read and discard what the client is still sending, for a bounded time and size, so that it
  // sees our answer instead of a connection reset.
  beast::error_code ignored;
  stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
  std::array<char, 64 * 1024> sink;
  uint64_t drained = 0;
  stream.expires_after(std::chrono::seconds(5));
  while (drained < kMaxDrainBytes) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
    if (ec) break;
    drained += n;
  }
}

template <typename Stream>
awaitable<void> HttpServer::Impl::Session(Stream stream, bool trusted) {
  auto self = shared_from_this();
  auto closer = closers.insert(closers.end(), [&stream] {
    beast::error_code ignored;
    stream.socket().shutdown(asio::socket_base::shutdown_both, ignored);
    stream.socket().close(ignored);
  });
  if (closers.size() > static_cast<size_t>(options.max_connections)) {
    co_await RejectAndDrain(stream,
                            api::ErrorResponse(503, "UNAVAILABLE",
                                               "too many open connections; retry later"),
                            11);
    closers.erase(closer);
    co_return;
  }
  beast::flat_buffer buffer;
  bool first = true;
  while (!stopped) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(options.max_body_bytes);
    // An idle keep-alive connection waits idle_timeout for the next request to start; once it
    // started, the whole request must arrive within read_timeout.
    stream.expires_after(first ? options.read_timeout : options.idle_timeout);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, kTuple);
    if (hec == http::error::end_of_stream || hec == beast::error::timeout ||
        hec == asio::error::operation_aborted || hec == asio::error::connection_reset) {
      break;
    }
    if (hec) {
      co_await RejectAndDrain(stream, ParseErrorResponse(hec, options.max_body_bytes), 11);
      break;
    }
    stream.expires_after(options.read_timeout);
    if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      http::response<http::empty_body> cont{http::status::continue_, 11};
      auto [cec, cn] = co_await http::async_write(stream, cont, kTuple);
      if (cec) break;
    }
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, kTuple);
    if (ec) {
      if (ec == beast::error::timeout || ec == asio::error::operation_aborted) break;
      co_await RejectAndDrain(stream, ParseErrorResponse(ec, options.max_body_bytes),
                              parser.get().version());
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
    request.trusted = trusted;
    bool keep_alive = req.keep_alive() && !stopped;
    auto res = ToBeast(handler(request), req.version(), keep_alive);
    if (req.method() == http::verb::head) res.body().clear();
    auto [wec, wn] = co_await http::async_write(stream, res, kTuple);
    if (wec || !keep_alive) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
  closers.erase(closer);
}

HttpServer::HttpServer(asio::io_context& io, ServerOptions options, Handler handler)
    : impl_(std::make_shared<Impl>(io, options, std::move(handler))) {}

HttpServer::~HttpServer() { Stop(); }

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
  asio::co_spawn(impl_->io,
                 impl_->AcceptLoop<asio::ip::tcp::acceptor, TcpStream>(*impl_->tcp_acceptor, false),
                 asio::detached);
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
                     *impl_->unix_acceptor, true),
                 asio::detached);
  return Status::Ok();
}

void HttpServer::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  beast::error_code ignored;
  if (impl_->tcp_acceptor) impl_->tcp_acceptor->close(ignored);
  if (impl_->unix_acceptor) impl_->unix_acceptor->close(ignored);
  // Each closer makes its session's pending read fail; the session then removes itself.
  auto closers = impl_->closers;
  for (auto& close : closers) close();
}

int HttpServer::open_connections() const { return static_cast<int>(impl_->closers.size()); }

}  // namespace gsk::server
