// Plain HTTP request/response values exchanged between the transport (supervisor/server) and
// the router (supervisor/api). No Beast types here, so that the router compiles and is tested
// without the networking headers. Value types, not synchronized.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gsk::api {

struct HttpRequest {
  std::string method;         // "GET", "POST", ...
  std::string target;         // "/api/v1/kernels?x=y" as received
  std::string content_type;   // "" when absent
  std::string authorization;  // "" when absent
  std::string body;
  bool trusted = false;       // arrived on the admin Unix socket: no token needed
  // Filled for WebSocket upgrade requests only (the worker endpoint):
  std::string remote;         // the peer's "address:port"
  std::string worker_name;    // X-Giskard-Worker-Name, the name an unmanaged worker asks for
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is this file's content instead, streamed by the server (large blobs).
  std::string file_path;
};

// How a handler answers: exactly once, now or later, on the core thread.
using Reply = std::function<void(HttpResponse response)>;

// An accepted WebSocket connection, as the application sees it (the server implements it).
// Core thread only.
class WebSocketPeer {
 public:
  virtual ~WebSocketPeer() = default;
  // Queues a text message. False (and nothing queued) once the connection is closing or closed;
  // a peer that lets too much pile up unread is closed instead.
  virtual bool Send(std::string text) = 0;
  // Sends what is queued, then a close frame with `code` (1000 normal, 1008 policy), and closes.
  virtual void Close(uint16_t code, std::string reason) = 0;
};

// What the application does with an accepted connection. Both are called on the core thread;
// on_closed once, after which no message arrives.
struct WebSocketHandlers {
  std::function<void(std::string text)> on_message;
  std::function<void(const std::string& why)> on_closed;
};

// The answer to an upgrade request: refuse it with an HTTP response, or accept it; `attach` is
// then called once the handshake succeeded, with the peer, and returns its handlers.
struct WebSocketAccept {
  std::optional<HttpResponse> refusal;
  std::function<WebSocketHandlers(std::shared_ptr<WebSocketPeer> peer)> attach;
};
using UpgradeHandler = std::function<WebSocketAccept(const HttpRequest& request)>;

}  // namespace gsk::api
