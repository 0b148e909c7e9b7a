// src/runtime/futex.cpp: futex system calls behind futex.hpp.
#include "runtime/futex.hpp"

#include <cerrno>
#include <climits>
#include <ctime>

#include "runtime/deadline.hpp"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace interpool::rt {

#if defined(__linux__)
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t),
              "futex needs std::atomic<uint32_t> to be a plain 32-bit word");

static long futex(std::atomic<uint32_t>& word, int op, uint32_t value, const timespec* timeout) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), op, value, timeout, nullptr, 0);
}

WaitStatus futex_wait(std::atomic<uint32_t>& word, uint32_t expected, std::optional<std::chrono::nanoseconds> timeout) {
  timespec ts{};
  const timespec* tsp = nullptr;
  if (timeout) {
    auto ns = timeout->count() < 0 ? 0 : timeout->count();
    ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    tsp = &ts;
  }
  if (futex(word, FUTEX_WAIT_PRIVATE, expected, tsp) == 0) return WaitStatus::Woken;
  switch (errno) {
    case ETIMEDOUT: return WaitStatus::TimedOut;
    case EINTR: return WaitStatus::Interrupted;
    default: return WaitStatus::Woken;  // EAGAIN: the word had already changed
  }
}

void futex_wake_all(std::atomic<uint32_t>& word) { futex(word, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr); }
void futex_wake_one(std::atomic<uint32_t>& word) { futex(word, FUTEX_WAKE_PRIVATE, 1, nullptr); }

#else
// Portable fallback: not interruptible, no timeout precision guarantees.
WaitStatus futex_wait(std::atomic<uint32_t>& word, uint32_t expected, std::optional<std::chrono::nanoseconds> timeout) {
  if (timeout) {
    const Deadline deadline = Deadline::after(timeout);
    Timeout left;
    while (word.load() == expected) {
      if (!deadline.left(left)) return WaitStatus::TimedOut;
      cpu_relax();
    }
    return WaitStatus::Woken;
  }
  word.wait(expected);
  return WaitStatus::Woken;
}
void futex_wake_all(std::atomic<uint32_t>& word) { word.notify_all(); }
void futex_wake_one(std::atomic<uint32_t>& word) { word.notify_one(); }
#endif

}  // namespace interpool::rt
