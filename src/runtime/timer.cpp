// src/runtime/timer.cpp: the deadline thread behind Timer.
#include "runtime/timer.hpp"

#include "runtime/worker_group.hpp"

namespace interpool::rt {

Timer::~Timer() {
  std::thread thread;
  {
    std::lock_guard lock(_state->mutex);
    _state->stopping = true;
    _state->due.clear();
    thread = std::move(_thread);
  }
  _state->changed.notify_all();
  if (!thread.joinable()) return;
  if (thread.get_id() == std::this_thread::get_id())
    thread.detach();  // destroyed by one of its callbacks: run() ends by itself
  else
    thread.join();
}

Timer::Key Timer::at(Clock::time_point when, std::function<void()> fn) {
  std::unique_lock lock(_state->mutex);
  Key key{when, _state->next_seq++};
  bool earliest = _state->due.empty() || key < _state->due.begin()->first;
  _state->due.emplace(key, std::move(fn));
  if (!_state->started && !_state->stopping) {
    _state->started = true;
    _thread = start_signal_blocked_thread(_thread_name, [state = _state] { run(state); });
  }
  lock.unlock();
  if (earliest) _state->changed.notify_all();
  return key;
}

bool Timer::cancel(const Key& key) {
  std::lock_guard lock(_state->mutex);
  return _state->due.erase(key) > 0;
}

std::size_t Timer::pending() const {
  std::lock_guard lock(_state->mutex);
  return _state->due.size();
}

void Timer::run(std::shared_ptr<State> state) {
  std::unique_lock lock(state->mutex);
  while (!state->stopping) {
    if (state->due.empty()) {
      state->changed.wait(lock);
      continue;
    }
    auto first = state->due.begin();
    if (Clock::now() < first->first.first) {
      state->changed.wait_until(lock, first->first.first);
      continue;
    }
    std::function<void()> fn = std::move(first->second);
    state->due.erase(first);
    lock.unlock();
    fn();
    fn = nullptr;  // its captures may own the Timer: drop them outside the lock
    lock.lock();
  }
}

}  // namespace interpool::rt
