#include "supervisor/protocol/frame_codec.h"

namespace gsk::protocol {

Result<std::string> EncodeFrame(std::string_view json) {
  if (json.size() > kMaxFrameBytes) {
    return InvalidArgument("a frame of " + std::to_string(json.size()) +
                           " bytes is over the protocol's limit of " +
                           std::to_string(kMaxFrameBytes));
  }
  auto n = static_cast<uint32_t>(json.size());
  std::string frame;
  frame.reserve(4 + json.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    frame.push_back(static_cast<char>((n >> shift) & 0xff));
  }
  frame.append(json);
  return frame;
}

Result<std::optional<std::string>> FrameDecoder::Next() {
  if (failed_) return InvalidArgument("the stream is broken by an earlier oversized frame");
  std::string_view pending(buffer_);
  pending.remove_prefix(consumed_);
  if (pending.size() < 4) return std::optional<std::string>();
  uint32_t n = 0;
  for (size_t i = 0; i < 4; ++i) n = (n << 8) | static_cast<unsigned char>(pending[i]);
  if (n > max_) {
    failed_ = true;
    buffer_.clear();
    consumed_ = 0;
    return InvalidArgument("a frame announces " + std::to_string(n) +
                           " bytes, over the limit of " + std::to_string(max_));
  }
  if (pending.size() < 4 + size_t{n}) return std::optional<std::string>();
  std::string payload(pending.substr(4, n));
  consumed_ += 4 + size_t{n};
  // Compact once the consumed prefix dominates, so the buffer does not grow without bound.
  if (consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  } else if (consumed_ > 65536 && consumed_ * 2 > buffer_.size()) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  return std::optional<std::string>(std::move(payload));
}

}  // namespace gsk::protocol
