#include "supervisor/cli/client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <exception>
#include <utility>

namespace gsk::cli {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;
using Request = http::request<http::string_body>;

// Runs `io` until its pending operations finish or `timeout` passes. On timeout, closes `socket`
// so that the operations complete with operation_aborted, and returns false.
template <class Socket>
bool RunFor(asio::io_context& io, Socket& socket, std::chrono::milliseconds timeout) {
  io.restart();
  io.run_for(timeout);
  if (io.stopped()) return true;
  error_code ignored;
  socket.close(ignored);
  io.run();
  return false;
}

std::string Seconds(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

std::string ConnectErrorText(const error_code& ec, const ConnectionTarget& target) {
  bool unix_socket = target.kind == ConnectionTarget::Kind::kUnix;
  if (ec == boost::system::errc::no_such_file_or_directory) return "no socket file there";
  if (ec == asio::error::host_not_found || ec == asio::error::host_not_found_try_again) {
    return "unknown host " + target.url.host;
  }
  if (ec == asio::error::connection_refused) {
    return unix_socket ? "connection refused (a stale socket file: the daemon is not running)"
                       : "connection refused (nothing listens on that port)";
  }
  if (ec == asio::error::access_denied || ec == asio::error::no_permission) {
    return "permission denied (run as root or as a member of the group giskard-supervisor, or "
           "use --url with a token)";
  }
  return ec.message();
}

template <class Socket>
Result<HttpReply> Exchange(asio::io_context& io, Socket& socket, const Request& request,
                           const ClientOptions& options, const std::string& where) {
  error_code write_ec;
  error_code read_ec;
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(options.max_response_bytes);
  http::async_write(socket, request, [&](error_code ec, std::size_t) { write_ec = ec; });
  // Read even if the write fails: the daemon may answer (413) and close before reading it all.
  http::async_read(socket, buffer, parser, [&](error_code ec, std::size_t) { read_ec = ec; });
  if (!RunFor(io, socket, options.request_timeout)) {
    return DeadlineExceeded("the supervisor at " + where + " did not answer within " +
                            Seconds(options.request_timeout));
  }
  if (read_ec) {
    if (write_ec) {
      return Unavailable("sending the request to " + where + " failed: " + write_ec.message());
    }
    return Internal("reading the answer from " + where + " failed: " + read_ec.message());
  }
  error_code ignored;
  socket.shutdown(Socket::shutdown_both, ignored);
  socket.close(ignored);
  auto response = parser.release();
  HttpReply reply;
  reply.status = static_cast<int>(response.result_int());
  reply.content_type = std::string(response[http::field::content_type]);
  for (const auto& field : response) {
    reply.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  reply.body = std::move(response.body());
  return reply;
}

Result<HttpReply> SendUnix(const ConnectionTarget& target, const Request& request,
                           const ClientOptions& options) {
  asio::io_context io;
  asio::local::stream_protocol::socket socket(io);
  std::string where = target.Describe();
  if (target.socket_path.size() > 107) {
    return InvalidArgument("socket path " + target.socket_path +
                           " is longer than 107 bytes, the limit of Unix sockets");
  }
  error_code connect_ec;
  socket.async_connect(asio::local::stream_protocol::endpoint(target.socket_path),
                       [&](error_code ec) { connect_ec = ec; });
  if (!RunFor(io, socket, options.connect_timeout)) {
    return Unavailable("cannot reach the supervisor at " + where + ": no answer within " +
                       Seconds(options.connect_timeout));
  }
  if (connect_ec) {
    return Unavailable("cannot reach the supervisor at " + where + ": " +
                       ConnectErrorText(connect_ec, target));
  }
  return Exchange(io, socket, request, options, where);
}

Result<HttpReply> SendTcp(const ConnectionTarget& target, const Request& request,
                          const ClientOptions& options) {
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  asio::ip::tcp::socket socket(io);
  std::string where = target.Describe();
  error_code connect_ec;
  resolver.async_resolve(
      target.url.host, std::to_string(target.url.port),
      [&](error_code ec, const asio::ip::tcp::resolver::results_type& endpoints) {
        if (ec) {
          connect_ec = ec;
          return;
        }
        asio::async_connect(socket, endpoints, [&](error_code ec2, const asio::ip::tcp::endpoint&) {
          connect_ec = ec2;
        });
      });
  if (!RunFor(io, socket, options.connect_timeout)) {
    resolver.cancel();
    return Unavailable("cannot reach the supervisor at " + where + ": no answer within " +
                       Seconds(options.connect_timeout));
  }
  if (connect_ec) {
    return Unavailable("cannot reach the supervisor at " + where + ": " +
                       ConnectErrorText(connect_ec, target));
  }
  error_code ignored;
  socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  return Exchange(io, socket, request, options, where);
}

Request BuildRequest(const ConnectionTarget& target, const ClientOptions& options,
                     std::string_view method, std::string_view path, std::string_view body) {
  Request request;
  request.method_string(method);
  request.version(11);
  if (target.kind == ConnectionTarget::Kind::kUnix) {
    request.target(path);
    request.set(http::field::host, "localhost");
  } else {
    request.target(target.url.base_path + std::string(path));
    bool ipv6 = target.url.host.find(':') != std::string::npos;
    std::string host = ipv6 ? "[" + target.url.host + "]" : target.url.host;
    request.set(http::field::host, host + ":" + std::to_string(target.url.port));
    if (!target.token.empty()) request.set(http::field::authorization, "Bearer " + target.token);
  }
  request.set(http::field::user_agent, options.user_agent);
  request.set(http::field::accept, "application/json");
  if (!body.empty()) {
    request.set(http::field::content_type, "application/json");
    request.body() = std::string(body);
  }
  request.keep_alive(false);
  request.prepare_payload();
  return request;
}

}  // namespace

std::optional<std::string> HttpReply::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (boost::beast::iequals(key, name)) return value;
  }
  return std::nullopt;
}

HttpClient::HttpClient(ConnectionTarget target, ClientOptions options)
    : target_(std::move(target)), options_(std::move(options)) {}

Result<HttpReply> HttpClient::Send(std::string_view method, std::string_view path,
                                   std::string_view body) const {
  try {
    Request request = BuildRequest(target_, options_, method, path, body);
    if (target_.kind == ConnectionTarget::Kind::kUnix) return SendUnix(target_, request, options_);
    return SendTcp(target_, request, options_);
  } catch (const std::exception& e) {  // Asio/Beast throw only on resource exhaustion or bugs
    return Internal("talking to the supervisor at " + target_.Describe() + ": " + e.what());
  }
}

std::string EncodePathSegment(std::string_view segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : segment) {
    auto u = static_cast<unsigned char>(c);
    bool unreserved = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0x0F];
    }
  }
  return out;
}

}  // namespace gsk::cli
