// src/runtime/timer.hpp: callbacks run at deadlines, on one lazily started thread.
//
// The engine's task timeouts and interrupt grace periods.  The thread sleeps
// on a condition variable until the earliest deadline (no polling) and runs
// each due callback on itself, so callbacks must be short and must not block.
// Most deadlines are cancelled before they fall due (a task that ends in
// time), so cancel() removes an entry at once rather than leaving it to fire.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <mutex>
#include <thread>
#include <utility>

namespace interpool::rt {

class Timer {
 public:
  using Clock = std::chrono::steady_clock;
  /// Names one scheduled callback, for cancel().
  using Key = std::pair<Clock::time_point, uint64_t>;

  explicit Timer(std::string thread_name) : _thread_name(std::move(thread_name)) {}
  /// Drops the callbacks not yet run and stops the thread; when a callback
  /// destroys the timer, the thread is detached and ends on its own.
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  /// Runs `fn` on the timer thread at `when` (at once if it has passed).
  Key at(Clock::time_point when, std::function<void()> fn);

  /// Forgets a callback that has not started.  False if it ran or is running.
  bool cancel(const Key& key);

  /// Callbacks scheduled and not yet started.
  std::size_t pending() const;

 private:
  /// Shared with the thread, which may outlive the Timer (see ~Timer).
  struct State {
    mutable std::mutex mutex;  // guards everything below
    std::condition_variable changed;
    std::map<Key, std::function<void()>> due;
    uint64_t next_seq = 0;
    bool stopping = false;
    bool started = false;
  };
  static void run(std::shared_ptr<State> state);

  std::string _thread_name;
  std::shared_ptr<State> _state = std::make_shared<State>();
  std::thread _thread;  // set once, under _state->mutex
};

}  // namespace interpool::rt
