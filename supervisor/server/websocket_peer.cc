#include "supervisor/server/websocket_peer.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <spdlog/spdlog.h>

namespace gsk::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::string Why(const beast::error_code& ec) {
  if (ec == websocket::error::closed) return "closed by the peer";
  if (ec == beast::error::timeout) return "silent for too long";
  if (ec == websocket::error::message_too_big) return "sent a message over the size limit";
  if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) return "closed";
  return ec.message();
}

}  // namespace

template <typename NextLayer>
BeastWebSocketPeer<NextLayer>::BeastWebSocketPeer(NextLayer stream, const ServerOptions& options)
    : ws_(std::move(stream)), max_queued_bytes_(options.websocket_max_queued_bytes) {
  // Beast's own timeouts replace the TCP stream's: the handshake, and silence (pings at half).
  beast::get_lowest_layer(ws_).expires_never();
  websocket::stream_base::timeout timeout;
  timeout.handshake_timeout = std::chrono::seconds(10);
  timeout.idle_timeout = options.websocket_idle_timeout;
  timeout.keep_alive_pings = true;
  ws_.set_option(timeout);
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
    res.set(beast::http::field::server, "giskard-supervisor/" GSK_VERSION);
  }));
  ws_.read_message_max(options.websocket_max_message_bytes);
  ws_.auto_fragment(false);
  ws_.text(true);
}

template <typename NextLayer>
asio::awaitable<void> BeastWebSocketPeer<NextLayer>::Run(
    beast::http::request<beast::http::string_body> request,
    std::function<api::WebSocketHandlers(std::shared_ptr<api::WebSocketPeer>)> attach) {
  auto self = this->shared_from_this();
  auto [aec] = co_await ws_.async_accept(request, kTuple);
  if (aec) {
    spdlog::info("event=websocket.handshake_failed error=\"{}\"", aec.message());
    co_return;
  }
  api::WebSocketHandlers handlers = attach(self);
  beast::flat_buffer buffer;
  std::string why;
  while (true) {
    auto [ec, n] = co_await ws_.async_read(buffer, kTuple);
    if (ec) {
      why = Why(ec);
      break;
    }
    if (!ws_.got_text()) {
      why = "sent a binary message";
      Close(websocket::close_code::unknown_data, "binary messages are not part of the protocol");
      buffer.consume(buffer.size());
      continue;  // until the peer answers the close (or the timeout closes it)
    }
    std::string text = beast::buffers_to_string(buffer.data());
    buffer.consume(buffer.size());
    if (!closing_ && handlers.on_message) handlers.on_message(std::move(text));
  }
  closing_ = true;
  queue_.clear();
  queued_bytes_ = 0;
  if (!aborted_) Abort();
  if (handlers.on_closed) handlers.on_closed(why);
}

template <typename NextLayer>
bool BeastWebSocketPeer<NextLayer>::Send(std::string text) {
  if (closing_ || aborted_) return false;
  if (queued_bytes_ + text.size() > max_queued_bytes_) {
    spdlog::warn("event=websocket.slow_peer queued_bytes={} limit={}", queued_bytes_,
                 max_queued_bytes_);
    Abort();  // a close frame would wait behind what it does not read
    return false;
  }
  queued_bytes_ += text.size();
  queue_.push_back(std::move(text));
  if (!writing_) WriteNext();
  return true;
}

template <typename NextLayer>
void BeastWebSocketPeer<NextLayer>::WriteNext() {
  if (aborted_) {
    writing_ = false;
    return;
  }
  if (queue_.empty()) {
    writing_ = false;
    if (closing_ && !close_sent_) StartClose();
    return;
  }
  writing_ = true;
  ws_.async_write(asio::buffer(queue_.front()),
                  [self = this->shared_from_this()](beast::error_code ec, size_t) {
                    if (self->aborted_) return;
                    self->queued_bytes_ -= self->queue_.front().size();
                    self->queue_.pop_front();
                    if (ec) return self->Abort();
                    self->WriteNext();
                  });
}

template <typename NextLayer>
void BeastWebSocketPeer<NextLayer>::Close(uint16_t code, std::string reason) {
  if (closing_ || aborted_) return;
  closing_ = true;
  close_reason_ = websocket::close_reason(static_cast<websocket::close_code>(code), reason);
  if (!writing_) StartClose();
}

template <typename NextLayer>
void BeastWebSocketPeer<NextLayer>::StartClose() {
  close_sent_ = true;
  ws_.async_close(close_reason_, [self = this->shared_from_this()](beast::error_code ec) {
    if (ec && !self->aborted_) self->Abort();  // the read loop then ends
  });
}

template <typename NextLayer>
void BeastWebSocketPeer<NextLayer>::Abort() {
  if (aborted_) return;
  aborted_ = true;
  closing_ = true;
  beast::error_code ignored;
  auto& socket = beast::get_lowest_layer(ws_).socket();
  socket.shutdown(asio::socket_base::shutdown_both, ignored);
  socket.close(ignored);
}

template class BeastWebSocketPeer<beast::tcp_stream>;
template class BeastWebSocketPeer<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace gsk::server
