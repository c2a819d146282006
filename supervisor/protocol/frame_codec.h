// Framing of the worker protocol on a Unix socket (worker-shim/PROTOCOL.md): a 4-byte big-endian
// length, then that many bytes of UTF-8 JSON holding one object. A pure decoder, fed bytes as
// they arrive (or read into straight from the socket), so that it is tested and fuzzed without
// sockets. Not synchronized.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace gsk::protocol {

inline constexpr size_t kMaxFrameBytes = size_t{16} << 20;  // 16 MiB, both directions

// The 4-byte header of a frame whose payload has `payload_bytes` bytes. kInvalidArgument if that
// is larger than kMaxFrameBytes.
Result<std::array<char, 4>> FrameHeader(size_t payload_bytes);

// The frame for `json` (which the caller produced with nlohmann::json::dump).
// kInvalidArgument if it is larger than kMaxFrameBytes.
Result<std::string> EncodeFrame(std::string_view json);

class FrameDecoder {
 public:
  // Payloads of at least this size are received in place: read straight into the string that
  // Next() returns (only the first read's part of it is copied).
  static constexpr size_t kDirectBytes = size_t{32} << 10;
  // Such a payload comes with this much spare capacity, so that its consumer can grow it a
  // little (a reply turned into an HTTP answer) without copying it.
  static constexpr size_t kPayloadSlack = 256;

  explicit FrameDecoder(size_t max_frame_bytes = kMaxFrameBytes) : max_(max_frame_bytes) {}

  // Appends received bytes. Frames may be split across calls or several in one.
  void Feed(std::string_view bytes);

  // The same without a copy: Prepare gives the memory where up to `max_bytes` (> 0) next bytes
  // of the stream go (fewer: at most what a large payload lacks, else what a 64 KiB staging
  // area has free), and Commit says how many were written there. Nothing else may be called on
  // the decoder in between.
  std::span<char> Prepare(size_t max_bytes);
  void Commit(size_t bytes);

  // The next complete frame's payload, nullopt if more bytes are needed, or kInvalidArgument
  // once a frame announces more than the maximum (the connection must then be closed; the
  // payload is not buffered). The payload is not checked for JSON here.
  Result<std::optional<std::string>> Next();

  // Bytes received that Next() has not returned yet.
  size_t buffered() const;

 private:
  void StartDirect(size_t payload_bytes);

  std::string staging_;  // bytes [begin_, end_) are received and not yet returned
  size_t begin_ = 0;
  size_t end_ = 0;
  std::string direct_;       // a large payload being received in place: its bytes so far
  size_t direct_bytes_ = 0;  // and its announced size
  bool direct_active_ = false;
  bool prepared_direct_ = false;  // the last Prepare gave memory in direct_, from prepared_at_
  size_t prepared_at_ = 0;
  size_t max_;
  bool failed_ = false;
};

}  // namespace gsk::protocol
