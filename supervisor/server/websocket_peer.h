// BeastWebSocketPeer: a WebSocket connection over TCP or TLS (Boost.Beast), accepted from an HTTP request
// the server already read. Text messages only (a binary message closes the connection with
// 1003); each assembled message is bounded; what waits to be sent is bounded too, so a peer that
// stops reading is closed instead of growing the daemon's memory. Silent peers are closed by
// Beast's idle timeout, with keep-alive pings at half of it. Internal to gsk_server: this header
// pulls in Beast. Not thread-safe: the core io_context thread.
#pragma once

#include <deque>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "supervisor/api/http_types.h"
#include "supervisor/server/server_options.h"

namespace gsk::server {

// NextLayer: boost::beast::tcp_stream or boost::beast::ssl_stream<boost::beast::tcp_stream>
// (both instantiated in the .cc file).
template <typename NextLayer>
class BeastWebSocketPeer final : public api::WebSocketPeer,
                                 public std::enable_shared_from_this<BeastWebSocketPeer<NextLayer>> {
 public:
  BeastWebSocketPeer(NextLayer stream, const ServerOptions& options);

  // Completes the handshake for `request`, hands the peer to `attach`, then reads messages until
  // the connection ends; on_closed is called before it returns (when the handshake succeeded).
  boost::asio::awaitable<void> Run(
      boost::beast::http::request<boost::beast::http::string_body> request,
      std::function<api::WebSocketHandlers(std::shared_ptr<api::WebSocketPeer>)> attach);

  bool Send(std::string text) override;
  void Close(uint16_t code, std::string reason) override;
  // Closes the socket now, without a close frame (server stop, connection eviction).
  void Abort();

 private:
  void WriteNext();
  void StartClose();

  boost::beast::websocket::stream<NextLayer> ws_;
  uint64_t max_queued_bytes_;
  std::deque<std::string> queue_;
  uint64_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;  // Close was asked: the queue drains, then the close frame
  bool close_sent_ = false;
  bool aborted_ = false;
  boost::beast::websocket::close_reason close_reason_;
};

}  // namespace gsk::server
