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

using namespace std::chrono_literals;
using interpool::rt::Task;
using interpool::rt::WaitStatus;
using State = Task::State;
using Kind = Task::Kind;
using interpool::test::Blocked;
using interpool::test::NoopHandler;
using Clock = std::chrono::steady_clock;

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
  Task task(Kind::Call);
  run_to_done(task);
  const auto t0 = Clock::now();
  EXPECT_EQ(task.wait(), WaitStatus::Woken);
  EXPECT_EQ(task.wait(5s), WaitStatus::Woken);
  EXPECT_EQ(task.wait(0ns), WaitStatus::Woken);
  EXPECT_EQ(task.wait(-1s), WaitStatus::Woken);
  EXPECT_LT(Clock::now() - t0, 1s);
}

TEST(Task, WaitOnCancelledTaskReturnsWokenAtOnce) {
  Task task(Kind::Call);
  ASSERT_TRUE(task.try_cancel());
  const auto t0 = Clock::now();
  EXPECT_EQ(task.wait(), WaitStatus::Woken);
  EXPECT_EQ(task.wait(5s), WaitStatus::Woken);
  EXPECT_EQ(task.wait(0ns), WaitStatus::Woken);
  EXPECT_LT(Clock::now() - t0, 1s);
}

TEST(Task, WaitOnQueuedTaskTimesOut) {
  Task task(Kind::Call);
  const auto t0 = Clock::now();
  EXPECT_EQ(task.wait(30ms), WaitStatus::TimedOut);
  const auto elapsed = Clock::now() - t0;
  EXPECT_GE(elapsed, 30ms);
  EXPECT_LT(elapsed, 2s);
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
  Task task(Kind::Call);
  const auto t0 = Clock::now();
  EXPECT_EQ(task.wait(0ns), WaitStatus::TimedOut);
  EXPECT_EQ(task.wait(-5s), WaitStatus::TimedOut);
  EXPECT_LT(Clock::now() - t0, 500ms);
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
  EXPECT_EQ(started.wait(1s), WaitStatus::Woken);

  Task cancelled(Kind::Call);
  ASSERT_EQ(cancelled.wait(1ms), WaitStatus::TimedOut);
  EXPECT_TRUE(cancelled.try_cancel());
  EXPECT_EQ(cancelled.state(), State::Cancelled);
  EXPECT_EQ(cancelled.wait(1s), WaitStatus::Woken);
}

TEST(Task, WaitWakesWhenFinishedOnAnotherThreadAndSeesTheResponse) {
  Task task(Kind::Call);
  Waiter w;
  w.start(task, 5s);
  EXPECT_TRUE(w.asleep_on(task)) << "waiter never went to sleep on the task";
  EXPECT_TRUE(task.try_start());
  task.response.bytes = "the result";
  task.finish();
  w.thread.join();
  EXPECT_EQ(w.status, WaitStatus::Woken);
  EXPECT_LT(w.took, 4s);
  EXPECT_EQ(w.seen_response, "the result");
}

TEST(Task, WaitWakesWhenCancelledOnAnotherThread) {
  Task task(Kind::Call);
  Waiter w;
  w.start(task, 5s);
  EXPECT_TRUE(w.asleep_on(task));
  EXPECT_TRUE(task.try_cancel());
  w.thread.join();
  EXPECT_EQ(w.status, WaitStatus::Woken);
  EXPECT_LT(w.took, 4s);
  EXPECT_EQ(task.state(), State::Cancelled);
}

TEST(Task, WaitKeepsSleepingAcrossStart) {
  // Queued -> Running is not the end: a waiter must sleep on until Done.
  Task task(Kind::Call);
  Waiter w;
  w.start(task, 5s);
  EXPECT_TRUE(w.asleep_on(task));
  EXPECT_TRUE(task.try_start());
  EXPECT_TRUE(w.asleep_on(task));
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(w.done.load()) << "wait() returned while the task was still running";
  task.finish();
  w.thread.join();
  EXPECT_EQ(w.status, WaitStatus::Woken);
}

TEST(Task, FinishWakesEveryWaiter) {
  constexpr int kWaiters = 4;
  Task task(Kind::Call);
  std::vector<Waiter> waiters(kWaiters);
  for (auto& w : waiters) w.start(task, 5s);
  for (auto& w : waiters) EXPECT_TRUE(w.asleep_on(task));
  run_to_done(task);
  for (auto& w : waiters) {
    w.thread.join();
    EXPECT_EQ(w.status, WaitStatus::Woken);
    EXPECT_LT(w.took, 4s);
  }
}

TEST(Task, WaitTimesOutWhenNobodyFinishesTheTask) {
  Task task(Kind::Call);
  Waiter w;
  w.start(task, 50ms);
  w.thread.join();
  EXPECT_EQ(w.status, WaitStatus::TimedOut);
  EXPECT_GE(w.took, 50ms);
  EXPECT_LT(w.took, 2s);
}

