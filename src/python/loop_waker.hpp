// src/python/loop_waker.hpp: an eventfd that wakes one asyncio event loop.
#pragma once

#include <atomic>
#include <memory>

#include "python/ref.hpp"

namespace interpool::py {

/// The wake-up of one event loop's LoopBridge: an eventfd the loop watches
/// (loop.add_reader).  Signalled from any thread without any GIL, so the
/// delivery thread wakes a loop only after it has let go of the loop's GIL:
/// the woken loop never waits for it.  Repeated signals before the loop
/// answers cost one write.
class Waker {
 public:
  Waker();
  ~Waker();
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;

  bool ok() const { return _fd >= 0; }
  int fd() const { return _fd; }
  /// Makes the eventfd readable, unless a signal is pending already.  Any thread, no GIL.
  void signal();
  /// Answers the signal: the next signal() writes again.  The loop's thread.
  void clear();

 private:
  int _fd;
  std::atomic<bool> _armed{false};
};

extern PyType_Spec loop_waker_spec;

/// The Waker of `obj` if it is a _core.LoopWaker of this module, else null.
std::shared_ptr<Waker> waker_of(PyTypeObject* waker_type, PyObject* obj);

}  // namespace interpool::py
