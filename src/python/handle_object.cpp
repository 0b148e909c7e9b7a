// src/python/handle_object.cpp: the common handle wrapper, Buffer and Shared.
#include "python/handle_object.hpp"

#include <new>

#include "python/codec.hpp"
#include "python/int_option.hpp"

namespace interpool::py {

// ------------------------------------------------------------ common slots

PyObject* handle_new(ModuleState& state, HandleKind kind, std::shared_ptr<rt::Handle> handle) {
  PyTypeObject* type = state.handle_types[static_cast<int>(kind)];
  if (!type) {
    PyErr_SetString(PyExc_SystemError, "interpool: handle kind without a type");
    return nullptr;
  }
  auto* self = PyObject_GC_New(HandleObject, type);
  if (!self) return nullptr;
  new (&self->handle) std::shared_ptr<rt::Handle>(std::move(handle));
  self->weakreflist = nullptr;
  self->exports = 0;
  self->cache = nullptr;
  PyObject_GC_Track(self);
  return reinterpret_cast<PyObject*>(self);
}

std::optional<HandleKind> handle_kind(ModuleState& state, PyTypeObject* type) {
  for (int k = 0; k < kHandleKinds; ++k)
    if (state.handle_types[k] == type) return static_cast<HandleKind>(k);
  return std::nullopt;
}

void handle_dealloc(PyObject* o) {
  heap_dealloc(o, [&] {
    auto* self = as_handle(o);
    if (self->weakreflist) PyObject_ClearWeakRefs(o);
    handle_clear(o);
    self->handle.~shared_ptr();
  });
}

PyObject* handle_richcompare(PyObject* a, PyObject* b, int op) {
  if ((op != Py_EQ && op != Py_NE) || Py_TYPE(a) != Py_TYPE(b)) Py_RETURN_NOTIMPLEMENTED;
  // Released wrappers stand for nothing: only an object equals itself then.
  bool same = a == b || (as_handle(a)->handle && as_handle(a)->handle == as_handle(b)->handle);
  return PyBool_FromLong(op == Py_EQ ? same : !same);
}

Py_hash_t handle_hash(PyObject* o) { return Py_HashPointer(as_handle(o)->handle.get()); }

PyObject* handle_reduce(PyObject* o, PyObject*) {
  rt::Payload* payload = current_encode_payload();
  auto& state = state_of_type(Py_TYPE(o));
  auto kind = handle_kind(state, Py_TYPE(o));
  if (!payload || !kind) {
    PyErr_Format(PyExc_TypeError,
                 "cannot pickle '%.100s': it stands for memory of this process and travels only to other "
                 "interpreters of the same process, through interpool (tasks, Queue.put, share())",
                 Py_TYPE(o)->tp_name);
    return nullptr;
  }
  if (!as_handle(o)->handle) {
    PyErr_Format(PyExc_ValueError, "cannot send a released %.100s", Py_TYPE(o)->tp_name);
    return nullptr;
  }
  std::size_t index = payload->handles.size();
  payload->handles.push_back(as_handle(o)->handle);
  return Py_BuildValue("O(in)", state.handle_from_context, static_cast<int>(*kind), static_cast<Py_ssize_t>(index));
}

PyObject* handle_from_context(PyObject* module, PyObject* const* args, Py_ssize_t nargs) {
  const rt::Payload* payload = current_decode_payload();
  if (nargs != 2 || !payload) {
    PyErr_SetString(PyExc_TypeError, "_handle_from_context() is only valid while interpool decodes a payload");
    return nullptr;
  }
  long kind = PyLong_AsLong(args[0]);
  Py_ssize_t index = PyLong_AsSsize_t(args[1]);
  if (PyErr_Occurred()) return nullptr;
  if (kind < 0 || kind >= kHandleKinds || index < 0 || static_cast<std::size_t>(index) >= payload->handles.size()) {
    PyErr_SetString(PyExc_ValueError, "interpool: handle reference out of range");
    return nullptr;
  }
  return handle_receive(state_of(module), static_cast<HandleKind>(kind), payload->handles[index]);
}

PyMemberDef handle_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(HandleObject, weakreflist), Py_READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

// ------------------------------------------------------------ SharedCache

void SharedCache::sweep() {
  seen_epoch = rt::SharedValue::released_epoch();
  for (auto it = entries.begin(); it != entries.end();) {
    if (it->second.weak.expired()) {
      PyObject* value = it->second.value;
      it = entries.erase(it);
      Py_DECREF(value);  // may run arbitrary code: the entry is gone already
    } else {
      ++it;
    }
  }
}

void SharedCache::clear() {
  while (!entries.empty()) {
    auto it = entries.begin();
    PyObject* value = it->second.value;
    entries.erase(it);
    Py_DECREF(value);
  }
}

static PyObject* materialize(ModuleState& state, const std::shared_ptr<rt::SharedValue>& shared) {
  SharedCache& cache = *state.shared_cache;
  cache.sweep_if_released();
  auto it = cache.entries.find(shared.get());
  if (it != cache.entries.end() && !it->second.weak.expired()) return Py_NewRef(it->second.value);
  Decoder dec(state, shared->payload());
  PyObject* value = dec.value();
  if (!value) return nullptr;
  if (it != cache.entries.end()) {  // a dead SharedValue at the same address
    PyObject* old = it->second.value;
    cache.entries.erase(it);
    Py_DECREF(old);
  }
  cache.entries.emplace(shared.get(), SharedCache::Entry{shared, Py_NewRef(value)});
  return value;
}

PyObject* handle_receive(ModuleState& state, HandleKind kind, const std::shared_ptr<rt::Handle>& handle) {
  if (kind == HandleKind::Shared) {
    auto shared = std::dynamic_pointer_cast<rt::SharedValue>(handle);
    if (!shared) {
      PyErr_SetString(PyExc_SystemError, "interpool: corrupt Shared handle");
      return nullptr;
    }
    return materialize(state, shared);
  }
  return handle_new(state, kind, handle);
}

// ------------------------------------------------------------------ Buffer

static std::shared_ptr<rt::Block> block_of(PyObject* o) {
  return std::static_pointer_cast<rt::Block>(as_handle(o)->handle);
}

static PyObject* buffer_tp_new(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  static const char* kwlist[] = {"size_or_data", "readonly", nullptr};
  PyObject* source;
  int readonly = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$p:SharedBuffer", const_cast<char**>(kwlist), &source, &readonly))
    return nullptr;
  ModuleState& state = state_of_type(type);
  std::shared_ptr<rt::Block> block;
  if (PyBool_Check(source)) {
    PyErr_SetString(PyExc_TypeError, "SharedBuffer size must be an int, not bool");
    return nullptr;
  }
  if (PyIndex_Check(source)) {
    Ref index = Ref::steal(PyNumber_Index(source));
    if (!index) return nullptr;
    long long size;
    if (!int_option(index.get(), "SharedBuffer size", 0, PY_SSIZE_T_MAX, size, "SharedBuffer size must be >= 0"))
      return nullptr;
    try {
      block = std::make_shared<rt::Block>(static_cast<std::size_t>(size), readonly);
    } catch (const std::bad_alloc&) {
      return PyErr_NoMemory();
    }
  } else if (PyObject_CheckBuffer(source)) {
    Py_buffer view;
    if (PyObject_GetBuffer(source, &view, PyBUF_FULL_RO) < 0) return nullptr;
    try {
      block = std::make_shared<rt::Block>(static_cast<std::size_t>(view.len), readonly);
    } catch (const std::bad_alloc&) {
      PyBuffer_Release(&view);
      return PyErr_NoMemory();
    }
    int rc = PyBuffer_ToContiguous(block->data(), &view, view.len, 'C');
    PyBuffer_Release(&view);
    if (rc < 0) return nullptr;
  } else {
    PyErr_Format(PyExc_TypeError, "SharedBuffer() takes a size (int) or a bytes-like object, not %.100s",
                 Py_TYPE(source)->tp_name);
    return nullptr;
  }
  return handle_new(state, HandleKind::Buffer, std::move(block));
}

static int buffer_getbuffer(PyObject* o, Py_buffer* view, int flags) {
  auto* self = as_handle(o);
  auto block = block_of(o);
  if (!block) {
    PyErr_SetString(PyExc_ValueError, "operation on a released SharedBuffer");
    return -1;
  }
  if (PyBuffer_FillInfo(view, o, block->data(), static_cast<Py_ssize_t>(block->size()), block->readonly(), flags) < 0)
    return -1;
  ++self->exports;
  return 0;
}

static void buffer_releasebuffer(PyObject* o, Py_buffer*) { --as_handle(o)->exports; }

static Py_ssize_t buffer_len(PyObject* o) {
  auto block = block_of(o);
  if (!block) {
    PyErr_SetString(PyExc_ValueError, "operation on a released SharedBuffer");
    return -1;
  }
  return static_cast<Py_ssize_t>(block->size());
}

static PyObject* buffer_get_readonly(PyObject* o, void*) {
  auto block = block_of(o);
  return PyBool_FromLong(block && block->readonly());
}

static PyObject* buffer_get_nbytes(PyObject* o, void*) {
  Py_ssize_t n = buffer_len(o);
  return n < 0 ? nullptr : PyLong_FromSsize_t(n);
}

static PyObject* buffer_get_released(PyObject* o, void*) { return PyBool_FromLong(!as_handle(o)->handle); }

static PyObject* buffer_release(PyObject* o, PyObject*) {
  auto* self = as_handle(o);
  if (self->exports > 0) {
    PyErr_Format(PyExc_BufferError,
                 "cannot release a SharedBuffer while %zd export(s) of it (memoryview, numpy array, ...) are "
                 "alive; release those first",
                 self->exports);
    return nullptr;
  }
  self->handle.reset();
  Py_RETURN_NONE;
}

static PyObject* buffer_cast(PyObject* o, PyObject* args, PyObject* kwds) {
  static const char* kwlist[] = {"format", "shape", nullptr};
  PyObject* format;
  PyObject* shape = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "U|O:cast", const_cast<char**>(kwlist), &format, &shape)) return nullptr;
  Ref view = Ref::steal(PyMemoryView_FromObject(o));
  if (!view) return nullptr;
  if (shape == Py_None) return PyObject_CallMethod(view.get(), "cast", "O", format);
  return PyObject_CallMethod(view.get(), "cast", "OO", format, shape);
}

