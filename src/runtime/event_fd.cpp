// src/runtime/event_fd.cpp: an eventfd owned by one object.
#include "runtime/event_fd.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace interpool::rt {

EventFd::EventFd() : _fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

EventFd::~EventFd() {
  if (_fd >= 0) close(_fd);
}

// Both calls retry on EINTR only: a write fails otherwise only if the count
// would overflow (it is readable then anyway), a read only if the count is
// zero already (EAGAIN: nothing to drain).
void EventFd::signal() {
  uint64_t one = 1;
  while (write(_fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void EventFd::drain() {
  uint64_t count;
  while (read(_fd, &count, sizeof count) < 0 && errno == EINTR) {
  }
}

}  // namespace interpool::rt
