// tests/cpp/test_support.hpp: helpers shared by the runtime's GoogleTest files (threads, futex sleeps, signals).
//
// The tests assert behaviour, never speed: they must pass on a 2-core machine
// that other processes keep busy, also under TSan and ASan (several times
// slower).  So
//   - a wait that must be woken is given kHangGuard as its timeout and must
//     return Woken: a lost wake-up still fails (slowly) instead of hanging;
//   - a wait that must time out returns TimedOut and took at least its
//     timeout (lower bounds only);
//   - "the thread is asleep before we act" is seen in /proc (sleeps_in_futex),
//     never assumed after a sleep_for;
//   - kHangGuard bounds waits for what must happen, never how fast it happens.
#pragma once

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

namespace interpool::test {

// A test file says `using namespace interpool::test;` and has these too.
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// How long a test waits for something that must happen (a wake-up, a thread
/// finishing, a thread going to sleep) before it gives up and fails.  Far
/// beyond anything a loaded or sanitized machine needs, and below ctest's
/// per-test TIMEOUT (tests/cpp/CMakeLists.txt), so that the test, not ctest,
/// reports what went wrong.
inline constexpr std::chrono::seconds kHangGuard{120};

/// Polls `cond` every millisecond until it holds (true) or `limit` passes (false).
inline bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = kHangGuard) {
  const auto deadline = Clock::now() + limit;
  while (!cond()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

/// Waits until `done()` holds (true).  Gives up (false) only once `progress()`
/// has not changed for kHangGuard: a long run that keeps moving is slowness,
/// which no test asserts on; one that stands still is a lost wake-up.
inline bool completes(const std::function<bool()>& done, const std::function<uint64_t()>& progress) {
  uint64_t last = progress();
  auto stalled_since = Clock::now();
  while (!done()) {
    const uint64_t now_at = progress();
    const auto now = Clock::now();
    if (now_at != last) {
      last = now_at;
      stalled_since = now;
    } else if (now - stalled_since >= kHangGuard) {
      return false;
    }
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

namespace detail {

/// What /proc says about thread `tid`: 1 asleep in futex(2) on a word in
/// [base, base + len) (any word if len is 0), 0 not (yet), -1 cannot tell.
inline int futex_sleep_state(pid_t tid, std::uintptr_t base, std::size_t len) {
  const std::string dir = "/proc/self/task/" + std::to_string(tid) + "/";
  {
    // "<nr> <arg0> ..." while blocked in a system call; "running" otherwise.
    std::ifstream in(dir + "syscall");
    std::string nr, arg0;
    if (in >> nr) {
      if (nr != std::to_string(SYS_futex)) return 0;
      if (!(in >> arg0)) return 0;
      if (len == 0) return 1;
      const auto addr = std::stoull(arg0, nullptr, 16);
      return addr >= base && addr < base + len ? 1 : 0;
    }
  }
  // No syscall file (some sandboxes): the state letter and the wait channel.
  // Weaker (the word is not known), still never a guess from elapsed time.
  std::ifstream stat(dir + "stat");
  std::string line;
  if (!std::getline(stat, line)) return -1;
  const auto paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return -1;
  if (line[paren + 2] != 'S') return 0;
  std::ifstream wchan_file(dir + "wchan");
  std::string wchan;
  if (!(wchan_file >> wchan) || wchan == "0") return 1;  // wait channel hidden: state only
  return wchan.find("futex") != std::string::npos ? 1 : 0;
}

}  // namespace detail

/// Polls /proc until thread `tid` sleeps in futex(2) on a word inside the
/// object at [obj, obj + len) (on any word if `obj` is null).  False if
/// `gave_up()` holds first (say, the thread returned: it will never sleep
/// there now), after kHangGuard, or where /proc cannot tell at all.
inline bool sleeps_in_futex(pid_t tid, const void* obj, std::size_t len, const std::function<bool()>& gave_up = {}) {
  const auto base = reinterpret_cast<std::uintptr_t>(obj);
  const std::size_t span = obj ? len : 0;
  const auto deadline = Clock::now() + kHangGuard;
  for (;;) {
    const int state = detail::futex_sleep_state(tid, base, span);
    if (state == 1) return true;
    if (state < 0) return false;
    if ((gave_up && gave_up()) || Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
}

/// Installs a no-op handler for `sig` WITHOUT SA_RESTART for the scope, so
/// that a signal makes a blocking call return instead of being restarted.
class NoopHandler {
 public:
  explicit NoopHandler(int sig) : _sig(sig) {
    struct sigaction sa{};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(_sig, &sa, &_old);
  }
  ~NoopHandler() { sigaction(_sig, &_old, nullptr); }
  NoopHandler(const NoopHandler&) = delete;
  NoopHandler& operator=(const NoopHandler&) = delete;

 private:
  int _sig;
  struct sigaction _old{};
};

/// A thread running one blocking call, recording its result (`status`) and
/// how long it took.  Built from the call, or default-built and given the
/// call by start(); the destructor joins the thread.
template <class R>
struct Blocked {
  std::atomic<pid_t> tid{0};
  std::atomic<bool> done{false};
  R status{};
  Clock::duration took{};
  std::thread thread;

  Blocked() = default;
  explicit Blocked(std::function<R()> call) { start(std::move(call)); }
  ~Blocked() {
    if (thread.joinable()) thread.join();
  }
  Blocked(const Blocked&) = delete;
  Blocked& operator=(const Blocked&) = delete;

  /// Starts the thread running `call`; returns once the thread knows its tid.
  void start(std::function<R()> call) {
    thread = std::thread([this, call = std::move(call)] {
      tid = gettid();
      const auto t0 = Clock::now();
      status = call();
      took = Clock::now() - t0;
      done = true;
    });
    while (tid.load() == 0) std::this_thread::yield();
  }
  /// True once the thread sleeps in futex(2) on a word inside `obj`; false
  /// at once if the call returns instead (see sleeps_in_futex).
  template <class T>
  bool asleep_on(const T& obj) {
    return sleeps_in_futex(tid, &obj, sizeof(T), [this] { return done.load(); });
  }
  /// Sends SIGUSR1 until the call returns (a signal may land just before the
  /// thread enters the kernel), for at most kHangGuard.
  void interrupt() {
    const auto t0 = Clock::now();
    while (!done.load() && Clock::now() - t0 < kHangGuard) {
      pthread_kill(thread.native_handle(), SIGUSR1);
      std::this_thread::sleep_for(5ms);
    }
  }
  /// Joins the thread and returns what the call returned.
  R join() {
    thread.join();
    return status;
  }
};

}  // namespace interpool::test
