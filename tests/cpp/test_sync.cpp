// tests/cpp/test_sync.cpp: specification of runtime/sync.hpp.
//
// Semaphore, Mutex, RLock, Event and Barrier: the threading module's
// semantics, shared by any threads; blocked waiters sleep in futex(2) (no
// polling), are woken by the matching release, honour their timeouts, and
// return Interrupted when a signal arrives so that callers can run handlers.
#include "runtime/sync.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "test_support.hpp"

using namespace interpool::test;  // Blocked, kHangGuard, NoopHandler, Clock, std::chrono_literals
using interpool::rt::Barrier;
using interpool::rt::Event;
using interpool::rt::Handle;
using interpool::rt::Mutex;
using interpool::rt::RLock;
using interpool::rt::Semaphore;
using interpool::rt::WaitStatus;
using Result = Barrier::Result;

static_assert(std::is_base_of_v<Handle, Semaphore> && std::is_base_of_v<Handle, Mutex> &&
                  std::is_base_of_v<Handle, RLock> && std::is_base_of_v<Handle, Event> &&
                  std::is_base_of_v<Handle, Barrier>,
              "every primitive is an engine handle, so it can cross interpreters");

namespace {

using BlockedWait = Blocked<WaitStatus>;

}  // namespace

// ================================================================ Semaphore

TEST(Semaphore, TryAcquireTakesUnitsUntilNoneIsLeft) {
  Semaphore sem(2);
  EXPECT_EQ(sem.value(), 2u);
  EXPECT_TRUE(sem.try_acquire());
  EXPECT_TRUE(sem.try_acquire());
  EXPECT_FALSE(sem.try_acquire());
  EXPECT_EQ(sem.value(), 0u);
  EXPECT_TRUE(sem.release());
  EXPECT_EQ(sem.value(), 1u);
}

TEST(Semaphore, AcquireTimesOutWhenNoUnitIsFree) {
  Semaphore sem(0);
  const auto t0 = Clock::now();
  EXPECT_EQ(sem.acquire(50ms), WaitStatus::TimedOut);
  EXPECT_GE(Clock::now() - t0, 50ms);
  EXPECT_EQ(sem.acquire(0ns), WaitStatus::TimedOut);
  EXPECT_EQ(sem.value(), 0u);
}

TEST(Semaphore, ReleaseWakesASleepingWaiter) {
  Semaphore sem(0);
  BlockedWait w([&] { return sem.acquire(kHangGuard); });
  ASSERT_TRUE(w.asleep_on(sem)) << "a waiter must sleep in futex, not poll";
  EXPECT_FALSE(w.done.load());
  sem.release();
  EXPECT_EQ(w.join(), WaitStatus::Woken);
  EXPECT_EQ(sem.value(), 0u) << "the waiter took the unit";
}

TEST(Semaphore, ReleaseOfNWakesNWaiters) {
  Semaphore sem(0);
  std::vector<std::unique_ptr<BlockedWait>> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.push_back(std::make_unique<BlockedWait>([&] { return sem.acquire(kHangGuard); }));
    ASSERT_TRUE(waiters.back()->asleep_on(sem));
  }
  sem.release(3);
  for (auto& w : waiters) EXPECT_EQ(w->join(), WaitStatus::Woken);
  EXPECT_EQ(sem.value(), 0u);
}

TEST(Semaphore, BoundedRefusesToExceedItsInitialValue) {
  Semaphore sem(2, /*bounded=*/true);
  EXPECT_TRUE(sem.bounded());
  EXPECT_FALSE(sem.release()) << "already at its initial value";
  EXPECT_TRUE(sem.try_acquire());
  EXPECT_FALSE(sem.release(2));
  EXPECT_EQ(sem.value(), 1u) << "a refused release adds nothing";
  EXPECT_TRUE(sem.release());
  EXPECT_EQ(sem.value(), 2u);
}

TEST(Semaphore, UnboundedRefusesOnlyToOverflow) {
  Semaphore sem(Semaphore::kMaxValue - 1);
  EXPECT_TRUE(sem.release());
  EXPECT_FALSE(sem.release());
  EXPECT_EQ(sem.value(), Semaphore::kMaxValue);
}

