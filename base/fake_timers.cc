#include "base/fake_timers.h"

namespace gsk {

TimerId FakeTimers::After(std::chrono::milliseconds delay, std::function<void()> fn) {
  TimerId id = next_id_++;
  int64_t due = clock_.MonotonicMillis() + std::max<int64_t>(delay.count(), 0);
  timers_.emplace(std::make_pair(due, id), std::move(fn));
  due_of_.emplace(id, due);
  return id;
}

void FakeTimers::Cancel(TimerId id) {
  auto it = due_of_.find(id);
  if (it == due_of_.end()) return;
  timers_.erase(std::make_pair(it->second, id));
  due_of_.erase(it);
}

void FakeTimers::AdvanceTo(int64_t monotonic_ms) {
  while (!timers_.empty() && timers_.begin()->first.first <= monotonic_ms) {
    auto first = timers_.begin();
    auto [due, id] = first->first;
    std::function<void()> fn = std::move(first->second);
    timers_.erase(first);
    due_of_.erase(id);
    if (due > clock_.MonotonicMillis()) clock_.Advance(due - clock_.MonotonicMillis());
    fn();
  }
  if (monotonic_ms > clock_.MonotonicMillis())
    clock_.Advance(monotonic_ms - clock_.MonotonicMillis());
}

std::optional<std::chrono::milliseconds> FakeTimers::NextDelay() const {
  if (timers_.empty()) return std::nullopt;
  return std::chrono::milliseconds(timers_.begin()->first.first - clock_.MonotonicMillis());
}

}  // namespace gsk
