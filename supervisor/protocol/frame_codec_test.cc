#include "supervisor/protocol/frame_codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace gsk::protocol {
namespace {

std::string Frame(std::string_view json) {
  Result<std::string> f = EncodeFrame(json);
  EXPECT_TRUE(f.ok());
  return f.ok() ? *f : std::string();
}

TEST(FrameCodecTest, TheHeaderAloneMatchesTheEncodedFrame) {
  auto header = FrameHeader(300);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(std::string(header->data(), 4), std::string("\0\0\x01\x2c", 4));
  EXPECT_FALSE(FrameHeader(kMaxFrameBytes + 1).ok());
  EXPECT_TRUE(FrameHeader(kMaxFrameBytes).ok());
}

TEST(FrameCodecTest, EncodesABigEndianLength) {
  std::string f = Frame("{}");
  ASSERT_EQ(f.size(), 6u);
  EXPECT_EQ(f.substr(0, 4), std::string("\0\0\0\x02", 4));
  EXPECT_EQ(f.substr(4), "{}");
  std::string big(300, 'x');
  EXPECT_EQ(Frame(big).substr(0, 4), std::string("\0\0\x01\x2c", 4));
}

TEST(FrameCodecTest, DecodesFramesSplitAnywhereAndSeveralAtOnce) {
  std::string stream = Frame(R"({"type":"a"})") + Frame("") + Frame(R"({"type":"b"})");
  for (size_t split = 0; split <= stream.size(); ++split) {
    FrameDecoder d;
    std::vector<std::string> got;
    for (std::string_view part : {std::string_view(stream).substr(0, split),
                                  std::string_view(stream).substr(split)}) {
      d.Feed(part);
      while (true) {
        auto next = d.Next();
        ASSERT_TRUE(next.ok());
        if (!next->has_value()) break;
        got.push_back(**next);
      }
    }
    EXPECT_EQ(got, (std::vector<std::string>{R"({"type":"a"})", "", R"({"type":"b"})"}))
        << "split at " << split;
    EXPECT_EQ(d.buffered(), 0u);
  }
}

TEST(FrameCodecTest, ByteByByte) {
  std::string stream = Frame(R"({"x":1})");
  FrameDecoder d;
  for (size_t i = 0; i + 1 < stream.size(); ++i) {
    d.Feed(stream.substr(i, 1));
    auto next = d.Next();
    ASSERT_TRUE(next.ok());
    EXPECT_FALSE(next->has_value());
  }
  d.Feed(stream.substr(stream.size() - 1));
  auto next = d.Next();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ(**next, R"({"x":1})");
}

// Reads as the worker socket makes them: into the decoder's own memory, `chunk` bytes at most.
std::vector<std::string> ReadInPlace(FrameDecoder& d, std::string_view stream, size_t chunk) {
  std::vector<std::string> got;
  while (!stream.empty()) {
    std::span<char> into = d.Prepare(chunk);
    EXPECT_FALSE(into.empty());
    size_t n = std::min({into.size(), stream.size(), chunk});
    std::copy_n(stream.data(), n, into.data());
    d.Commit(n);
    stream.remove_prefix(n);
    while (true) {
      auto next = d.Next();
      EXPECT_TRUE(next.ok());
      if (!next.ok() || !next->has_value()) break;
      got.push_back(std::move(**next));
    }
  }
  return got;
}

TEST(FrameCodecTest, LargePayloadsAreReadInPlaceAndComeWithRoomToGrow) {
  std::string big(FrameDecoder::kDirectBytes * 3 + 17, 'x');
  big.front() = '{';
  big.back() = '}';
  std::string stream = Frame(R"({"type":"a"})") + Frame(big) + Frame(R"({"type":"b"})") +
                       Frame(big.substr(0, FrameDecoder::kDirectBytes));
  for (size_t chunk : {size_t{1} << 20, size_t{65536}, size_t{4096}, size_t{7}}) {
    FrameDecoder d;
    std::vector<std::string> got = ReadInPlace(d, stream, chunk);
    ASSERT_EQ(got.size(), 4u) << "chunk " << chunk;
    EXPECT_EQ(got[0], R"({"type":"a"})");
    EXPECT_EQ(got[1], big) << "chunk " << chunk;
    EXPECT_EQ(got[2], R"({"type":"b"})");
    EXPECT_EQ(got[3], big.substr(0, FrameDecoder::kDirectBytes));
    if (chunk < big.size()) {  // it arrived in several reads: it was received in place
      EXPECT_GE(got[1].capacity(), big.size() + FrameDecoder::kPayloadSlack) << "chunk " << chunk;
    }
    EXPECT_EQ(d.buffered(), 0u);
  }
}

TEST(FrameCodecTest, AnAnnouncedLargeFrameHoldsOnlyTheBytesThatArrived) {
  FrameDecoder d;
  d.Feed(std::string("\x01\0\0\0", 4) + std::string(100, 'x'));  // 16 MiB announced
  auto next = d.Next();
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
  EXPECT_EQ(d.buffered(), 104u);
  EXPECT_EQ(d.Prepare(4096).size(), 4096u);
  d.Commit(10);
  EXPECT_EQ(d.buffered(), 114u);
}

TEST(FrameCodecTest, ALargePayloadSplitAnywhereByFeedsDecodes) {
  std::string big(FrameDecoder::kDirectBytes + 100, 'y');
  std::string stream = Frame(big) + Frame("{}");
  for (size_t split : {size_t{0}, size_t{3}, size_t{4}, size_t{5}, size_t{20000}, big.size() + 3,
                       big.size() + 4, big.size() + 5, stream.size()}) {
    FrameDecoder d;
    std::vector<std::string> got;
    for (std::string_view part :
         {std::string_view(stream).substr(0, split), std::string_view(stream).substr(split)}) {
      d.Feed(part);
      EXPECT_LE(d.buffered(), stream.size());
      while (true) {
        auto next = d.Next();
        ASSERT_TRUE(next.ok());
        if (!next->has_value()) break;
        got.push_back(**next);
      }
    }
    ASSERT_EQ(got.size(), 2u) << "split at " << split;
    EXPECT_EQ(got[0], big);
    EXPECT_EQ(got[1], "{}");
    EXPECT_EQ(d.buffered(), 0u);
  }
}

TEST(FrameCodecTest, AnOversizedLengthFailsWithoutBufferingThePayload) {
  FrameDecoder d(1024);
  d.Feed(std::string("\0\0\x04\x01", 4));  // 1025 bytes announced
  auto next = d.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_NE(next.status().message().find("1025"), std::string::npos);
  EXPECT_EQ(d.buffered(), 0u);
  d.Feed("{}");
  EXPECT_FALSE(d.Next().ok());  // the stream stays broken
  FrameDecoder full;
  full.Feed("\xff\xff\xff\xff");
  EXPECT_FALSE(full.Next().ok());
}

TEST(FrameCodecTest, TheLimitItselfIsAllowed) {
  FrameDecoder d(4);
  d.Feed(Frame("abcd"));
  auto next = d.Next();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ(**next, "abcd");
  EXPECT_FALSE(EncodeFrame(std::string(kMaxFrameBytes + 1, ' ')).ok());
}

}  // namespace
}  // namespace gsk::protocol
