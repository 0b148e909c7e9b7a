// tests/cpp/test_futex.cpp: specification of runtime/futex.hpp.
#include "runtime/futex.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace interpool::test;  // Blocked, eventually, kHangGuard, NoopHandler, Clock, std::chrono_literals
using interpool::rt::futex_wait;
using interpool::rt::futex_wake_all;
using interpool::rt::futex_wake_one;
using interpool::rt::WaitStatus;

namespace {

/// One thread sleeping in futex_wait(word, expected, timeout).
struct Sleeper : Blocked<WaitStatus> {
  void start(std::atomic<uint32_t>& word, uint32_t expected, std::chrono::nanoseconds timeout) {
    Blocked::start([&word, expected, timeout] { return futex_wait(word, expected, timeout); });
  }
};

}  // namespace

TEST(Futex, WaitReturnsWokenAtOnceWhenWordNoLongerHoldsExpected) {
  // Slept on by mistake, the call would run into its timeout (TimedOut).
  std::atomic<uint32_t> word{1};
  EXPECT_EQ(futex_wait(word, 0, kHangGuard), WaitStatus::Woken);
}

TEST(Futex, WaitTimesOutWhileWordHoldsExpected) {
  std::atomic<uint32_t> word{7};
  const auto t0 = Clock::now();
  EXPECT_EQ(futex_wait(word, 7, 30ms), WaitStatus::TimedOut);
  EXPECT_GE(Clock::now() - t0, 30ms);
  EXPECT_EQ(word.load(), 7u);
}

TEST(Futex, ZeroTimeoutPollsWithoutSleeping) {
  // A zero timeout taken for "no timeout" would sleep for good: the poll runs
  // on a thread that a wake-up frees after kHangGuard, so that it fails
  // (Woken) instead of hanging.
  std::atomic<uint32_t> word{0};
  Sleeper s;
  s.start(word, 0, 0ns);
  if (!eventually([&] { return s.done.load(); })) {
    word = 1;
    futex_wake_all(word);
  }
  EXPECT_EQ(s.join(), WaitStatus::TimedOut);
}

TEST(Futex, NegativeTimeoutIsTreatedAsZero) {
  // Passed through unclamped, the kernel would answer EINVAL, reported as Woken.
  std::atomic<uint32_t> word{0};
  EXPECT_EQ(futex_wait(word, 0, -1s), WaitStatus::TimedOut);
  EXPECT_EQ(futex_wait(word, 0, -1ns), WaitStatus::TimedOut);
}

TEST(Futex, TimeoutsOfSeveralSecondsAreAccepted) {
  // A badly split timespec (tv_nsec >= 1e9) makes the kernel refuse to sleep:
  // the call would return (Woken) at once instead of sleeping until woken.
  // kHangGuard + 500 ms fills both fields of the timespec.
  std::atomic<uint32_t> word{0};
  Sleeper s;
  s.start(word, 0, kHangGuard + 500ms);
  EXPECT_TRUE(s.asleep_on(word)) << "never went to sleep";
  EXPECT_FALSE(s.done.load());
  word = 1;
  futex_wake_all(word);
  EXPECT_EQ(s.join(), WaitStatus::Woken);
}

TEST(Futex, WakeAllWakesEverySleeper) {
  constexpr int kSleepers = 4;
  std::atomic<uint32_t> word{0};
  std::vector<Sleeper> sleepers(kSleepers);
  for (auto& s : sleepers) s.start(word, 0, kHangGuard);
  for (auto& s : sleepers) EXPECT_TRUE(s.asleep_on(word));
  word = 1;
  futex_wake_all(word);
  for (auto& s : sleepers) EXPECT_EQ(s.join(), WaitStatus::Woken);
}

TEST(Futex, WakeOneWakesExactlyOneSleeper) {
  // The word keeps holding `expected` throughout, so a sleeper returns Woken
  // only if a wake picked it.  Once one is back, a signal frees the others:
  // still asleep, they return Interrupted; a second sleeper woken by the same
  // futex_wake_one would have returned Woken.
  NoopHandler handler(SIGUSR1);
  constexpr int kSleepers = 3;
  std::atomic<uint32_t> word{0};
  std::vector<Sleeper> sleepers(kSleepers);
  for (auto& s : sleepers) s.start(word, 0, kHangGuard);
  for (auto& s : sleepers) ASSERT_TRUE(s.asleep_on(word));

  futex_wake_one(word);
  auto returned = [&] {
    int n = 0;
    for (auto& s : sleepers) n += s.done.load();
    return n;
  };
  EXPECT_TRUE(eventually([&] { return returned() >= 1; })) << "futex_wake_one woke nobody";
  for (auto& s : sleepers) s.interrupt();
  int woken = 0, interrupted = 0;
  for (auto& s : sleepers) {
    const WaitStatus status = s.join();
    woken += status == WaitStatus::Woken;
    interrupted += status == WaitStatus::Interrupted;
  }
  EXPECT_EQ(woken, 1);
  EXPECT_EQ(interrupted, kSleepers - 1);
}

TEST(Futex, WakeWithoutSleepersLeavesWordUntouched) {
  std::atomic<uint32_t> word{42};
  futex_wake_one(word);
  futex_wake_all(word);
  EXPECT_EQ(word.load(), 42u);
  EXPECT_EQ(futex_wait(word, 42, 1ms), WaitStatus::TimedOut);
}

TEST(Futex, SignalInterruptsWaitAndIsReported) {
  // Were the signal swallowed (the call restarted), the wait would run into
  // kHangGuard and report TimedOut.
  NoopHandler handler(SIGUSR1);
  std::atomic<uint32_t> word{0};
  Sleeper s;
  s.start(word, 0, kHangGuard);
  EXPECT_TRUE(s.asleep_on(word));
  s.interrupt();
  EXPECT_EQ(s.join(), WaitStatus::Interrupted);
}