static PyObject* buffer_repr(PyObject* o) {
  auto block = block_of(o);
  if (!block) return PyUnicode_FromString("<interpool.SharedBuffer (released)>");
  return PyUnicode_FromFormat("<interpool.SharedBuffer of %zu bytes%s>", block->size(),
                              block->readonly() ? ", read-only" : "");
}

static PyObject* buffer_enter(PyObject* o, PyObject*) { return Py_NewRef(o); }
static PyObject* buffer_exit(PyObject* o, PyObject*) { return buffer_release(o, nullptr); }

static PyMethodDef buffer_methods[] = {
    {"release", buffer_release, METH_NOARGS,
     "release($self, /)\n--\n\nDrop this object's reference to the engine memory (the memory itself lives on while "
     "other "
     "interpreters hold it).  Raises BufferError while exports of this object are alive."},
    {"cast", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(buffer_cast)), METH_VARARGS | METH_KEYWORDS,
     "cast($self, /, format, shape=None)\n--\n\nA typed memoryview of the memory: struct format such as 'd' or 'i', "
     "and an "
     "optional shape for n-dimensional data."},
    {"__reduce__", handle_reduce, METH_NOARGS, nullptr},
    {"__enter__", buffer_enter, METH_NOARGS, nullptr},
    {"__exit__", buffer_exit, METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

static PyGetSetDef buffer_getset[] = {
    {"readonly", buffer_get_readonly, nullptr, "Whether the memory is read-only.", nullptr},
    {"nbytes", buffer_get_nbytes, nullptr, "Size of the memory in bytes.", nullptr},
    {"released", buffer_get_released, nullptr, "Whether release() was called on this object.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

static PyType_Slot buffer_slots[] = {
    HANDLE_COMMON_SLOTS,
    {Py_tp_new, reinterpret_cast<void*>(buffer_tp_new)},
    {Py_tp_repr, reinterpret_cast<void*>(buffer_repr)},
    {Py_tp_methods, buffer_methods},
    {Py_tp_getset, buffer_getset},
    {Py_sq_length, reinterpret_cast<void*>(buffer_len)},
    {Py_bf_getbuffer, reinterpret_cast<void*>(buffer_getbuffer)},
    {Py_bf_releasebuffer, reinterpret_cast<void*>(buffer_releasebuffer)},
    {Py_tp_doc,
     const_cast<char*>("SharedBuffer(size_or_data, *, readonly=False)\n--\n\n"
                       "Writable memory owned by the engine, not by an interpreter.  It exposes the buffer protocol in "
                       "every interpreter (memoryview, struct, array, numpy.frombuffer), travels to tasks by handle "
                       "with zero copies, and stays valid while any interpreter holds it.")},
    {0, nullptr},
};

PyType_Spec buffer_spec = heap_type_spec<HandleObject>("interpool.SharedBuffer", Py_TPFLAGS_HAVE_GC, buffer_slots);

// ------------------------------------------------------------------ Shared

static std::shared_ptr<rt::SharedValue> shared_of(PyObject* o) {
  return std::static_pointer_cast<rt::SharedValue>(as_handle(o)->handle);
}

PyObject* share(PyObject* module, PyObject* obj) {
  ModuleState& state = state_of(module);
  if (auto kind = handle_kind(state, Py_TYPE(obj)); kind == HandleKind::Shared) return Py_NewRef(obj);
  rt::Payload payload;
  Encoder enc(state, payload);
  if (!enc.value(obj)) return nullptr;
  std::shared_ptr<rt::SharedValue> shared;
  try {
    shared = std::make_shared<rt::SharedValue>(std::move(payload), Py_TYPE(obj)->tp_name);
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  }
  return handle_new(state, HandleKind::Shared, std::move(shared));
}

static PyObject* shared_get_value(PyObject* o, void*) {
  auto* self = as_handle(o);
  if (!self->cache) {
    Decoder dec(state_of_type(Py_TYPE(o)), shared_of(o)->payload());
    self->cache = dec.value();
    if (!self->cache) return nullptr;
  }
  return Py_NewRef(self->cache);
}

static PyObject* shared_get_nbytes(PyObject* o, void*) { return PyLong_FromSize_t(shared_of(o)->nbytes()); }

static PyObject* shared_repr(PyObject* o) {
  auto shared = shared_of(o);
  return PyUnicode_FromFormat("<interpool.Shared %s snapshot, %zu bytes>", shared->type_name().c_str(),
                              shared->nbytes());
}

static PyMethodDef shared_methods[] = {
    {"__reduce__", handle_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

static PyGetSetDef shared_getset[] = {
    {"value", shared_get_value, nullptr,
     "The snapshot as a Python object of this interpreter (decoded once, then the same object).", nullptr},
    {"nbytes", shared_get_nbytes, nullptr, "Size of the encoded snapshot in bytes.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

static PyType_Slot shared_slots[] = {
    HANDLE_COMMON_SLOTS,
    {Py_tp_repr, reinterpret_cast<void*>(shared_repr)},
    {Py_tp_methods, shared_methods},
    {Py_tp_getset, shared_getset},
    {Py_tp_doc,
     const_cast<char*>("A frozen snapshot of an object, made by interpool.share(obj).\n\n"
                       "Passing it to a task costs O(1) whatever its size; the task receives the object itself.  "
                       "Each interpreter decodes the snapshot once and reuses that copy while the Shared lives.")},
    {0, nullptr},
};

PyType_Spec shared_spec = heap_type_spec<HandleObject>(
    "interpool.Shared", Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION, shared_slots);

}  // namespace interpool::py
