// src/python/interruptible_wait.hpp: waits with the GIL released that answer
// signals and interrupts.
//
// Blocking: every call first tries without blocking, with the GIL held.  If it
// must wait, it releases the GIL and waits in slices of at most
// rt::kSignalCheckInterval (100 ms); after each slice that ended without an
// outcome (timeout slice, or EINTR) it takes the GIL back and runs
// check_signals_and_interrupt(), so that Ctrl-C in the main thread interrupts
// the wait, as it does threading.Lock.acquire(), and so does interrupt() (or
// a timeout) of the task that waits.
#pragma once

#include <chrono>

#include "python/interrupt.hpp"
#include "python/ref.hpp"
#include "runtime/deadline.hpp"

namespace interpool::py {

using rt::Timeout;
using rt::WaitStatus;

/// Waits with the GIL released: calls `attempt(slice)` until it returns
/// Woken (the outcome is known), with the GIL taken back between slices to
/// run `check` (by default check_signals_and_interrupt).  Returns 1 once
/// `attempt` returned Woken, 0 if the deadline passed first, -1 with an
/// exception set if `check` failed (a signal handler raised, an interrupt).
template <class Attempt, class Check = int (*)()>
int wait_released(const rt::Deadline& deadline, Attempt&& attempt, Check check = check_signals_and_interrupt) {
  return rt::wait_in_slices(
      deadline,
      [&](std::chrono::nanoseconds slice) {
        ReleasedGil released;
        return attempt(slice);
      },
      [&] { return check() >= 0; });
}

/// Acquires with the GIL released (after a failed try with it held): the
/// shared tail of Lock, RLock and Semaphore acquire.
template <class Acquire>
PyObject* acquire_tail(const Timeout& timeout, Acquire&& acquire) {
  if (timeout && timeout->count() <= 0) Py_RETURN_FALSE;
  int r = wait_released(rt::Deadline::after(timeout), [&](std::chrono::nanoseconds slice) { return acquire(slice); });
  if (r < 0) return nullptr;
  return PyBool_FromLong(r);
}

}  // namespace interpool::py
