// tests/cpp/test_worker_group.cpp: specification of runtime/worker_group.hpp.
//
// Engine threads run their body with every signal blocked, carry a name, and
// are joined by join_all() (or the destructor); a thread of the group that
// calls join_all() detaches itself instead of deadlocking.
#include "runtime/worker_group.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace interpool::test;  // eventually, sleeps_in_futex, std::chrono_literals
using interpool::rt::WorkerGroup;

namespace {

/// Signals a thread can block: every standard and real-time signal but
/// SIGKILL and SIGSTOP (and glibc's reserved 32, 33 below SIGRTMIN).
std::vector<int> blockable_signals() {
  std::vector<int> sigs;
  for (int s = 1; s < 32; ++s)
    if (s != SIGKILL && s != SIGSTOP) sigs.push_back(s);
  for (int s = SIGRTMIN; s <= SIGRTMAX; ++s) sigs.push_back(s);
  return sigs;
}

std::vector<int> unblocked_in(const sigset_t& mask) {
  std::vector<int> out;
  for (int s : blockable_signals())
    if (!sigismember(&mask, s)) out.push_back(s);
  return out;
}

std::vector<int> differences(const sigset_t& a, const sigset_t& b) {
  std::vector<int> out;
  for (int s : blockable_signals())
    if (sigismember(&a, s) != sigismember(&b, s)) out.push_back(s);
  return out;
}

sigset_t current_mask() {
  sigset_t mask;
  pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  return mask;
}

/// Sets the calling thread's signal mask for the scope.
class ScopedMask {
 public:
  explicit ScopedMask(const sigset_t& mask) { pthread_sigmask(SIG_SETMASK, &mask, &_old); }
  ~ScopedMask() { pthread_sigmask(SIG_SETMASK, &_old, nullptr); }

 private:
  sigset_t _old;
};

sigset_t mask_of(std::initializer_list<int> sigs) {
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : sigs) sigaddset(&mask, s);
  return mask;
}

std::string thread_name() {
  char buf[64] = {};
  pthread_getname_np(pthread_self(), buf, sizeof buf);
  return buf;
}

/// Blocks until `flag` is set (a test failure after kHangGuard).
void await(const std::atomic<bool>& flag) {
  EXPECT_TRUE(eventually([&] { return flag.load(); })) << "never released";
}

/// Sets `release` once thread `tid` sleeps in futex(2) (blocked in a join or
/// on a lock), or once `gave_up` is set (it returned without blocking).
std::thread release_when_asleep(pid_t tid, std::atomic<bool>& release, const std::atomic<bool>& gave_up,
                                const void* on = nullptr, std::size_t len = 0) {
  return std::thread([tid, &release, &gave_up, on, len] {
    sleeps_in_futex(tid, on, len, [&] { return gave_up.load(); });
    release = true;
  });
}

}  // namespace

// ------------------------------------------------------------ spawn and join

TEST(WorkerGroup, RunsEveryBodyAndJoinAllWaitsForThem) {
  // The bodies are held until this thread sleeps inside join_all(): a
  // join_all() that did not wait for them would return before they finish.
  WorkerGroup group;
  std::atomic<int> finished{0};
  std::atomic<bool> release{false}, joined{false};
  for (int i = 0; i < 4; ++i)
    group.spawn("w", [&] {
      await(release);
      finished.fetch_add(1);
    });
  std::thread releaser = release_when_asleep(gettid(), release, joined);
  group.join_all();
  const int seen = finished.load();
  joined = true;
  releaser.join();
  group.join_all();  // frees nothing but the bodies of a join_all() that did not wait
  EXPECT_EQ(seen, 4);
}

TEST(WorkerGroup, BodiesRunConcurrently) {
  // Each body waits for every other to arrive: only separate threads can meet.
  constexpr int kThreads = 3;
  WorkerGroup group;
  std::atomic<int> arrived{0};
  std::atomic<int> met{0};
  for (int i = 0; i < kThreads; ++i)
    group.spawn("meet", [&] {
      arrived.fetch_add(1);
      if (eventually([&] { return arrived.load() == kThreads; })) met.fetch_add(1);
    });
  group.join_all();
  EXPECT_EQ(met.load(), kThreads);
}

TEST(WorkerGroup, SizeCountsThreadsNotYetJoined) {
  WorkerGroup group;
  EXPECT_EQ(group.size(), 0u);
  std::atomic<bool> release{false};
  for (int i = 0; i < 3; ++i) group.spawn("held", [&] { await(release); });
  EXPECT_EQ(group.size(), 3u);
  release = true;
  group.join_all();
  EXPECT_EQ(group.size(), 0u);
}

TEST(WorkerGroup, JoinAllOnAnEmptyGroupReturnsAtOnce) {
  WorkerGroup group;
  group.join_all();
  EXPECT_EQ(group.size(), 0u);
}

