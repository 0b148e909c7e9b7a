// tests/cpp/test_task.cpp: specification of runtime/task.hpp.
//
// A Task moves Queued -> Running -> Done or Queued -> Cancelled; wait() sleeps
// until it is finished, a signal arrives or a timeout passes; claim_delivery()
// is true for exactly one caller.
#include "runtime/task.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "test_support.hpp"

using namespace interpool::test;  // Blocked, kHangGuard, NoopHandler, Clock, std::chrono_literals
using interpool::rt::Task;
using interpool::rt::WaitStatus;
using State = Task::State;
using Kind = Task::Kind;

static_assert(!std::is_copy_constructible_v<Task>, "a Task is shared by pointer, never copied");
static_assert(!std::is_copy_assignable_v<Task>, "a Task is shared by pointer, never copied");
static_assert(std::has_virtual_destructor_v<Task>, "tasks are destroyed through Task*");

namespace {

/// A thread blocked in task.wait(timeout), which also records the response it saw.
struct Waiter : Blocked<WaitStatus> {
  std::string seen_response;

  void start(Task& task, std::chrono::nanoseconds timeout) {
    Blocked::start([this, &task, timeout] {
      const WaitStatus result = task.wait(timeout);
      seen_response = task.response.bytes;
      return result;
    });
  }
};

/// A task taken through its whole life to Done.
void run_to_done(Task& task) {
  EXPECT_TRUE(task.try_start());
  task.finish();
}

}  // namespace

// ---------------------------------------------------------------- state machine

TEST(Task, StartsQueuedWithDefaults) {
  Task task(Kind::Call);
  EXPECT_EQ(task.state(), State::Queued);
  EXPECT_FALSE(task.finished());
  EXPECT_EQ(task.kind(), Kind::Call);
  EXPECT_FALSE(task.failed);
  EXPECT_EQ(task.items, 1u);
  EXPECT_TRUE(task.request.empty());
  EXPECT_TRUE(task.response.empty());
}

TEST(Task, KeepsItsKind) {
  EXPECT_EQ(Task(Kind::Map).kind(), Kind::Map);
  EXPECT_EQ(Task(Kind::Call).kind(), Kind::Call);
  EXPECT_EQ(Task(Kind::Local).kind(), Kind::Local);
  EXPECT_EQ(Task(Kind::Deferred).kind(), Kind::Deferred);
}

TEST(Task, StartMovesQueuedToRunning) {
  Task task(Kind::Call);
  EXPECT_TRUE(task.try_start());
  EXPECT_EQ(task.state(), State::Running);
  EXPECT_FALSE(task.finished());
}

TEST(Task, StartSucceedsOnlyOnce) {
  Task task(Kind::Call);
  EXPECT_TRUE(task.try_start());
  EXPECT_FALSE(task.try_start());
  EXPECT_EQ(task.state(), State::Running);
}

TEST(Task, FinishMovesRunningToDone) {
  Task task(Kind::Call);
  ASSERT_TRUE(task.try_start());
  task.finish();
  EXPECT_EQ(task.state(), State::Done);
  EXPECT_TRUE(task.finished());
}

TEST(Task, CancelMovesQueuedToCancelled) {
  Task task(Kind::Call);
  EXPECT_TRUE(task.try_cancel());
  EXPECT_EQ(task.state(), State::Cancelled);
  EXPECT_TRUE(task.finished());
}

TEST(Task, CancelSucceedsOnlyOnce) {
  Task task(Kind::Call);
  EXPECT_TRUE(task.try_cancel());
  EXPECT_FALSE(task.try_cancel());
  EXPECT_EQ(task.state(), State::Cancelled);
}

TEST(Task, CancelAfterStartFails) {
  Task task(Kind::Call);
  ASSERT_TRUE(task.try_start());
  EXPECT_FALSE(task.try_cancel());
  EXPECT_EQ(task.state(), State::Running);
  EXPECT_FALSE(task.finished());
}

TEST(Task, CancelAfterFinishFails) {
  Task task(Kind::Call);
  run_to_done(task);
  EXPECT_FALSE(task.try_cancel());
  EXPECT_EQ(task.state(), State::Done);
}

TEST(Task, StartAfterCancelFails) {
  Task task(Kind::Call);
  ASSERT_TRUE(task.try_cancel());
  EXPECT_FALSE(task.try_start());
  EXPECT_EQ(task.state(), State::Cancelled);
}

TEST(Task, StartAfterFinishFails) {
  Task task(Kind::Call);
  run_to_done(task);
  EXPECT_FALSE(task.try_start());
  EXPECT_EQ(task.state(), State::Done);
}

