// src/runtime/worker_group.cpp: spawning and joining engine threads.
#include "runtime/worker_group.hpp"

#include <algorithm>

#include <pthread.h>
#include <signal.h>

namespace interpool::rt {

std::thread start_signal_blocked_thread(const std::string& name, std::function<void()> body) {
  // New threads inherit the creating thread's signal mask: block everything
  // around the creation, then restore the caller's mask, also when the
  // creation throws (else the caller would keep every signal blocked).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  std::thread thread;
  try {
    thread = std::thread([name = name.substr(0, 15), body = std::move(body)] {
#if defined(__linux__)
      pthread_setname_np(pthread_self(), name.c_str());
#endif
      body();
    });
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return thread;
}

void WorkerGroup::spawn(const std::string& name, std::function<void()> body) {
  std::thread thread = start_signal_blocked_thread(name, std::move(body));
  std::lock_guard lock(_mutex);
  _ids.push_back(thread.get_id());
  _threads.push_back(std::move(thread));
}

void WorkerGroup::join_all() {
  const auto self = std::this_thread::get_id();
  std::vector<std::thread> threads;
  bool member;
  {
    std::lock_guard lock(_mutex);
    threads.swap(_threads);
    member = std::find(_ids.begin(), _ids.end(), self) != _ids.end();
    ++_joiners;
  }
  for (auto& t : threads) {
    if (!t.joinable()) continue;
    if (t.get_id() == self)
      t.detach();
    else
      t.join();
  }
  std::unique_lock lock(_mutex);
  --_joiners;
  _joined.notify_all();
  if (!member) _joined.wait(lock, [this] { return _joiners == 0; });
}

std::size_t WorkerGroup::size() const {
  std::lock_guard lock(_mutex);
  return _threads.size();
}

}  // namespace interpool::rt
