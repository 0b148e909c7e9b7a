// src/runtime/worker_group.hpp: the engine's OS threads.
//
// Engine threads block every signal: a process-directed signal such as
// SIGINT must land on a thread that runs Python signal handlers (the main
// thread), never on a worker that would swallow it.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace interpool::rt {

class WorkerGroup {
 public:
  WorkerGroup() = default;
  ~WorkerGroup() { join_all(); }
  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;

  /// Starts a thread named `name` (truncated to 15 bytes) that runs `body`
  /// with all signals blocked.
  void spawn(const std::string& name, std::function<void()> body);

  /// Joins every thread spawned so far.  A thread of the group that calls
  /// this detaches itself instead of deadlocking.
  void join_all();

  std::size_t size() const;

 private:
  mutable std::mutex _mutex;  // guards _threads
  std::vector<std::thread> _threads;
};

}  // namespace interpool::rt
