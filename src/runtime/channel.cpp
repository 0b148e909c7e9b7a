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

ChannelStatus Channel::put(Payload& item, Timeout timeout) {
  const bool zero = is_zero(timeout);
  const Deadline deadline = Deadline::after(timeout);
  bool spun = zero || _capacity == 0 || _spin.count() <= 0;
  Timeout left;
  std::unique_lock lock(_mutex);
  for (;;) {
    if (_closed) return ChannelStatus::Closed;
    if (has_space_locked()) {
      _items.push_back(std::move(item));
      _size.store(_items.size(), std::memory_order_release);
      const bool wake = _get_sleepers != 0;
      if (wake) _item_seq.fetch_add(1, std::memory_order_relaxed);
      lock.unlock();
      if (wake) futex_wake_one(_item_seq);
      return ChannelStatus::Ok;
    }
    if (zero) return ChannelStatus::TimedOut;
    if (!spun) {
      spun = true;
      lock.unlock();
      maybe_spin([&] {
        return _size.load(std::memory_order_relaxed) < _capacity || _closed_flag.load(std::memory_order_relaxed);
      });
      lock.lock();
      continue;
    }
    if (!deadline.left(left)) return ChannelStatus::TimedOut;
    const uint32_t seq = _space_seq.load(std::memory_order_relaxed);
    ++_put_sleepers;
    lock.unlock();
    const WaitStatus status = futex_wait(_space_seq, seq, left);
    lock.lock();
    --_put_sleepers;
    if (status == WaitStatus::Interrupted && !_closed && !has_space_locked()) return ChannelStatus::Interrupted;
  }
}

ChannelStatus Channel::get(Payload& out, Timeout timeout) {
  const bool zero = is_zero(timeout);
  const Deadline deadline = Deadline::after(timeout);
  bool spun = zero || _spin.count() <= 0;
  Timeout left;
  std::unique_lock lock(_mutex);
  for (;;) {
    if (!_items.empty()) {
      out = std::move(_items.front());
      _items.pop_front();
      _size.store(_items.size(), std::memory_order_release);
      const bool wake = _put_sleepers != 0;
      if (wake) _space_seq.fetch_add(1, std::memory_order_relaxed);
      lock.unlock();
      if (wake) futex_wake_one(_space_seq);
      return ChannelStatus::Ok;
    }
    if (_closed) return ChannelStatus::Closed;
    if (zero) return ChannelStatus::TimedOut;
    if (!spun) {
      spun = true;
      lock.unlock();
      maybe_spin(
          [&] { return _size.load(std::memory_order_relaxed) != 0 || _closed_flag.load(std::memory_order_relaxed); });
      lock.lock();
      continue;
    }
    if (!deadline.left(left)) return ChannelStatus::TimedOut;
    const uint32_t seq = _item_seq.load(std::memory_order_relaxed);
    ++_get_sleepers;
    lock.unlock();
    const WaitStatus status = futex_wait(_item_seq, seq, left);
    lock.lock();
    --_get_sleepers;
    if (status == WaitStatus::Interrupted && _items.empty() && !_closed) return ChannelStatus::Interrupted;
  }
}

void Channel::close() {
  {
    std::lock_guard lock(_mutex);
    if (_closed) return;
    _closed = true;
    _closed_flag.store(true, std::memory_order_release);
    _item_seq.fetch_add(1, std::memory_order_relaxed);
    _space_seq.fetch_add(1, std::memory_order_relaxed);
  }
  futex_wake_all(_item_seq);
  futex_wake_all(_space_seq);
}

}  // namespace interpool::rt
