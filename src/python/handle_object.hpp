// src/python/handle_object.hpp: Python objects that stand for engine handles.
//
// Buffer, Shared, Queue, Lock, RLock, Event, Semaphore and Barrier objects
// are thin per-interpreter wrappers around one C++ object of the runtime,
// held by std::shared_ptr.  They cross interpreters as handles: the codec
// copies the shared_ptr, never the object, and the receiving interpreter
// makes a fresh wrapper of the same kind.  Wrappers compare and hash by the
// engine object they stand for.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>

#include "python/heap_type.hpp"
#include "python/module_state.hpp"
#include "runtime/block.hpp"
#include "runtime/shared_value.hpp"

namespace interpool::py {

enum class HandleKind : uint8_t { Buffer, Shared, Queue, Lock, RLock, Event, Semaphore, Barrier, Count };

struct HandleObject {
  PyObject_HEAD
  std::shared_ptr<rt::Handle> handle;  ///< null once released (Buffer.release)
  PyObject* weakreflist;
  Py_ssize_t exports;  ///< Buffer: live exports of the buffer protocol
  PyObject* cache;     ///< Shared: its decoded value in this interpreter, made lazily
};

inline HandleObject* as_handle(PyObject* o) { return reinterpret_cast<HandleObject*>(o); }

template <class T>
T* handle_get(PyObject* o) {
  return static_cast<T*>(as_handle(o)->handle.get());
}

/// A new wrapper of kind `kind` around `handle`, in the current interpreter.
PyObject* handle_new(ModuleState& state, HandleKind kind, std::shared_ptr<rt::Handle> handle);

/// The kind of `type` if it is one of this interpreter's handle types.
std::optional<HandleKind> handle_kind(ModuleState& state, PyTypeObject* type);

/// What a handle becomes on arrival in an interpreter: a wrapper, or for a
/// Shared the decoded value (decoded once per interpreter, then reused).
PyObject* handle_receive(ModuleState& state, HandleKind kind, const std::shared_ptr<rt::Handle>& handle);

/// Per-interpreter decoded copies of SharedValues, owned by the module state.
struct SharedCache {
  struct Entry {
    std::weak_ptr<rt::SharedValue> weak;
    PyObject* value;  ///< owned
  };
  std::unordered_map<const rt::SharedValue*, Entry> entries;
  uint64_t seen_epoch = 0;

  /// Drops the copies of SharedValues that are gone.  GIL held.
  void sweep();
  /// sweep(), if any SharedValue was released since the last one.  GIL held.
  void sweep_if_released() {
    if (seen_epoch != rt::SharedValue::released_epoch()) sweep();
  }
  /// Drops every copy.  GIL held.
  void clear();
};

// Slots and methods every handle type includes (GC, identity, pickling).
void handle_dealloc(PyObject* o);
inline constexpr auto* handle_traverse = &traverse_fields<HandleObject, &HandleObject::cache>;
inline constexpr auto* handle_clear = &clear_fields<HandleObject, &HandleObject::cache>;
PyObject* handle_richcompare(PyObject* a, PyObject* b, int op);
Py_hash_t handle_hash(PyObject* o);
/// __reduce__: valid only while interpool's codec encodes (the handle then
/// travels beside the pickle); elsewhere a TypeError says why.
PyObject* handle_reduce(PyObject* o, PyObject*);
extern PyMemberDef handle_members[];

/// The slots above, for a handle type's slot list (one slot a line).
// clang-format off
#define HANDLE_COMMON_SLOTS                                          \
  {Py_tp_dealloc, reinterpret_cast<void*>(handle_dealloc)},          \
  {Py_tp_traverse, reinterpret_cast<void*>(handle_traverse)},        \
  {Py_tp_clear, reinterpret_cast<void*>(handle_clear)},              \
  {Py_tp_richcompare, reinterpret_cast<void*>(handle_richcompare)},  \
  {Py_tp_hash, reinterpret_cast<void*>(handle_hash)},                \
  {Py_tp_members, handle_members}
// clang-format on

/// _core._handle_from_context(kind, index): the unpickling side of __reduce__.
PyObject* handle_from_context(PyObject* module, PyObject* const* args, Py_ssize_t nargs);

/// _core.share(obj) -> Shared
PyObject* share(PyObject* module, PyObject* obj);

extern PyType_Spec buffer_spec;
extern PyType_Spec shared_spec;

}  // namespace interpool::py
