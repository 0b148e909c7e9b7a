// tests/cpp/test_event_fd.cpp: specification of runtime/event_fd.hpp.
#include "runtime/event_fd.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <thread>

using interpool::rt::EventFd;

namespace {

/// Whether `fd` is readable now (poll without waiting).
bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

}  // namespace

TEST(EventFd, StartsUnreadableAndNonBlocking) {
  EventFd e;
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(readable(e.fd()));
  const int flags = fcntl(e.fd(), F_GETFL);
  EXPECT_TRUE(flags & O_NONBLOCK);
  EXPECT_TRUE(fcntl(e.fd(), F_GETFD) & FD_CLOEXEC);
}

TEST(EventFd, SignalMakesReadableUntilDrained) {
  EventFd e;
  ASSERT_TRUE(e.ok());
  e.signal();
  e.signal();
  EXPECT_TRUE(readable(e.fd()));
  e.drain();  // one read takes every signal so far
  EXPECT_FALSE(readable(e.fd()));
  e.drain();  // nothing to drain: returns at once
  EXPECT_FALSE(readable(e.fd()));
}

TEST(EventFd, SignalFromAnotherThread) {
  EventFd e;
  ASSERT_TRUE(e.ok());
  std::thread([&] { e.signal(); }).join();
  EXPECT_TRUE(readable(e.fd()));
}

TEST(EventFd, DestructorClosesTheDescriptor) {
  int fd;
  {
    EventFd e;
    ASSERT_TRUE(e.ok());
    fd = e.fd();
  }
  EXPECT_EQ(fcntl(fd, F_GETFD), -1);
}