TEST(WorkerGroup, JoinAllTwiceIsHarmlessAndTheGroupStaysUsable) {
  WorkerGroup group;
  std::atomic<int> runs{0};
  group.spawn("first", [&] { runs.fetch_add(1); });
  group.join_all();
  group.join_all();
  EXPECT_EQ(runs.load(), 1);
  group.spawn("second", [&] { runs.fetch_add(1); });
  EXPECT_EQ(group.size(), 1u);
  group.join_all();
  EXPECT_EQ(runs.load(), 2);
  EXPECT_EQ(group.size(), 0u);
}

TEST(WorkerGroup, DestructorJoinsEveryThread) {
  // The bodies are held until this thread sleeps in the destructor (the
  // only place it can block once every thread is spawned).
  std::atomic<int> finished{0};
  std::atomic<bool> release{false}, destroyed{false};
  std::thread releaser;
  {
    WorkerGroup group;
    for (int i = 0; i < 3; ++i)
      group.spawn("w", [&] {
        await(release);
        finished.fetch_add(1);
      });
    releaser = release_when_asleep(gettid(), release, destroyed);
  }
  const int seen = finished.load();
  destroyed = true;
  releaser.join();
  EXPECT_EQ(seen, 3);
}

TEST(WorkerGroup, ConcurrentSpawnsAreAllJoined) {
  constexpr int kSpawners = 4, kEach = 10;
  WorkerGroup group;
  std::atomic<int> runs{0};
  std::vector<std::thread> spawners;
  for (int s = 0; s < kSpawners; ++s)
    spawners.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) group.spawn("spawned", [&] { runs.fetch_add(1); });
    });
  for (auto& t : spawners) t.join();
  EXPECT_EQ(group.size(), static_cast<std::size_t>(kSpawners * kEach));
  group.join_all();
  EXPECT_EQ(runs.load(), kSpawners * kEach);
  EXPECT_EQ(group.size(), 0u);
}

// ---------------------------------------------------------------------- names

TEST(WorkerGroup, ThreadCarriesItsName) {
  WorkerGroup group;
  std::string seen;
  group.spawn("ip-worker-3", [&] { seen = thread_name(); });
  group.join_all();
  EXPECT_EQ(seen, "ip-worker-3");
}

TEST(WorkerGroup, LongNamesAreTruncatedTo15Bytes) {
  // Linux refuses names over 15 bytes outright; untruncated, the thread
  // would keep the name it inherited.
  WorkerGroup group;
  std::string seen;
  group.spawn("interpool-delivery-thread", [&] { seen = thread_name(); });
  group.join_all();
  EXPECT_EQ(seen, "interpool-deliv");
}

TEST(WorkerGroup, ANameOfExactly15BytesIsKeptWhole) {
  WorkerGroup group;
  std::string seen;
  group.spawn("abcdefghijklmno", [&] { seen = thread_name(); });
  group.join_all();
  EXPECT_EQ(seen, "abcdefghijklmno");
}

// -------------------------------------------------------------------- signals

TEST(WorkerGroup, BodyRunsWithEverySignalBlocked) {
  ScopedMask none(mask_of({}));  // even a caller that blocks nothing spawns blocked threads
  WorkerGroup group;
  sigset_t seen;
  sigemptyset(&seen);
  group.spawn("masked", [&] { seen = current_mask(); });
  group.join_all();
  EXPECT_EQ(unblocked_in(seen), std::vector<int>{}) << "signals a worker could swallow";
}

TEST(WorkerGroup, SpawnRestoresTheCallersSignalMask) {
  const sigset_t wanted = mask_of({SIGUSR2, SIGPIPE});
  ScopedMask scoped(wanted);
  WorkerGroup group;
  group.spawn("w", [] {});
  const sigset_t after = current_mask();
  group.join_all();
  EXPECT_EQ(differences(after, wanted), std::vector<int>{});
}

namespace {
std::atomic<int> g_hits{0};
std::atomic<unsigned long> g_hit_thread{0};
void record_hit(int) {
  g_hit_thread.store(static_cast<unsigned long>(pthread_self()));
  g_hits.fetch_add(1);
}
}  // namespace

TEST(WorkerGroup, ProcessDirectedSignalsNeverLandOnAWorker) {
  // With the caller blocking SIGUSR1 too, no thread may take a
  // process-directed SIGUSR1: it stays pending until the caller unblocks it.
  struct sigaction sa{}, old{};
  sa.sa_handler = record_hit;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, &old);
  g_hits = 0;
  g_hit_thread = 0;
  {
    ScopedMask blocked(mask_of({SIGUSR1}));
    WorkerGroup group;
    std::atomic<bool> release{false};
    std::atomic<int> running{0};
    for (int i = 0; i < 3; ++i)
      group.spawn("w", [&] {
        running.fetch_add(1);
        await(release);
      });
    EXPECT_TRUE(eventually([&] { return running.load() == 3; }));
    kill(getpid(), SIGUSR1);
    // Had the kernel picked a worker (one with SIGUSR1 unblocked), that
    // worker runs the handler the next time it returns to user space, before
    // anything else: so once each worker has run after the kill, the signal
    // either was handled on a worker or is still pending.
    release = true;
    group.join_all();
    EXPECT_EQ(g_hits.load(), 0) << "a worker took a process-directed signal";
  }  // unblocks SIGUSR1 on this thread: the pending signal lands here, now
  EXPECT_TRUE(eventually([] { return g_hits.load() > 0; }));
  EXPECT_EQ(g_hits.load(), 1);
  EXPECT_EQ(g_hit_thread.load(), static_cast<unsigned long>(pthread_self()));
  sigaction(SIGUSR1, &old, nullptr);
}

