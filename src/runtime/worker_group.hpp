// src/runtime/worker_group.hpp: the engine's OS threads.
//
// Engine threads block every signal: a process-directed signal such as
// SIGINT must land on a thread that runs Python signal handlers (the main
// thread), never on a worker that would swallow it.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace interpool::rt {

/// Starts a thread named `name` (truncated to 15 bytes) that runs `body` with
/// every signal blocked; the caller's signal mask is left as it was.
std::thread start_signal_blocked_thread(const std::string& name, std::function<void()> body);

class WorkerGroup {
 public:
  WorkerGroup() = default;
  ~WorkerGroup() { join_all(); }
  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;

  /// Starts a thread named `name` (truncated to 15 bytes) that runs `body`
  /// with all signals blocked.
  void spawn(const std::string& name, std::function<void()> body);

  /// Joins every thread spawned so far; when another caller is joining some
  /// of them at the same time, waits for that too.  A thread of the group
  /// that calls this detaches itself, and waits for no other joiner (which
  /// may be joining it).
  void join_all();

  std::size_t size() const;

 private:
  mutable std::mutex _mutex;  // guards _threads, _ids and _joiners
  std::condition_variable _joined;  // signalled when a join_all() call finishes
  std::vector<std::thread> _threads;     ///< not yet taken by a joiner
  std::vector<std::thread::id> _ids;     ///< every thread ever spawned
  unsigned _joiners = 0;                 ///< join_all() calls joining right now
};

}  // namespace interpool::rt
