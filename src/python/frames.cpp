// src/python/frames.cpp: thread walkers that stay inside one interpreter.
//
// On 3.12 and 3.13, sys._current_frames() (_PyThread_CurrentFrames) walks the
// threads of *every* interpreter.  For a worker running Python it makes a
// frame object with the caller's allocator, links it into the worker's live
// frame and increfs the worker's objects, all without the worker's GIL; the
// worker later frees that frame object with its own allocator and glibc
// aborts ("free(): invalid pointer").  sys._current_exceptions() increfs other
// interpreters' exceptions the same way.  3.14 walks only the calling
// interpreter, which is all these versions do too.
#include "python/frames.hpp"

#include "python/runtime_internals.h"

namespace interpool::py {
namespace {

// Calls `add(tstate)` for each thread state of the calling interpreter,
// under the runtime's list lock as CPython's own walker does: threads may
// link their states in without any GIL.  `add` must run no Python code, and
// does not: frame objects, ints and dict entries run none, and since 3.12 the
// garbage collector runs only at eval-breaker points.
template <class F>
bool for_each_thread(F&& add) {
  PyInterpreterState* interp = PyInterpreterState_Get();
  interpool_runtime_head_lock();
  bool ok = true;
  for (PyThreadState* t = PyInterpreterState_ThreadHead(interp); ok && t; t = PyThreadState_Next(t)) ok = add(t);
  interpool_runtime_head_unlock();
  return ok;
}

bool set_item(PyObject* dict, PyThreadState* t, PyObject* value) {
  Ref id = Ref::steal(PyLong_FromUnsignedLong(t->thread_id));
  return id && PyDict_SetItem(dict, id.get(), value) == 0;
}

}  // namespace

PyObject* current_frames(PyObject*, PyObject*) {
  if (PySys_Audit("sys._current_frames", nullptr) < 0) return nullptr;
  Ref result = Ref::steal(PyDict_New());
  if (!result) return nullptr;
  bool ok = for_each_thread([&](PyThreadState* t) {
    // The innermost complete frame, as CPython's version reports it.
    Ref frame = Ref::steal(reinterpret_cast<PyObject*>(PyThreadState_GetFrame(t)));
    if (!frame) return !PyErr_Occurred();
    return set_item(result.get(), t, frame.get());
  });
  return ok ? result.release() : nullptr;
}

PyObject* current_exceptions(PyObject*, PyObject*) {
  if (PySys_Audit("sys._current_exceptions", nullptr) < 0) return nullptr;
  Ref result = Ref::steal(PyDict_New());
  if (!result) return nullptr;
  bool ok = for_each_thread([&](PyThreadState* t) {
    // The exception being handled: the topmost non-empty entry of the
    // thread's exception stack (CPython's _PyErr_GetTopmostException).
    _PyErr_StackItem* item = t->exc_info;
    if (!item) return true;
    while ((!item->exc_value || item->exc_value == Py_None) && item->previous_item) item = item->previous_item;
    return set_item(result.get(), t, item->exc_value ? item->exc_value : Py_None);
  });
  return ok ? result.release() : nullptr;
}

bool install_frame_walkers(PyObject* module) {
#if PY_VERSION_HEX < 0x030E0000
  Ref sys_module = Ref::steal(PyImport_ImportModule("sys"));
  if (!sys_module) return false;
  PyObject* sys = sys_module.get();
  for (const char* name : {"_current_frames", "_current_exceptions"}) {
    Ref current = Ref::steal(PyObject_GetAttrString(sys, name));
    if (!current) return false;
    // Leave a replacement someone else installed (a profiler's wrapper, or
    // ours from an earlier import of _core in this interpreter) alone.
    if (!PyCFunction_Check(current.get()) || PyCFunction_GET_SELF(current.get()) != sys) continue;
    Ref ours = Ref::steal(PyObject_GetAttrString(module, name));
    if (!ours || PyObject_SetAttrString(sys, name, ours.get()) < 0) return false;
  }
#else
  (void)module;
#endif
  return true;
}

}  // namespace interpool::py
