// src/python/sync_errors.cpp: the exceptions the synchronisation objects raise.
#include "python/sync_errors.hpp"

#include "python/ref.hpp"

namespace interpool::py {

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

}  // namespace interpool::py
