// src/runtime/sync.cpp: Semaphore, Mutex, RLock, Event and Barrier.
#include "runtime/sync.hpp"

#include <functional>
#include <thread>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace interpool::rt {

namespace {

// Lock hand-offs between running threads take well under a microsecond; a
// couple of microseconds of spinning covers them without burning a time slice.
constexpr auto kLockSpin = std::chrono::microseconds(2);

std::chrono::nanoseconds lock_spin() {
  static const auto spin = default_spin().count() ? std::chrono::nanoseconds(kLockSpin) : std::chrono::nanoseconds(0);
  return spin;
}

}  // namespace

// A reply from Python code in another interpreter (decode, a little work,
// encode, put) takes a few microseconds; 20 us of spinning catches it.  On
// two free cores a Queue ping-pong between interpreters then runs at about
// 1.4 million round trips per second, against 170 thousand when every
// hand-off sleeps.  Channels stop spinning where it does not pay.
std::chrono::nanoseconds default_spin() {
  static const std::chrono::nanoseconds spin = std::thread::hardware_concurrency() > 1
                                                   ? std::chrono::nanoseconds(std::chrono::microseconds(20))
                                                   : std::chrono::nanoseconds(0);
  return spin;
}

uint64_t current_thread_id() {
#if defined(__linux__)
  static thread_local const uint64_t id = static_cast<uint64_t>(syscall(SYS_gettid));
#else
  static thread_local const uint64_t id = std::hash<std::thread::id>{}(std::this_thread::get_id()) | 1;
#endif
  return id;
}

// ---------------------------------------------------------------- Semaphore

bool Semaphore::try_acquire() {
  uint32_t c = _count.load(std::memory_order_relaxed);
  while (c != 0) {
    if (_count.compare_exchange_weak(c, c - 1, std::memory_order_acquire, std::memory_order_relaxed)) return true;
  }
  return false;
}

WaitStatus Semaphore::acquire(Timeout timeout) {
  if (try_acquire()) return WaitStatus::Woken;
  if (timeout && timeout->count() <= 0) return WaitStatus::TimedOut;
  const Deadline deadline = Deadline::after(timeout);
  if (spin_until([&] { return try_acquire(); }, lock_spin())) return WaitStatus::Woken;
  Timeout left;
  for (;;) {
    if (!deadline.left(left)) return WaitStatus::TimedOut;
    // Dekker with release(): we announce ourselves, then look at the count;
    // release() adds to the count, then looks for sleepers (both seq_cst).
    _sleepers.fetch_add(1, std::memory_order_seq_cst);
    WaitStatus status = WaitStatus::Woken;
    if (_count.load(std::memory_order_seq_cst) == 0) status = futex_wait(_count, 0, left);
    _sleepers.fetch_sub(1, std::memory_order_relaxed);
    if (try_acquire()) return WaitStatus::Woken;
    if (status == WaitStatus::Interrupted) return status;
  }
}

bool Semaphore::release(uint32_t n) {
  if (n == 0) return true;
  const uint32_t limit = _bounded ? _initial : kMaxValue;
  uint32_t c = _count.load(std::memory_order_relaxed);
  do {
    if (c > limit || n > limit - c) return false;
  } while (!_count.compare_exchange_weak(c, c + n, std::memory_order_seq_cst, std::memory_order_relaxed));
  if (_sleepers.load(std::memory_order_seq_cst) != 0) {
    if (n == 1)
      futex_wake_one(_count);
    else
      futex_wake_all(_count);
  }
  return true;
}

// -------------------------------------------------------------------- Mutex

bool Mutex::try_lock() {
  uint32_t expected = kFree;
  return _word.compare_exchange_strong(expected, kLocked, std::memory_order_acquire, std::memory_order_relaxed);
}

WaitStatus Mutex::lock(Timeout timeout) {
  if (try_lock()) return WaitStatus::Woken;
  if (timeout && timeout->count() <= 0) return WaitStatus::TimedOut;
  const Deadline deadline = Deadline::after(timeout);
  if (spin_until([&] { return _word.load(std::memory_order_relaxed) == kFree && try_lock(); }, lock_spin()))
    return WaitStatus::Woken;
  // Drepper's three-state mutex: whoever sleeps marks the word contended, so
  // that the unlocker knows to wake someone.  A waiter that gives up leaves
  // the mark: at worst one futile wake-up later.
  Timeout left;
  for (;;) {
    if (_word.exchange(kContended, std::memory_order_acquire) == kFree) return WaitStatus::Woken;
    if (!deadline.left(left)) return WaitStatus::TimedOut;
    if (futex_wait(_word, kContended, left) == WaitStatus::Interrupted) {
      if (_word.load(std::memory_order_relaxed) == kFree &&
          _word.exchange(kContended, std::memory_order_acquire) == kFree)
        return WaitStatus::Woken;
      return WaitStatus::Interrupted;
    }
  }
}

bool Mutex::unlock() {
  uint32_t w = _word.load(std::memory_order_relaxed);
  do {
    if (w == kFree) return false;
  } while (!_word.compare_exchange_weak(w, kFree, std::memory_order_release, std::memory_order_relaxed));
  if (w == kContended) futex_wake_one(_word);
  return true;
}

// -------------------------------------------------------------------- RLock

