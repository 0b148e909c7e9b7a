// tests/cpp/test_support.hpp: helpers shared by the runtime's GoogleTest files (threads, futex sleeps, signals).
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

using namespace std::chrono_literals;

/// Polls `cond` every millisecond until it holds (true) or `limit` passes (false).
inline bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

/// Polls /proc until thread `tid` sleeps in futex(2) on a word inside the
/// object at [obj, obj + len).  False after `limit`.  Where /proc cannot
/// tell, sleeps a little and says yes.
inline bool sleeps_in_futex(pid_t tid, const void* obj, std::size_t len,
                            std::chrono::milliseconds limit = 2000ms) {
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/syscall";
  const auto base = reinterpret_cast<std::uintptr_t>(obj);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    std::ifstream in(path);
    if (!in) {
      std::this_thread::sleep_for(50ms);
      return true;
    }
    std::string nr, arg0;
    in >> nr >> arg0;
    if (nr == std::to_string(SYS_futex)) {
      const auto addr = std::stoull(arg0, nullptr, 16);
      if (addr >= base && addr < base + len) return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
}

/// Installs a no-op handler for `sig` WITHOUT SA_RESTART for the scope, so
/// that a signal makes a blocking call return instead of being restarted.
class NoopHandler {
 public:
  explicit NoopHandler(int sig) : _sig(sig) {
    struct sigaction sa {};
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
  struct sigaction _old {};
};

/// A thread running one blocking call, recording its result (`status`) and
/// how long it took.  Built from the call, or default-built and given the
/// call by start(); the destructor joins the thread.
template <class R>
struct Blocked {
  std::atomic<pid_t> tid{0};
  std::atomic<bool> done{false};
  R status{};
  std::chrono::steady_clock::duration took{};
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
      const auto t0 = std::chrono::steady_clock::now();
      status = call();
      took = std::chrono::steady_clock::now() - t0;
      done = true;
    });
    while (tid.load() == 0) std::this_thread::yield();
  }
  /// True once the thread sleeps in futex(2) on a word inside `obj` (see sleeps_in_futex).
  template <class T>
  bool asleep_on(const T& obj, std::chrono::milliseconds limit = 2000ms) {
    return sleeps_in_futex(tid, &obj, sizeof(T), limit);
  }
  /// Sends SIGUSR1 until the call returns, for at most 2 s (a signal may land
  /// just before the thread enters the kernel).
  void interrupt() {
    const auto t0 = std::chrono::steady_clock::now();
    while (!done.load() && std::chrono::steady_clock::now() - t0 < 2s) {
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
