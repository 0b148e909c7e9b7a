// src/runtime/thread_roster.cpp: detached, counted engine threads.
#include "runtime/thread_roster.hpp"

#include <thread>

#include "runtime/deadline.hpp"
#include "runtime/worker_group.hpp"

namespace interpool::rt {

ThreadRoster::Token ThreadRoster::spawn(const std::string& name, std::function<void()> body) {
  auto token = std::make_shared<Member>();
  _live.fetch_add(1, std::memory_order_acq_rel);
  try {
    start_signal_blocked_thread(name, [this, token, body = std::move(body)] {
      body();
      if (token->counted.exchange(false, std::memory_order_acq_rel)) uncount();
    }).detach();
  } catch (...) {
    uncount();
    throw;
  }
  return token;
}

bool ThreadRoster::release(const Token& token) {
  if (!token || !token->counted.exchange(false, std::memory_order_acq_rel)) return false;
  uncount();
  return true;
}

void ThreadRoster::uncount() {
  if (_live.fetch_sub(1, std::memory_order_acq_rel) == 1) futex_wake_all(_live);
}

WaitStatus ThreadRoster::wait(std::optional<std::chrono::nanoseconds> timeout) {
  const Deadline deadline = Deadline::after(timeout);
  for (;;) {
    uint32_t n = _live.load(std::memory_order_acquire);
    if (n == 0) return WaitStatus::Woken;
    Timeout left;
    if (!deadline.left(left)) return WaitStatus::TimedOut;
    WaitStatus status = futex_wait(_live, n, left);
    if (status == WaitStatus::Interrupted) return status;
  }
}

}  // namespace interpool::rt
