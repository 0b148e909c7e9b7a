// src/python/sync_handle.hpp: what every synchronisation type shares.
//
// Its runtime object, construction of
// a fresh runtime object behind a new wrapper, methods that only forward to
// the runtime object, and the type's spec.
#pragma once

#include <cstring>
#include <memory>
#include <new>
#include <utility>

#include "python/handle_object.hpp"

namespace interpool::py {

template <class T>
T& core(PyObject* o) {
  return *handle_get<T>(o);
}

#define FASTCALL_KW(f) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f))

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
inline bool no_args(const char* name, PyObject* args, PyObject* kwds) {
  if (PyTuple_GET_SIZE(args) != 0 || (kwds && PyDict_GET_SIZE(kwds) != 0)) {
    PyErr_Format(PyExc_TypeError, "%s() takes no arguments", name);
    return false;
  }
  return true;
}

/// tp_new of a type whose constructor takes no arguments (Lock, RLock,
/// Event): a new wrapper around a fresh T.
template <class T, HandleKind kind>
PyObject* new_handle_no_args(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  const char* dot = std::strrchr(type->tp_name, '.');
  if (!no_args(dot ? dot + 1 : type->tp_name, args, kwds)) return nullptr;
  return new_handle<T>(type, kind);
}

/// A METH_NOARGS method that calls `Method` of the runtime object and
/// returns None (Event.set, Barrier.reset, Queue.close, ...).
template <class T, void (T::*Method)()>
PyObject* call_void(PyObject* self, PyObject*) {
  (core<T>(self).*Method)();
  Py_RETURN_NONE;
}

/// The spec of a synchronisation type named `name`: a handle object (GC,
/// immutable) with `slots`.
constexpr PyType_Spec handle_type_spec(const char* name, PyType_Slot* slots) {
  return heap_type_spec<HandleObject>(name, Py_TPFLAGS_HAVE_GC, slots);
}

}  // namespace interpool::py
