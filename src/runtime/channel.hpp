// src/runtime/channel.hpp: the core of interpool.Queue.
//
// A FIFO of Payloads shared by every interpreter that holds the handle:
// bounded (capacity > 0) or not, with blocking put/get, timeouts, and close.
// Putters encode in their interpreter and move the bytes in; getters move
// them out and decode in theirs.  Only bytes and handles cross.
//
// Waiting: a getter (a putter on a full queue) first spins for a few
// microseconds, watching lock-free mirrors of the size, because in a
// ping-pong between two interpreters on two cores the reply usually comes
// within that time; then it sleeps on a futex sequence word that put (get)
// bumps, with a system call only when someone sleeps.  Spinning is adaptive:
// after a few spins in a row came up empty (the other side runs on the same
// core, or takes long to answer, or many threads contend) the channel stops
// spinning, and only probes with a spin now and then.  Waits return
// Interrupted after a signal and TimedOut when the timeout ends, so callers
// can wait in slices.
//
// close() refuses further puts and wakes every waiter; gets drain the items
// left, then report Closed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>

#include "runtime/block.hpp"
#include "runtime/sync.hpp"

namespace interpool::rt {

enum class ChannelStatus {
  Ok,           ///< the item was put / got
  Closed,       ///< put: the channel is closed; get: closed and drained
  TimedOut,     ///< the timeout ended (at once for a zero timeout): full / empty
  Interrupted,  ///< a signal arrived: check for handlers, then call again
};

class Channel final : public Handle {
 public:
  /// `capacity` 0: unbounded.  `spin`: how long a blocking call spins before
  /// it sleeps.
  explicit Channel(std::size_t capacity = 0, std::chrono::nanoseconds spin = default_spin())
      : _capacity(capacity), _spin(spin) {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  /// Appends `item` (moved from only on Ok), waiting while the channel is full
  /// for at most `timeout` (forever if empty; a zero timeout never waits).
  ChannelStatus put(Payload& item, Timeout timeout = std::nullopt);
  /// Takes the oldest item into `out`, waiting while the channel is empty.
  ChannelStatus get(Payload& out, Timeout timeout = std::nullopt);

  ChannelStatus try_put(Payload& item) { return put(item, std::chrono::nanoseconds(0)); }
  ChannelStatus try_get(Payload& out) { return get(out, std::chrono::nanoseconds(0)); }

  /// Refuses further puts and wakes every waiter.  Idempotent.
  void close();

  bool closed() const { return _closed_flag.load(std::memory_order_acquire); }
  std::size_t size() const { return _size.load(std::memory_order_acquire); }
  std::size_t capacity() const { return _capacity; }
  bool full() const { return _capacity != 0 && size() >= _capacity; }

 private:
  /// The threads that sleep until one kind of change (an item arrives, or
  /// space appears): a futex word the other side bumps, and how many sleep
  /// on it (under _mutex).
  struct Sleepers {
    std::atomic<uint32_t> seq{0};
    uint32_t count = 0;
  };

  /// Items are queued only while this is true; _mutex held.
  bool has_space_locked() const { return _capacity == 0 || _items.size() < _capacity; }
  /// Spins until `ready()` or the spin budget ends, if spinning has paid off
  /// lately (or a probe is due).  Mutex not held.
  template <class Pred>
  void maybe_spin(Pred&& ready);
  /// The one wait loop of put and get.  `attempt(lock)`, under _mutex, returns
  /// the outcome, or nothing while the caller must wait; then the loop spins
  /// once (if `may_spin`) until `ready()`, and sleeps on `sleepers`, until
  /// the timeout ends or a signal arrives.
  template <class Attempt, class Ready>
  ChannelStatus wait_for(Timeout timeout, bool may_spin, Sleepers& sleepers, Attempt&& attempt, Ready&& ready);
  /// After a change that `sleepers` wait for (_mutex held by `lock`):
  /// unlocks, and wakes one of them if any sleeps.
  static void unlock_and_wake(std::unique_lock<std::mutex>& lock, Sleepers& sleepers);

  /// Spins in a row that ended without the awaited change; spinning stops
  /// at kMaxMisses, except one probe every kProbeEvery waits.
  static constexpr uint32_t kMaxMisses = 4, kProbeEvery = 32;

  const std::size_t _capacity;
  const std::chrono::nanoseconds _spin;

  // _mutex guards _items, _closed and the sleeper counts; _size and
  // _closed_flag mirror them for lock-free spinning and queries.
  std::mutex _mutex;
  std::deque<Payload> _items;
  bool _closed = false;
  std::atomic<std::size_t> _size{0};
  std::atomic<bool> _closed_flag{false};
  std::atomic<uint32_t> _spin_misses{0};
  std::atomic<uint32_t> _unspun_waits{0};
  Sleepers _getters;  ///< woken when an item arrives
  Sleepers _putters;  ///< woken when space appears
};

}  // namespace interpool::rt
