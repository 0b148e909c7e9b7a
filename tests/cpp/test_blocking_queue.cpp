// tests/cpp/test_blocking_queue.cpp: specification of runtime/blocking_queue.hpp.
//
// Tests that block run the blocking side on a Background thread whose state
// is owned through shared_ptr: if the thread does not come back within
// kHangGuard (a lost wake-up) the test fails and the thread is detached, so
// no test can hang.  No test bounds how fast anything happens.
#include "runtime/blocking_queue.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace interpool::test;  // completes, eventually, kHangGuard, sleeps_in_futex, std::chrono_literals
using interpool::rt::BlockingQueue;

namespace {

/// A thread running `fn`.  `fn` must own (by shared_ptr) everything it
/// touches: a thread that does not finish in time is detached, not joined.
class Background {
 public:
  template <class F>
  explicit Background(F fn) : _state(std::make_shared<Shared>()) {
    _thread = std::thread([state = _state, fn = std::move(fn)]() mutable {
      state->tid = gettid();
      fn();
      state->done = true;
    });
    while (_state->tid.load() == 0) std::this_thread::yield();
  }
  Background(Background&&) = default;
  ~Background() {
    if (!_thread.joinable()) return;
    if (_state->done.load())
      _thread.join();
    else
      _thread.detach();
  }

  pid_t tid() const { return _state->tid; }
  bool finished() const { return _state->done.load(); }
  /// Waits (up to kHangGuard) for the thread to finish; neither joins nor detaches.
  bool comes_back() const {
    return eventually([&] { return _state->done.load(); });
  }
  /// Joins the thread once it finishes; detaches it (false) should it not
  /// finish within kHangGuard.
  bool finishes() {
    return settle(eventually([&] { return _state->done.load(); }));
  }
  /// Like finishes(), but gives up only once `progress()` stood still for
  /// kHangGuard: for long runs, which may be slow but must not stall.
  bool finishes(const std::function<uint64_t()>& progress) {
    return settle(completes([&] { return _state->done.load(); }, progress));
  }

 private:
  bool settle(bool finished) {
    if (!_thread.joinable()) return _state->done.load();
    if (finished)
      _thread.join();
    else
      _thread.detach();
    return finished;
  }

 public:
 private:
  struct Shared {
    std::atomic<pid_t> tid{0};
    std::atomic<bool> done{false};
  };
  std::shared_ptr<Shared> _state;
  std::thread _thread;
};

using Queue = BlockingQueue<int>;

template <class Q>
bool asleep_in(const Background& thread, const Q& q) {
  return sleeps_in_futex(thread.tid(), &q, sizeof(Q), [&] { return thread.finished(); });
}

/// Runs `body` on a thread.  If it has not returned within kHangGuard
/// (blocked where it should not be), closes the queue to free it and returns
/// false.
bool runs_without_blocking(const std::shared_ptr<Queue>& q, std::function<void(Queue&)> body) {
  Background thread([q, body] { body(*q); });
  if (thread.comes_back()) return thread.finishes();
  q->close();
  thread.finishes();
  return false;
}

}  // namespace

// ----------------------------------------------------------- single-threaded

TEST(BlockingQueue, StartsOpenAndEmpty) {
  Queue q;
  EXPECT_FALSE(q.closed());
  EXPECT_EQ(q.size(), 0u);
  EXPECT_TRUE(q.drain().empty());
}

TEST(BlockingQueue, PopsInFifoOrder) {
  Queue q;
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(q.push(i));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(q.pop(), std::optional<int>(i));
}

TEST(BlockingQueue, SizeTracksPushesAndPops) {
  Queue q;
  q.push(1);
  q.push(2);
  q.push(3);
  EXPECT_EQ(q.size(), 3u);
  q.pop();
  EXPECT_EQ(q.size(), 2u);
  q.pop_all();
  EXPECT_EQ(q.size(), 0u);
  q.push(4);
  EXPECT_EQ(q.size(), 1u);
  q.drain();
  EXPECT_EQ(q.size(), 0u);
}

