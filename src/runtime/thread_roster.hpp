// src/runtime/thread_roster.hpp: detached engine threads, counted until they end or are let go.
//
// The engine must never be stuck joining a thread: a worker blocked for ever
// in C code (time.sleep(1e6), a read that never returns) is abandoned and
// replaced, and a caller waiting for a pool to finish must still answer
// Ctrl-C.  So engine threads are detached at birth and counted instead of
// joined.  wait() sleeps on the count with a futex and reports signals;
// release() stops counting a thread that may run on.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "runtime/futex.hpp"

namespace interpool::rt {

class ThreadRoster {
 public:
  /// One thread's place in the roster; release() takes it out.
  class Member {
    friend class ThreadRoster;
    std::atomic<bool> counted{true};
  };
  using Token = std::shared_ptr<Member>;

  ThreadRoster() = default;
  ThreadRoster(const ThreadRoster&) = delete;
  ThreadRoster& operator=(const ThreadRoster&) = delete;

  /// Starts a detached thread named `name` that runs `body` with every signal
  /// blocked; it counts as live until `body` returns or release() is called.
  /// The roster must outlive the thread's body (the engine's threads hold
  /// their engine).
  Token spawn(const std::string& name, std::function<void()> body);

  /// Stops counting the thread of `token`, which may go on running.  True if
  /// it was still counted.
  bool release(const Token& token);

  /// Threads counted now.
  uint32_t live() const { return _live.load(std::memory_order_acquire); }

  /// Sleeps until no thread is counted, a signal arrives or `timeout` passes.
  /// Woken means none is left.
  WaitStatus wait(std::optional<std::chrono::nanoseconds> timeout = std::nullopt);

 private:
  void uncount();
  std::atomic<uint32_t> _live{0};
};

}  // namespace interpool::rt