TEST(Task, IsDestroyedThroughABasePointer) {
  struct Derived : Task {
    explicit Derived(bool& flag) : Task(Kind::Call), destroyed(flag) {}
    ~Derived() override { destroyed = true; }
    bool& destroyed;
  };
  bool destroyed = false;
  std::unique_ptr<Task> task = std::make_unique<Derived>(destroyed);
  task.reset();
  EXPECT_TRUE(destroyed);
}

// ------------------------------------------------------------------------- wait

TEST(Task, WaitOnDoneTaskReturnsWokenAtOnce) {
  // Slept on by mistake, a timed wait would return TimedOut.
  Task task(Kind::Call);
  run_to_done(task);
  EXPECT_EQ(task.wait(), WaitStatus::Woken);
  EXPECT_EQ(task.wait(kHangGuard), WaitStatus::Woken);
  EXPECT_EQ(task.wait(0ns), WaitStatus::Woken);
  EXPECT_EQ(task.wait(-1s), WaitStatus::Woken);
}

TEST(Task, WaitOnCancelledTaskReturnsWokenAtOnce) {
  Task task(Kind::Call);
  ASSERT_TRUE(task.try_cancel());
  EXPECT_EQ(task.wait(), WaitStatus::Woken);
  EXPECT_EQ(task.wait(kHangGuard), WaitStatus::Woken);
  EXPECT_EQ(task.wait(0ns), WaitStatus::Woken);
}

TEST(Task, WaitOnQueuedTaskTimesOut) {
  Task task(Kind::Call);
  const auto t0 = Clock::now();
  EXPECT_EQ(task.wait(30ms), WaitStatus::TimedOut);
  EXPECT_GE(Clock::now() - t0, 30ms);
  EXPECT_EQ(task.state(), State::Queued);
}

TEST(Task, WaitOnRunningTaskTimesOut) {
  Task task(Kind::Call);
  ASSERT_TRUE(task.try_start());
  const auto t0 = Clock::now();
  EXPECT_EQ(task.wait(20ms), WaitStatus::TimedOut);
  EXPECT_GE(Clock::now() - t0, 20ms);
  EXPECT_EQ(task.state(), State::Running);
}

TEST(Task, ZeroOrNegativeTimeoutTimesOutAtOnce) {
  // Taken for "no timeout", these would sleep for good; a waiter that runs
  // into kHangGuard is freed by finishing the task, and fails (Woken).
  Task task(Kind::Call);
  Blocked<WaitStatus> zero([&] { return task.wait(0ns); });
  Blocked<WaitStatus> negative([&] { return task.wait(-5s); });
  if (!interpool::test::eventually([&] { return zero.done.load() && negative.done.load(); })) run_to_done(task);
  EXPECT_EQ(zero.join(), WaitStatus::TimedOut);
  EXPECT_EQ(negative.join(), WaitStatus::TimedOut);
}

TEST(Task, TimedOutWaitLeavesTheStateMachineIntact) {
  // A wait records that someone sleeps; that mark must not leak into state()
  // nor stop later transitions.
  Task started(Kind::Call);
  ASSERT_EQ(started.wait(1ms), WaitStatus::TimedOut);
  EXPECT_EQ(started.state(), State::Queued);
  EXPECT_FALSE(started.finished());
  EXPECT_TRUE(started.try_start());
  EXPECT_EQ(started.state(), State::Running);
  ASSERT_EQ(started.wait(1ms), WaitStatus::TimedOut);
  EXPECT_FALSE(started.try_cancel());
  started.finish();
  EXPECT_EQ(started.state(), State::Done);
  EXPECT_EQ(started.wait(kHangGuard), WaitStatus::Woken);

  Task cancelled(Kind::Call);
  ASSERT_EQ(cancelled.wait(1ms), WaitStatus::TimedOut);
  EXPECT_TRUE(cancelled.try_cancel());
  EXPECT_EQ(cancelled.state(), State::Cancelled);
  EXPECT_EQ(cancelled.wait(kHangGuard), WaitStatus::Woken);
}

TEST(Task, WaitWakesWhenFinishedOnAnotherThreadAndSeesTheResponse) {
  Task task(Kind::Call);
  Waiter w;
  w.start(task, kHangGuard);
  EXPECT_TRUE(w.asleep_on(task)) << "waiter never went to sleep on the task";
  EXPECT_TRUE(task.try_start());
  task.response.bytes = "the result";
  task.finish();
  EXPECT_EQ(w.join(), WaitStatus::Woken);
  EXPECT_EQ(w.seen_response, "the result");
}