TEST(Semaphore, NeverAdmitsMoreHoldersThanItsValue) {
  Semaphore sem(3);
  std::atomic<int> holders{0}, most{0};
  std::atomic<long> passes{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        ASSERT_EQ(sem.acquire(kHangGuard), WaitStatus::Woken);
        int now = holders.fetch_add(1) + 1;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        if (i % 64 == 0) std::this_thread::yield();
        holders.fetch_sub(1);
        ++passes;
        sem.release();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_LE(most.load(), 3);
  EXPECT_EQ(passes.load(), 8 * 2000);
  EXPECT_EQ(sem.value(), 3u);
}

TEST(Semaphore, AcquireReportsInterruptedWhenASignalArrives) {
  NoopHandler handler(SIGUSR1);
  Semaphore sem(0);
  BlockedWait w([&] { return sem.acquire(kHangGuard); });
  ASSERT_TRUE(w.asleep_on(sem));
  w.interrupt();
  EXPECT_EQ(w.join(), WaitStatus::Interrupted);
  EXPECT_EQ(sem.value(), 0u);
  sem.release();
  EXPECT_EQ(sem.acquire(kHangGuard), WaitStatus::Woken) << "an interrupted wait leaves the semaphore usable";
}

// ==================================================================== Mutex

TEST(Mutex, LocksOnceAndUnlocks) {
  Mutex m;
  EXPECT_FALSE(m.locked());
  EXPECT_TRUE(m.try_lock());
  EXPECT_TRUE(m.locked());
  EXPECT_FALSE(m.try_lock()) << "not reentrant";
  EXPECT_TRUE(m.unlock());
  EXPECT_FALSE(m.locked());
  EXPECT_FALSE(m.unlock()) << "unlocking a free mutex is refused";
}

TEST(Mutex, LockTimesOutWhileHeld) {
  Mutex m;
  ASSERT_TRUE(m.try_lock());
  const auto t0 = Clock::now();
  EXPECT_EQ(m.lock(50ms), WaitStatus::TimedOut);
  EXPECT_GE(Clock::now() - t0, 50ms);
  EXPECT_EQ(m.lock(0ns), WaitStatus::TimedOut);
  EXPECT_TRUE(m.unlock());
  EXPECT_EQ(m.lock(0ns), WaitStatus::Woken);
}

TEST(Mutex, AnotherThreadMayUnlock) {
  Mutex m;
  ASSERT_TRUE(m.try_lock());
  std::thread([&] { EXPECT_TRUE(m.unlock()); }).join();
  EXPECT_FALSE(m.locked());
}

TEST(Mutex, UnlockWakesASleepingLocker) {
  Mutex m;
  ASSERT_TRUE(m.try_lock());
  BlockedWait w([&] { return m.lock(kHangGuard); });
  ASSERT_TRUE(w.asleep_on(m)) << "a blocked locker must sleep in futex, not poll";
  EXPECT_FALSE(w.done.load());
  m.unlock();
  EXPECT_EQ(w.join(), WaitStatus::Woken);
  EXPECT_TRUE(m.locked()) << "the woken thread holds it now";
}

TEST(Mutex, ExcludesUnderContention) {
  Mutex m;
  long counter = 0;  // deliberately not atomic: the mutex must protect it
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        ASSERT_EQ(m.lock(kHangGuard), WaitStatus::Woken);
        long v = counter;
        if (i % 256 == 0) std::this_thread::yield();
        counter = v + 1;
        m.unlock();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, 8 * 20000);
  EXPECT_FALSE(m.locked());
}

TEST(Mutex, LockReportsInterruptedWhenASignalArrives) {
  NoopHandler handler(SIGUSR1);
  Mutex m;
  ASSERT_TRUE(m.try_lock());
  BlockedWait w([&] { return m.lock(kHangGuard); });
  ASSERT_TRUE(w.asleep_on(m));
  w.interrupt();
  EXPECT_EQ(w.join(), WaitStatus::Interrupted);
  EXPECT_TRUE(m.unlock()) << "still held by this thread, not the interrupted one";
  EXPECT_FALSE(m.locked());
}

// ==================================================================== RLock

TEST(RLock, ThreadIdsAreNonzeroAndPerThread) {
  const uint64_t mine = interpool::rt::current_thread_id();
  uint64_t other = 0;
  std::thread([&] { other = interpool::rt::current_thread_id(); }).join();
  EXPECT_NE(mine, 0u);
  EXPECT_NE(other, 0u);
  EXPECT_NE(mine, other);
  EXPECT_EQ(mine, interpool::rt::current_thread_id());
}

