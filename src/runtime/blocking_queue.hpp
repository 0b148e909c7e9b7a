// src/runtime/blocking_queue.hpp: a closable multi-producer multi-consumer FIFO.
//
// Consumers spin briefly before sleeping on a condition variable (a futex
// underneath): a worker that just finished a task usually finds the next one
// within the spin and never pays for a sleep and a wake-up.  Producers notify
// only when a consumer sleeps that no earlier push has woken yet: a consumer
// can take a while to run after its wake-up, and a producer pushing item
// after item meanwhile must not make a system call for each of them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "runtime/futex.hpp"

namespace interpool::rt {

template <class T>
class BlockingQueue {
 public:
  /// `spin` is how many times pop() polls the size before it sleeps.
  explicit BlockingQueue(unsigned spin = 0) : _spin(spin) {}
  BlockingQueue(const BlockingQueue&) = delete;
  BlockingQueue& operator=(const BlockingQueue&) = delete;

  /// Appends an item.  Returns false (and drops nothing) once closed.
  bool push(T item) {
    bool wake;
    {
      std::lock_guard lock(_mutex);
      if (_closed) return false;
      _items.push_back(std::move(item));
      _size.store(_items.size(), std::memory_order_release);
      wake = wants_wake_locked();
    }
    if (wake) _cv.notify_one();
    return true;
  }

  /// Appends every item of `items` (which is left empty) under one lock, with
  /// at most one wake-up.  Returns false (and drops nothing) once closed.
  bool push_many(std::vector<T>& items) {
    if (items.empty()) return true;
    bool wake;
    {
      std::lock_guard lock(_mutex);
      if (_closed) return false;
      for (auto& item : items) _items.push_back(std::move(item));
      _size.store(_items.size(), std::memory_order_release);
      wake = wants_wake_locked();
    }
    items.clear();
    if (wake) _cv.notify_one();
    return true;
  }

  /// Blocks for the next item.  Empty once the queue is closed and drained.
  std::optional<T> pop() {
    std::unique_lock lock = lock_when_ready();
    return take_one_locked();
  }

  /// Like pop(), but also returns (empty, with `poked` set) when poke() was
  /// called since this consumer last saw it: consumers do housekeeping then.
  std::optional<T> pop(uint64_t& seen_pokes, bool& poked) {
    poked = false;
    spin_for_items();
    std::unique_lock lock(_mutex);
    while (_items.empty() && !_closed && _pokes == seen_pokes) {
      sleep_locked(lock);
    }
    if (_pokes != seen_pokes) {
      seen_pokes = _pokes;
      poked = true;
      return std::nullopt;
    }
    return take_one_locked();
  }

  /// Wakes every consumer blocked in pop(seen, poked) once.
  void poke() {
    {
      std::lock_guard lock(_mutex);
      ++_pokes;
    }
    _cv.notify_all();
  }

  /// The next item if there is one, without blocking.
  std::optional<T> try_pop() {
    if (_size.load(std::memory_order_acquire) == 0) return std::nullopt;
    std::lock_guard lock(_mutex);
    return take_one_locked();
  }

  /// Blocks until at least one item is there, then takes all of them.  Empty
  /// once the queue is closed and drained.
  std::vector<T> pop_all() {
    std::unique_lock lock = lock_when_ready();
    return take_all_locked();
  }

  /// Takes every queued item without blocking.
  std::vector<T> drain() {
    std::lock_guard lock(_mutex);
    return take_all_locked();
  }

  /// Refuses further pushes and wakes every consumer; queued items stay poppable.
  void close() {
    {
      std::lock_guard lock(_mutex);
      _closed = true;
      _closed_flag.store(true, std::memory_order_release);
    }
    _cv.notify_all();
  }

  bool closed() const { return _closed_flag.load(std::memory_order_acquire); }
  std::size_t size() const { return _size.load(std::memory_order_acquire); }

 private:
  void spin_for_items() const {
    for (unsigned i = 0; i < _spin; ++i) {
      if (_size.load(std::memory_order_relaxed) != 0 || _closed_flag.load(std::memory_order_relaxed)) return;
      cpu_relax();
    }
  }

  // A consumer sleeps that no notify is on its way to: wake one, and count
  // it as woken.
  bool wants_wake_locked() {
    if (_sleepers <= _waking) return false;
    ++_waking;
    return true;
  }

  /// Spins, then sleeps until an item is there or the queue is closed:
  /// the wait of pop() and pop_all().  Returns _mutex held.
  std::unique_lock<std::mutex> lock_when_ready() {
    spin_for_items();
    std::unique_lock lock(_mutex);
    while (_items.empty() && !_closed) {
      sleep_locked(lock);
    }
    return lock;
  }

  void sleep_locked(std::unique_lock<std::mutex>& lock) {
    ++_sleepers;
    _cv.wait(lock);
    --_sleepers;
    // Whatever woke this consumer (a push's notify, poke, close or a
    // spurious wake-up), one notify fewer is in flight at most.  Counting
    // low only costs an extra notify later; counting high could lose one.
    if (_waking > 0) --_waking;
  }

  /// The oldest item, taken out; empty if there is none.
  std::optional<T> take_one_locked() {
    if (_items.empty()) return std::nullopt;
    T item = std::move(_items.front());
    _items.pop_front();
    _size.store(_items.size(), std::memory_order_release);
    return item;
  }

  std::vector<T> take_all_locked() {
    std::vector<T> out;
    out.reserve(_items.size());
    for (auto& item : _items) out.push_back(std::move(item));
    _items.clear();
    _size.store(0, std::memory_order_release);
    return out;
  }

  // _mutex guards _items, _closed, _sleepers and _waking; _size and
  // _closed_flag mirror them for the lock-free spin.
  mutable std::mutex _mutex;
  std::condition_variable _cv;
  std::deque<T> _items;
  bool _closed = false;
  unsigned _sleepers = 0;
  unsigned _waking = 0;  ///< sleepers notified by a push that have not woken yet
  uint64_t _pokes = 0;
  std::atomic<std::size_t> _size{0};
  std::atomic<bool> _closed_flag{false};
  unsigned _spin;
};

}  // namespace interpool::rt