TEST(Task, WaitWakesWhenCancelledOnAnotherThread) {
  Task task(Kind::Call);
  Waiter w;
  w.start(task, kHangGuard);
  EXPECT_TRUE(w.asleep_on(task));
  EXPECT_TRUE(task.try_cancel());
  EXPECT_EQ(w.join(), WaitStatus::Woken);
  EXPECT_EQ(task.state(), State::Cancelled);
}

TEST(Task, WaitKeepsSleepingAcrossStart) {
  // Queued -> Running is not the end: a waiter must sleep on until Done.
  // `early` is still inside wait() after the start if a signal makes it
  // return Interrupted (it would have returned Woken already otherwise);
  // `sleeper` slept across the start and must be woken by finish().
  NoopHandler handler(SIGUSR1);
  Task task(Kind::Call);
  Waiter early, sleeper;
  early.start(task, kHangGuard);
  sleeper.start(task, kHangGuard);
  EXPECT_TRUE(early.asleep_on(task));
  EXPECT_TRUE(sleeper.asleep_on(task));
  EXPECT_TRUE(task.try_start());
  EXPECT_TRUE(sleeper.asleep_on(task));
  early.interrupt();
  EXPECT_EQ(early.join(), WaitStatus::Interrupted) << "wait() returned while the task was still running";
  EXPECT_FALSE(sleeper.done.load()) << "wait() returned while the task was still running";
  task.finish();
  EXPECT_EQ(sleeper.join(), WaitStatus::Woken);
}

TEST(Task, FinishWakesEveryWaiter) {
  constexpr int kWaiters = 4;
  Task task(Kind::Call);
  std::vector<Waiter> waiters(kWaiters);
  for (auto& w : waiters) w.start(task, kHangGuard);
  for (auto& w : waiters) EXPECT_TRUE(w.asleep_on(task));
  run_to_done(task);
  for (auto& w : waiters) EXPECT_EQ(w.join(), WaitStatus::Woken);
}

TEST(Task, WaitTimesOutWhenNobodyFinishesTheTask) {
  Task task(Kind::Call);
  Waiter w;
  w.start(task, 50ms);
  EXPECT_EQ(w.join(), WaitStatus::TimedOut);
  EXPECT_GE(w.took, 50ms);
}

TEST(Task, WaitReportsInterruptedWhenASignalArrives) {
  // Were the signal swallowed, the wait would run into kHangGuard (TimedOut).
  NoopHandler handler(SIGUSR1);
  Task task(Kind::Call);
  Waiter w;
  w.start(task, kHangGuard);
  EXPECT_TRUE(w.asleep_on(task));
  w.interrupt();
  EXPECT_EQ(w.join(), WaitStatus::Interrupted);
  // The interruption changes nothing: the task can still run and be waited for.
  EXPECT_EQ(task.state(), State::Queued);
  run_to_done(task);
  EXPECT_EQ(task.wait(kHangGuard), WaitStatus::Woken);
}

TEST(Task, WaitNeverMissesAFinish) {
  // Finish at every moment relative to the waiter's sleep: each wait must
  // come back Woken, never by running into its timeout (kHangGuard).  Every
  // third round finishes only once the waiter is seen asleep on the task.
  constexpr int kRounds = 300;
  int missed = 0;
  for (int i = 0; i < kRounds && missed == 0; ++i) {
    Task task(Kind::Call);
    Blocked<WaitStatus> waiter([&] { return task.wait(kHangGuard); });
    for (int spin = 0; spin < (i % 50) * 64; ++spin) interpool::rt::cpu_relax();
    switch (i % 3) {
      case 0:
        EXPECT_TRUE(task.try_start());
        task.finish();
        break;
      case 1: EXPECT_TRUE(task.try_cancel()); break;
      default:
        EXPECT_TRUE(waiter.asleep_on(task)) << "round " << i;
        EXPECT_TRUE(task.try_start());
        task.finish();
    }
    if (waiter.join() != WaitStatus::Woken) {
      ++missed;
      ADD_FAILURE() << "round " << i << ": the waiter missed the wake-up";
    }
  }
  EXPECT_EQ(missed, 0);
}

// --------------------------------------------------------------------- delivery

TEST(Task, ClaimDeliverySucceedsOnceThenAlwaysFails) {
  Task task(Kind::Call);
  EXPECT_TRUE(task.claim_delivery());
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(task.claim_delivery());
}

