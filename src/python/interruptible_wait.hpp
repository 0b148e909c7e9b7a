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
#include <utility>

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

/// wait_released for at most `timeout` (empty: forever), after a try with
/// the GIL held came up empty: a zero timeout returns 0 at once, without
/// releasing the GIL.  The one timed wait of Queue, the locks, Semaphore and
/// Event.
template <class Attempt>
int wait_released_for(const Timeout& timeout, Attempt&& attempt) {
  if (timeout && timeout->count() <= 0) return 0;
  return wait_released(rt::Deadline::after(timeout), std::forward<Attempt>(attempt));
}

/// What a wait returns to Python, as threading's waits do: True once the
/// wait succeeded (r 1), False on timeout (r 0), null with the exception (r -1).
inline PyObject* wait_outcome(int r) { return r < 0 ? nullptr : PyBool_FromLong(r); }

}  // namespace interpool::py