TEST(Task, WaitReportsInterruptedWhenASignalArrives) {
  NoopHandler handler(SIGUSR1);
  Task task(Kind::Call);
  Waiter w;
  w.start(task, 5s);
  EXPECT_TRUE(w.asleep_on(task));
  const auto t0 = Clock::now();
  // Repeat in case a signal lands just before the thread entered the kernel.
  while (!w.done.load() && Clock::now() - t0 < 2s) {
    pthread_kill(w.thread.native_handle(), SIGUSR1);
    std::this_thread::sleep_for(5ms);
  }
  w.thread.join();
  EXPECT_EQ(w.status, WaitStatus::Interrupted);
  EXPECT_LT(w.took, 3s);
  // The interruption changes nothing: the task can still run and be waited for.
  EXPECT_EQ(task.state(), State::Queued);
  run_to_done(task);
  EXPECT_EQ(task.wait(1s), WaitStatus::Woken);
}

TEST(Task, WaitNeverMissesAFinish) {
  // Finish at every moment relative to the waiter's sleep: each wait must
  // come back Woken promptly, never by running into its timeout.
  constexpr int kRounds = 300;
  int missed = 0;
  for (int i = 0; i < kRounds && missed == 0; ++i) {
    Task task(Kind::Call);
    WaitStatus status{};
    Clock::duration took{};
    std::thread waiter([&] {
      const auto t0 = Clock::now();
      status = task.wait(1s);
      took = Clock::now() - t0;
    });
    for (int spin = 0; spin < i % 50; ++spin) std::this_thread::yield();
    switch (i % 3) {
      case 0:
        EXPECT_TRUE(task.try_start());
        task.finish();
        break;
      case 1:
        EXPECT_TRUE(task.try_cancel());
        break;
      default:
        std::this_thread::sleep_for(200us);  // likely asleep by now
        EXPECT_TRUE(task.try_start());
        task.finish();
    }
    waiter.join();
    if (status != WaitStatus::Woken || took >= 500ms) {
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
  constexpr int kThreads = 8;
  constexpr int kRounds = 200;
  std::unique_ptr<Task> task;
  std::atomic<int> winners{0};
  std::barrier sync(kThreads + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int r = 0; r < kRounds; ++r) {
        sync.arrive_and_wait();  // task is ready
        if (task->claim_delivery()) winners.fetch_add(1);
        sync.arrive_and_wait();  // everybody tried
      }
    });
  int bad_rounds = 0;
  for (int r = 0; r < kRounds; ++r) {
    task = std::make_unique<Task>(Kind::Call);
    winners = 0;
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    if (winners.load() != 1) ++bad_rounds;
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad_rounds, 0);
}

// ------------------------------------------------------------------------ races

TEST(Task, StartAndCancelRaceHasExactlyOneWinner) {
  constexpr int kRounds = 2000;
  std::unique_ptr<Task> task;
  bool start_won = false, cancel_won = false;
  std::barrier sync(3);
  std::thread starter([&] {
    for (int r = 0; r < kRounds; ++r) {
      sync.arrive_and_wait();
      start_won = task->try_start();
      sync.arrive_and_wait();
    }
  });
  std::thread canceller([&] {
    for (int r = 0; r < kRounds; ++r) {
      sync.arrive_and_wait();
      cancel_won = task->try_cancel();
      sync.arrive_and_wait();
    }
  });
  int both = 0, neither = 0, wrong_state = 0, starts = 0;
  for (int r = 0; r < kRounds; ++r) {
    task = std::make_unique<Task>(Kind::Call);
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    if (start_won && cancel_won) ++both;
    if (!start_won && !cancel_won) ++neither;
    starts += start_won;
    if (start_won && task->state() != State::Running) ++wrong_state;
    if (cancel_won && task->state() != State::Cancelled) ++wrong_state;
  }
  starter.join();
  canceller.join();
  EXPECT_EQ(both, 0);
  EXPECT_EQ(neither, 0);
  EXPECT_EQ(wrong_state, 0);
  RecordProperty("start_won", starts);
}

TEST(Task, StartCancelRaceWithASleepingWaiterAlwaysEndsTheWait) {
  // With a waiter asleep (its mark set in the state word), whichever of start
  // and cancel wins, the waiter comes back Woken promptly once the task is
  // finished, never by running into its timeout.
  constexpr int kRounds = 200;
  int not_woken = 0, both = 0;
  for (int r = 0; r < kRounds; ++r) {
    Task task(Kind::Call);
    WaitStatus status{};
    Clock::duration took{};
    std::thread waiter([&] {
      const auto t0 = Clock::now();
      status = task.wait(1s);
      took = Clock::now() - t0;
    });
    std::atomic<int> go{0};
    bool start_won = false, cancel_won = false;
    std::thread starter([&] {
      go.fetch_add(1);
      while (go.load() < 2) {}
      start_won = task.try_start();
    });
    std::thread canceller([&] {
      go.fetch_add(1);
      while (go.load() < 2) {}
      cancel_won = task.try_cancel();
    });
    starter.join();
    canceller.join();
    if (start_won == cancel_won) ++both;
    if (start_won) task.finish();
    waiter.join();
    if (status != WaitStatus::Woken || took >= 500ms) ++not_woken;
    if (not_woken) break;
  }
  EXPECT_EQ(both, 0);
  EXPECT_EQ(not_woken, 0);
}
