// src/runtime/channel.cpp: the Queue core.
//
// Sleeping and waking: a waiter reads the sequence word and registers as a
// sleeper under _mutex, then sleeps while the word keeps that value.  The
// other side changes the state, bumps the word and reads the sleeper count
// under the same mutex, and wakes one sleeper after unlocking.  So a wake-up
// is never lost: either the waiter saw the change, or its futex_wait finds the
// word bumped.  A woken waiter re-checks under the mutex and takes the item
// if it is still there, and never gives up (timeout, signal) while an item
// it could take is there, so a wake-up is never wasted on a waiter that
// leaves while another sleeps on.
#include "runtime/channel.hpp"

#include <optional>

namespace interpool::rt {

namespace {

bool is_zero(const Timeout& timeout) { return timeout && timeout->count() <= 0; }

}  // namespace

template <class Pred>
void Channel::maybe_spin(Pred&& ready) {
  if (_spin.count() <= 0) return;
  const uint32_t misses = _spin_misses.load(std::memory_order_relaxed);
  if (misses >= kMaxMisses && _unspun_waits.fetch_add(1, std::memory_order_relaxed) % kProbeEvery != 0) return;
  if (spin_until(ready, _spin))
    _spin_misses.store(0, std::memory_order_relaxed);
  else if (misses < kMaxMisses)
    _spin_misses.fetch_add(1, std::memory_order_relaxed);
}

void Channel::unlock_and_wake(std::unique_lock<std::mutex>& lock, Sleepers& sleepers) {
  const bool wake = sleepers.count != 0;
  if (wake) sleepers.seq.fetch_add(1, std::memory_order_relaxed);
  lock.unlock();
  if (wake) futex_wake_one(sleepers.seq);
}

template <class Attempt, class Ready>
ChannelStatus Channel::wait_for(Timeout timeout, bool may_spin, Sleepers& sleepers, Attempt&& attempt, Ready&& ready) {
  const bool zero = is_zero(timeout);
  const Deadline deadline = Deadline::after(timeout);
  bool spun = zero || !may_spin || _spin.count() <= 0;
  bool interrupted = false;
  Timeout left;
  std::unique_lock lock(_mutex);
  for (;;) {
    if (std::optional<ChannelStatus> outcome = attempt(lock)) return *outcome;
    // Only now, with nothing to take: a signal never costs an item that is there.
    if (interrupted) return ChannelStatus::Interrupted;
    if (zero) return ChannelStatus::TimedOut;
    if (!spun) {
      spun = true;
      lock.unlock();
      maybe_spin(ready);
      lock.lock();
      continue;
    }
    if (!deadline.left(left)) return ChannelStatus::TimedOut;
    const uint32_t seq = sleepers.seq.load(std::memory_order_relaxed);
    ++sleepers.count;
    lock.unlock();
    const WaitStatus status = futex_wait(sleepers.seq, seq, left);
    lock.lock();
    --sleepers.count;
    interrupted = status == WaitStatus::Interrupted;
  }
}

ChannelStatus Channel::put(Payload& item, Timeout timeout) {
  return wait_for(
      timeout, _capacity != 0, _putters,
      [&](std::unique_lock<std::mutex>& lock) -> std::optional<ChannelStatus> {
        if (_closed) return ChannelStatus::Closed;
        if (!has_space_locked()) return std::nullopt;
        _items.push_back(std::move(item));
        _size.store(_items.size(), std::memory_order_release);
        unlock_and_wake(lock, _getters);
        return ChannelStatus::Ok;
      },
      [&] {
        return _size.load(std::memory_order_relaxed) < _capacity || _closed_flag.load(std::memory_order_relaxed);
      });
}

ChannelStatus Channel::get(Payload& out, Timeout timeout) {
  return wait_for(
      timeout, true, _getters,
      [&](std::unique_lock<std::mutex>& lock) -> std::optional<ChannelStatus> {
        if (_items.empty()) return _closed ? std::optional(ChannelStatus::Closed) : std::nullopt;
        out = std::move(_items.front());
        _items.pop_front();
        _size.store(_items.size(), std::memory_order_release);
        unlock_and_wake(lock, _putters);
        return ChannelStatus::Ok;
      },
      [&] { return _size.load(std::memory_order_relaxed) != 0 || _closed_flag.load(std::memory_order_relaxed); });
}

void Channel::close() {
  {
    std::lock_guard lock(_mutex);
    if (_closed) return;
    _closed = true;
    _closed_flag.store(true, std::memory_order_release);
    _getters.seq.fetch_add(1, std::memory_order_relaxed);
    _putters.seq.fetch_add(1, std::memory_order_relaxed);
  }
  futex_wake_all(_getters.seq);
  futex_wake_all(_putters.seq);
}

}  // namespace interpool::rt
