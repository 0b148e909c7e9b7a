// src/python/interruptible_wait.hpp: waits with the GIL released that answer
// signals and interrupts.
//
// Blocking: every call first tries without blocking, with the GIL held.  If it
// must wait, it releases the GIL and waits in slices of at most 100 ms; after
// each slice that ended without an outcome (timeout slice, or EINTR) it takes
// the GIL back and runs check_signals_and_interrupt(), so that Ctrl-C in the
// main thread interrupts the wait, as it does threading.Lock.acquire(), and
// so does interrupt() (or a timeout) of the task that waits.
#pragma once

#include <chrono>
#include <optional>

#include "python/interrupt.hpp"
#include "python/ref.hpp"
#include "runtime/futex.hpp"
#include "runtime/sync.hpp"

namespace interpool::py {

using Clock = std::chrono::steady_clock;
using rt::Timeout;
using rt::WaitStatus;

constexpr auto kSignalCheckInterval = std::chrono::milliseconds(100);

/// A deadline, or none for "forever".
using Deadline = std::optional<Clock::time_point>;

inline Deadline deadline_after(const Timeout& timeout) {
  if (!timeout) return std::nullopt;
  return Clock::now() + *timeout;
}

/// Waits with the GIL released: calls `attempt(slice)` until it returns
/// Woken (the outcome is known), checking for signals between slices.
/// Returns 1 once `attempt` returned Woken, 0 if the deadline passed first,
/// -1 with an exception set if a signal handler raised.
template <class Attempt>
int wait_released(const Deadline& deadline, Attempt&& attempt) {
  for (;;) {
    std::chrono::nanoseconds slice = kSignalCheckInterval;
    if (deadline) {
      auto left = *deadline - Clock::now();
      if (left <= std::chrono::nanoseconds::zero()) return 0;
      slice = std::min<std::chrono::nanoseconds>(slice, left);
    }
    WaitStatus status;
    {
      ReleasedGil released;
      status = attempt(slice);
    }
    if (status == WaitStatus::Woken) return 1;
    if (check_signals_and_interrupt() < 0) return -1;
  }
}

/// Acquires with the GIL released (after a failed try with it held): the
/// shared tail of Lock, RLock and Semaphore acquire.
template <class Acquire>
PyObject* acquire_tail(const Timeout& timeout, Acquire&& acquire) {
  if (timeout && timeout->count() <= 0) Py_RETURN_FALSE;
  int r = wait_released(deadline_after(timeout), [&](std::chrono::nanoseconds slice) { return acquire(slice); });
  if (r < 0) return nullptr;
  return PyBool_FromLong(r);
}

}  // namespace interpool::py