TEST(BlockingQueue, DrainTakesEverythingInOrder) {
  Queue q;
  for (int i = 0; i < 5; ++i) q.push(i);
  EXPECT_EQ(q.drain(), (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(q.size(), 0u);
  EXPECT_TRUE(q.drain().empty());
}

TEST(BlockingQueue, DrainOfAnEmptyOpenQueueReturnsAtOnce) {
  auto q = std::make_shared<Queue>();
  EXPECT_TRUE(runs_without_blocking(q, [](Queue& q) { EXPECT_TRUE(q.drain().empty()); }));
  EXPECT_FALSE(q->closed());
}

TEST(BlockingQueue, PopAllTakesEverythingInOrder) {
  Queue q;
  for (int i = 10; i < 15; ++i) q.push(i);
  EXPECT_EQ(q.pop_all(), (std::vector<int>{10, 11, 12, 13, 14}));
  EXPECT_EQ(q.size(), 0u);
  q.push(99);
  EXPECT_EQ(q.pop_all(), (std::vector<int>{99}));
}

TEST(BlockingQueue, PushAfterCloseIsRefusedAndQueuesNothing) {
  Queue q;
  q.push(1);
  q.close();
  EXPECT_FALSE(q.push(2));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.drain(), (std::vector<int>{1}));
}

TEST(BlockingQueue, CloseKeepsQueuedItemsPoppable) {
  Queue q;
  q.push(1);
  q.push(2);
  q.close();
  EXPECT_TRUE(q.closed());
  EXPECT_EQ(q.pop(), std::optional<int>(1));
  EXPECT_EQ(q.pop(), std::optional<int>(2));
  EXPECT_EQ(q.pop(), std::nullopt);
  EXPECT_EQ(q.pop(), std::nullopt) << "a closed, drained queue stays drained";
}

TEST(BlockingQueue, PopAllAfterCloseReturnsTheRestThenNothing) {
  Queue q;
  q.push(7);
  q.push(8);
  q.close();
  EXPECT_EQ(q.pop_all(), (std::vector<int>{7, 8}));
  EXPECT_TRUE(q.pop_all().empty());
}

TEST(BlockingQueue, CloseIsIdempotent) {
  Queue q;
  q.push(5);
  q.close();
  q.close();
  EXPECT_TRUE(q.closed());
  EXPECT_FALSE(q.push(6));
  EXPECT_EQ(q.pop(), std::optional<int>(5));
  EXPECT_EQ(q.pop(), std::nullopt);
}

TEST(BlockingQueue, HoldsMoveOnlyItems) {
  BlockingQueue<std::unique_ptr<int>> q;
  ASSERT_TRUE(q.push(std::make_unique<int>(1)));
  ASSERT_TRUE(q.push(std::make_unique<int>(2)));
  ASSERT_TRUE(q.push(std::make_unique<int>(3)));
  auto first = q.pop();
  ASSERT_TRUE(first && *first);
  EXPECT_EQ(**first, 1);
  auto rest = q.pop_all();
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(*rest[0], 2);
  EXPECT_EQ(*rest[1], 3);
  q.push(std::make_unique<int>(4));
  auto drained = q.drain();
  ASSERT_EQ(drained.size(), 1u);
  EXPECT_EQ(*drained[0], 4);
}

// A spin of UINT_MAX polls takes seconds (minutes under sanitizers); kPops
// of them in a row run far past kHangGuard on any machine.  An item or a
// close must end each spin at once, so the consumer comes back.
constexpr int kPops = 64;

TEST(BlockingQueue, SpinningPopReturnsAsSoonAsAnItemIsThere) {
  auto q = std::make_shared<BlockingQueue<int>>(UINT_MAX);
  auto wrong = std::make_shared<std::atomic<int>>(0);
  Background consumer([q, wrong] {
    for (int i = 0; i < kPops / 2; ++i) {
      q->push(i);
      if (q->pop() != std::optional<int>(i)) wrong->fetch_add(1);
      q->push(i);
      if (q->pop_all() != std::vector<int>{i}) wrong->fetch_add(1);
    }
  });
  ASSERT_TRUE(consumer.finishes()) << "pop() kept spinning with an item queued";
  EXPECT_EQ(wrong->load(), 0);
}

TEST(BlockingQueue, SpinningPopReturnsAsSoonAsTheQueueIsClosed) {
  auto q = std::make_shared<BlockingQueue<int>>(UINT_MAX);
  auto wrong = std::make_shared<std::atomic<int>>(0);
  q->close();
  Background consumer([q, wrong] {
    for (int i = 0; i < kPops / 2; ++i) {
      if (q->pop() != std::nullopt) wrong->fetch_add(1);
      if (!q->pop_all().empty()) wrong->fetch_add(1);
    }
  });
  ASSERT_TRUE(consumer.finishes()) << "pop() kept spinning on a closed queue";
  EXPECT_EQ(wrong->load(), 0);
}

// pop(seen, poked) on an open queue blocks when it should not return: these
// run on a bounded thread that close() frees should pop() block by mistake.

TEST(BlockingQueue, PokedPopReportsAPokeOnceThenPopsItems) {
  auto q = std::make_shared<Queue>();
  EXPECT_TRUE(runs_without_blocking(q, [](Queue& q) {
    uint64_t seen = 0;
    bool poked = false;
    q.poke();
    EXPECT_EQ(q.pop(seen, poked), std::nullopt);
    EXPECT_TRUE(poked);
    EXPECT_EQ(seen, 1u);
    q.push(5);
    EXPECT_EQ(q.pop(seen, poked), std::optional<int>(5));
    EXPECT_FALSE(poked) << "a poke is reported once";
  }));
}

TEST(BlockingQueue, PokesSinceTheLastLookCollapseIntoOne) {
  auto q = std::make_shared<Queue>();
  EXPECT_TRUE(runs_without_blocking(q, [](Queue& q) {
    uint64_t seen = 0;
    bool poked = false;
    q.poke();
    q.poke();
    q.poke();
    q.push(1);
    std::vector<int> items;
    int pokes = 0;
    for (int i = 0; i < 4 && items.empty(); ++i) {
      auto v = q.pop(seen, poked);
      pokes += poked;
      if (v) items.push_back(*v);
      EXPECT_NE(poked, v.has_value()) << "a pop reports either a poke or an item";
    }
    EXPECT_EQ(pokes, 1);
    EXPECT_EQ(seen, 3u);
    EXPECT_EQ(items, (std::vector<int>{1})) << "a poke must not lose a queued item";
  }));
}

TEST(BlockingQueue, EachConsumerSeesAPokeOnItsOwnCount) {
  // The poke count is per consumer (`seen`): one poke reaches every consumer.
  auto q = std::make_shared<Queue>();
  EXPECT_TRUE(runs_without_blocking(q, [](Queue& q) {
    uint64_t seen_a = 0, seen_b = 0;
    bool poked = false;
    q.poke();
    q.pop(seen_a, poked);
    EXPECT_TRUE(poked);
    q.pop(seen_b, poked);
    EXPECT_TRUE(poked);
    q.push(2);
    EXPECT_EQ(q.pop(seen_a, poked), std::optional<int>(2));
    EXPECT_FALSE(poked);
  }));
}

TEST(BlockingQueue, PokablePopIsFifoAndEndsWithTheClosedQueue) {
  Queue q;
  uint64_t seen = 0;
  bool poked = true;
  for (int i = 0; i < 3; ++i) q.push(i);
  q.close();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(q.pop(seen, poked), std::optional<int>(i));
    EXPECT_FALSE(poked);
  }
  EXPECT_EQ(q.pop(seen, poked), std::nullopt);
  EXPECT_FALSE(poked) << "closed and drained is not a poke";
  EXPECT_EQ(seen, 0u);
}