bool RLock::try_acquire() {
  const uint64_t me = current_thread_id();
  if (_owner.load(std::memory_order_relaxed) == me) {
    ++_count;
    return true;
  }
  if (!_mutex.try_lock()) return false;
  _owner.store(me, std::memory_order_relaxed);
  _count = 1;
  return true;
}

WaitStatus RLock::acquire(Timeout timeout) {
  if (try_acquire()) return WaitStatus::Woken;
  WaitStatus status = _mutex.lock(timeout);
  if (status == WaitStatus::Woken) {
    _owner.store(current_thread_id(), std::memory_order_relaxed);
    _count = 1;
  }
  return status;
}

bool RLock::release() {
  if (!owned_by_current_thread() || _count == 0) return false;
  if (--_count == 0) {
    _owner.store(0, std::memory_order_relaxed);
    _mutex.unlock();
  }
  return true;
}

uint64_t RLock::release_all() {
  if (!owned_by_current_thread()) return 0;
  uint64_t count = _count;
  _count = 0;
  _owner.store(0, std::memory_order_relaxed);
  _mutex.unlock();
  return count;
}

// -------------------------------------------------------------------- Event

void Event::set() {
  uint32_t w = _word.load(std::memory_order_relaxed);
  uint32_t next;
  do {
    if (w & kSet) return;
    next = ((w + kGenOne) | kSet) & ~kSleepers;
  } while (!_word.compare_exchange_weak(w, next, std::memory_order_acq_rel, std::memory_order_relaxed));
  if (w & kSleepers) futex_wake_all(_word);
}

void Event::clear() { _word.fetch_and(~kSet, std::memory_order_acq_rel); }

WaitStatus Event::wait_from(uint32_t ticket, Timeout timeout) {
  const Deadline deadline = Deadline::after(timeout);
  auto done = [&](uint32_t w) { return (w & kSet) || (w >> kGenShift) != ticket; };
  Timeout left;
  for (;;) {
    uint32_t w = _word.load(std::memory_order_acquire);
    if (done(w)) return WaitStatus::Woken;
    if (!deadline.left(left)) return WaitStatus::TimedOut;
    if (!(w & kSleepers)) {
      if (!_word.compare_exchange_weak(w, w | kSleepers, std::memory_order_acq_rel, std::memory_order_acquire))
        continue;
      w |= kSleepers;
    }
    if (futex_wait(_word, w, left) == WaitStatus::Interrupted)
      return done(_word.load(std::memory_order_acquire)) ? WaitStatus::Woken : WaitStatus::Interrupted;
  }
}

// ------------------------------------------------------------------ Barrier

void Barrier::notify_locked() {
  _seq.fetch_add(1, std::memory_order_release);
  futex_wake_all(_seq);
}

bool Barrier::sleep(std::unique_lock<std::mutex>& lock, Timeout slice) {
  const uint32_t seq = _seq.load(std::memory_order_relaxed);
  lock.unlock();
  WaitStatus status = futex_wait(_seq, seq, slice);
  lock.lock();
  return status == WaitStatus::Woken;
}

Barrier::Result Barrier::arrive(uint32_t& index, Timeout slice) {
  const Deadline deadline = Deadline::after(slice);
  std::unique_lock lock(_mutex);
  Timeout left;
  while (_state == State::Tripping || _state == State::Draining || _state == State::Resetting) {
    if (!deadline.left(left) || !sleep(lock, left)) {
      if (_state == State::Filling || _state == State::Broken) break;
      return Result::Pending;
    }
  }
  if (_state == State::Broken) return Result::Broken;
  index = _count++;
  if (_count == _parties) _state = State::Tripping;
  return Result::Ok;
}

Barrier::Result Barrier::await(Timeout slice) {
  const Deadline deadline = Deadline::after(slice);
  std::unique_lock lock(_mutex);
  Timeout left;
  for (;;) {
    switch (_state) {
      case State::Draining: return Result::Ok;
      case State::Broken:
      case State::Resetting: return Result::Broken;
      case State::Filling:
      case State::Tripping: break;
    }
    if (!deadline.left(left) || !sleep(lock, left)) {
      if (_state == State::Filling || _state == State::Tripping) return Result::Pending;
    }
  }
}

Barrier::Result Barrier::trip(bool action_ok) {
  std::lock_guard lock(_mutex);
  if (_state != State::Tripping) return Result::Broken;  // reset() or abort() while the action ran
  _state = action_ok ? State::Draining : State::Broken;
  notify_locked();
  return action_ok ? Result::Ok : Result::Broken;
}

void Barrier::leave() {
  std::lock_guard lock(_mutex);
  if (_count > 0) --_count;
  if (_count == 0 && (_state == State::Draining || _state == State::Resetting)) {
    _state = State::Filling;
    notify_locked();
  }
}

void Barrier::reset() {
  std::lock_guard lock(_mutex);
  if (_count > 0) {
    if (_state == State::Filling || _state == State::Tripping || _state == State::Broken) _state = State::Resetting;
  } else {
    _state = State::Filling;
  }
  notify_locked();
}

void Barrier::abort() {
  std::lock_guard lock(_mutex);
  _state = State::Broken;
  notify_locked();
}

uint32_t Barrier::n_waiting() const {
  std::lock_guard lock(_mutex);
  return (_state == State::Filling || _state == State::Tripping) ? _count : 0;
}

bool Barrier::broken() const {
  std::lock_guard lock(_mutex);
  return _state == State::Broken;
}

}  // namespace interpool::rt
