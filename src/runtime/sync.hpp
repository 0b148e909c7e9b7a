// src/runtime/sync.hpp: synchronisation primitives shared across interpreters.
//
// Semaphore, Mutex (threading.Lock), RLock, Event and Barrier are engine
// handles: every interpreter that holds one refers to the same C++ object, so
// a task in one worker interpreter can block on a lock that another releases.
//
// Every wait sleeps on a futex word (after a short spin where a quick hand-off
// is likely).  A wait never loops on a signal by itself: it returns
// Interrupted after EINTR and TimedOut when its timeout passes, so a caller
// that must stay responsive to Ctrl-C waits in slices and checks for pending
// signal handlers in between.  WaitStatus::Woken means success (acquired,
// set, passed); TimedOut and Interrupted mean "not yet".
//
// Nothing here knows Python; the binding (src/python/*_object.cpp, through
// interruptible_wait.hpp) adds the GIL release and the signal checks.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

#include "runtime/block.hpp"
#include "runtime/deadline.hpp"
#include "runtime/futex.hpp"

namespace interpool::rt {

/// How long waits spin before they sleep; zero on a single-CPU machine, where
/// spinning only delays the thread that would make progress.
std::chrono::nanoseconds default_spin();

/// Calls `ready()` in a pause loop until it returns true or `budget` passes.
/// Returns the last result of `ready()`.
template <class Pred>
bool spin_until(Pred&& ready, std::chrono::nanoseconds budget) {
  if (budget.count() <= 0) return ready();
  const auto start = std::chrono::steady_clock::now();
  for (unsigned i = 1;; ++i) {
    if (ready()) return true;
    cpu_relax();
    if ((i & 31) == 0 && std::chrono::steady_clock::now() - start >= budget) return ready();
  }
}

/// A nonzero id of the calling OS thread (its Linux tid), stable for the
/// thread's life.  Every interpreter run by the same thread sees the same id.
uint64_t current_thread_id();

/// A counting semaphore.  With `bounded`, release() refuses to raise the count
/// above the initial value (threading.BoundedSemaphore).
class Semaphore final : public Handle {
 public:
  static constexpr uint32_t kMaxValue = 0x7fffffff;

  explicit Semaphore(uint32_t value, bool bounded = false) : _count(value), _initial(value), _bounded(bounded) {}

  /// Takes one unit if one is free, without blocking.
  bool try_acquire();
  /// Takes one unit.  Woken: taken; TimedOut / Interrupted: not taken.
  WaitStatus acquire(Timeout timeout = std::nullopt);
  /// Adds `n` units and wakes up to `n` waiters.  False (and nothing added) if
  /// that would exceed the initial value of a bounded semaphore, or kMaxValue.
  bool release(uint32_t n = 1);

  uint32_t value() const { return _count.load(std::memory_order_acquire); }
  uint32_t initial_value() const { return _initial; }
  bool bounded() const { return _bounded; }

 private:
  std::atomic<uint32_t> _count;     ///< the futex word: free units
  std::atomic<uint32_t> _sleepers{0};
  const uint32_t _initial;
  const bool _bounded;
};

/// A non-recursive lock that any thread may release (threading.Lock).
class Mutex final : public Handle {
 public:
  bool try_lock();
  /// Woken: acquired; TimedOut / Interrupted: not acquired.
  WaitStatus lock(Timeout timeout = std::nullopt);
  /// Releases the lock.  False if it was not locked.
  bool unlock();
  bool locked() const { return _word.load(std::memory_order_acquire) != kFree; }

 private:
  static constexpr uint32_t kFree = 0, kLocked = 1, kContended = 2;
  std::atomic<uint32_t> _word{kFree};
};

/// A reentrant lock owned by an OS thread (threading.RLock).
class RLock final : public Handle {
 public:
  /// Acquires without blocking (always succeeds for the owner).
  bool try_acquire();
  /// Woken: acquired (count + 1); TimedOut / Interrupted: not acquired.
  WaitStatus acquire(Timeout timeout = std::nullopt);
  /// Drops one level.  False if the calling thread does not own the lock.
  bool release();
  /// Releases every level the calling thread holds; returns how many (0 if it
  /// does not own the lock).  For threading.Condition's _release_save.
  uint64_t release_all();
  /// After a successful acquire() by a thread that held no level: sets the
  /// recursion count to `count` (threading.Condition's _acquire_restore).
  void set_count(uint64_t count) { _count = count; }