// ---------------------------------------------- blocking, for several spins

class BlockingQueueWakeups : public ::testing::TestWithParam<unsigned> {
 protected:
  unsigned spin() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Spin, BlockingQueueWakeups, ::testing::Values(0u, 64u, 20000u),
                         [](const auto& info) { return "spin" + std::to_string(info.param); });

TEST_P(BlockingQueueWakeups, PopBlocksUntilAnItemIsPushed) {
  auto q = std::make_shared<Queue>(spin());
  auto got = std::make_shared<std::optional<int>>();
  Background consumer([q, got] { *got = q->pop(); });
  EXPECT_TRUE(asleep_in(consumer, *q)) << "pop() should sleep on an empty queue";
  EXPECT_FALSE(consumer.finished());
  EXPECT_TRUE(q->push(42));
  ASSERT_TRUE(consumer.finishes()) << "push() did not wake the blocked pop()";
  EXPECT_EQ(*got, std::optional<int>(42));
  EXPECT_EQ(q->size(), 0u);
}

TEST_P(BlockingQueueWakeups, PopAllBlocksUntilAnItemIsPushed) {
  auto q = std::make_shared<Queue>(spin());
  auto got = std::make_shared<std::vector<int>>();
  Background consumer([q, got] { *got = q->pop_all(); });
  EXPECT_TRUE(asleep_in(consumer, *q));
  EXPECT_FALSE(consumer.finished());
  EXPECT_TRUE(q->push(7));
  ASSERT_TRUE(consumer.finishes()) << "push() did not wake the blocked pop_all()";
  EXPECT_EQ(*got, (std::vector<int>{7}));
}