TEST(RLock, OwnerReentersAndReleasesAsManyTimes) {
  RLock l;
  EXPECT_TRUE(l.try_acquire());
  EXPECT_EQ(l.acquire(0ns), WaitStatus::Woken);
  EXPECT_EQ(l.acquire(), WaitStatus::Woken);
  EXPECT_EQ(l.count(), 3u);
  EXPECT_TRUE(l.owned_by_current_thread());
  EXPECT_TRUE(l.release());
  EXPECT_TRUE(l.release());
  EXPECT_TRUE(l.locked()) << "one level is still held";
  EXPECT_TRUE(l.release());
  EXPECT_FALSE(l.locked());
  EXPECT_FALSE(l.owned_by_current_thread());
  EXPECT_FALSE(l.release()) << "nothing left to release";
}

TEST(RLock, OnlyTheOwnerMayRelease) {
  RLock l;
  ASSERT_TRUE(l.try_acquire());
  bool released = true, owned = true;
  WaitStatus other{};
  std::thread([&] {
    released = l.release();
    owned = l.owned_by_current_thread();
    other = l.acquire(30ms);
  }).join();
  EXPECT_FALSE(released);
  EXPECT_FALSE(owned);
  EXPECT_EQ(other, WaitStatus::TimedOut);
  EXPECT_TRUE(l.locked());
  EXPECT_TRUE(l.release());
}

TEST(RLock, ReleaseWakesAnotherThread) {
  RLock l;
  ASSERT_TRUE(l.try_acquire());
  ASSERT_TRUE(l.try_acquire());
  std::atomic<bool> held_by_other{false};
  Blocked<WaitStatus> w([&] {
    WaitStatus s = l.acquire(kHangGuard);
    held_by_other = l.owned_by_current_thread();
    if (s == WaitStatus::Woken) l.release();
    return s;
  });
  ASSERT_TRUE(w.asleep_on(l));
  l.release();
  EXPECT_TRUE(l.owned_by_current_thread()) << "one level is still held";
  EXPECT_EQ(l.count(), 1u);
  EXPECT_FALSE(w.done.load()) << "one level is still held";
  l.release();
  EXPECT_EQ(w.join(), WaitStatus::Woken);
  EXPECT_TRUE(held_by_other.load());
}

TEST(RLock, ReleaseAllDropsEveryLevel) {
  RLock l;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(l.try_acquire());
  EXPECT_EQ(l.release_all(), 4u);
  EXPECT_FALSE(l.locked());
  EXPECT_EQ(l.release_all(), 0u);
  ASSERT_EQ(l.acquire(), WaitStatus::Woken);
  l.set_count(4);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(l.release());
  EXPECT_FALSE(l.locked());
}

TEST(RLock, ExcludesUnderContention) {
  RLock l;
  long counter = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        ASSERT_EQ(l.acquire(kHangGuard), WaitStatus::Woken);
        ASSERT_EQ(l.acquire(0ns), WaitStatus::Woken);
        long v = counter;
        if (i % 256 == 0) std::this_thread::yield();
        counter = v + 1;
        ASSERT_TRUE(l.release());
        ASSERT_TRUE(l.release());
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, 6 * 10000);
  EXPECT_FALSE(l.locked());
}

// ==================================================================== Event

TEST(Event, SetClearIsSet) {
  Event ev;
  EXPECT_FALSE(ev.is_set());
  ev.set();
  EXPECT_TRUE(ev.is_set());
  ev.set();
  EXPECT_TRUE(ev.is_set());
  ev.clear();
  EXPECT_FALSE(ev.is_set());
}

TEST(Event, WaitReturnsAtOnceWhenSet) {
  Event ev;
  ev.set();
  EXPECT_EQ(ev.wait(0ns), WaitStatus::Woken);
  EXPECT_EQ(ev.wait(), WaitStatus::Woken);
}

TEST(Event, WaitTimesOutWhileUnset) {
  Event ev;
  const auto t0 = Clock::now();
  EXPECT_EQ(ev.wait(50ms), WaitStatus::TimedOut);
  EXPECT_GE(Clock::now() - t0, 50ms);
}

TEST(Event, SetWakesEveryWaiter) {
  Event ev;
  std::vector<std::unique_ptr<BlockedWait>> waiters;
  for (int i = 0; i < 4; ++i) {
    waiters.push_back(std::make_unique<BlockedWait>([&] { return ev.wait(kHangGuard); }));
    ASSERT_TRUE(waiters.back()->asleep_on(ev)) << "a waiter must sleep in futex, not poll";
  }
  ev.set();
  for (auto& w : waiters) EXPECT_EQ(w->join(), WaitStatus::Woken);
}