TEST(WorkerGroup, SpawnThatFailsStillRestoresTheCallersSignalMask) {
  // Make thread creation fail: the default stack size becomes 64 TiB, which
  // no mmap can satisfy, so std::thread throws std::system_error.
  pthread_attr_t saved, huge;
  ASSERT_EQ(pthread_getattr_default_np(&saved), 0);
  pthread_attr_init(&huge);
  ASSERT_EQ(pthread_attr_setstacksize(&huge, std::size_t{1} << 46), 0);

  const sigset_t wanted = mask_of({SIGUSR2});
  sigset_t after;
  bool threw = false;
  WorkerGroup group;
  {
    ScopedMask scoped(wanted);
    ASSERT_EQ(pthread_setattr_default_np(&huge), 0);
    try {
      group.spawn("doomed", [] {});
    } catch (const std::system_error&) {
      threw = true;
    }
    pthread_setattr_default_np(&saved);
    after = current_mask();
  }
  pthread_attr_destroy(&huge);
  pthread_attr_destroy(&saved);
  group.join_all();
  if (!threw) GTEST_SKIP() << "could not make thread creation fail here";
  EXPECT_EQ(differences(after, wanted), std::vector<int>{})
      << "a failed spawn() left these signals (un)blocked on the calling thread";
  EXPECT_EQ(group.size(), 0u);
}

// ----------------------------------------------------- join_all from a worker

TEST(WorkerGroup, JoinAllFromInsideAWorkerDoesNotDeadlock) {
  // A worker joining itself would throw (resource_deadlock_would_occur) and
  // terminate the process, or hang: it must detach itself instead.
  WorkerGroup group;
  std::atomic<bool> returned{false};
  group.spawn("self-joiner", [&] {
    eventually([&] { return group.size() == 1; });  // spawn() has recorded this thread
    group.join_all();
    returned = true;
  });
  EXPECT_TRUE(eventually([&] { return returned.load(); })) << "join_all() from a worker never returned";
  EXPECT_EQ(group.size(), 0u);
  group.join_all();
}

TEST(WorkerGroup, JoinAllFromInsideAWorkerJoinsTheOtherWorkers) {
  // "other" is held until the joiner sleeps inside its join_all(): a
  // join_all() that did not join it would return before it finished.
  WorkerGroup group;
  std::atomic<bool> release{false}, other_done{false}, returned{false}, saw_other_done{false};
  std::atomic<pid_t> joiner_tid{0};
  group.spawn("other", [&] {
    await(release);
    other_done = true;
  });
  group.spawn("joiner", [&] {
    joiner_tid = gettid();
    eventually([&] { return group.size() == 2; });  // spawn() has recorded both threads
    group.join_all();
    saw_other_done = other_done.load();
    returned = true;
  });
  ASSERT_TRUE(eventually([&] { return joiner_tid.load() != 0; }));
  std::thread releaser = release_when_asleep(joiner_tid, release, returned);
  EXPECT_TRUE(eventually([&] { return returned.load(); }));
  releaser.join();
  EXPECT_TRUE(saw_other_done.load()) << "join_all() in a worker returned before the other worker finished";
  group.join_all();
}

TEST(WorkerGroup, JoinAllReturnsOnlyOnceEveryOtherThreadHasFinished) {
  // A worker's join_all() has taken the threads and is joining them when the
  // owner calls join_all(): the owner's call must still not return before
  // every thread but that worker has finished ("joins every thread spawned
  // so far"), or the owner may free what they still use.  "slow" is held
  // until the owner sleeps on the group inside its join_all().
  WorkerGroup group;
  std::atomic<bool> release{false}, slow_done{false}, joiner_returned{false}, owner_returned{false};
  group.spawn("slow", [&] {
    await(release);
    slow_done = true;
  });
  group.spawn("joiner", [&] {
    eventually([&] { return group.size() == 2; });  // spawn() has recorded both threads
    group.join_all();
    joiner_returned = true;
  });
  ASSERT_TRUE(eventually([&] { return group.size() == 0; })) << "the worker's join_all() never started";
  std::thread releaser = release_when_asleep(gettid(), release, owner_returned, &group, sizeof group);
  group.join_all();
  const bool slow_was_done = slow_done.load();
  owner_returned = true;
  releaser.join();
  EXPECT_TRUE(eventually([&] { return joiner_returned.load(); }));  // keep our locals alive for it
  EXPECT_TRUE(slow_was_done) << "join_all() returned while a thread of the group was still running";
}
