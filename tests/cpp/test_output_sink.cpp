// tests/cpp/test_output_sink.cpp: specification of runtime/output_sink.hpp.
#include "runtime/output_sink.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <vector>

#include "test_support.hpp"

using namespace interpool::test;  // Blocked, NoopHandler, std::chrono_literals
using interpool::rt::OutputKind;
using interpool::rt::OutputSink;
using interpool::rt::WaitStatus;

TEST(OutputSink, NumbersChunksInPushOrderAndTakesThemOldestFirst) {
  OutputSink sink;
  bool was_empty = false;
  EXPECT_EQ(sink.push(0, OutputKind::Stdout, "a\n", was_empty), 1u);
  EXPECT_TRUE(was_empty);
  EXPECT_EQ(sink.push(1, OutputKind::Stderr, "b\n", was_empty), 2u);
  EXPECT_FALSE(was_empty);  // the writer was woken by the first push
  EXPECT_EQ(sink.push(0, OutputKind::Record, "r", was_empty), 3u);
  EXPECT_TRUE(sink.pending());
  auto chunks = sink.take();
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].bytes, "a\n");
  EXPECT_EQ(chunks[1].worker, 1u);
  EXPECT_EQ(chunks[1].kind, OutputKind::Stderr);
  EXPECT_EQ(chunks[2].seq, 3u);
  EXPECT_FALSE(sink.pending());
  EXPECT_TRUE(sink.take().empty());
  sink.push(0, OutputKind::Stdout, "c\n", was_empty);
  EXPECT_TRUE(was_empty);  // empty again after take(): wake the writer again
}

/// A sink holding one chunk ("x", number `seq`) that no writer has taken yet.
class OutputSinkWithAChunk : public ::testing::Test {
 protected:
  OutputSink sink;
  bool was_empty = false;
  const uint64_t seq = sink.push(0, OutputKind::Stdout, "x", was_empty);

  /// Starts `waiter` waiting (up to 30 s) until the chunk is written; true once it sleeps there.
  bool wait_in(Blocked<WaitStatus>& waiter) {
    waiter.start([this] { return sink.wait_written(seq, 30s); });
    return waiter.asleep_on(sink);
  }
};

TEST_F(OutputSinkWithAChunk, WrittenChunksNeedNoWait) {
  EXPECT_EQ(sink.wait_written(seq, 1ms), WaitStatus::TimedOut);
  sink.take();
  sink.written_through(seq);
  EXPECT_EQ(sink.written(), seq);
  EXPECT_EQ(sink.wait_written(seq, std::nullopt), WaitStatus::Woken);
  EXPECT_EQ(sink.wait_written(0, std::nullopt), WaitStatus::Woken);
}

TEST(OutputSink, WriterWakesAWaiter) {
  OutputSink sink;
  bool was_empty;
  sink.push(0, OutputKind::Stdout, "x", was_empty);
  uint64_t seq = sink.push(0, OutputKind::Stdout, "y", was_empty);
  Blocked<WaitStatus> waiter([&] { return sink.wait_written(seq, 30s); });
  ASSERT_TRUE(waiter.asleep_on(sink));
  sink.written_through(seq - 1);  // not far enough: it sleeps on
  ASSERT_TRUE(waiter.asleep_on(sink));
  EXPECT_FALSE(waiter.done.load());
  sink.written_through(seq);
  EXPECT_EQ(waiter.join(), WaitStatus::Woken);
}

TEST_F(OutputSinkWithAChunk, CloseReleasesWaitersAndLaterPushesCountAsWritten) {
  Blocked<WaitStatus> waiter;
  ASSERT_TRUE(wait_in(waiter));
  sink.close();
  EXPECT_EQ(waiter.join(), WaitStatus::Woken);
  uint64_t late = sink.push(0, OutputKind::Stdout, "late", was_empty);
  EXPECT_FALSE(was_empty);  // no writer to wake
  EXPECT_GE(sink.written(), late);
}

TEST_F(OutputSinkWithAChunk, ASignalInterruptsTheWait) {
  NoopHandler handler(SIGUSR1);
  Blocked<WaitStatus> waiter;
  ASSERT_TRUE(wait_in(waiter));
  waiter.interrupt();
  EXPECT_EQ(waiter.join(), WaitStatus::Interrupted);
}
