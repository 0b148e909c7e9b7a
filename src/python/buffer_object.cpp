// src/python/buffer_object.cpp: _core.Buffer type.
#include "python/buffer_object.hpp"

#include <new>

namespace interpool::py {

static PyObject* buffer_tp_new(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  static const char* kwlist[] = {"size", "readonly", nullptr};
  Py_ssize_t size;
  int readonly = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "n|p:Buffer", const_cast<char**>(kwlist), &size, &readonly))
    return nullptr;
  if (size < 0) {
    PyErr_SetString(PyExc_ValueError, "Buffer size must be >= 0");
    return nullptr;
  }
  std::shared_ptr<rt::Block> block;
  try {
    block = std::make_shared<rt::Block>(static_cast<std::size_t>(size), readonly);
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  }
  return buffer_new(state_of_type(type), std::move(block));
}

PyObject* buffer_new(ModuleState& state, std::shared_ptr<rt::Block> block) {
  auto* self = PyObject_GC_New(BufferObject, state.buffer_type);
  if (!self) return nullptr;
  new (&self->block) std::shared_ptr<rt::Block>(std::move(block));
  self->exports = 0;
  self->weakreflist = nullptr;
  PyObject_GC_Track(self);
  return reinterpret_cast<PyObject*>(self);
}

std::shared_ptr<rt::Block> buffer_block(ModuleState& state, PyObject* obj) {
  if (!PyObject_TypeCheck(obj, state.buffer_type)) return nullptr;
  return reinterpret_cast<BufferObject*>(obj)->block;
}

static int buffer_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  return 0;
}

static void buffer_dealloc(PyObject* obj) {
  auto* self = reinterpret_cast<BufferObject*>(obj);
  PyTypeObject* type = Py_TYPE(obj);
  PyObject_GC_UnTrack(obj);
  if (self->weakreflist) PyObject_ClearWeakRefs(obj);
  self->block.~shared_ptr();
  type->tp_free(obj);
  Py_DECREF(type);
}

static int buffer_getbuffer(PyObject* obj, Py_buffer* view, int flags) {
  auto* self = reinterpret_cast<BufferObject*>(obj);
  if (!self->block) {
    PyErr_SetString(PyExc_BufferError, "Buffer has been released");
    return -1;
  }
  if (PyBuffer_FillInfo(view, obj, self->block->data(), static_cast<Py_ssize_t>(self->block->size()),
                        self->block->readonly(), flags) < 0)
    return -1;
  ++self->exports;
  return 0;
}

static void buffer_releasebuffer(PyObject* obj, Py_buffer*) { --reinterpret_cast<BufferObject*>(obj)->exports; }

static Py_ssize_t buffer_len(PyObject* obj) {
  auto* self = reinterpret_cast<BufferObject*>(obj);
  return self->block ? static_cast<Py_ssize_t>(self->block->size()) : 0;
}

static PyObject* buffer_get_readonly(PyObject* obj, void*) {
  auto* self = reinterpret_cast<BufferObject*>(obj);
  return PyBool_FromLong(self->block && self->block->readonly());
}

static PyObject* buffer_release(PyObject* obj, PyObject*) {
  auto* self = reinterpret_cast<BufferObject*>(obj);
  if (self->exports > 0) {
    PyErr_Format(PyExc_BufferError,
                 "cannot release a Buffer while %zd export(s) (memoryview, numpy array, ...) are alive; "
                 "release those first",
                 self->exports);
    return nullptr;
  }
  self->block.reset();
  Py_RETURN_NONE;
}

static PyObject* buffer_repr(PyObject* obj) {
  auto* self = reinterpret_cast<BufferObject*>(obj);
  if (!self->block) return PyUnicode_FromString("<interpool Buffer (released)>");
  return PyUnicode_FromFormat("<interpool Buffer of %zu bytes%s>", self->block->size(),
                              self->block->readonly() ? ", read-only" : "");
}

static PyMethodDef buffer_methods[] = {
    {"release", buffer_release, METH_NOARGS,
     "Drop this object's reference to the engine memory.  Raises BufferError while exports are alive."},
    {nullptr, nullptr, 0, nullptr},
};

static PyGetSetDef buffer_getset[] = {
    {"readonly", buffer_get_readonly, nullptr, "Whether the memory is read-only.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

static PyMemberDef buffer_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(BufferObject, weakreflist), Py_READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

static PyType_Slot buffer_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(buffer_tp_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(buffer_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(buffer_traverse)},
    {Py_tp_repr, reinterpret_cast<void*>(buffer_repr)},
    {Py_tp_methods, buffer_methods},
    {Py_tp_getset, buffer_getset},
    {Py_tp_members, buffer_members},
    {Py_sq_length, reinterpret_cast<void*>(buffer_len)},
    {Py_bf_getbuffer, reinterpret_cast<void*>(buffer_getbuffer)},
    {Py_bf_releasebuffer, reinterpret_cast<void*>(buffer_releasebuffer)},
    {Py_tp_doc, const_cast<char*>("Buffer(size, readonly=False)\n--\n\n"
                                  "Engine-owned memory with the buffer protocol, valid in every interpreter.")},
    {0, nullptr},
};

PyType_Spec buffer_spec = {
    "interpool._core.Buffer",
    sizeof(BufferObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    buffer_slots,
};

}  // namespace interpool::py