TEST_P(BlockingQueueWakeups, CloseWakesEveryBlockedPop) {
  constexpr int kConsumers = 4;
  auto q = std::make_shared<Queue>(spin());
  auto results = std::make_shared<std::vector<std::optional<int>>>(kConsumers, std::optional<int>(-1));
  std::vector<Background> consumers;
  for (int i = 0; i < kConsumers; ++i) consumers.emplace_back([q, results, i] { (*results)[i] = q->pop(); });
  for (auto& c : consumers) EXPECT_TRUE(asleep_in(c, *q));
  q->close();
  for (auto& c : consumers) ASSERT_TRUE(c.finishes()) << "close() left a pop() asleep";
  for (auto& r : *results) EXPECT_EQ(r, std::nullopt);
}

TEST_P(BlockingQueueWakeups, CloseWakesEveryBlockedPopAll) {
  constexpr int kConsumers = 3;
  auto q = std::make_shared<Queue>(spin());
  auto sizes = std::make_shared<std::vector<int>>(kConsumers, -1);
  std::vector<Background> consumers;
  for (int i = 0; i < kConsumers; ++i)
    consumers.emplace_back([q, sizes, i] { (*sizes)[i] = static_cast<int>(q->pop_all().size()); });
  for (auto& c : consumers) EXPECT_TRUE(asleep_in(c, *q));
  q->close();
  for (auto& c : consumers) ASSERT_TRUE(c.finishes()) << "close() left a pop_all() asleep";
  for (int n : *sizes) EXPECT_EQ(n, 0);
}

TEST_P(BlockingQueueWakeups, EachPushWakesASleepingConsumer) {
  // Pushes back to back while several consumers sleep: each item must reach
  // a consumer, none may stay queued while a consumer sleeps.
  constexpr int kConsumers = 4;
  auto q = std::make_shared<Queue>(spin());
  auto got = std::make_shared<std::vector<std::optional<int>>>(kConsumers);
  std::vector<Background> consumers;
  for (int i = 0; i < kConsumers; ++i) consumers.emplace_back([q, got, i] { (*got)[i] = q->pop(); });
  for (auto& c : consumers) EXPECT_TRUE(asleep_in(c, *q));
  for (int i = 0; i < kConsumers; ++i) EXPECT_TRUE(q->push(100 + i));
  bool all_back = true;
  for (auto& c : consumers) all_back &= c.finishes();
  if (!all_back) q->close();  // free the stragglers before failing
  ASSERT_TRUE(all_back) << "an item stayed queued while a consumer slept";
  std::vector<int> values;
  for (auto& g : *got) {
    ASSERT_TRUE(g.has_value());
    values.push_back(*g);
  }
  std::sort(values.begin(), values.end());
  EXPECT_EQ(values, (std::vector<int>{100, 101, 102, 103}));
}

