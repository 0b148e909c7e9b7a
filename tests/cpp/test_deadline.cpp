// tests/cpp/test_deadline.cpp: specification of runtime/deadline.hpp.
//
// A Deadline answers "how long may I still sleep": forever for none, the
// time left for one in the future, false once it has passed.  wait_in_slices
// asks it before every slice, never sleeps more than kSignalCheckInterval at
// once, and stops at the first successful attempt, the first failed check,
// or the deadline.
#include "runtime/deadline.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

using namespace std::chrono_literals;
using namespace interpool::rt;  // Deadline, Timeout, kSignalCheckInterval, wait_in_slices, WaitStatus

TEST(Deadline, NoneIsForever) {
  const Deadline never;
  EXPECT_TRUE(never.never());
  Timeout left = 5ns;
  EXPECT_TRUE(never.left(left));
  EXPECT_FALSE(left.has_value());
  std::chrono::nanoseconds slice{};
  EXPECT_TRUE(never.slice(kSignalCheckInterval, slice));
  EXPECT_EQ(slice, kSignalCheckInterval);
  EXPECT_TRUE(Deadline::after(std::nullopt).never());
}

TEST(Deadline, ZeroOrNegativeTimeoutHasPassed) {
  for (auto timeout : {0ns, -1ns}) {
    const Deadline now = Deadline::after(timeout);
    EXPECT_FALSE(now.never());
    Timeout left;
    EXPECT_FALSE(now.left(left));
    ASSERT_TRUE(left.has_value());
    EXPECT_LE(left->count(), 0);
    std::chrono::nanoseconds slice{};
    EXPECT_FALSE(now.slice(kSignalCheckInterval, slice));
  }
}

TEST(Deadline, FutureDeadlineLeavesAtMostItsTimeout) {
  const Deadline later = Deadline::after(1h);
  Timeout left;
  ASSERT_TRUE(later.left(left));
  ASSERT_TRUE(left.has_value());
  EXPECT_GT(*left, 0ns);
  EXPECT_LE(*left, 1h);
  std::chrono::nanoseconds slice{};
  ASSERT_TRUE(later.slice(kSignalCheckInterval, slice));
  EXPECT_EQ(slice, kSignalCheckInterval);  // the cap, as the deadline is far
  ASSERT_TRUE(later.slice(1h + 1s, slice));
  EXPECT_LE(slice, 1h);  // the time left, as the cap is farther
}

TEST(Deadline, AtAPastPointHasPassed) {
  Timeout left;
  EXPECT_FALSE(Deadline::at(Deadline::Clock::now() - 1s).left(left));
  EXPECT_TRUE(Deadline::at(Deadline::Clock::now() + 1h).left(left));
}

TEST(WaitInSlices, StopsAtTheFirstSuccessfulAttempt) {
  std::vector<std::chrono::nanoseconds> slices;
  int checks = 0;
  int r = wait_in_slices(
      Deadline(),
      [&](std::chrono::nanoseconds slice) {
        slices.push_back(slice);
        return slices.size() == 3 ? WaitStatus::Woken : WaitStatus::Interrupted;
      },
      [&] { return ++checks, true; });
  EXPECT_EQ(r, 1);
  EXPECT_EQ(slices.size(), 3u);
  EXPECT_EQ(checks, 2);  // between the slices that did not succeed only
  for (auto s : slices) EXPECT_EQ(s, kSignalCheckInterval);
}

TEST(WaitInSlices, StopsAtTheFirstFailedCheck) {
  int attempts = 0;
  int r = wait_in_slices(
      Deadline(), [&](std::chrono::nanoseconds) { return ++attempts, WaitStatus::TimedOut; }, [] { return false; });
  EXPECT_EQ(r, -1);
  EXPECT_EQ(attempts, 1);
}

TEST(WaitInSlices, APassedDeadlineMakesNoAttempt) {
  int attempts = 0;
  int r = wait_in_slices(
      Deadline::after(0ns), [&](std::chrono::nanoseconds) { return ++attempts, WaitStatus::Woken; },
      [] { return true; });
  EXPECT_EQ(r, 0);
  EXPECT_EQ(attempts, 0);
}

TEST(WaitInSlices, EndsWhenTheDeadlinePasses) {
  // Each attempt "sleeps" by moving the deadline's clock forward: it reports
  // a timed-out slice no longer than what the deadline leaves.
  const auto start = Deadline::Clock::now();
  const Deadline deadline = Deadline::after(1ms);
  int attempts = 0;
  int r = wait_in_slices(
      deadline,
      [&](std::chrono::nanoseconds slice) {
        EXPECT_LE(slice, 1ms);
        ++attempts;
        while (Deadline::Clock::now() - start < slice) {
        }
        return WaitStatus::TimedOut;
      },
      [] { return true; });
  EXPECT_EQ(r, 0);
  EXPECT_GE(attempts, 1);
  EXPECT_GE(Deadline::Clock::now() - start, 1ms);
}
