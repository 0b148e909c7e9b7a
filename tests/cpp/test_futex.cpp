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

using namespace std::chrono_literals;
using interpool::rt::futex_wait;
using interpool::rt::futex_wake_all;
using interpool::rt::futex_wake_one;
using interpool::rt::WaitStatus;
using interpool::test::Blocked;
using interpool::test::eventually;
using interpool::test::NoopHandler;
using interpool::test::sleeps_in_futex;
using Clock = std::chrono::steady_clock;

namespace {

/// One thread sleeping in futex_wait(word, expected, timeout).
struct Sleeper : Blocked<WaitStatus> {
  void start(std::atomic<uint32_t>& word, uint32_t expected, std::chrono::nanoseconds timeout) {
    Blocked::start([&word, expected, timeout] { return futex_wait(word, expected, timeout); });
  }
};

}  // namespace

TEST(Futex, WaitReturnsWokenAtOnceWhenWordNoLongerHoldsExpected) {
  std::atomic<uint32_t> word{1};
  const auto t0 = Clock::now();
  EXPECT_EQ(futex_wait(word, 0, 5s), WaitStatus::Woken);
  EXPECT_LT(Clock::now() - t0, 1s);
}

TEST(Futex, WaitTimesOutWhileWordHoldsExpected) {
  std::atomic<uint32_t> word{7};
  const auto t0 = Clock::now();
  EXPECT_EQ(futex_wait(word, 7, 30ms), WaitStatus::TimedOut);
  const auto elapsed = Clock::now() - t0;
  EXPECT_GE(elapsed, 30ms);
  EXPECT_LT(elapsed, 2s);
  EXPECT_EQ(word.load(), 7u);
}

TEST(Futex, ZeroTimeoutPollsWithoutSleeping) {
  std::atomic<uint32_t> word{0};
  const auto t0 = Clock::now();
  EXPECT_EQ(futex_wait(word, 0, 0ns), WaitStatus::TimedOut);
  EXPECT_LT(Clock::now() - t0, 500ms);
}

TEST(Futex, NegativeTimeoutIsTreatedAsZero) {
  // Passed through unclamped, the kernel would answer EINVAL, reported as Woken.
  std::atomic<uint32_t> word{0};
  const auto t0 = Clock::now();
  EXPECT_EQ(futex_wait(word, 0, -1s), WaitStatus::TimedOut);
  EXPECT_EQ(futex_wait(word, 0, -1ns), WaitStatus::TimedOut);
  EXPECT_LT(Clock::now() - t0, 500ms);
}

TEST(Futex, TimeoutsOfSeveralSecondsAreAccepted) {
  // A badly split timespec (tv_nsec >= 1e9) makes the kernel refuse to sleep.
  std::atomic<uint32_t> word{0};
  Sleeper s;
  s.start(word, 0, 2'500ms);
  EXPECT_TRUE(sleeps_in_futex(s.tid, &word, sizeof word, 2s)) << "never went to sleep";
  EXPECT_FALSE(s.done.load());
  word = 1;
  futex_wake_all(word);
  s.thread.join();
  EXPECT_EQ(s.status, WaitStatus::Woken);
}

TEST(Futex, WakeAllWakesEverySleeper) {
  constexpr int kSleepers = 4;
  std::atomic<uint32_t> word{0};
  std::vector<Sleeper> sleepers(kSleepers);
  for (auto& s : sleepers) s.start(word, 0, 5s);
  for (auto& s : sleepers) EXPECT_TRUE(sleeps_in_futex(s.tid, &word, sizeof word, 2s));
  const auto t0 = Clock::now();
  word = 1;
  futex_wake_all(word);
  for (auto& s : sleepers) {
    s.thread.join();
    EXPECT_EQ(s.status, WaitStatus::Woken);
  }
  EXPECT_LT(Clock::now() - t0, 2s);
}

TEST(Futex, WakeOneWakesExactlyOneSleeper) {
  constexpr int kSleepers = 3;
  std::atomic<uint32_t> word{0};
  std::vector<Sleeper> sleepers(kSleepers);
  for (auto& s : sleepers) s.start(word, 0, 5s);
  for (auto& s : sleepers) EXPECT_TRUE(sleeps_in_futex(s.tid, &word, sizeof word, 2s));

  auto woken = [&] {
    int n = 0;
    for (auto& s : sleepers) n += s.done.load();
    return n;
  };
  futex_wake_one(word);  // the word still holds `expected`: only the wake frees a sleeper
  EXPECT_TRUE(eventually([&] { return woken() >= 1; }, 2s));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(woken(), 1);

  futex_wake_all(word);
  for (auto& s : sleepers) {
    s.thread.join();
    EXPECT_EQ(s.status, WaitStatus::Woken);
  }
}

TEST(Futex, WakeWithoutSleepersLeavesWordUntouched) {
  std::atomic<uint32_t> word{42};
  futex_wake_one(word);
  futex_wake_all(word);
  EXPECT_EQ(word.load(), 42u);
  EXPECT_EQ(futex_wait(word, 42, 1ms), WaitStatus::TimedOut);
}

TEST(Futex, SignalInterruptsWaitAndIsReported) {
  NoopHandler handler(SIGUSR1);
  std::atomic<uint32_t> word{0};
  Sleeper s;
  s.start(word, 0, 5s);
  EXPECT_TRUE(sleeps_in_futex(s.tid, &word, sizeof word, 2s));
  const auto t0 = Clock::now();
  // Repeat in case a signal lands just before the thread entered the kernel.
  while (!s.done.load() && Clock::now() - t0 < 2s) {
    pthread_kill(s.thread.native_handle(), SIGUSR1);
    std::this_thread::sleep_for(5ms);
  }
  s.thread.join();
  EXPECT_EQ(s.status, WaitStatus::Interrupted);
  EXPECT_LT(Clock::now() - t0, 2s);
}