TEST(Task, ClaimDeliveryIsIndependentOfTheState) {
  Task cancelled(Kind::Call);
  ASSERT_TRUE(cancelled.try_cancel());
  EXPECT_TRUE(cancelled.claim_delivery());
  EXPECT_FALSE(cancelled.claim_delivery());

  Task done(Kind::Map);
  run_to_done(done);
  EXPECT_TRUE(done.claim_delivery());
  EXPECT_FALSE(done.claim_delivery());
  EXPECT_EQ(done.state(), State::Done);
}

TEST(Task, ExactlyOneOfManyThreadsClaimsDelivery) {
  // Each round, kThreads threads call claim_delivery() on a fresh task at
  // once.  One barrier trip per round: its completion step (run once every
  // thread has tried) counts the last round's winners and sets up the next.
  constexpr int kThreads = 8;
  constexpr int kRounds = 200;
  std::unique_ptr<Task> task = std::make_unique<Task>(Kind::Call);
  std::atomic<int> winners{0};
  int bad_rounds = 0, rounds_checked = 0;
  auto next_round = [&]() noexcept {
    if (winners.load() != 1) ++bad_rounds;
    ++rounds_checked;
    winners = 0;
    task = std::make_unique<Task>(Kind::Call);
  };
  std::barrier sync(kThreads, next_round);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int r = 0; r < kRounds; ++r) {
        if (task->claim_delivery()) winners.fetch_add(1);
        sync.arrive_and_wait();  // everybody tried; the next task is ready
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(rounds_checked, kRounds);
  EXPECT_EQ(bad_rounds, 0);
}

// ------------------------------------------------------------------------ races

TEST(Task, StartAndCancelRaceHasExactlyOneWinner) {
  // Each round, one thread starts and one cancels a fresh task at once.  One
  // barrier trip per round (a round costs a trip, and trips are slow under
  // sanitizers on a loaded machine): its completion step checks the last
  // round and sets up the next.
  constexpr int kRounds = 1000;
  std::unique_ptr<Task> task = std::make_unique<Task>(Kind::Call);
  bool start_won = false, cancel_won = false;
  int both = 0, neither = 0, wrong_state = 0, starts = 0, rounds_checked = 0;
  auto next_round = [&]() noexcept {
    if (start_won && cancel_won) ++both;
    if (!start_won && !cancel_won) ++neither;
    starts += start_won;
    if (start_won && task->state() != State::Running) ++wrong_state;
    if (cancel_won && task->state() != State::Cancelled) ++wrong_state;
    ++rounds_checked;
    task = std::make_unique<Task>(Kind::Call);
  };
  std::barrier sync(2, next_round);
  std::thread starter([&] {
    for (int r = 0; r < kRounds; ++r) {
      start_won = task->try_start();
      sync.arrive_and_wait();
    }
  });
  std::thread canceller([&] {
    for (int r = 0; r < kRounds; ++r) {
      cancel_won = task->try_cancel();
      sync.arrive_and_wait();
    }
  });
  starter.join();
  canceller.join();
  EXPECT_EQ(rounds_checked, kRounds);
  EXPECT_EQ(both, 0);
  EXPECT_EQ(neither, 0);
  EXPECT_EQ(wrong_state, 0);
  RecordProperty("start_won", starts);
}

TEST(Task, StartCancelRaceWithASleepingWaiterAlwaysEndsTheWait) {
  // With a waiter asleep (its mark set in the state word), whichever of start
  // and cancel wins, the waiter comes back Woken once the task is finished,
  // never by running into its timeout (kHangGuard).
  constexpr int kRounds = 200;
  int not_woken = 0, both = 0, not_asleep = 0;
  for (int r = 0; r < kRounds; ++r) {
    Task task(Kind::Call);
    Blocked<WaitStatus> waiter([&] { return task.wait(kHangGuard); });
    if (!waiter.asleep_on(task)) ++not_asleep;
    std::atomic<int> go{0};
    bool start_won = false, cancel_won = false;
    std::thread starter([&] {
      go.fetch_add(1);
      while (go.load() < 2) std::this_thread::yield();
      start_won = task.try_start();
    });
    std::thread canceller([&] {
      go.fetch_add(1);
      while (go.load() < 2) std::this_thread::yield();
      cancel_won = task.try_cancel();
    });
    starter.join();
    canceller.join();
    if (start_won == cancel_won) ++both;
    if (start_won) task.finish();
    if (waiter.join() != WaitStatus::Woken) ++not_woken;
    if (not_woken || not_asleep) break;
  }
  EXPECT_EQ(not_asleep, 0) << "the waiter never went to sleep on the task";
  EXPECT_EQ(both, 0);
  EXPECT_EQ(not_woken, 0);
}
