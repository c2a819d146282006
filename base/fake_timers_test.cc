#include "base/fake_timers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gsk {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;

TEST(FakeTimersTest, FiresDueTimersInOrderWithTheClockAtTheirDueTime) {
  FakeClock clock;
  FakeTimers timers(clock);
  std::vector<std::string> fired;
  timers.After(milliseconds(300),
               [&] { fired.push_back("c@" + std::to_string(clock.MonotonicMillis())); });
  timers.After(milliseconds(100),
               [&] { fired.push_back("a@" + std::to_string(clock.MonotonicMillis())); });
  timers.After(milliseconds(100),
               [&] { fired.push_back("b@" + std::to_string(clock.MonotonicMillis())); });
  TimerId cancelled = timers.After(milliseconds(200), [&] { fired.push_back("x"); });
  timers.Cancel(cancelled);
  timers.Cancel(cancelled);  // harmless
  EXPECT_EQ(timers.pending(), 3u);
  EXPECT_EQ(timers.NextDelay(), milliseconds(100));

  timers.Advance(milliseconds(99));
  EXPECT_TRUE(fired.empty());
  timers.Advance(milliseconds(151));
  EXPECT_THAT(fired, ElementsAre("a@100", "b@100"));
  EXPECT_EQ(clock.MonotonicMillis(), 250);
  timers.AdvanceTo(1000);
  EXPECT_THAT(fired, ElementsAre("a@100", "b@100", "c@300"));
  EXPECT_EQ(clock.MonotonicMillis(), 1000);
  EXPECT_EQ(timers.pending(), 0u);
  EXPECT_FALSE(timers.NextDelay().has_value());
}

TEST(FakeTimersTest, TimersSetByCallbacksFireInTheSameAdvanceWhenDue) {
  FakeClock clock;
  FakeTimers timers(clock);
  std::vector<int64_t> fired;
  std::function<void()> tick = [&] {
    fired.push_back(clock.MonotonicMillis());
    if (fired.size() < 5) timers.After(milliseconds(10), tick);
  };
  timers.After(milliseconds(0), tick);
  EXPECT_TRUE(fired.empty());  // never inside After
  timers.Advance(milliseconds(25));
  EXPECT_THAT(fired, ElementsAre(0, 10, 20));
  timers.Advance(milliseconds(100));
  EXPECT_THAT(fired, ElementsAre(0, 10, 20, 30, 40));
}

}  // namespace
}  // namespace gsk
