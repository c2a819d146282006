#include "supervisor/protocol/frame_codec.h"

#include <algorithm>
#include <cstring>

namespace gsk::protocol {
namespace {

// Staging memory starts at kFirstStagingChunk (a connection of small frames never needs more:
// an idle worker's costs 4 KiB, not 64) and grows, while reads fill it, by chunks up to
// kStagingChunk; beyond kKeepStagingBytes it is given back once empty (after a caller fed a
// large block at once).
constexpr size_t kFirstStagingChunk = size_t{4} << 10;
constexpr size_t kStagingChunk = size_t{64} << 10;
constexpr size_t kKeepStagingBytes = size_t{1} << 20;

}  // namespace

Result<std::array<char, 4>> FrameHeader(size_t payload_bytes) {
  if (payload_bytes > kMaxFrameBytes) {
    return InvalidArgument("a frame of " + std::to_string(payload_bytes) +
                           " bytes is over the protocol's limit of " +
                           std::to_string(kMaxFrameBytes));
  }
  auto n = static_cast<uint32_t>(payload_bytes);
  std::array<char, 4> header{};
  for (size_t i = 0; i < 4; ++i) header[i] = static_cast<char>((n >> (24 - 8 * i)) & 0xff);
  return header;
}

Result<std::string> EncodeFrame(std::string_view json) {
  GSK_ASSIGN_OR_RETURN(auto header, FrameHeader(json.size()));
  std::string frame;
  frame.reserve(header.size() + json.size());
  frame.append(header.data(), header.size());
  frame.append(json);
  return frame;
}

void FrameDecoder::Feed(std::string_view bytes) {
  while (!bytes.empty()) {
    std::span<char> to = Prepare(bytes.size());
    size_t n = std::min(to.size(), bytes.size());
    std::memcpy(to.data(), bytes.data(), n);
    Commit(n);
    bytes.remove_prefix(n);
  }
}

std::span<char> FrameDecoder::Prepare(size_t max_bytes) {
  max_bytes = std::max<size_t>(max_bytes, 1);
  prepared_direct_ = direct_active_ && direct_.size() < direct_bytes_;
  if (prepared_direct_) {
    // At most what the payload lacks: the next frame's bytes go to the staging memory. The
    // string grows into the capacity reserved for it, touching only memory that bytes arrive in.
    prepared_at_ = direct_.size();
    size_t n = std::min(max_bytes, direct_bytes_ - prepared_at_);
    direct_.resize(prepared_at_ + n);
    return {direct_.data() + prepared_at_, n};
  }
  size_t want = std::min(max_bytes, std::clamp(staging_.size(), kFirstStagingChunk, kStagingChunk));
  if (staging_.size() - end_ < want && begin_ > 0) {
    std::memmove(staging_.data(), staging_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (staging_.size() - end_ < want) staging_.resize(end_ + want);
  return {staging_.data() + end_, std::min(max_bytes, staging_.size() - end_)};
}

void FrameDecoder::Commit(size_t bytes) {
  if (failed_) return;  // the stream is broken: nothing more is kept
  if (prepared_direct_) {
    direct_.resize(prepared_at_ + bytes);  // what arrived of what Prepare made room for
  } else {
    end_ += bytes;
  }
  prepared_direct_ = false;
}

// Reserving is not touching: a peer that announces a large frame and sends nothing more costs
// address space, not memory.
void FrameDecoder::StartDirect(size_t payload_bytes) {
  direct_.clear();
  direct_.reserve(payload_bytes + kPayloadSlack);
  // All of the staged bytes are this payload's: the frame is incomplete.
  direct_.append(staging_.data() + begin_ + 4, end_ - begin_ - 4);
  direct_bytes_ = payload_bytes;
  direct_active_ = true;
  begin_ = end_ = 0;
}

Result<std::optional<std::string>> FrameDecoder::Next() {
  if (failed_) return InvalidArgument("the stream is broken by an earlier oversized frame");
  if (direct_active_) {
    if (direct_.size() < direct_bytes_) return std::optional<std::string>();
    std::optional<std::string> payload(std::move(direct_));
    direct_ = std::string();
    direct_active_ = false;
    return payload;
  }
  std::string_view pending(staging_.data() + begin_, end_ - begin_);
  if (pending.size() < 4) return std::optional<std::string>();
  uint32_t n = 0;
  for (size_t i = 0; i < 4; ++i) n = (n << 8) | static_cast<unsigned char>(pending[i]);
  if (n > max_) {
    failed_ = true;
    staging_ = std::string();
    begin_ = end_ = 0;
    return InvalidArgument("a frame announces " + std::to_string(n) +
                           " bytes, over the limit of " + std::to_string(max_));
  }
  if (pending.size() < 4 + size_t{n}) {
    if (n >= kDirectBytes) StartDirect(n);
    return std::optional<std::string>();
  }
  std::optional<std::string> payload(std::in_place, pending.substr(4, n));
  begin_ += 4 + size_t{n};
  if (begin_ == end_) {
    begin_ = end_ = 0;
    if (staging_.size() > kKeepStagingBytes) staging_ = std::string();
  }
  return payload;
}

size_t FrameDecoder::buffered() const {
  return end_ - begin_ + (direct_active_ ? 4 + direct_.size() : 0);
}

}  // namespace gsk::protocol
