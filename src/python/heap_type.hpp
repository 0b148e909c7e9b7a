// src/python/heap_type.hpp: the slots every heap type of _core shares.
//
// Each instance of a heap type owns a reference to its type, which
// tp_traverse must visit and tp_dealloc must drop; a type with GC is
// untracked before its fields are torn down, so that the collector never sees
// a half-destroyed object.  Those steps are written once here; each type says
// only what is its own: the PyObject* fields it owns, and the C++ members it
// destroys.
#pragma once

#include <array>

#include "python/ref.hpp"

namespace interpool::py {

/// tp_traverse of a type whose instances (`Object`) own the PyObject* members
/// `Fields` (null allowed): visits the type, then each field.
template <class Object, PyObject* Object::*... Fields>
int traverse_fields(PyObject* o, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(o));
  [[maybe_unused]] auto* self = reinterpret_cast<Object*>(o);  // unused by a type with no fields
  const std::array<PyObject*, sizeof...(Fields)> fields{(self->*Fields)...};
  for (PyObject* field : fields) Py_VISIT(field);
  return 0;
}

/// tp_clear of the same: drops each field, leaving it null.
template <class Object, PyObject* Object::*... Fields>
int clear_fields(PyObject* o) {
  [[maybe_unused]] auto* self = reinterpret_cast<Object*>(o);
  for (PyObject** field : std::array<PyObject**, sizeof...(Fields)>{&(self->*Fields)...}) Py_CLEAR(*field);
  return 0;
}

/// The body of a heap type's tp_dealloc: untracks `o` if the type has GC,
/// runs `destroy()` (the type's own steps: its C++ members' destructors, its
/// tp_clear), frees the object and drops its reference to its type.
template <class Destroy>
void heap_dealloc(PyObject* o, Destroy&& destroy) {
  PyTypeObject* type = Py_TYPE(o);
  if (PyType_HasFeature(type, Py_TPFLAGS_HAVE_GC)) PyObject_GC_UnTrack(o);
  destroy();
  type->tp_free(o);
  Py_DECREF(type);
}

/// The spec of a heap type whose instances are `Object`s.  Every type of
/// _core is immutable, as a static type would be: its type object is this
/// interpreter's own, but code must not be able to change what the engine
/// relies on.  `flags` adds the type's own (GC, no instantiation).
template <class Object>
constexpr PyType_Spec heap_type_spec(const char* name, unsigned long flags, PyType_Slot* slots) {
  return {name, static_cast<int>(sizeof(Object)), 0,
          static_cast<unsigned int>(Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | flags), slots};
}

}  // namespace interpool::py
