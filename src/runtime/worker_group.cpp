// src/runtime/worker_group.cpp: spawning and joining engine threads.
#include "runtime/worker_group.hpp"

#include <pthread.h>
#include <signal.h>

namespace interpool::rt {

void WorkerGroup::spawn(const std::string& name, std::function<void()> body) {
  // New threads inherit the creating thread's signal mask: block everything
  // around the creation, then restore the caller's mask.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  std::thread thread([name = name.substr(0, 15), body = std::move(body)] {
#if defined(__linux__)
    pthread_setname_np(pthread_self(), name.c_str());
#endif
    body();
  });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  std::lock_guard lock(_mutex);
  _threads.push_back(std::move(thread));
}

void WorkerGroup::join_all() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(_mutex);
    threads.swap(_threads);
  }
  for (auto& t : threads) {
    if (!t.joinable()) continue;
    if (t.get_id() == std::this_thread::get_id())
      t.detach();
    else
      t.join();
  }
}

std::size_t WorkerGroup::size() const {
  std::lock_guard lock(_mutex);
  return _threads.size();
}

}  // namespace interpool::rt
