// src/python/semaphore_object.cpp: interpool.Semaphore (and BoundedSemaphore), around rt::Semaphore.
//
// The API is threading.Semaphore's; bounded=True makes it threading.BoundedSemaphore.
#include "python/sync_objects.hpp"

#include <chrono>

#include "python/int_option.hpp"
#include "python/interruptible_wait.hpp"
#include "python/sync_args.hpp"
#include "python/sync_handle.hpp"
#include "runtime/sync.hpp"

namespace interpool::py {

namespace {

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
  Timeout timeout;
  if (!parse_semaphore_acquire("acquire", args, nargs, kwnames, timeout)) return nullptr;
  rt::Semaphore& sem = semaphore(self);
  if (sem.try_acquire()) Py_RETURN_TRUE;
  return wait_outcome(wait_released_for(timeout, [&](std::chrono::nanoseconds slice) { return sem.acquire(slice); }));
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
    {Py_tp_doc, const_cast<char*>("Semaphore(value=1, *, bounded=False)\n--\n\n"
                                  "A counting semaphore shared by interpreters, with threading.Semaphore's API.  With "
                                  "bounded=True (interpool.BoundedSemaphore), release() past the initial value raises "
                                  "ValueError.")},
    {0, nullptr},
};

}  // namespace

PyType_Spec semaphore_spec = handle_type_spec("interpool.Semaphore", semaphore_slots);

}  // namespace interpool::py
