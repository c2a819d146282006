// FakeClock: a Clock that moves only when a test calls Advance(). Not thread-safe.
#pragma once

#include "base/clock.h"

namespace gsk {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t unix_millis = 1'700'000'000'000) : unix_(unix_millis) {}
  int64_t NowUnixMillis() const override { return unix_; }
  int64_t MonotonicMillis() const override { return mono_; }
  void Advance(int64_t millis) {
    unix_ += millis;
    mono_ += millis;
  }

 private:
  int64_t unix_;
  int64_t mono_ = 0;
};

}  // namespace gsk
