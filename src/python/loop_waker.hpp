// src/python/loop_waker.hpp: an eventfd that wakes one asyncio event loop.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "python/engine.hpp"
#include "runtime/event_fd.hpp"

namespace interpool::py {

/// The wake-up of one event loop's LoopBridge: an eventfd the loop watches
/// (loop.add_reader), and an inbox of finished tasks for that loop.
/// Workers post the tasks of asyncio calls here (EngineCore::hand_over), so
/// a result reaches its loop in one hop, which decodes it on its own
/// thread; no delivery thread and no second GIL hand-off in between.
/// Signalled from any thread without any GIL; repeated signals before the
/// loop answers cost one write.
class Waker {
 public:
  Waker() = default;
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;

  bool ok() const { return _event.ok(); }
  int fd() const { return _event.fd(); }
  /// Makes the eventfd readable, unless a signal is pending already.  Any thread, no GIL.
  void signal();
  /// Queues a finished task for the loop to deliver, and signals.  Any thread, no GIL.
  /// `backlog`: the posting pool still had tasks queued, so the loop may
  /// hold this result back briefly and take it with the next ones (see
  /// answer()); a post without a backlog ends such a hold at once.
  void post(TaskPtr task, bool backlog = false);
  /// Answers a wake-up, on the loop's thread, before take(): consumes the
  /// eventfd's count and, unless it holds, lets the next signal write again.
  /// It holds (returns true) when the latest post saw its pool's queue
  /// still full: the workers are busy with queued work anyway, so the
  /// results that finish meanwhile wait without a write, until the loop
  /// looks again (its own timer) or a post finds the queue empty.
  bool answer();
  /// The tasks posted so far.
  std::vector<TaskPtr> take();

 private:
  rt::EventFd _event;
  std::atomic<bool> _armed{false};
  std::atomic<bool> _backlog{false};  // the latest post saw its pool's queue non-empty
  std::atomic<bool> _holding{false};  // the loop holds results back (answer() said so)
  std::mutex _mutex;  // guards _inbox
  std::vector<TaskPtr> _inbox;
};

extern PyType_Spec loop_waker_spec;

/// The Waker of `obj` if it is a _core.LoopWaker of this module, else null.
std::shared_ptr<Waker> waker_of(PyTypeObject* waker_type, PyObject* obj);

}  // namespace interpool::py
