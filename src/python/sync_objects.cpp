// src/python/sync_objects.cpp: interpool.Queue, Lock, RLock, Event, Semaphore
// and Barrier.
//
// Each is a handle object (see handle_object.hpp) around a runtime primitive
// (runtime/channel.hpp, runtime/sync.hpp) that every interpreter holding it
// shares.  The API follows queue.Queue and the threading module.
//
// Blocking: every call first tries without blocking, with the GIL held.  If it
// must wait, it releases the GIL and waits in slices of at most 100 ms; after
// each slice that ended without an outcome (timeout slice, or EINTR) it takes
// the GIL back and runs check_signals_and_interrupt(), so that Ctrl-C in the
// main thread interrupts the wait, as it does threading.Lock.acquire(), and
// so does interrupt() (or a timeout) of the task that waits.
#include "python/sync_objects.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <initializer_list>
#include <new>

#include "python/codec.hpp"
#include "python/int_option.hpp"
#include "python/interrupt.hpp"
#include "runtime/channel.hpp"
#include "runtime/sync.hpp"

namespace interpool::py {

namespace {

using Clock = std::chrono::steady_clock;
using rt::Timeout;
using rt::WaitStatus;

constexpr auto kSignalCheckInterval = std::chrono::milliseconds(100);
/// Timeouts this long (about 31 years) or longer mean "forever".
constexpr double kForeverSeconds = 1e9;
/// threading.TIMEOUT_MAX on Linux: locks refuse longer timeouts.
constexpr double kLockTimeoutMax = 9223372036.0;

// ------------------------------------------------------------------ helpers

/// A deadline, or none for "forever".
using Deadline = std::optional<Clock::time_point>;

Deadline deadline_after(const Timeout& timeout) {
  if (!timeout) return std::nullopt;
  return Clock::now() + *timeout;
}

/// Seconds (already validated: >= 0, not NaN) as a Timeout.
Timeout from_seconds(double seconds) {
  if (seconds >= kForeverSeconds) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<int64_t>(std::max(0.0, seconds) * 1e9));
}

/// `obj` as seconds.  False with TypeError (not a number) or ValueError (NaN).
bool to_seconds(PyObject* obj, double& out) {
  out = PyFloat_AsDouble(obj);
  if (out == -1.0 && PyErr_Occurred()) return false;
  if (std::isnan(out)) {
    PyErr_SetString(PyExc_ValueError, "timeout must not be NaN");
    return false;
  }
  return true;
}

/// Waits with the GIL released: calls `attempt(slice)` until it returns
/// Woken (the outcome is known), checking for signals between slices.
/// Returns 1 once `attempt` returned Woken, 0 if the deadline passed first,
/// -1 with an exception set if a signal handler raised.
template <class Attempt>
int wait_released(const Deadline& deadline, Attempt&& attempt) {
  for (;;) {
    std::chrono::nanoseconds slice = kSignalCheckInterval;
    if (deadline) {
      auto left = *deadline - Clock::now();
      if (left <= std::chrono::nanoseconds::zero()) return 0;
      slice = std::min<std::chrono::nanoseconds>(slice, left);
    }
    WaitStatus status;
    {
      ReleasedGil released;
      status = attempt(slice);
    }
    if (status == WaitStatus::Woken) return 1;
    if (check_signals_and_interrupt() < 0) return -1;
  }
}

/// Raises `module.name(message)` (no arguments if message is null).
void raise_named(const char* module, const char* name, const char* message) {
  Ref mod = Ref::steal(PyImport_ImportModule(module));
  if (!mod) return;
  Ref cls = Ref::steal(PyObject_GetAttrString(mod.get(), name));
  if (!cls) return;
  if (message)
    PyErr_SetString(cls.get(), message);
  else
    PyErr_SetNone(cls.get());
}

PyObject* raise_queue_closed() {
  raise_named("interpool._errors", "QueueClosed", "the queue is closed");
  return nullptr;
}

PyObject* raise_broken_barrier() {
  raise_named("threading", "BrokenBarrierError", nullptr);
  return nullptr;
}

/// Parses vectorcall arguments by name into `out` (borrowed; null when not
/// given).  Positional arguments come first, in the order of `names`.
bool parse_args(const char* fname, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                std::initializer_list<const char*> names, PyObject** out) {
  const Py_ssize_t n = static_cast<Py_ssize_t>(names.size());
  std::fill(out, out + n, nullptr);
  if (nargs > n) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %zd argument%s (%zd given)", fname, n, n == 1 ? "" : "s",
                 nargs);
    return false;
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) out[i] = args[i];
  if (!kwnames) return true;
  const Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, k);
    Py_ssize_t i = 0;
    for (const char* name : names) {
      if (PyUnicode_CompareWithASCIIString(key, name) == 0) break;
      ++i;
    }
    if (i == n) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname, key);
      return false;
    }
    if (out[i]) {
      PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%U'", fname, key);
      return false;
    }
    out[i] = args[nargs + k];
  }
  return true;
}

/// `obj` as a bool; a null `obj` gives `dflt`.  -1 on error.
int truth(PyObject* obj, bool dflt) { return obj ? PyObject_IsTrue(obj) : dflt; }

