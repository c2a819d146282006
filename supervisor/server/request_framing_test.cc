#include "supervisor/server/request_framing.h"

#include <gtest/gtest.h>

namespace gsk::server {
namespace {

Status Check(std::vector<std::string> te, std::vector<std::string> cl, unsigned version = 11) {
  return CheckFraming({version, std::move(te), std::move(cl)});
}

TEST(RequestFramingTest, PlainLengthsAndChunkedAreFine) {
  EXPECT_TRUE(Check({}, {}).ok());
  EXPECT_TRUE(Check({}, {"0"}).ok());
  EXPECT_TRUE(Check({}, {"1048576"}).ok());
  EXPECT_TRUE(Check({"chunked"}, {}).ok());
  EXPECT_TRUE(Check({"Chunked"}, {}).ok());
  EXPECT_TRUE(Check({}, {"12"}, 10).ok());
}

TEST(RequestFramingTest, AmbiguousLengthsAreRefusedSayingWhy) {
  struct Case {
    std::vector<std::string> te, cl;
    unsigned version;
    const char* why;
  } cases[] = {
      {{"gzip, chunked"}, {}, 11, "only \"chunked\""},
      {{"chunked, identity"}, {}, 11, "only \"chunked\""},
      {{"identity"}, {}, 11, "only \"chunked\""},
      {{"chunked"}, {"5"}, 11, "both Transfer-Encoding and Content-Length"},
      {{"chunked", "chunked"}, {}, 11, "appears 2 times"},
      {{"chunked"}, {}, 10, "HTTP/1.0"},
      {{}, {"5", "5"}, 11, "Content-Length appears 2 times"},
      {{}, {"+5"}, 11, "not a number"},
      {{}, {"5 "}, 11, "not a number"},
      {{}, {"99999999999999999999"}, 11, "not a number"},
  };
  for (const auto& c : cases) {
    Status s = Check(c.te, c.cl, c.version);
    ASSERT_FALSE(s.ok()) << c.why;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(c.why), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace gsk::server
