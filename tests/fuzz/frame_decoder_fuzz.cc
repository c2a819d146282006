// libFuzzer target for the worker protocol's supervisor side: the frame decoder fed arbitrary
// bytes in arbitrary pieces, and every decoded payload parsed as a hello. Besides crashes and
// sanitizer reports it checks that re-encoding a decoded frame gives back the bytes it came from,
// and that the decoder never buffers more than one maximum frame plus a read.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "supervisor/protocol/frame_codec.h"
#include "supervisor/relay/messages.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::size_t kMax = 1 << 16;  // small, so that the limit path is reached
  std::string_view input(reinterpret_cast<const char*>(data), size);
  gsk::protocol::FrameDecoder decoder(kMax);
  std::size_t step = size == 0 ? 1 : 1 + data[0] % 7;  // vary how reads split the stream
  std::string consumed;
  for (std::size_t at = 0; at < input.size(); at += step) {
    decoder.Feed(input.substr(at, step));
    while (true) {
      auto next = decoder.Next();
      if (!next.ok()) return 0;  // an oversized frame: the connection would close
      if (!next->has_value()) break;
      auto frame = gsk::protocol::EncodeFrame(**next);
      if (!frame.ok()) std::abort();
      consumed += *frame;
      if (input.substr(0, consumed.size()) != consumed) {
        std::fprintf(stderr, "frame_decoder_fuzz: decoded frames do not re-encode to the input\n");
        std::abort();
      }
      (void)gsk::relay::ParseHello(**next, 100);
      (void)gsk::relay::MessageType(**next);
    }
    if (decoder.buffered() > kMax + 4 + step) std::abort();
  }
  return 0;
}
