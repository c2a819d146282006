// Test-only: a tiny real HTTP server on a Unix socket or 127.0.0.1 (ephemeral port), run on its
// own thread with Boost.Beast, answering each request through a handler. Every run is bounded by
// a deadline, so a broken client cannot hang a test. Construct, use, then call Finish() (or let
// the destructor stop it) before reading what it saw.
#pragma once

#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace gsk::cli::testing {

struct SeenRequest {
  std::string method;
  std::string target;
  std::string host;
  std::string authorization;
  std::string content_type;
  std::string body;
};

struct CannedReply {
  using Headers = std::vector<std::pair<std::string, std::string>>;
  CannedReply() = default;
  CannedReply(int s, std::string b, std::string type = "application/json", Headers h = {})
      : status(s), body(std::move(b)), content_type(std::move(type)), headers(std::move(h)) {}

  int status = 200;
  std::string body = "{}";
  std::string content_type = "application/json";
  Headers headers;  // extra header fields
};

// nullopt: never answer (the connection stays open until the server stops).
using ReplyFn = std::function<std::optional<CannedReply>(const SeenRequest&)>;

template <class Protocol>
class TestHttpServer {
 public:
  TestHttpServer(const typename Protocol::endpoint& endpoint, ReplyFn reply,
                 std::chrono::milliseconds deadline = std::chrono::seconds(10))
      : acceptor_(io_, endpoint), reply_(std::move(reply)) {
    Accept();
    thread_ = std::thread([this, deadline] { io_.run_for(deadline); });
  }
  ~TestHttpServer() { Finish(); }

  typename Protocol::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

  // Stops the server and returns the requests it received, in order.
  const std::vector<SeenRequest>& Finish() {
    if (thread_.joinable()) {
      io_.stop();
      thread_.join();
    }
    return seen_;
  }

 private:
  struct Connection {
    explicit Connection(typename Protocol::socket s) : socket(std::move(s)) {}
    typename Protocol::socket socket;
    boost::beast::flat_buffer buffer;
    boost::beast::http::request<boost::beast::http::string_body> request;
    boost::beast::http::response<boost::beast::http::string_body> response;
  };

  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, typename Protocol::socket s) {
      if (ec) return;
      Serve(std::make_shared<Connection>(std::move(s)));
      Accept();
    });
  }

  void Serve(std::shared_ptr<Connection> c) {
    namespace http = boost::beast::http;
    http::async_read(
        c->socket, c->buffer, c->request, [this, c](boost::system::error_code ec, std::size_t) {
          if (ec) return;
          SeenRequest seen{std::string(c->request.method_string()),
                           std::string(c->request.target()),
                           std::string(c->request[http::field::host]),
                           std::string(c->request[http::field::authorization]),
                           std::string(c->request[http::field::content_type]),
                           c->request.body()};
          seen_.push_back(seen);
          std::optional<CannedReply> reply = reply_(seen);
          if (!reply) {
            held_.push_back(c);
            return;
          }
          c->response.result(static_cast<unsigned>(reply->status));
          c->response.version(11);
          c->response.set(http::field::content_type, reply->content_type);
          for (const auto& [name, value] : reply->headers) c->response.set(name, value);
          c->response.body() = reply->body;
          c->response.keep_alive(false);
          c->response.prepare_payload();
          http::async_write(c->socket, c->response, [c](boost::system::error_code, std::size_t) {
            boost::system::error_code ignored;
            c->socket.shutdown(Protocol::socket::shutdown_send, ignored);
          });
        });
  }

  boost::asio::io_context io_;
  typename Protocol::acceptor acceptor_;
  ReplyFn reply_;
  std::vector<SeenRequest> seen_;  // written on the server thread; read after Finish()
  std::vector<std::shared_ptr<Connection>> held_;
  std::thread thread_;
};

using UnixHttpServer = TestHttpServer<boost::asio::local::stream_protocol>;
using TcpHttpServer = TestHttpServer<boost::asio::ip::tcp>;

inline boost::asio::ip::tcp::endpoint Loopback() {
  return {boost::asio::ip::make_address("127.0.0.1"), 0};
}

// A fresh directory under /tmp (short, so that socket paths fit in 107 bytes), removed on
// destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "gsk-cli-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace gsk::cli::testing
