// FakeTimers: Timers for unit tests, driven by a FakeClock. Nothing fires until the test calls
// Advance/AdvanceTo, which move the clock to each due timer in turn (earliest first, then in the
// order they were set) and run it, including timers set by the callbacks themselves if they fall
// due before the target. Not thread-safe: use it from the test thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <utility>

#include "base/fake_clock.h"
#include "base/timers.h"

namespace gsk {

class FakeTimers final : public Timers {
 public:
  explicit FakeTimers(FakeClock& clock) : clock_(clock) {}

  TimerId After(std::chrono::milliseconds delay, std::function<void()> fn) override;
  void Cancel(TimerId id) override;

  // Runs every timer due at or before monotonic time `monotonic_ms`, then leaves the clock there
  // (never moves it backwards).
  void AdvanceTo(int64_t monotonic_ms);
  void Advance(std::chrono::milliseconds by) { AdvanceTo(clock_.MonotonicMillis() + by.count()); }

  size_t pending() const { return timers_.size(); }
  // Milliseconds from now until the earliest pending timer, if any.
  std::optional<std::chrono::milliseconds> NextDelay() const;

 private:
  // Keyed by (due monotonic ms, id): iteration order is firing order.
  std::map<std::pair<int64_t, TimerId>, std::function<void()>> timers_;
  std::map<TimerId, int64_t> due_of_;
  FakeClock& clock_;
  TimerId next_id_ = 1;
};

}  // namespace gsk