/// threading.Lock.acquire's (blocking=True, timeout=-1).  On success, `timeout`
/// is zero for a non-blocking call, empty for "forever".
bool parse_lock_acquire(const char* fname, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                        Timeout& timeout) {
  PyObject* a[2];
  if (!parse_args(fname, args, nargs, kwnames, {"blocking", "timeout"}, a)) return false;
  int blocking = truth(a[0], true);
  if (blocking < 0) return false;
  double seconds = -1;
  if (a[1] && a[1] != Py_None && !to_seconds(a[1], seconds)) return false;
  if (!blocking && seconds != -1) {
    PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
    return false;
  }
  if (seconds < 0 && seconds != -1) {
    PyErr_SetString(PyExc_ValueError, "timeout value must be a non-negative number");
    return false;
  }
  if (seconds > kLockTimeoutMax) {
    PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
    return false;
  }
  if (!blocking)
    timeout = std::chrono::nanoseconds(0);
  else if (seconds == -1)
    timeout.reset();
  else
    timeout = from_seconds(seconds);
  return true;
}

/// An optional `timeout=None` argument as threading.Event.wait and
/// Barrier.wait read it: None is forever, a negative number is zero.
bool parse_optional_timeout(PyObject* obj, Timeout& timeout) {
  timeout.reset();
  if (!obj || obj == Py_None) return true;
  double seconds;
  if (!to_seconds(obj, seconds)) return false;
  timeout = from_seconds(seconds);
  return true;
}

/// Acquires with the GIL released (after a failed try with it held): the
/// shared tail of Lock, RLock and Semaphore acquire.
template <class Acquire>
PyObject* acquire_tail(const Timeout& timeout, Acquire&& acquire) {
  if (timeout && timeout->count() <= 0) Py_RETURN_FALSE;
  int r = wait_released(deadline_after(timeout), [&](std::chrono::nanoseconds slice) { return acquire(slice); });
  if (r < 0) return nullptr;
  return PyBool_FromLong(r);
}

template <class T>
T& core(PyObject* o) {
  return *handle_get<T>(o);
}

#define FASTCALL_KW(f) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f))

#define HANDLE_COMMON_SLOTS                                                      \
  {Py_tp_dealloc, reinterpret_cast<void*>(handle_dealloc)},                      \
      {Py_tp_traverse, reinterpret_cast<void*>(handle_traverse)},                \
      {Py_tp_clear, reinterpret_cast<void*>(handle_clear)},                      \
      {Py_tp_richcompare, reinterpret_cast<void*>(handle_richcompare)},          \
      {Py_tp_hash, reinterpret_cast<void*>(handle_hash)}, {Py_tp_members, handle_members}

/// A new wrapper around a fresh runtime object of type T.
template <class T, class... Args>
PyObject* new_handle(PyTypeObject* type, HandleKind kind, Args&&... args) {
  std::shared_ptr<T> obj;
  try {
    obj = std::make_shared<T>(std::forward<Args>(args)...);
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  }
  return handle_new(state_of_type(type), kind, std::move(obj));
}

/// Wrappers are made by calling the type; they take no arguments unless the
/// type says otherwise.
bool no_args(const char* name, PyObject* args, PyObject* kwds) {
  if (PyTuple_GET_SIZE(args) != 0 || (kwds && PyDict_GET_SIZE(kwds) != 0)) {
    PyErr_Format(PyExc_TypeError, "%s() takes no arguments", name);
    return false;
  }
  return true;
}

// ------------------------------------------------------------------- Queue

rt::Channel& channel(PyObject* o) { return core<rt::Channel>(o); }

PyObject* queue_tp_new(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  static const char* kwlist[] = {"maxsize", nullptr};
  PyObject* maxsize_obj = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Queue", const_cast<char**>(kwlist), &maxsize_obj)) return nullptr;
  long long maxsize = 0;
  if (maxsize_obj && !int_option(maxsize_obj, "Queue maxsize", PY_SSIZE_T_MIN, PY_SSIZE_T_MAX, maxsize))
    return nullptr;
  // As queue.Queue: a maxsize <= 0 means no bound.
  return new_handle<rt::Channel>(type, HandleKind::Queue, static_cast<std::size_t>(std::max<long long>(maxsize, 0)));
}

/// Queue.put/get's (block=True, timeout=None).  `timeout` zero: don't block.
bool parse_queue_wait(PyObject* block_obj, PyObject* timeout_obj, Timeout& timeout) {
  int block = truth(block_obj, true);
  if (block < 0) return false;
  timeout.reset();
  if (!block) {
    timeout = std::chrono::nanoseconds(0);
    return true;
  }
  if (!timeout_obj || timeout_obj == Py_None) return true;
  double seconds;
  if (!to_seconds(timeout_obj, seconds)) return false;
  if (seconds < 0) {
    PyErr_SetString(PyExc_ValueError, "'timeout' must be a non-negative number");
    return false;
  }
  timeout = from_seconds(seconds);
  return true;
}

