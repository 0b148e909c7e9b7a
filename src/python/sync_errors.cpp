// src/python/sync_errors.cpp: the exceptions the synchronisation objects raise.
#include "python/sync_errors.hpp"

namespace interpool::py {

namespace {

/// Raises `module.name(message)` (no arguments if message is null), the type
/// imported once and kept in `type` (a field of the module state).
PyObject* raise_cached(PyObject*& type, const char* module, const char* name, const char* message) {
  if (!type) {
    Ref mod = Ref::steal(PyImport_ImportModule(module));
    if (!mod) return nullptr;
    PyObject* cls = PyObject_GetAttrString(mod.get(), name);
    if (!cls) return nullptr;
    if (type)  // the import may have let another thread of this interpreter in
      Py_DECREF(cls);
    else
      type = cls;
  }
  if (message)
    PyErr_SetString(type, message);
  else
    PyErr_SetNone(type);
  return nullptr;
}

}  // namespace

PyObject* raise_queue_closed(ModuleState& state) {
  return raise_cached(state.queue_closed_type, "interpool._errors", "QueueClosed", "the queue is closed");
}

PyObject* raise_queue_full(ModuleState& state) { return raise_cached(state.queue_full_type, "queue", "Full", nullptr); }

PyObject* raise_queue_empty(ModuleState& state) {
  return raise_cached(state.queue_empty_type, "queue", "Empty", nullptr);
}

PyObject* raise_broken_barrier(ModuleState& state) {
  return raise_cached(state.broken_barrier_type, "threading", "BrokenBarrierError", nullptr);
}

}  // namespace interpool::py
