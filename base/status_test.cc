#include "base/status.h"

#include <gtest/gtest.h>

#include "base/clock.h"
#include "base/fake_clock.h"
#include "base/result.h"

namespace gsk {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  GSK_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(StatusTest, OkAndErrorCarryCodeMessageAndDetails) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = NotFound("kernel \"x\" does not exist").WithDetail("name", "x");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NOT_FOUND: kernel \"x\" does not exist");
  ASSERT_EQ(s.details().size(), 1u);
  EXPECT_EQ(s.details()[0].first, "name");
  EXPECT_EQ(s.Annotate("deleting").message(), "deleting: kernel \"x\" does not exist");
  EXPECT_EQ(s.Annotate("deleting").details().size(), 1u);
}

TEST(ResultTest, PropagatesErrorsAndValues) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd: 3");
}

TEST(ClockTest, FormatsRfc3339AndFakeClockAdvances) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(1'700'000'000'123), "2023-11-14T22:13:20.123Z");
  FakeClock clock;
  int64_t before = clock.MonotonicMillis();
  clock.Advance(250);
  EXPECT_EQ(clock.MonotonicMillis() - before, 250);
}

}  // namespace
}  // namespace gsk
