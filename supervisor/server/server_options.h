// The HTTP server's limits ([server] in the config). Each default is spelled here only; the
// daemon's config embeds this struct. A value type, not synchronized.
#pragma once

#include <chrono>
#include <cstdint>

namespace gsk::server {

struct ServerOptions {
  uint64_t max_body_bytes = 1 << 20;       // kernel documents and other small bodies
  std::chrono::seconds read_timeout{30};   // a request must arrive whole within this
  std::chrono::seconds idle_timeout{120};  // keep-alive connections idle longer are closed
  // Open connections per listener. 0: sized from the file-descriptor limit (half of it, at
  // most 16384). When full, the longest-idle connection is closed to make room.
  int max_connections = 0;
  // WebSocket connections (the worker endpoint):
  uint64_t websocket_max_message_bytes = 16u << 20;  // the protocol's limit on a message
  uint64_t websocket_max_queued_bytes = 64u << 20;   // unsent to a slow peer: then it is closed
  std::chrono::seconds websocket_idle_timeout{30};   // nothing received, pings included: closed
};

}  // namespace gsk::server