  bool owned_by_current_thread() const { return _owner.load(std::memory_order_relaxed) == current_thread_id(); }
  bool locked() const { return _mutex.locked(); }
  /// The owner's recursion depth; meaningful only for the owner.
  uint64_t count() const { return _count; }

 private:
  Mutex _mutex;
  std::atomic<uint64_t> _owner{0};  ///< thread id, 0 when free
  uint64_t _count = 0;              ///< written by the owner only
};

/// A flag that threads wait for (threading.Event).
class Event final : public Handle {
 public:
  void set();
  void clear();
  bool is_set() const { return _word.load(std::memory_order_acquire) & kSet; }

  /// An opaque stamp of the sets so far, for wait_from().
  uint32_t ticket() const { return _word.load(std::memory_order_acquire) >> kGenShift; }
  /// Woken once the flag is set, or has been set at any moment after
  /// `ticket` was taken (even if cleared again since), as threading.Event.
  WaitStatus wait_from(uint32_t ticket, Timeout timeout = std::nullopt);
  WaitStatus wait(Timeout timeout = std::nullopt) { return wait_from(ticket(), timeout); }

 private:
  // bit 0: set; bit 1: someone sleeps; bits 2..31: how many times it was set.
  static constexpr uint32_t kSet = 1, kSleepers = 2, kGenShift = 2, kGenOne = 1u << kGenShift;
  std::atomic<uint32_t> _word{0};
};

/// A cyclic barrier for a fixed number of parties (threading.Barrier).
///
/// A wait happens in steps so that the caller can run the barrier's action
/// (only it knows how) and check for signals between slices:
///
///   arrive(index)          blocks while the previous cycle drains; assigns
///                          the arrival index.  Then, unless it said Broken,
///   if index == parties-1: run the action, then trip(action succeeded);
///   else:                  await() until Ok or Broken (break_() on timeout);
///   leave()                always, once arrive() returned Ok.
class Barrier final : public Handle {
 public:
  enum class Result {
    Ok,       ///< done: arrived / passed
    Broken,   ///< the barrier is broken or was reset: BrokenBarrierError
    Pending,  ///< the slice ended (timeout or signal) before an outcome
  };

  /// `action` is opaque to the runtime: an encoded callable, or empty.
  Barrier(uint32_t parties, Payload action = {}, Timeout default_timeout = std::nullopt)
      : _parties(parties), _action(std::move(action)), _default_timeout(default_timeout) {}

  Result arrive(uint32_t& index, Timeout slice = std::nullopt);
  Result await(Timeout slice = std::nullopt);
  Result trip(bool action_ok);
  void leave();

  /// Returns the barrier to its empty state; current waiters get Broken.
  void reset();
  /// Breaks the barrier: current and future waiters get Broken until reset().
  void abort();

  uint32_t parties() const { return _parties; }
  uint32_t n_waiting() const;
  bool broken() const;
  const Payload& action() const { return _action; }
  Timeout default_timeout() const { return _default_timeout; }

 private:
  enum class State { Filling, Tripping, Draining, Resetting, Broken };
  void notify_locked();
  /// Sleeps on _seq (the lock released) for at most `slice`; false if the
  /// slice ended without a notification (timeout or signal).
  bool sleep(std::unique_lock<std::mutex>& lock, Timeout slice);

  const uint32_t _parties;
  const Payload _action;
  const Timeout _default_timeout;
  mutable std::mutex _mutex;  // guards _state and _count; held only briefly
  State _state = State::Filling;
  uint32_t _count = 0;
  std::atomic<uint32_t> _seq{0};  ///< bumped (and woken) at every state change
};

}  // namespace interpool::rt
