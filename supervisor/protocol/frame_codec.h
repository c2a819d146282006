// Framing of the worker protocol on a Unix socket (worker-shim/PROTOCOL.md): a 4-byte big-endian
// length, then that many bytes of UTF-8 JSON holding one object. A pure decoder, fed bytes as
// they arrive, so that it is tested and fuzzed without sockets. Not synchronized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace gsk::protocol {

inline constexpr size_t kMaxFrameBytes = size_t{16} << 20;  // 16 MiB, both directions

// The frame for `json` (which the caller produced with nlohmann::json::dump).
// kInvalidArgument if it is larger than kMaxFrameBytes.
Result<std::string> EncodeFrame(std::string_view json);

class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_frame_bytes = kMaxFrameBytes) : max_(max_frame_bytes) {}

  // Appends received bytes. Frames may be split across calls or several in one.
  void Feed(std::string_view bytes) { buffer_.append(bytes); }

  // The next complete frame's payload, nullopt if more bytes are needed, or kInvalidArgument
  // once a frame announces more than the maximum (the connection must then be closed; the
  // payload is not buffered). The payload is not checked for JSON here.
  Result<std::optional<std::string>> Next();

  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  std::string buffer_;
  size_t consumed_ = 0;
  size_t max_;
  bool failed_ = false;
};

}  // namespace gsk::protocol