TEST(Event, ASetThatWasClearedAgainStillCountsForWaitersFromBefore) {
  // threading.Event: a waiter notified by set() returns True even if clear()
  // came before it could look.
  Event ev;
  const uint32_t ticket = ev.ticket();
  ev.set();
  ev.clear();
  EXPECT_EQ(ev.wait_from(ticket, 0ns), WaitStatus::Woken);
  EXPECT_EQ(ev.wait(10ms), WaitStatus::TimedOut) << "a wait that began after the set does not see it";
}

TEST(Event, WaitReportsInterruptedWhenASignalArrives) {
  NoopHandler handler(SIGUSR1);
  Event ev;
  BlockedWait w([&] { return ev.wait(kHangGuard); });
  ASSERT_TRUE(w.asleep_on(ev));
  w.interrupt();
  EXPECT_EQ(w.join(), WaitStatus::Interrupted);
  EXPECT_FALSE(ev.is_set());
}

TEST(Event, NeverMissesASet) {
  // Set at every moment relative to the waiter going to sleep.
  for (int i = 0; i < 300; ++i) {
    Event ev;
    std::thread setter([&, i] {
      for (int k = 0; k < i % 50; ++k) interpool::rt::cpu_relax();
      ev.set();
    });
    EXPECT_EQ(ev.wait(kHangGuard), WaitStatus::Woken) << "round " << i;
    setter.join();
  }
}

// ================================================================== Barrier

namespace {

/// One party's full wait, as the binding does it (no action).
Result pass(Barrier& b, uint32_t& index, interpool::rt::Timeout timeout = kHangGuard) {
  Result r = b.arrive(index, kHangGuard);
  if (r != Result::Ok) return r;
  if (index + 1 == b.parties()) {
    r = b.trip(true);
  } else {
    r = b.await(timeout);
    if (r == Result::Pending) {
      b.abort();
      r = Result::Broken;
    }
  }
  b.leave();
  return r;
}

}  // namespace