TEST_P(BlockingQueueWakeups, PokeWakesEveryConsumerInPokablePop) {
  constexpr int kConsumers = 3;
  struct Result {
    std::optional<int> item{-1};
    bool poked = false;
    uint64_t seen = 0;
  };
  auto q = std::make_shared<Queue>(spin());
  auto results = std::make_shared<std::vector<Result>>(kConsumers);
  std::vector<Background> consumers;
  for (int i = 0; i < kConsumers; ++i)
    consumers.emplace_back([q, results, i] {
      auto& r = (*results)[i];
      r.item = q->pop(r.seen, r.poked);
    });
  for (auto& c : consumers) EXPECT_TRUE(asleep_in(c, *q));
  q->poke();
  bool all_back = true;
  for (auto& c : consumers) all_back &= c.finishes();
  if (!all_back) q->close();  // free the stragglers before failing
  ASSERT_TRUE(all_back) << "poke() left a consumer asleep";
  for (auto& r : *results) {
    EXPECT_EQ(r.item, std::nullopt);
    EXPECT_TRUE(r.poked);
    EXPECT_EQ(r.seen, 1u);
  }
}

TEST_P(BlockingQueueWakeups, PokeLeavesPlainPopAsleep) {
  auto q = std::make_shared<Queue>(spin());
  auto got = std::make_shared<std::optional<int>>();
  Background consumer([q, got] { *got = q->pop(); });
  EXPECT_TRUE(asleep_in(consumer, *q));
  q->poke();
  // Woken by the poke's notify_all, a correct pop() sleeps again; one that
  // returned on the poke never does (and got nothing instead of 9).
  EXPECT_TRUE(asleep_in(consumer, *q)) << "plain pop() returned on a poke";
  q->push(9);
  ASSERT_TRUE(consumer.finishes());
  EXPECT_EQ(*got, std::optional<int>(9)) << "plain pop() returned on a poke";
}

TEST_P(BlockingQueueWakeups, PokablePopBlocksUntilAnItemIsPushed) {
  auto q = std::make_shared<Queue>(spin());
  auto got = std::make_shared<std::optional<int>>();
  auto poked = std::make_shared<bool>(true);
  Background consumer([q, got, poked] {
    uint64_t seen = 0;
    *got = q->pop(seen, *poked);
  });
  EXPECT_TRUE(asleep_in(consumer, *q));
  EXPECT_FALSE(consumer.finished());
  q->push(11);
  ASSERT_TRUE(consumer.finishes());
  EXPECT_EQ(*got, std::optional<int>(11));
  EXPECT_FALSE(*poked);
}

TEST_P(BlockingQueueWakeups, PokesNeverLoseOrDuplicateItems) {
  // Pokes land among the pushes: each producer pokes every kPokeEvery items,
  // while the other producer pushes and the consumers pop.
  constexpr uint32_t kProducers = 2, kPerProducer = 5000, kConsumers = 3, kPokeEvery = 16;
  struct Shared {
    explicit Shared(unsigned spin) : q(spin), got(kConsumers), pokes_seen(kConsumers) {}
    BlockingQueue<uint32_t> q;
    std::vector<std::vector<uint32_t>> got;
    std::vector<int> pokes_seen;
    std::atomic<uint64_t> pushed{0}, taken{0};
  };
  auto s = std::make_shared<Shared>(spin());
  std::vector<Background> consumers;
  for (uint32_t c = 0; c < kConsumers; ++c)
    consumers.emplace_back([s, c] {
      uint64_t seen = 0;
      bool poked = false;
      for (;;) {
        auto v = s->q.pop(seen, poked);
        if (poked) {
          ++s->pokes_seen[c];
          continue;
        }
        if (!v) break;
        s->got[c].push_back(*v);
        s->taken.fetch_add(1);
      }
    });
  std::vector<Background> producers;
  for (uint32_t p = 0; p < kProducers; ++p)
    producers.emplace_back([s, p] {
      for (uint32_t i = 0; i < kPerProducer; ++i) {
        s->q.push(p * kPerProducer + i);
        s->pushed.fetch_add(1);
        if (i % kPokeEvery == 0) s->q.poke();
      }
    });
  for (auto& p : producers) ASSERT_TRUE(p.finishes([s] { return s->pushed.load(); }));
  s->q.close();
  for (auto& c : consumers) ASSERT_TRUE(c.finishes([s] { return s->taken.load(); }));

  std::vector<int> seen(kProducers * kPerProducer, 0);
  for (const auto& mine : s->got)
    for (uint32_t v : mine) ++seen.at(v);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 0), 0);
  EXPECT_EQ(std::count_if(seen.begin(), seen.end(), [](int n) { return n > 1; }), 0);
}

