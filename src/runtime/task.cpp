// src/runtime/task.cpp: the Task state machine.
#include "runtime/task.hpp"

#include "runtime/deadline.hpp"

namespace interpool::rt {

bool Task::try_start() {
  uint32_t w = _word.load(std::memory_order_acquire);
  while ((w & kStateMask) == static_cast<uint32_t>(State::Queued)) {
    if (_word.compare_exchange_weak(w, (w & ~kStateMask) | static_cast<uint32_t>(State::Running),
                                    std::memory_order_acq_rel))
      return true;
  }
  return false;
}

bool Task::try_cancel() {
  uint32_t w = _word.load(std::memory_order_acquire);
  while ((w & kStateMask) == static_cast<uint32_t>(State::Queued)) {
    if (_word.compare_exchange_weak(w, static_cast<uint32_t>(State::Cancelled), std::memory_order_acq_rel)) {
      if (w & kWaiters) futex_wake_all(_word);
      return true;
    }
  }
  return false;
}

void Task::finish() {
  uint32_t old = _word.exchange(static_cast<uint32_t>(State::Done), std::memory_order_acq_rel);
  if (old & kWaiters) futex_wake_all(_word);
}

WaitStatus Task::wait(std::optional<std::chrono::nanoseconds> timeout) {
  const Deadline deadline = Deadline::after(timeout);
  for (;;) {
    uint32_t w = _word.load(std::memory_order_acquire);
    if ((w & kStateMask) >= static_cast<uint32_t>(State::Done)) return WaitStatus::Woken;
    if (!(w & kWaiters)) {
      if (!_word.compare_exchange_weak(w, w | kWaiters, std::memory_order_acq_rel)) continue;
      w |= kWaiters;
    }
    Timeout left;
    if (!deadline.left(left)) return WaitStatus::TimedOut;
    WaitStatus s = futex_wait(_word, w, left);
    if (s == WaitStatus::Interrupted) return s;
  }
}

}  // namespace interpool::rt
