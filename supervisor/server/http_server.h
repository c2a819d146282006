// HttpServer: HTTP/1.1 with keep-alive over TCP and over a Unix socket (Boost.Beast, C++20
// coroutines), with a header and body size limit, read and idle timeouts, and a cap on open
// connections. Every request is handed to one Handler on the io_context's thread, so the handler
// needs no locking. All methods must be called on that thread too.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "supervisor/api/http_types.h"

namespace boost::asio {
class io_context;
}

namespace gsk::server {

struct ServerOptions {
  uint64_t max_body_bytes = 1 << 20;
  std::chrono::seconds read_timeout{30};   // a request must arrive whole within this
  std::chrono::seconds idle_timeout{120};  // keep-alive connections idle longer are closed
  int max_connections = 256;               // further connections get 503 and are closed
};

class HttpServer {
 public:
  using Handler = std::function<api::HttpResponse(const api::HttpRequest&)>;

  HttpServer(boost::asio::io_context& io, ServerOptions options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens on HOST:PORT; returns the bound port (useful with port 0).
  Result<uint16_t> ListenTcp(const std::string& host, uint16_t port);
  // Binds a Unix socket at `path` (replacing a stale socket file) with permission `mode`.
  // Requests arriving there are marked trusted.
  Status ListenUnix(const std::filesystem::path& path, uint32_t mode);

  // Stops accepting and closes every connection; pending coroutines then finish on their own.
  void Stop();

  int open_connections() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace gsk::server
