// src/python/sync_handle.hpp: what every synchronisation type shares.
//
// Its runtime object, its common slots (handle_object.hpp), construction of
// a fresh runtime object behind a new wrapper.
#pragma once

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

inline /// Wrappers are made by calling the type; they take no arguments unless the
/// type says otherwise.
bool no_args(const char* name, PyObject* args, PyObject* kwds) {
  if (PyTuple_GET_SIZE(args) != 0 || (kwds && PyDict_GET_SIZE(kwds) != 0)) {
    PyErr_Format(PyExc_TypeError, "%s() takes no arguments", name);
    return false;
  }
  return true;
}

}  // namespace interpool::py
