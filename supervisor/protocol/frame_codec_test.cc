#include "supervisor/protocol/frame_codec.h"

#include <gtest/gtest.h>

namespace gsk::protocol {
namespace {

std::string Frame(std::string_view json) {
  Result<std::string> f = EncodeFrame(json);
  EXPECT_TRUE(f.ok());
  return f.ok() ? *f : std::string();
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