PyObject* queue_put_impl(PyObject* self, PyObject* item, const Timeout& timeout) {
  rt::Channel& ch = channel(self);
  if (ch.closed()) return raise_queue_closed();
  rt::Payload payload;
  Encoder enc(state_of_type(Py_TYPE(self)), payload);
  if (!enc.value(item)) return nullptr;
  rt::ChannelStatus status = ch.try_put(payload);
  if (status == rt::ChannelStatus::TimedOut && !(timeout && timeout->count() <= 0)) {
    int r = wait_released(deadline_after(timeout), [&](std::chrono::nanoseconds slice) {
      status = ch.put(payload, slice);
      return status == rt::ChannelStatus::Ok || status == rt::ChannelStatus::Closed ? WaitStatus::Woken
                                                                                     : WaitStatus::TimedOut;
    });
    if (r < 0) return nullptr;
  }
  switch (status) {
    case rt::ChannelStatus::Ok: Py_RETURN_NONE;
    case rt::ChannelStatus::Closed: return raise_queue_closed();
    default: raise_named("queue", "Full", nullptr); return nullptr;
  }
}

PyObject* queue_get_impl(PyObject* self, const Timeout& timeout) {
  rt::Channel& ch = channel(self);
  rt::Payload payload;
  rt::ChannelStatus status = ch.try_get(payload);
  if (status == rt::ChannelStatus::TimedOut && !(timeout && timeout->count() <= 0)) {
    int r = wait_released(deadline_after(timeout), [&](std::chrono::nanoseconds slice) {
      status = ch.get(payload, slice);
      return status == rt::ChannelStatus::Ok || status == rt::ChannelStatus::Closed ? WaitStatus::Woken
                                                                                     : WaitStatus::TimedOut;
    });
    if (r < 0) return nullptr;
  }
  switch (status) {
    case rt::ChannelStatus::Ok: {
      Decoder dec(state_of_type(Py_TYPE(self)), payload);
      return dec.value();
    }
    case rt::ChannelStatus::Closed: return raise_queue_closed();
    default: raise_named("queue", "Empty", nullptr); return nullptr;
  }
}

PyObject* queue_put(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* a[3];
  if (!parse_args("put", args, nargs, kwnames, {"item", "block", "timeout"}, a)) return nullptr;
  if (!a[0]) {
    PyErr_SetString(PyExc_TypeError, "put() missing required argument 'item' (pos 1)");
    return nullptr;
  }
  Timeout timeout;
  if (!parse_queue_wait(a[1], a[2], timeout)) return nullptr;
  return queue_put_impl(self, a[0], timeout);
}

PyObject* queue_get(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* a[2];
  if (!parse_args("get", args, nargs, kwnames, {"block", "timeout"}, a)) return nullptr;
  Timeout timeout;
  if (!parse_queue_wait(a[0], a[1], timeout)) return nullptr;
  return queue_get_impl(self, timeout);
}

PyObject* queue_put_nowait(PyObject* self, PyObject* item) {
  return queue_put_impl(self, item, std::chrono::nanoseconds(0));
}

PyObject* queue_get_nowait(PyObject* self, PyObject*) { return queue_get_impl(self, std::chrono::nanoseconds(0)); }

PyObject* queue_qsize(PyObject* self, PyObject*) { return PyLong_FromSize_t(channel(self).size()); }
PyObject* queue_empty(PyObject* self, PyObject*) { return PyBool_FromLong(channel(self).size() == 0); }
PyObject* queue_full(PyObject* self, PyObject*) { return PyBool_FromLong(channel(self).full()); }

PyObject* queue_close(PyObject* self, PyObject*) {
  channel(self).close();
  Py_RETURN_NONE;
}

PyObject* queue_get_closed(PyObject* self, void*) { return PyBool_FromLong(channel(self).closed()); }
PyObject* queue_get_maxsize(PyObject* self, void*) { return PyLong_FromSize_t(channel(self).capacity()); }

PyObject* queue_repr(PyObject* self) {
  rt::Channel& ch = channel(self);
  return PyUnicode_FromFormat("<interpool.Queue maxsize=%zu qsize=%zu%s>", ch.capacity(), ch.size(),
                              ch.closed() ? " closed" : "");
}

