// src/runtime/deadline.hpp: when a wait must end, and waits in slices.
//
// Every timed wait of interpool turns its timeout into a Deadline once, then
// asks it for the time left before each sleep, so that spurious wake-ups and
// retries never stretch the timeout.  A wait that must answer signals sleeps
// in slices of at most kSignalCheckInterval (wait_in_slices) and runs the
// interpreter's checks in between (the binding supplies them: nothing here
// knows Python).
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>

#include "runtime/futex.hpp"

namespace interpool::rt {

/// How long a wait may take: none means forever.
using Timeout = std::optional<std::chrono::nanoseconds>;

/// How long a waiter that must answer signals sleeps before it checks for
/// them, should a signal slip in between its check and its sleep.  The
/// futex wait normally returns at once on a signal (EINTR); this only bounds
/// the unlucky case.
inline constexpr std::chrono::nanoseconds kSignalCheckInterval = std::chrono::milliseconds(100);

/// A point in steady time a wait must end by, or never.
class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  /// Never.
  Deadline() = default;
  /// `timeout` from now; an empty timeout: never.
  static Deadline after(const Timeout& timeout) { return timeout ? Deadline(Clock::now() + *timeout) : Deadline(); }
  static Deadline at(Clock::time_point when) { return Deadline(when); }

  bool never() const { return !_when; }

  /// The time left, in `left` (empty: forever).  False once the deadline
  /// has passed.
  bool left(Timeout& left) const {
    if (!_when) {
      left.reset();
      return true;
    }
    left = *_when - Clock::now();
    return left->count() > 0;
  }

  /// The next slice of a sliced wait, in `slice`: `cap`, or less when the
  /// deadline comes first.  False once the deadline has passed.
  bool slice(std::chrono::nanoseconds cap, std::chrono::nanoseconds& slice) const {
    Timeout rest;
    if (!left(rest)) return false;
    slice = rest ? std::min(cap, *rest) : cap;
    return true;
  }

 private:
  explicit Deadline(Clock::time_point when) : _when(when) {}
  std::optional<Clock::time_point> _when;
};

/// Calls `attempt(slice)` (a wait of at most `slice`) until it returns
/// Woken, and `between()` after each slice that ended otherwise (a timeout
/// slice, a signal).  Returns 1 once `attempt` returned Woken, 0 if the
/// deadline passed first, -1 as soon as `between()` returned false.
template <class Attempt, class Between>
int wait_in_slices(const Deadline& deadline, Attempt&& attempt, Between&& between) {
  for (std::chrono::nanoseconds slice; deadline.slice(kSignalCheckInterval, slice);) {
    if (attempt(slice) == WaitStatus::Woken) return 1;
    if (!between()) return -1;
  }
  return 0;
}

}  // namespace interpool::rt
