// src/runtime/futex.hpp: interruptible waits on a 32-bit atomic word.
//
// std::atomic<T>::wait is futex-backed on Linux, but libstdc++ retries on EINTR,
// so a thread blocked in it never notices a signal.  interpool's waits run on
// the main thread while Ctrl-C must still get through, so they use the futex
// system call directly and report EINTR to the caller, which then runs the
// interpreter's signal handlers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace interpool::rt {

enum class WaitStatus {
  Woken,        ///< woken by notify, or the word no longer held `expected`
  TimedOut,     ///< the timeout elapsed
  Interrupted,  ///< a signal arrived: check for pending signal handlers
};

/// Blocks while `word == expected`, for at most `timeout` (forever if empty).
/// May return spuriously; callers re-check their condition in a loop.
WaitStatus futex_wait(std::atomic<uint32_t>& word, uint32_t expected,
                      std::optional<std::chrono::nanoseconds> timeout = std::nullopt);

/// Wakes every thread blocked in futex_wait on `word`.
void futex_wake_all(std::atomic<uint32_t>& word);

/// Wakes at most one thread blocked in futex_wait on `word`.
void futex_wake_one(std::atomic<uint32_t>& word);

/// A CPU hint for spin loops: lets the sibling hyperthread run.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace interpool::rt