TEST(Barrier, PartiesPassTogetherWithDistinctIndexes) {
  constexpr uint32_t kParties = 4;
  constexpr int kRounds = 200;
  Barrier b(kParties);
  EXPECT_EQ(b.parties(), kParties);
  // indexes[r] collects the arrival indexes of round r: a permutation of
  // 0..parties-1 each round, which holds only if no thread slips into the
  // next round before everyone left this one.
  std::vector<std::atomic<uint32_t>> seen(kRounds);
  std::vector<std::atomic<int>> arrived(kRounds);
  std::atomic<int> early{0};
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < kParties; ++t)
    threads.emplace_back([&] {
      for (int r = 0; r < kRounds; ++r) {
        arrived[r].fetch_add(1);
        uint32_t index = 99;
        ASSERT_EQ(pass(b, index), Result::Ok);
        if (arrived[r].load() != static_cast<int>(kParties)) early.fetch_add(1);
        ASSERT_LT(index, kParties);
        seen[r].fetch_or(1u << index);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(early.load(), 0) << "nobody passes before every party arrived";
  for (int r = 0; r < kRounds; ++r) EXPECT_EQ(seen[r].load(), (1u << kParties) - 1) << "round " << r;
  EXPECT_FALSE(b.broken());
  EXPECT_EQ(b.n_waiting(), 0u);
}

TEST(Barrier, WaitersSleepInFutexAndCountAsWaiting) {
  Barrier b(3);
  uint32_t i1 = 0, i2 = 0, i3 = 0;
  Blocked<Result> w1([&] { return pass(b, i1); });
  ASSERT_TRUE(w1.asleep_on(b));
  Blocked<Result> w2([&] { return pass(b, i2); });
  ASSERT_TRUE(w2.asleep_on(b));
  EXPECT_EQ(b.n_waiting(), 2u);
  EXPECT_EQ(pass(b, i3), Result::Ok);
  EXPECT_EQ(w1.join(), Result::Ok);
  EXPECT_EQ(w2.join(), Result::Ok);
  EXPECT_EQ(std::set<uint32_t>({i1, i2, i3}), std::set<uint32_t>({0, 1, 2}));
  EXPECT_EQ(i3, 2u) << "the last to arrive gets parties - 1";
}

TEST(Barrier, AFailedActionBreaksItForEveryone) {
  Barrier b(2);
  uint32_t i1 = 0;
  Blocked<Result> w1([&] { return pass(b, i1); });
  ASSERT_TRUE(w1.asleep_on(b));
  uint32_t last = 0;
  ASSERT_EQ(b.arrive(last, kHangGuard), Result::Ok);
  ASSERT_EQ(last, 1u);
  EXPECT_EQ(b.trip(false), Result::Broken);
  b.leave();
  EXPECT_EQ(w1.join(), Result::Broken);
  EXPECT_TRUE(b.broken());
  uint32_t i = 0;
  EXPECT_EQ(b.arrive(i, kHangGuard), Result::Broken) << "stays broken until reset()";
}

TEST(Barrier, AbortBreaksCurrentAndFutureWaitersUntilReset) {
  Barrier b(3);
  uint32_t i1 = 0;
  Blocked<Result> w1([&] { return pass(b, i1); });
  ASSERT_TRUE(w1.asleep_on(b));
  b.abort();
  EXPECT_EQ(w1.join(), Result::Broken);
  EXPECT_TRUE(b.broken());
  uint32_t i = 0;
  EXPECT_EQ(pass(b, i), Result::Broken);
  b.reset();
  EXPECT_FALSE(b.broken());
  // Usable again: a full round passes.
  Barrier* bp = &b;
  uint32_t a = 0, c = 0, d = 0;
  Blocked<Result> x([&] { return pass(*bp, a); });
  Blocked<Result> y([&] { return pass(*bp, c); });
  EXPECT_EQ(pass(b, d), Result::Ok);
  EXPECT_EQ(x.join(), Result::Ok);
  EXPECT_EQ(y.join(), Result::Ok);
}

TEST(Barrier, ResetBreaksCurrentWaitersOnlyOnce) {
  Barrier b(2);
  uint32_t i1 = 0;
  Blocked<Result> w1([&] { return pass(b, i1); });
  ASSERT_TRUE(w1.asleep_on(b));
  b.reset();
  EXPECT_EQ(w1.join(), Result::Broken);
  EXPECT_FALSE(b.broken()) << "after the waiters left, a reset barrier is fresh";
  uint32_t a = 0, c = 0;
  Blocked<Result> x([&] { return pass(b, a); });
  EXPECT_EQ(pass(b, c), Result::Ok);
  EXPECT_EQ(x.join(), Result::Ok);
}

TEST(Barrier, AResetWhileTheActionRunsBreaksTheTrip) {
  Barrier b(1);
  uint32_t index = 9;
  ASSERT_EQ(b.arrive(index, kHangGuard), Result::Ok);
  EXPECT_EQ(index, 0u);
  b.reset();  // while "the action runs"
  EXPECT_EQ(b.trip(true), Result::Broken);
  b.leave();
  EXPECT_FALSE(b.broken());
  EXPECT_EQ(pass(b, index), Result::Ok);
}

TEST(Barrier, ArrivalsWaitWhileTheActionRuns) {
  // The last party's action runs outside the barrier's mutex; a party of the
  // next cycle that arrives meanwhile must wait, not join this cycle.
  Barrier b(1);
  uint32_t first = 9;
  ASSERT_EQ(b.arrive(first, kHangGuard), Result::Ok);  // tripping now
  uint32_t second = 9;
  EXPECT_EQ(b.arrive(second, 20ms), Result::Pending);
  Blocked<Result> next([&] { return pass(b, second); });
  ASSERT_TRUE(next.asleep_on(b));
  EXPECT_EQ(b.trip(true), Result::Ok);
  b.leave();
  EXPECT_EQ(next.join(), Result::Ok);
  EXPECT_EQ(second, 0u) << "it got index 0 of the next cycle";
}

TEST(Barrier, AwaitReturnsPendingWhenItsSliceEnds) {
  Barrier b(2);
  uint32_t index = 9;
  ASSERT_EQ(b.arrive(index, kHangGuard), Result::Ok);
  const auto t0 = Clock::now();
  EXPECT_EQ(b.await(30ms), Result::Pending);
  EXPECT_GE(Clock::now() - t0, 30ms);
  EXPECT_EQ(b.n_waiting(), 1u);
  b.leave();
  EXPECT_EQ(b.n_waiting(), 0u);
}

TEST(Barrier, KeepsItsActionAndDefaultTimeout) {
  interpool::rt::Payload action;
  action.bytes = "encoded callable";
  Barrier b(2, action, 1500ms);
  EXPECT_EQ(b.action().bytes, "encoded callable");
  ASSERT_TRUE(b.default_timeout().has_value());
  EXPECT_EQ(*b.default_timeout(), 1500ms);
  EXPECT_FALSE(Barrier(2).default_timeout().has_value());
  EXPECT_TRUE(Barrier(2).action().empty());
}
