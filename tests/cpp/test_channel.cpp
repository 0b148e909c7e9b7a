// tests/cpp/test_channel.cpp: specification of runtime/channel.hpp.
//
// A Channel is a FIFO of Payloads shared by threads of any interpreter:
// bounded or not; put/get block (sleeping in futex(2), after a short spin),
// honour timeouts and report signals; close() wakes every waiter, refuses
// later puts, and lets gets drain what is left.  Handles inside payloads stay
// alive while queued.
#include "runtime/channel.hpp"

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
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "test_support.hpp"

using namespace interpool::test;  // kHangGuard, NoopHandler, Clock, std::chrono_literals
using interpool::rt::Block;
using interpool::rt::Channel;
using interpool::rt::ChannelStatus;
using interpool::rt::Handle;
using interpool::rt::Payload;

static_assert(std::is_base_of_v<Handle, Channel>, "a Channel is an engine handle, so it can cross interpreters");
static_assert(!std::is_copy_constructible_v<Channel>, "a Channel is shared by handle, never copied");

namespace {

Payload msg(const std::string& text) {
  Payload p;
  p.bytes = text;
  return p;
}

/// The item a channel call puts or gets; a base of BlockedCall below so that it
/// is built before, and destroyed after, the thread that uses it.
struct HeldItem {
  Payload item;
};

/// A thread blocked in one channel call on `item` (given or filled in).
struct BlockedCall : HeldItem, Blocked<ChannelStatus> {
  BlockedCall(std::function<ChannelStatus(Payload&)> call, Payload with = {})
      : HeldItem{std::move(with)}, Blocked<ChannelStatus>([this, call = std::move(call)] { return call(item); }) {}
};

}  // namespace

// ------------------------------------------------------------------- basics

TEST(Channel, IsFirstInFirstOut) {
  Channel ch;
  for (int i = 0; i < 100; ++i) {
    Payload p = msg(std::to_string(i));
    ASSERT_EQ(ch.put(p), ChannelStatus::Ok);
  }
  EXPECT_EQ(ch.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    Payload out;
    ASSERT_EQ(ch.get(out), ChannelStatus::Ok);
    EXPECT_EQ(out.bytes, std::to_string(i));
  }
  EXPECT_EQ(ch.size(), 0u);
}

TEST(Channel, UnboundedIsNeverFull) {
  Channel ch;
  EXPECT_EQ(ch.capacity(), 0u);
  for (int i = 0; i < 10000; ++i) {
    Payload p = msg("x");
    ASSERT_EQ(ch.try_put(p), ChannelStatus::Ok);
  }
  EXPECT_FALSE(ch.full());
}

TEST(Channel, TryGetOnEmptyAndTryPutOnFullFailAtOnce) {
  Channel ch(1);
  Payload out;
  EXPECT_EQ(ch.try_get(out), ChannelStatus::TimedOut);
  Payload a = msg("a"), b = msg("b");
  EXPECT_EQ(ch.try_put(a), ChannelStatus::Ok);
  EXPECT_TRUE(ch.full());
  EXPECT_EQ(ch.try_put(b), ChannelStatus::TimedOut);
  EXPECT_EQ(b.bytes, "b") << "an item that was not put stays with the caller";
  EXPECT_EQ(ch.size(), 1u);
}

TEST(Channel, GetHonoursItsTimeout) {
  Channel ch;
  Payload out;
  const auto t0 = Clock::now();
  EXPECT_EQ(ch.get(out, 60ms), ChannelStatus::TimedOut);
  EXPECT_GE(Clock::now() - t0, 60ms);
}

TEST(Channel, PutHonoursItsTimeoutWhenFull) {
  Channel ch(2);
  Payload a = msg("a"), b = msg("b"), c = msg("c");
  ASSERT_EQ(ch.put(a), ChannelStatus::Ok);
  ASSERT_EQ(ch.put(b), ChannelStatus::Ok);
  const auto t0 = Clock::now();
  EXPECT_EQ(ch.put(c, 60ms), ChannelStatus::TimedOut);
  EXPECT_GE(Clock::now() - t0, 60ms);
  EXPECT_EQ(c.bytes, "c");
}

// ----------------------------------------------------------------- blocking

TEST(Channel, PutWakesASleepingGetter) {
  Channel ch;
  BlockedCall getter([&](Payload& out) { return ch.get(out, kHangGuard); });
  ASSERT_TRUE(getter.asleep_on(ch)) << "a getter must sleep in futex, not poll";
  EXPECT_FALSE(getter.done.load());
  Payload p = msg("hello");
  ASSERT_EQ(ch.put(p), ChannelStatus::Ok);
  EXPECT_EQ(getter.join(), ChannelStatus::Ok);
  EXPECT_EQ(getter.item.bytes, "hello");
}

