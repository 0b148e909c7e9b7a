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

}  // namespace

PyType_Spec lock_spec = {
    "interpool.Lock",
    sizeof(HandleObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    lock_slots,
};

namespace {

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

}  // namespace

PyType_Spec rlock_spec = {
    "interpool.RLock",
    sizeof(HandleObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    rlock_slots,
};

}  // namespace interpool::py