TEST_P(BlockingQueueWakeups, PingPongNeverLosesAWakeup) {
  // Two threads hand a value back and forth: each pop() usually finds the
  // queue empty and sleeps, so a lost wake-up stalls the exchange (no round
  // for kHangGuard); a slow exchange is no failure.
  constexpr int kRounds = 3000;
  auto ping = std::make_shared<Queue>(spin());
  auto pong = std::make_shared<Queue>(spin());
  auto rounds = std::make_shared<std::atomic<int>>(0);
  Background echo([ping, pong] {
    while (auto v = ping->pop()) pong->push(*v);
  });
  Background driver([ping, pong, rounds] {
    for (int i = 0; i < kRounds; ++i) {
      ping->push(i);
      auto back = pong->pop();
      if (!back || *back != i) return;
      rounds->fetch_add(1);
    }
  });
  const bool finished = driver.finishes([rounds] { return static_cast<uint64_t>(rounds->load()); });
  ping->close();
  pong->close();
  EXPECT_TRUE(finished) << "stalled after " << rounds->load() << " rounds";
  EXPECT_EQ(rounds->load(), kRounds);
  EXPECT_TRUE(echo.finishes());
  if (!finished) {
    EXPECT_TRUE(driver.finishes());
  }
}

TEST_P(BlockingQueueWakeups, ManyProducersManyConsumersDeliverEachItemExactlyOnce) {
  constexpr uint32_t kProducers = 4, kPerProducer = 5000, kConsumers = 4;
  struct Shared {
    explicit Shared(unsigned spin) : q(spin), got(kConsumers) {}
    BlockingQueue<uint32_t> q;
    std::vector<std::vector<uint32_t>> got;
    std::atomic<int> refused{0};
    std::atomic<uint64_t> pushed{0}, taken{0};
  };
  auto s = std::make_shared<Shared>(spin());
  std::vector<Background> consumers;
  for (uint32_t c = 0; c < kConsumers; ++c)
    consumers.emplace_back([s, c] {
      auto& mine = s->got[c];
      if (c % 2 == 0) {
        while (auto v = s->q.pop()) {
          mine.push_back(*v);
          s->taken.fetch_add(1);
        }
      } else {
        for (;;) {
          auto batch = s->q.pop_all();
          if (batch.empty()) break;
          mine.insert(mine.end(), batch.begin(), batch.end());
          s->taken.fetch_add(batch.size());
        }
      }
    });
  std::vector<Background> producers;
  for (uint32_t p = 0; p < kProducers; ++p)
    producers.emplace_back([s, p] {
      for (uint32_t i = 0; i < kPerProducer; ++i) {
        if (!s->q.push(p << 20 | i)) s->refused.fetch_add(1);
        s->pushed.fetch_add(1);
      }
    });
  for (auto& p : producers) ASSERT_TRUE(p.finishes([s] { return s->pushed.load(); }));
  s->q.close();
  for (auto& c : consumers) ASSERT_TRUE(c.finishes([s] { return s->taken.load(); }));

  EXPECT_EQ(s->refused.load(), 0);
  std::vector<int> seen(kProducers * kPerProducer, 0);
  int out_of_order = 0;
  for (const auto& mine : s->got) {
    std::vector<int64_t> last(kProducers, -1);  // FIFO: per producer, each consumer sees ascending items
    for (uint32_t v : mine) {
      const uint32_t p = v >> 20, i = v & 0xFFFFF;
      ASSERT_LT(p, kProducers);
      ASSERT_LT(i, kPerProducer);
      ++seen[p * kPerProducer + i];
      if (static_cast<int64_t>(i) <= last[p]) ++out_of_order;
      last[p] = i;
    }
  }
  const auto missing = std::count(seen.begin(), seen.end(), 0);
  const auto duplicated = std::count_if(seen.begin(), seen.end(), [](int n) { return n > 1; });
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(duplicated, 0);
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(s->q.size(), 0u);
}