PyMethodDef queue_methods[] = {
    {"put", FASTCALL_KW(queue_put), METH_FASTCALL | METH_KEYWORDS,
     "put($self, item, block=True, timeout=None)\n--\n\n"
     "Put item into the queue (encoded now, in this interpreter).  If the queue is full, wait (at most timeout "
     "seconds) for a free slot, then raise queue.Full; with block=False raise queue.Full at once.  Raises "
     "interpool.QueueClosed once the queue is closed, TypeError if item cannot be sent."},
    {"get", FASTCALL_KW(queue_get), METH_FASTCALL | METH_KEYWORDS,
     "get($self, block=True, timeout=None)\n--\n\n"
     "Remove and return the oldest item (decoded in this interpreter).  If the queue is empty, wait (at most "
     "timeout seconds), then raise queue.Empty; with block=False raise queue.Empty at once.  A closed queue "
     "still hands out the items left in it, then raises interpool.QueueClosed."},
    {"put_nowait", queue_put_nowait, METH_O,
     "put_nowait($self, item, /)\n--\n\nput(item, block=False): raise queue.Full at once if the queue is full."},
    {"get_nowait", queue_get_nowait, METH_NOARGS,
     "get_nowait($self, /)\n--\n\nget(block=False): raise queue.Empty at once if the queue is empty."},
    {"qsize", queue_qsize, METH_NOARGS, "qsize($self, /)\n--\n\nThe number of items in the queue (a snapshot)."},
    {"empty", queue_empty, METH_NOARGS, "empty($self, /)\n--\n\nWhether the queue holds no items (a snapshot)."},
    {"full", queue_full, METH_NOARGS,
     "full($self, /)\n--\n\nWhether a bounded queue holds maxsize items (a snapshot)."},
    {"close", queue_close, METH_NOARGS,
     "close($self, /)\n--\n\nClose the queue, in every interpreter: put() raises interpool.QueueClosed from now on, "
     "get() returns the items left, then raises it.  Wakes every blocked put() and get().  Idempotent."},
    {"__reduce__", handle_reduce, METH_NOARGS, nullptr},
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS, "See PEP 585"},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef queue_getset[] = {
    {"closed", queue_get_closed, nullptr, "Whether close() was called (by any interpreter).", nullptr},
    {"maxsize", queue_get_maxsize, nullptr, "The bound on the number of items; 0 for none.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot queue_slots[] = {
    HANDLE_COMMON_SLOTS,
    {Py_tp_new, reinterpret_cast<void*>(queue_tp_new)},
    {Py_tp_repr, reinterpret_cast<void*>(queue_repr)},
    {Py_tp_methods, queue_methods},
    {Py_tp_getset, queue_getset},
    {Py_tp_doc, const_cast<char*>(
                    "Queue(maxsize=0)\n--\n\n"
                    "A FIFO queue shared by interpreters: pass it to tasks (or through another Queue) and every "
                    "interpreter puts to and gets from the same queue.  Items cross by value, like task "
                    "arguments: whatever a task can receive, including SharedBuffer, Shared and other "
                    "queues and locks, which travel as handles.  maxsize <= 0 means unbounded.  The API is "
                    "queue.Queue's, plus close().")},
    {0, nullptr},
};

PyType_Spec queue_spec = {
    "interpool.Queue",
    sizeof(HandleObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    queue_slots,
};

// -------------------------------------------------------------------- Lock

rt::Mutex& mutex(PyObject* o) { return core<rt::Mutex>(o); }

PyObject* lock_tp_new(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  if (!no_args("Lock", args, kwds)) return nullptr;
  return new_handle<rt::Mutex>(type, HandleKind::Lock);
}

PyObject* lock_acquire(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  Timeout timeout;
  if (!parse_lock_acquire("acquire", args, nargs, kwnames, timeout)) return nullptr;
  rt::Mutex& m = mutex(self);
  if (m.try_lock()) Py_RETURN_TRUE;
  return acquire_tail(timeout, [&](std::chrono::nanoseconds slice) { return m.lock(slice); });
}

PyObject* lock_enter(PyObject* self, PyObject*) { return lock_acquire(self, nullptr, 0, nullptr); }

PyObject* lock_release(PyObject* self, PyObject*) {
  if (!mutex(self).unlock()) {
    PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* lock_exit(PyObject* self, PyObject*) { return lock_release(self, nullptr); }

PyObject* lock_locked(PyObject* self, PyObject*) { return PyBool_FromLong(mutex(self).locked()); }

PyObject* lock_repr(PyObject* self) {
  return PyUnicode_FromFormat("<interpool.Lock %s>", mutex(self).locked() ? "locked" : "unlocked");
}

PyMethodDef lock_methods[] = {
    {"acquire", FASTCALL_KW(lock_acquire), METH_FASTCALL | METH_KEYWORDS,
     "acquire($self, blocking=True, timeout=-1)\n--\n\n"
     "Acquire the lock, waiting at most timeout seconds (-1: forever) unless blocking is false.  Returns whether "
     "it was acquired.  The GIL is released while waiting."},
    {"release", lock_release, METH_NOARGS,
     "release($self, /)\n--\n\nRelease the lock (any thread, any interpreter may).  RuntimeError if it is not locked."},
    {"locked", lock_locked, METH_NOARGS, "locked($self, /)\n--\n\nWhether the lock is held."},
    {"__enter__", lock_enter, METH_NOARGS, nullptr},
    {"__exit__", lock_exit, METH_VARARGS, nullptr},
    {"__reduce__", handle_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot lock_slots[] = {
    HANDLE_COMMON_SLOTS,
    {Py_tp_new, reinterpret_cast<void*>(lock_tp_new)},
    {Py_tp_repr, reinterpret_cast<void*>(lock_repr)},
    {Py_tp_methods, lock_methods},
    {Py_tp_doc, const_cast<char*>("Lock()\n--\n\n"
                                  "A lock shared by interpreters, with threading.Lock's API: one holder at a time "
                                  "across every interpreter and thread of the process.")},
    {0, nullptr},
};

PyType_Spec lock_spec = {
    "interpool.Lock",
    sizeof(HandleObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    lock_slots,
};

// ------------------------------------------------------------------- RLock

rt::RLock& rlock(PyObject* o) { return core<rt::RLock>(o); }

PyObject* rlock_tp_new(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  if (!no_args("RLock", args, kwds)) return nullptr;
  return new_handle<rt::RLock>(type, HandleKind::RLock);
}

PyObject* rlock_acquire(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  Timeout timeout;
  if (!parse_lock_acquire("acquire", args, nargs, kwnames, timeout)) return nullptr;
  rt::RLock& l = rlock(self);
  if (l.try_acquire()) Py_RETURN_TRUE;
  return acquire_tail(timeout, [&](std::chrono::nanoseconds slice) { return l.acquire(slice); });
}

PyObject* rlock_enter(PyObject* self, PyObject*) { return rlock_acquire(self, nullptr, 0, nullptr); }

PyObject* rlock_release(PyObject* self, PyObject*) {
  if (!rlock(self).release()) {
    PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* rlock_exit(PyObject* self, PyObject*) { return rlock_release(self, nullptr); }

PyObject* rlock_locked(PyObject* self, PyObject*) { return PyBool_FromLong(rlock(self).locked()); }

PyObject* rlock_is_owned(PyObject* self, PyObject*) { return PyBool_FromLong(rlock(self).owned_by_current_thread()); }

PyObject* rlock_release_save(PyObject* self, PyObject*) {
  rt::RLock& l = rlock(self);
  uint64_t count = l.release_all();
  if (count == 0) {
    PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
    return nullptr;
  }
  return Py_BuildValue("(KK)", static_cast<unsigned long long>(count),
                       static_cast<unsigned long long>(rt::current_thread_id()));
}

PyObject* rlock_acquire_restore(PyObject* self, PyObject* state) {
  unsigned long long count, owner;
  if (!PyArg_ParseTuple(state, "KK:_acquire_restore", &count, &owner)) return nullptr;
  rt::RLock& l = rlock(self);
  PyObject* ok = rlock_acquire(self, nullptr, 0, nullptr);
  if (!ok) return nullptr;
  Py_DECREF(ok);
  l.set_count(count);
  Py_RETURN_NONE;
}

PyObject* rlock_repr(PyObject* self) {
  rt::RLock& l = rlock(self);
  if (!l.locked()) return PyUnicode_FromString("<interpool.RLock unlocked>");
  if (l.owned_by_current_thread())
    return PyUnicode_FromFormat("<interpool.RLock locked by this thread, count=%llu>",
                                static_cast<unsigned long long>(l.count()));
  return PyUnicode_FromString("<interpool.RLock locked by another thread>");
}

PyMethodDef rlock_methods[] = {
    {"acquire", FASTCALL_KW(rlock_acquire), METH_FASTCALL | METH_KEYWORDS,
     "acquire($self, blocking=True, timeout=-1)\n--\n\n"
     "Acquire the lock, or one more level of it if this OS thread holds it already.  Returns whether it was "
     "acquired.  The GIL is released while waiting."},
    {"release", rlock_release, METH_NOARGS,
     "release($self, /)\n--\n\nRelease one level; the lock is free once every level is released.  RuntimeError if "
     "this OS thread does not hold the lock."},
    {"locked", rlock_locked, METH_NOARGS, "locked($self, /)\n--\n\nWhether some thread holds the lock."},
    {"_is_owned", rlock_is_owned, METH_NOARGS, nullptr},
    {"_release_save", rlock_release_save, METH_NOARGS, nullptr},
    {"_acquire_restore", rlock_acquire_restore, METH_O, nullptr},
    {"__enter__", rlock_enter, METH_NOARGS, nullptr},
    {"__exit__", rlock_exit, METH_VARARGS, nullptr},
    {"__reduce__", handle_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot rlock_slots[] = {
    HANDLE_COMMON_SLOTS,
    {Py_tp_new, reinterpret_cast<void*>(rlock_tp_new)},
    {Py_tp_repr, reinterpret_cast<void*>(rlock_repr)},
    {Py_tp_methods, rlock_methods},
    {Py_tp_doc, const_cast<char*>(
                    "RLock()\n--\n\n"
                    "A reentrant lock shared by interpreters, with threading.RLock's API.  It is owned by an OS "
                    "thread: the thread that acquired it may acquire it again (from any interpreter it runs) "
                    "and must release it as many times.")},
    {0, nullptr},
};

PyType_Spec rlock_spec = {
    "interpool.RLock",
    sizeof(HandleObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    rlock_slots,
};

// ------------------------------------------------------------------- Event

rt::Event& event(PyObject* o) { return core<rt::Event>(o); }

PyObject* event_tp_new(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  if (!no_args("Event", args, kwds)) return nullptr;
  return new_handle<rt::Event>(type, HandleKind::Event);
}

PyObject* event_set(PyObject* self, PyObject*) {
  event(self).set();
  Py_RETURN_NONE;
}

PyObject* event_clear(PyObject* self, PyObject*) {
  event(self).clear();
  Py_RETURN_NONE;
}

PyObject* event_is_set(PyObject* self, PyObject*) { return PyBool_FromLong(event(self).is_set()); }

PyObject* event_wait(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* a[1];
  if (!parse_args("wait", args, nargs, kwnames, {"timeout"}, a)) return nullptr;
  Timeout timeout;
  if (!parse_optional_timeout(a[0], timeout)) return nullptr;
  rt::Event& ev = event(self);
  if (ev.is_set()) Py_RETURN_TRUE;
  if (timeout && timeout->count() <= 0) Py_RETURN_FALSE;
  const uint32_t ticket = ev.ticket();
  int r = wait_released(deadline_after(timeout),
                        [&](std::chrono::nanoseconds slice) { return ev.wait_from(ticket, slice); });
  if (r < 0) return nullptr;
  return PyBool_FromLong(r);
}

PyObject* event_repr(PyObject* self) {
  return PyUnicode_FromFormat("<interpool.Event %s>", event(self).is_set() ? "set" : "unset");
}

PyMethodDef event_methods[] = {
    {"set", event_set, METH_NOARGS, "set($self, /)\n--\n\nSet the flag and wake every waiter, in every interpreter."},
    {"clear", event_clear, METH_NOARGS, "clear($self, /)\n--\n\nReset the flag."},
    {"is_set", event_is_set, METH_NOARGS, "is_set($self, /)\n--\n\nWhether the flag is set."},
    {"wait", FASTCALL_KW(event_wait), METH_FASTCALL | METH_KEYWORDS,
     "wait($self, timeout=None)\n--\n\n"
     "Wait until the flag is set, at most timeout seconds.  Returns True if it is set, or was set while this "
     "call waited; False on timeout.  The GIL is released while waiting."},
    {"__reduce__", handle_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot event_slots[] = {
    HANDLE_COMMON_SLOTS,
    {Py_tp_new, reinterpret_cast<void*>(event_tp_new)},
    {Py_tp_repr, reinterpret_cast<void*>(event_repr)},
    {Py_tp_methods, event_methods},
    {Py_tp_doc, const_cast<char*>("Event()\n--\n\n"
                                  "A flag shared by interpreters, with threading.Event's API.")},
    {0, nullptr},
};

PyType_Spec event_spec = {
    "interpool.Event",
    sizeof(HandleObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    event_slots,
};

// --------------------------------------------------------------- Semaphore

rt::Semaphore& semaphore(PyObject* o) { return core<rt::Semaphore>(o); }

PyObject* semaphore_tp_new(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  static const char* kwlist[] = {"value", "bounded", nullptr};
  PyObject* value_obj = nullptr;
  int bounded = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$p:Semaphore", const_cast<char**>(kwlist), &value_obj, &bounded))
    return nullptr;
  long long value = 1;
  if (value_obj && !int_option(value_obj, "Semaphore value", 0, rt::Semaphore::kMaxValue, value,
                               "semaphore initial value must be >= 0"))  // threading's words
    return nullptr;
  return new_handle<rt::Semaphore>(type, HandleKind::Semaphore, static_cast<uint32_t>(value), bounded != 0);
}

PyObject* semaphore_acquire(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* a[2];
  if (!parse_args("acquire", args, nargs, kwnames, {"blocking", "timeout"}, a)) return nullptr;
  int blocking = truth(a[0], true);
  if (blocking < 0) return nullptr;
  const bool has_timeout = a[1] && a[1] != Py_None;
  if (!blocking && has_timeout) {
    PyErr_SetString(PyExc_ValueError, "can't specify timeout for non-blocking acquire");
    return nullptr;
  }
  Timeout timeout;
  if (!blocking)
    timeout = std::chrono::nanoseconds(0);
  else if (!parse_optional_timeout(a[1], timeout))
    return nullptr;
  rt::Semaphore& sem = semaphore(self);
  if (sem.try_acquire()) Py_RETURN_TRUE;
  return acquire_tail(timeout, [&](std::chrono::nanoseconds slice) { return sem.acquire(slice); });
}

PyObject* semaphore_enter(PyObject* self, PyObject*) { return semaphore_acquire(self, nullptr, 0, nullptr); }

PyObject* semaphore_release(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* a[1];
  if (!parse_args("release", args, nargs, kwnames, {"n"}, a)) return nullptr;
  Py_ssize_t n = 1;
  if (a[0]) {
    n = PyNumber_AsSsize_t(a[0], PyExc_OverflowError);
    if (n == -1 && PyErr_Occurred()) return nullptr;
  }
  if (n < 1) {
    PyErr_SetString(PyExc_ValueError, "n must be one or more");
    return nullptr;
  }
  rt::Semaphore& sem = semaphore(self);
  if (static_cast<std::size_t>(n) > rt::Semaphore::kMaxValue || !sem.release(static_cast<uint32_t>(n))) {
    if (sem.bounded())
      PyErr_SetString(PyExc_ValueError, "Semaphore released too many times");
    else
      PyErr_Format(PyExc_OverflowError, "semaphore value must stay <= %u", rt::Semaphore::kMaxValue);
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* semaphore_exit(PyObject* self, PyObject*) { return semaphore_release(self, nullptr, 0, nullptr); }

PyObject* semaphore_get_value(PyObject* self, void*) { return PyLong_FromUnsignedLong(semaphore(self).value()); }
PyObject* semaphore_get_bounded(PyObject* self, void*) { return PyBool_FromLong(semaphore(self).bounded()); }

PyObject* semaphore_repr(PyObject* self) {
  rt::Semaphore& sem = semaphore(self);
  if (sem.bounded())
    return PyUnicode_FromFormat("<interpool.Semaphore value=%u/%u, bounded>", sem.value(), sem.initial_value());
  return PyUnicode_FromFormat("<interpool.Semaphore value=%u>", sem.value());
}

PyMethodDef semaphore_methods[] = {
    {"acquire", FASTCALL_KW(semaphore_acquire), METH_FASTCALL | METH_KEYWORDS,
     "acquire($self, blocking=True, timeout=None)\n--\n\n"
     "Take one unit, waiting at most timeout seconds (None: forever) unless blocking is false.  Returns whether "
     "a unit was taken.  The GIL is released while waiting."},
    {"release", FASTCALL_KW(semaphore_release), METH_FASTCALL | METH_KEYWORDS,
     "release($self, n=1)\n--\n\nGive back n units, waking up to n waiters.  A bounded semaphore raises ValueError "
     "rather than exceed its initial value."},
    {"__enter__", semaphore_enter, METH_NOARGS, nullptr},
    {"__exit__", semaphore_exit, METH_VARARGS, nullptr},
    {"__reduce__", handle_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef semaphore_getset[] = {
    {"_value", semaphore_get_value, nullptr, "The free units now (a snapshot).", nullptr},
    {"bounded", semaphore_get_bounded, nullptr, "Whether release() may not exceed the initial value.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot semaphore_slots[] = {
    HANDLE_COMMON_SLOTS,
    {Py_tp_new, reinterpret_cast<void*>(semaphore_tp_new)},
    {Py_tp_repr, reinterpret_cast<void*>(semaphore_repr)},
    {Py_tp_methods, semaphore_methods},
    {Py_tp_getset, semaphore_getset},
    {Py_tp_doc, const_cast<char*>(
                    "Semaphore(value=1, *, bounded=False)\n--\n\n"
                    "A counting semaphore shared by interpreters, with threading.Semaphore's API.  With "
                    "bounded=True (interpool.BoundedSemaphore), release() past the initial value raises "
                    "ValueError.")},
    {0, nullptr},
};

PyType_Spec semaphore_spec = {
    "interpool.Semaphore",
    sizeof(HandleObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    semaphore_slots,
};

// ----------------------------------------------------------------- Barrier

rt::Barrier& barrier(PyObject* o) { return core<rt::Barrier>(o); }

PyObject* barrier_tp_new(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  static const char* kwlist[] = {"parties", "action", "timeout", nullptr};
  PyObject* parties_obj;
  PyObject* action = Py_None;
  PyObject* timeout_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OO:Barrier", const_cast<char**>(kwlist), &parties_obj, &action,
                                   &timeout_obj))
    return nullptr;
  long long parties;
  if (!int_option(parties_obj, "Barrier parties", 1, UINT32_MAX, parties, "parties must be > 0"))  // threading's words
    return nullptr;
  Timeout timeout;
  if (!parse_optional_timeout(timeout_obj, timeout)) return nullptr;
  rt::Payload encoded;
  if (action != Py_None) {
    if (!PyCallable_Check(action)) {
      PyErr_Format(PyExc_TypeError, "Barrier action must be callable, not %.100s", Py_TYPE(action)->tp_name);
      return nullptr;
    }
    // The barrier is shared: whichever interpreter's thread trips it runs the
    // action, so it is kept encoded and decoded there.
    Encoder enc(state_of_type(type), encoded);
    if (!enc.value(action)) return nullptr;
  }
  return new_handle<rt::Barrier>(type, HandleKind::Barrier, static_cast<uint32_t>(parties), std::move(encoded),
                                 timeout);
}

/// Runs the barrier's action in this interpreter.  False with its exception.
bool run_action(PyObject* self, rt::Barrier& b) {
  if (b.action().empty()) return true;
  Decoder dec(state_of_type(Py_TYPE(self)), b.action());
  Ref action = Ref::steal(dec.value());
  if (!action) return false;
  Ref result = Ref::steal(PyObject_CallNoArgs(action.get()));
  return static_cast<bool>(result);
}

PyObject* barrier_wait(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* a[1];
  if (!parse_args("wait", args, nargs, kwnames, {"timeout"}, a)) return nullptr;
  rt::Barrier& b = barrier(self);
  Timeout timeout = b.default_timeout();
  if (a[0] && a[0] != Py_None && !parse_optional_timeout(a[0], timeout)) return nullptr;
  const Deadline deadline = deadline_after(timeout);

  // Step 1: arrive, once the previous cycle has drained (no timeout, as
  // threading.Barrier; a slice only for signals).
  uint32_t index = 0;
  rt::Barrier::Result result = b.arrive(index, std::chrono::nanoseconds(0));
  if (result == rt::Barrier::Result::Pending) {
    int r = wait_released(std::nullopt, [&](std::chrono::nanoseconds slice) {
      result = b.arrive(index, slice);
      return result == rt::Barrier::Result::Pending ? WaitStatus::TimedOut : WaitStatus::Woken;
    });
    if (r < 0) return nullptr;
  }
  if (result == rt::Barrier::Result::Broken) return raise_broken_barrier();

  // Step 2: the last party runs the action and releases the others; the
  // others wait for that.  Every path then leaves (step 3).
  if (index + 1 == b.parties()) {
    const bool ok = run_action(self, b);
    result = b.trip(ok);
    if (!ok) {
      b.leave();
      return nullptr;  // the action's exception; the others get BrokenBarrierError
    }
  } else {
    result = b.await(std::chrono::nanoseconds(0));
    if (result == rt::Barrier::Result::Pending) {
      int r = wait_released(deadline, [&](std::chrono::nanoseconds slice) {
        result = b.await(slice);
        return result == rt::Barrier::Result::Pending ? WaitStatus::TimedOut : WaitStatus::Woken;
      });
      if (r < 0) {
        b.leave();
        return nullptr;
      }
      if (r == 0) {  // timed out: as threading.Barrier, that breaks it for all
        b.abort();
        result = rt::Barrier::Result::Broken;
      }
    }
  }
  b.leave();
  if (result != rt::Barrier::Result::Ok) return raise_broken_barrier();
  return PyLong_FromUnsignedLong(index);
}

PyObject* barrier_reset(PyObject* self, PyObject*) {
  barrier(self).reset();
  Py_RETURN_NONE;
}

PyObject* barrier_abort(PyObject* self, PyObject*) {
  barrier(self).abort();
  Py_RETURN_NONE;
}

PyObject* barrier_get_parties(PyObject* self, void*) { return PyLong_FromUnsignedLong(barrier(self).parties()); }
PyObject* barrier_get_n_waiting(PyObject* self, void*) { return PyLong_FromUnsignedLong(barrier(self).n_waiting()); }
PyObject* barrier_get_broken(PyObject* self, void*) { return PyBool_FromLong(barrier(self).broken()); }

PyObject* barrier_repr(PyObject* self) {
  rt::Barrier& b = barrier(self);
  if (b.broken()) return PyUnicode_FromFormat("<interpool.Barrier broken, parties=%u>", b.parties());
  return PyUnicode_FromFormat("<interpool.Barrier waiters=%u/%u>", b.n_waiting(), b.parties());
}

PyMethodDef barrier_methods[] = {
    {"wait", FASTCALL_KW(barrier_wait), METH_FASTCALL | METH_KEYWORDS,
     "wait($self, timeout=None)\n--\n\n"
     "Wait until `parties` threads (of any interpreters) wait, then pass together.  Returns this thread's "
     "arrival index, 0 to parties-1.  The last to arrive runs the action first, in its interpreter.  Raises "
     "threading.BrokenBarrierError if the barrier is or gets broken (abort(), reset(), a timeout, or an action "
     "that raised).  timeout None: the barrier's default."},
    {"reset", barrier_reset, METH_NOARGS,
     "reset($self, /)\n--\n\nReturn the barrier to its empty state; current waiters get BrokenBarrierError."},
    {"abort", barrier_abort, METH_NOARGS,
     "abort($self, /)\n--\n\nBreak the barrier: current and future waiters get BrokenBarrierError until reset()."},
    {"__reduce__", handle_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef barrier_getset[] = {
    {"parties", barrier_get_parties, nullptr, "How many threads must wait() for the barrier to pass.", nullptr},
    {"n_waiting", barrier_get_n_waiting, nullptr, "How many threads wait now.", nullptr},
    {"broken", barrier_get_broken, nullptr, "Whether the barrier is broken.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot barrier_slots[] = {
    HANDLE_COMMON_SLOTS,
    {Py_tp_new, reinterpret_cast<void*>(barrier_tp_new)},
    {Py_tp_repr, reinterpret_cast<void*>(barrier_repr)},
    {Py_tp_methods, barrier_methods},
    {Py_tp_getset, barrier_getset},
    {Py_tp_doc, const_cast<char*>(
                    "Barrier(parties, action=None, timeout=None)\n--\n\n"
                    "A barrier shared by interpreters, with threading.Barrier's API.  action, if given, must be "
                    "sendable to other interpreters (a module-level function, say): it is stored encoded and "
                    "run by whichever thread trips the barrier, in that thread's interpreter.")},
    {0, nullptr},
};

PyType_Spec barrier_spec = {
    "interpool.Barrier",
    sizeof(HandleObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    barrier_slots,
};

}  // namespace

std::vector<std::pair<PyType_Spec*, HandleKind>> sync_type_specs() {
  return {
      {&queue_spec, HandleKind::Queue},         {&lock_spec, HandleKind::Lock},
      {&rlock_spec, HandleKind::RLock},         {&event_spec, HandleKind::Event},
      {&semaphore_spec, HandleKind::Semaphore}, {&barrier_spec, HandleKind::Barrier},
  };
}

}  // namespace interpool::py