TEST(Channel, GetWakesASleepingPutter) {
  Channel ch(1);
  Payload a = msg("a");
  ASSERT_EQ(ch.put(a), ChannelStatus::Ok);
  BlockedCall putter([&](Payload& item) { return ch.put(item, kHangGuard); }, msg("b"));
  ASSERT_TRUE(putter.asleep_on(ch)) << "a putter on a full channel must sleep in futex, not poll";
  Payload out;
  ASSERT_EQ(ch.get(out), ChannelStatus::Ok);
  EXPECT_EQ(out.bytes, "a");
  EXPECT_EQ(putter.join(), ChannelStatus::Ok);
  ASSERT_EQ(ch.get(out, kHangGuard), ChannelStatus::Ok);
  EXPECT_EQ(out.bytes, "b");
}

TEST(Channel, EachPutWakesADifferentSleepingGetter) {
  Channel ch;
  std::vector<std::unique_ptr<BlockedCall>> getters;
  for (int i = 0; i < 4; ++i) {
    getters.push_back(std::make_unique<BlockedCall>([&](Payload& out) { return ch.get(out, kHangGuard); }));
    ASSERT_TRUE(getters.back()->asleep_on(ch));
  }
  for (int i = 0; i < 4; ++i) {
    Payload p = msg(std::to_string(i));
    ASSERT_EQ(ch.put(p), ChannelStatus::Ok);
  }
  std::vector<std::string> got;
  for (auto& g : getters) {
    EXPECT_EQ(g->join(), ChannelStatus::Ok);
    got.push_back(g->item.bytes);
  }
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"0", "1", "2", "3"}));
}

TEST(Channel, GetReportsInterruptedWhenASignalArrives) {
  NoopHandler handler(SIGUSR1);
  Channel ch;
  BlockedCall getter([&](Payload& out) { return ch.get(out, kHangGuard); });
  ASSERT_TRUE(getter.asleep_on(ch));
  getter.interrupt();
  EXPECT_EQ(getter.join(), ChannelStatus::Interrupted);
  Payload p = msg("still works");
  ASSERT_EQ(ch.put(p), ChannelStatus::Ok);
  Payload out;
  EXPECT_EQ(ch.get(out, kHangGuard), ChannelStatus::Ok);
}

TEST(Channel, PutReportsInterruptedWhenASignalArrives) {
  NoopHandler handler(SIGUSR1);
  Channel ch(1);
  Payload a = msg("a");
  ASSERT_EQ(ch.put(a), ChannelStatus::Ok);
  BlockedCall putter([&](Payload& item) { return ch.put(item, kHangGuard); }, msg("b"));
  ASSERT_TRUE(putter.asleep_on(ch));
  putter.interrupt();
  EXPECT_EQ(putter.join(), ChannelStatus::Interrupted);
  EXPECT_EQ(putter.item.bytes, "b") << "an interrupted put keeps its item";
  EXPECT_EQ(ch.size(), 1u);
}

TEST(Channel, WithoutSpinningGetStillBlocksAndWakes) {
  Channel ch(0, std::chrono::nanoseconds(0));
  BlockedCall getter([&](Payload& out) { return ch.get(out, kHangGuard); });
  ASSERT_TRUE(getter.asleep_on(ch));
  Payload p = msg("x");
  ASSERT_EQ(ch.put(p), ChannelStatus::Ok);
  EXPECT_EQ(getter.join(), ChannelStatus::Ok);
}

// -------------------------------------------------------------------- close

TEST(Channel, CloseRefusesPutsAndDrainsGets) {
  Channel ch;
  Payload a = msg("a"), b = msg("b");
  ASSERT_EQ(ch.put(a), ChannelStatus::Ok);
  ASSERT_EQ(ch.put(b), ChannelStatus::Ok);
  ch.close();
  EXPECT_TRUE(ch.closed());
  Payload c = msg("c");
  EXPECT_EQ(ch.put(c), ChannelStatus::Closed);
  EXPECT_EQ(ch.try_put(c), ChannelStatus::Closed);
  EXPECT_EQ(c.bytes, "c");
  Payload out;
  ASSERT_EQ(ch.get(out), ChannelStatus::Ok);
  EXPECT_EQ(out.bytes, "a");
  ASSERT_EQ(ch.try_get(out), ChannelStatus::Ok);
  EXPECT_EQ(out.bytes, "b");
  EXPECT_EQ(ch.get(out), ChannelStatus::Closed) << "closed and drained: no wait at all";
  EXPECT_EQ(ch.try_get(out), ChannelStatus::Closed);
  ch.close();  // idempotent
  EXPECT_TRUE(ch.closed());
}

TEST(Channel, CloseWakesEveryBlockedGetterAndPutter) {
  Channel empty, full(1);
  Payload x = msg("x");
  ASSERT_EQ(full.put(x), ChannelStatus::Ok);
  std::vector<std::unique_ptr<BlockedCall>> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.push_back(std::make_unique<BlockedCall>([&](Payload& out) { return empty.get(out, kHangGuard); }));
    ASSERT_TRUE(waiters.back()->asleep_on(empty));
  }
  for (int i = 0; i < 3; ++i) {
    waiters.push_back(
        std::make_unique<BlockedCall>([&](Payload& item) { return full.put(item, kHangGuard); }, msg("y")));
    ASSERT_TRUE(waiters.back()->asleep_on(full));
  }
  empty.close();
  full.close();
  for (auto& w : waiters) {
    EXPECT_EQ(w->join(), ChannelStatus::Closed);
  }
  Payload out;
  EXPECT_EQ(full.get(out), ChannelStatus::Ok) << "the item queued before close() is still there";
  EXPECT_EQ(full.get(out), ChannelStatus::Closed);
}

