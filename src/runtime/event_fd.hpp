// src/runtime/event_fd.hpp: an eventfd owned by one object, for waking an event loop.
//
// An asyncio loop can watch a file descriptor (loop.add_reader) but not a
// futex, so the engine wakes a loop by making an eventfd readable.  The
// WorkerSlot of an AsyncPool worker and the LoopWaker of a caller's loop each
// own one; both signal it from any thread, without any GIL.
#pragma once

namespace interpool::rt {

class EventFd {
 public:
  /// A non-blocking, close-on-exec eventfd; ok() says whether one was made
  /// (errno tells why not).
  EventFd();
  ~EventFd();
  EventFd(const EventFd&) = delete;
  EventFd& operator=(const EventFd&) = delete;

  bool ok() const { return _fd >= 0; }
  /// The descriptor to watch: readable once signalled, until drained.
  int fd() const { return _fd; }
  /// Makes the descriptor readable (adds one to its count).  Any thread.
  void signal();
  /// Consumes the count, so the descriptor is no longer readable until the
  /// next signal().  Never blocks.
  void drain();

 private:
  int _fd;
};

}  // namespace interpool::rt
