// src/python/lock_object.cpp: interpool.Lock and interpool.RLock, around rt::Mutex and rt::RLock.
//
// The API is threading.Lock's and threading.RLock's (with the private methods
// threading.Condition uses on an RLock).
#include "python/sync_objects.hpp"

#include <chrono>

#include "python/interruptible_wait.hpp"
#include "python/sync_args.hpp"
#include "python/sync_handle.hpp"
#include "runtime/sync.hpp"

namespace interpool::py {

namespace {

// Lock and RLock share acquire() and release(), written once over the
// calls that differ (Ops: MutexOps, RLockOps).

/// acquire(blocking=True, timeout=-1): a try with the GIL held, then a wait
/// without it.
template <class Ops>
PyObject* lock_acquire(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  Timeout timeout;
  if (!parse_lock_acquire("acquire", args, nargs, kwnames, timeout)) return nullptr;
  auto& l = core<typename Ops::Type>(self);
  if (Ops::try_acquire(l)) Py_RETURN_TRUE;
  return wait_outcome(
      wait_released_for(timeout, [&](std::chrono::nanoseconds slice) { return Ops::acquire(l, slice); }));
}

template <class Ops>
PyObject* lock_enter(PyObject* self, PyObject*) {
  return lock_acquire<Ops>(self, nullptr, 0, nullptr);
}

template <class Ops>
PyObject* lock_release(PyObject* self, PyObject*) {
  if (!Ops::release(core<typename Ops::Type>(self))) {
    PyErr_SetString(PyExc_RuntimeError, Ops::kNotHeld);
    return nullptr;
  }
  Py_RETURN_NONE;
}

template <class Ops>
PyObject* lock_exit(PyObject* self, PyObject*) {
  return lock_release<Ops>(self, nullptr);
}

template <class Ops>
PyObject* lock_locked(PyObject* self, PyObject*) {
  return PyBool_FromLong(core<typename Ops::Type>(self).locked());
}

// -------------------------------------------------------------------- Lock

struct MutexOps {
  using Type = rt::Mutex;
  static constexpr const char* kNotHeld = "release unlocked lock";  // threading's words
  static bool try_acquire(rt::Mutex& m) { return m.try_lock(); }
  static WaitStatus acquire(rt::Mutex& m, std::chrono::nanoseconds slice) { return m.lock(slice); }
  static bool release(rt::Mutex& m) { return m.unlock(); }
};

PyObject* lock_repr(PyObject* self) {
  return PyUnicode_FromFormat("<interpool.Lock %s>", core<rt::Mutex>(self).locked() ? "locked" : "unlocked");
}

PyMethodDef lock_methods[] = {
    {"acquire", FASTCALL_KW(lock_acquire<MutexOps>), METH_FASTCALL | METH_KEYWORDS,
     "acquire($self, blocking=True, timeout=-1)\n--\n\n"
     "Acquire the lock, waiting at most timeout seconds (-1: forever) unless blocking is false.  Returns whether "
     "it was acquired.  The GIL is released while waiting."},
    {"release", lock_release<MutexOps>, METH_NOARGS,
     "release($self, /)\n--\n\nRelease the lock (any thread, any interpreter may).  RuntimeError if it is not locked."},
    {"locked", lock_locked<MutexOps>, METH_NOARGS, "locked($self, /)\n--\n\nWhether the lock is held."},
    {"__enter__", lock_enter<MutexOps>, METH_NOARGS, nullptr},
    {"__exit__", lock_exit<MutexOps>, METH_VARARGS, nullptr},
    {"__reduce__", handle_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot lock_slots[] = {
    HANDLE_COMMON_SLOTS,
    {Py_tp_new, reinterpret_cast<void*>(new_handle_no_args<rt::Mutex, HandleKind::Lock>)},
    {Py_tp_repr, reinterpret_cast<void*>(lock_repr)},
    {Py_tp_methods, lock_methods},
    {Py_tp_doc, const_cast<char*>("Lock()\n--\n\n"
                                  "A lock shared by interpreters, with threading.Lock's API: one holder at a time "
                                  "across every interpreter and thread of the process.")},
    {0, nullptr},
};

}  // namespace

PyType_Spec lock_spec = handle_type_spec("interpool.Lock", lock_slots);

namespace {

// ------------------------------------------------------------------- RLock

struct RLockOps {
  using Type = rt::RLock;
  static constexpr const char* kNotHeld = "cannot release un-acquired lock";  // threading's words
  static bool try_acquire(rt::RLock& l) { return l.try_acquire(); }
  static WaitStatus acquire(rt::RLock& l, std::chrono::nanoseconds slice) { return l.acquire(slice); }
  static bool release(rt::RLock& l) { return l.release(); }
};

rt::RLock& rlock(PyObject* o) { return core<rt::RLock>(o); }

PyObject* rlock_is_owned(PyObject* self, PyObject*) { return PyBool_FromLong(rlock(self).owned_by_current_thread()); }

PyObject* rlock_release_save(PyObject* self, PyObject*) {
  rt::RLock& l = rlock(self);
  uint64_t count = l.release_all();
  if (count == 0) {
    PyErr_SetString(PyExc_RuntimeError, RLockOps::kNotHeld);
    return nullptr;
  }
  return Py_BuildValue("(KK)", static_cast<unsigned long long>(count),
                       static_cast<unsigned long long>(rt::current_thread_id()));
}

PyObject* rlock_acquire_restore(PyObject* self, PyObject* state) {
  unsigned long long count, owner;
  if (!PyArg_ParseTuple(state, "KK:_acquire_restore", &count, &owner)) return nullptr;
  rt::RLock& l = rlock(self);
  PyObject* ok = lock_acquire<RLockOps>(self, nullptr, 0, nullptr);
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
    {"acquire", FASTCALL_KW(lock_acquire<RLockOps>), METH_FASTCALL | METH_KEYWORDS,
     "acquire($self, blocking=True, timeout=-1)\n--\n\n"
     "Acquire the lock, or one more level of it if this OS thread holds it already.  Returns whether it was "
     "acquired.  The GIL is released while waiting."},
    {"release", lock_release<RLockOps>, METH_NOARGS,
     "release($self, /)\n--\n\nRelease one level; the lock is free once every level is released.  RuntimeError if "
     "this OS thread does not hold the lock."},
    {"locked", lock_locked<RLockOps>, METH_NOARGS, "locked($self, /)\n--\n\nWhether some thread holds the lock."},
    {"_is_owned", rlock_is_owned, METH_NOARGS, nullptr},
    {"_release_save", rlock_release_save, METH_NOARGS, nullptr},
    {"_acquire_restore", rlock_acquire_restore, METH_O, nullptr},
    {"__enter__", lock_enter<RLockOps>, METH_NOARGS, nullptr},
    {"__exit__", lock_exit<RLockOps>, METH_VARARGS, nullptr},
    {"__reduce__", handle_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot rlock_slots[] = {
    HANDLE_COMMON_SLOTS,
    {Py_tp_new, reinterpret_cast<void*>(new_handle_no_args<rt::RLock, HandleKind::RLock>)},
    {Py_tp_repr, reinterpret_cast<void*>(rlock_repr)},
    {Py_tp_methods, rlock_methods},
    {Py_tp_doc,
     const_cast<char*>("RLock()\n--\n\n"
                       "A reentrant lock shared by interpreters, with threading.RLock's API.  It is owned by an OS "
                       "thread: the thread that acquired it may acquire it again (from any interpreter it runs) "
                       "and must release it as many times.")},
    {0, nullptr},
};

}  // namespace

PyType_Spec rlock_spec = handle_type_spec("interpool.RLock", rlock_slots);

}  // namespace interpool::py
