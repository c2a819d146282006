// Timers: one-shot callbacks after a delay, behind an interface so that the worker state machine
// can be stepped by a test (FakeTimers in fake_timers.h) without sleeping. Thread-safety: a
// Timers belongs to the thread that runs its io_context; call it and receive its callbacks there.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace gsk {

using TimerId = uint64_t;  // never 0 for a timer that was set, never reused

class Timers {
 public:
  virtual ~Timers() = default;
  // Calls `fn` once after `delay` (0 or negative: as soon as possible, never inside After).
  virtual TimerId After(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
  // The callback of `id` will not run. Harmless for a timer that already fired or is unknown.
  virtual void Cancel(TimerId id) = 0;
};

// Timers on `io` (asio steady_timer). REQUIRES: `io` outlives the callbacks' execution or the
// Timers; destroying the Timers cancels every pending callback.
std::unique_ptr<Timers> MakeAsioTimers(boost::asio::io_context& io);

}  // namespace gsk