TEST_P(BlockingQueueWakeups, ProducersRacingCloseLoseNothingThatWasAccepted) {
  // Producers push until refused; close() lands in the middle.  Every
  // accepted item is popped exactly once, no refused item ever appears, and a
  // refusal is final.
  constexpr uint32_t kProducers = 3, kConsumers = 2, kCap = 1'000'000;
  struct Shared {
    explicit Shared(unsigned spin) : q(spin), got(kConsumers), accepted(kProducers) {}
    BlockingQueue<uint32_t> q;
    std::vector<std::vector<uint32_t>> got;
    std::vector<std::atomic<uint32_t>> accepted;
    std::atomic<int> accepted_after_refusal{0};
    std::atomic<uint64_t> taken{0};
  };
  auto s = std::make_shared<Shared>(spin());
  std::vector<Background> consumers;
  for (uint32_t c = 0; c < kConsumers; ++c)
    consumers.emplace_back([s, c] {
      while (auto v = s->q.pop()) {
        s->got[c].push_back(*v);
        s->taken.fetch_add(1);
      }
    });
  std::vector<Background> producers;
  for (uint32_t p = 0; p < kProducers; ++p)
    producers.emplace_back([s, p] {
      uint32_t i = 0;
      bool refused = false;
      while (i < kCap && !refused) {
        if (s->q.push(p << 20 | i))
          s->accepted[p].store(++i);
        else
          refused = true;
      }
      // Only a producer that was refused can test that refusal is final (one
      // that reached kCap first, on a slow machine, was never refused).
      if (refused && s->q.push(p << 20 | 0xFFFFF)) s->accepted_after_refusal.fetch_add(1);
    });
  auto total_accepted = [&] {
    uint32_t n = 0;
    for (auto& a : s->accepted) n += a.load();
    return n;
  };
  EXPECT_TRUE(eventually([&] { return total_accepted() >= 3000; }));
  s->q.close();
  for (auto& p : producers) ASSERT_TRUE(p.finishes());
  for (auto& c : consumers) ASSERT_TRUE(c.finishes([s] { return s->taken.load(); }));

  EXPECT_EQ(s->accepted_after_refusal.load(), 0);
  std::vector<std::vector<int>> seen(kProducers);
  for (uint32_t p = 0; p < kProducers; ++p) seen[p].assign(s->accepted[p].load(), 0);
  int refused_but_seen = 0;
  for (const auto& mine : s->got)
    for (uint32_t v : mine) {
      const uint32_t p = v >> 20, i = v & 0xFFFFF;
      ASSERT_LT(p, kProducers);
      if (i >= seen[p].size()) {
        ++refused_but_seen;
        continue;
      }
      ++seen[p][i];
    }
  EXPECT_EQ(refused_but_seen, 0);
  for (uint32_t p = 0; p < kProducers; ++p) {
    EXPECT_EQ(std::count(seen[p].begin(), seen[p].end(), 0), 0) << "producer " << p << " lost items";
    EXPECT_EQ(std::count_if(seen[p].begin(), seen[p].end(), [](int n) { return n > 1; }), 0)
        << "producer " << p << " items delivered twice";
  }
}

TEST_P(BlockingQueueWakeups, DrainRacingProducersLosesNothing) {
  constexpr uint32_t kProducers = 3, kPerProducer = 4000;
  struct Shared {
    explicit Shared(unsigned spin) : q(spin) {}
    BlockingQueue<uint32_t> q;
  };
  auto s = std::make_shared<Shared>(spin());
  std::vector<Background> producers;
  for (uint32_t p = 0; p < kProducers; ++p)
    producers.emplace_back([s, p] {
      for (uint32_t i = 0; i < kPerProducer; ++i) s->q.push(p * kPerProducer + i);
    });
  std::vector<int> seen(kProducers * kPerProducer, 0);
  auto take = [&] {
    for (uint32_t v : s->q.drain()) ++seen.at(v);
  };
  // The producers never block (the queue is unbounded): drain until they are done.
  while (std::any_of(producers.begin(), producers.end(), [](auto& p) { return !p.finished(); })) take();
  for (auto& p : producers) ASSERT_TRUE(p.finishes());
  take();
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 0), 0);
  EXPECT_EQ(std::count_if(seen.begin(), seen.end(), [](int n) { return n > 1; }), 0);
}
