// Clock: the source of wall-clock and monotonic time, behind an interface so that tests can
// step time without sleeping (see FakeClock in base/fake_clock.h). SystemClock is thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace gsk {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch (for timestamps that users read).
  virtual int64_t NowUnixMillis() const = 0;
  // Monotonic milliseconds from an unspecified origin (for durations and deadlines).
  virtual int64_t MonotonicMillis() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowUnixMillis() const override;
  int64_t MonotonicMillis() const override;
};

// Formats Unix milliseconds as RFC 3339 UTC with millisecond precision: 2026-11-22T07:37:34.123Z.
std::string FormatRfc3339(int64_t unix_millis);

}  // namespace gsk
