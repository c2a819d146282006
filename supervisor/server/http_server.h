// HttpServer: HTTP/1.1 with keep-alive over TCP and over a Unix socket (Boost.Beast, C++20
// coroutines). Strict about framing: a request whose length is ambiguous (a Transfer-Encoding
// other than exactly "chunked", Transfer-Encoding with Content-Length, repeated
// Content-Length) is answered 400 and its connection closed, so nothing can be smuggled behind
// it; headers, chunk lines and trailers are bounded, and so are bodies, per route. Each listener
// holds at most `max_connections`; when full, the connection idle for longest is closed to make
// room, so idle clients cannot lock others out. Every request goes to one Handler on the
// io_context's thread, so the handler needs no locking; it answers through its Reply, at once or
// later. WebSocket upgrades on the TCP listener go to the upgrade handler; such connections
// count against the limit but are never closed to make room. All methods must be called on the
// io_context's thread too.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "supervisor/api/http_types.h"
#include "supervisor/server/server_options.h"

namespace boost::asio {
class io_context;
}

namespace gsk::server {

inline constexpr uint32_t kHeaderLimit = 16 * 1024;        // request line and fields
inline constexpr size_t kMaxChunkExtensionBytes = 1024;    // per chunk line

class HttpServer {
 public:
  using Handler = std::function<void(const api::HttpRequest& request, api::Reply reply)>;
  // The largest body accepted for a request, from its method and target (read before the
  // body); nullptr: options.max_body_bytes for every request.
  using BodyLimit = std::function<uint64_t(std::string_view method, std::string_view target)>;

  HttpServer(boost::asio::io_context& io, ServerOptions options, Handler handler,
             BodyLimit body_limit = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Makes the TCP listener speak TLS (HTTPS, and WSS for upgrades) with this PEM certificate
  // chain and private key; call before ListenTcp. kInvalidArgument naming the file that cannot
  // be used.
  Status UseTls(const std::filesystem::path& certificate_chain,
                const std::filesystem::path& private_key);
  // Binds and listens on HOST:PORT; returns the bound port (useful with port 0).
  Result<uint16_t> ListenTcp(const std::string& host, uint16_t port);
  // Binds a Unix socket at `path` (replacing a stale socket file) with permission `mode`.
  // Requests arriving there are marked trusted.
  Status ListenUnix(const std::filesystem::path& path, uint32_t mode);

  // WebSocket upgrade requests on the TCP listener go to `upgrade` (accepted or refused there);
  // without one, they are served as plain requests.
  void SetUpgradeHandler(api::UpgradeHandler upgrade);

  // Stops accepting and closes every connection; pending coroutines then finish on their own.
  void Stop();

  int open_connections() const;
  // Connections closed to make room for new ones (idle first).
  uint64_t evicted_connections() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace gsk::server