// ------------------------------------------------------------------ handles

TEST(Channel, KeepsHandlesAliveWhileQueued) {
  Channel ch;
  auto block = std::make_shared<Block>(64);
  std::weak_ptr<Block> weak = block;
  {
    Payload p = msg("with a handle");
    p.handles.push_back(block);
    ASSERT_EQ(ch.put(p), ChannelStatus::Ok);
  }
  block.reset();
  EXPECT_FALSE(weak.expired()) << "the queued payload holds the block";
  Payload out;
  ASSERT_EQ(ch.get(out), ChannelStatus::Ok);
  ASSERT_EQ(out.handles.size(), 1u);
  EXPECT_EQ(out.handles[0].get(), weak.lock().get());
  out.clear();
  EXPECT_TRUE(weak.expired());
}

TEST(Channel, CanCarryAnotherChannel) {
  auto outer = std::make_shared<Channel>();
  auto inner = std::make_shared<Channel>();
  Payload p;
  p.handles.push_back(inner);
  ASSERT_EQ(outer->put(p), ChannelStatus::Ok);
  Payload out;
  ASSERT_EQ(outer->get(out), ChannelStatus::Ok);
  auto got = std::dynamic_pointer_cast<Channel>(out.handles.at(0));
  ASSERT_TRUE(got);
  EXPECT_EQ(got, inner);
}

TEST(Channel, DestroyingAChannelReleasesWhatItHolds) {
  auto block = std::make_shared<Block>(8);
  std::weak_ptr<Block> weak = block;
  {
    Channel ch;
    Payload p;
    p.handles.push_back(std::move(block));
    ASSERT_EQ(ch.put(p), ChannelStatus::Ok);
  }
  EXPECT_TRUE(weak.expired());
}

// --------------------------------------------------------------- contention

TEST(Channel, ManyProducersAndConsumersAccountForEveryItemOnce) {
  constexpr int kProducers = 4, kConsumers = 4, kItems = 20000;
  Channel ch(16);  // small, so that putters block too
  std::vector<std::atomic<int>> seen(kProducers * kItems);
  std::atomic<int> ended{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kConsumers; ++c)
    threads.emplace_back([&] {
      for (;;) {
        Payload out;
        ChannelStatus s = ch.get(out, kHangGuard);
        if (s == ChannelStatus::Closed) break;
        ASSERT_EQ(s, ChannelStatus::Ok);
        seen[std::stoi(out.bytes)].fetch_add(1);
      }
      ended.fetch_add(1);
    });
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p)
    producers.emplace_back([&, p] {
      for (int i = 0; i < kItems; ++i) {
        Payload item = msg(std::to_string(p * kItems + i));
        ASSERT_EQ(ch.put(item, kHangGuard), ChannelStatus::Ok);
      }
    });
  for (auto& t : producers) t.join();
  ch.close();
  for (auto& t : threads) t.join();
  EXPECT_EQ(ended.load(), kConsumers);
  int missing = 0, duplicated = 0;
  for (auto& s : seen) {
    missing += s.load() == 0;
    duplicated += s.load() > 1;
  }
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(duplicated, 0);
}

TEST(Channel, PingPongNeverLosesAWakeUp) {
  // Each get usually finds the channel empty and sleeps: a lost wake-up
  // leaves a get to run into kHangGuard (TimedOut).  On any failure both
  // channels are closed, so that the other side stops too.
  Channel ping, pong;
  constexpr int kRounds = 20000;
  ChannelStatus echo_failed = ChannelStatus::Ok;
  std::thread echo([&] {
    for (int i = 0; i < kRounds; ++i) {
      Payload p;
      ChannelStatus s = ping.get(p, kHangGuard);
      if (s == ChannelStatus::Ok) s = pong.put(p);
      if (s != ChannelStatus::Ok) {
        echo_failed = s;
        pong.close();
        return;
      }
    }
  });
  int rounds = 0;
  ChannelStatus failed = ChannelStatus::Ok;
  std::string wrong;
  for (; rounds < kRounds; ++rounds) {
    Payload p = msg(std::to_string(rounds));
    Payload back;
    failed = ping.put(p);
    if (failed == ChannelStatus::Ok) failed = pong.get(back, kHangGuard);
    if (failed != ChannelStatus::Ok) break;
    if (back.bytes != std::to_string(rounds)) {
      wrong = back.bytes;
      break;
    }
  }
  ping.close();
  echo.join();
  EXPECT_EQ(rounds, kRounds) << "stopped in round " << rounds;
  EXPECT_EQ(failed, ChannelStatus::Ok);
  EXPECT_EQ(wrong, "");
  EXPECT_EQ(echo_failed, ChannelStatus::Ok);
}
