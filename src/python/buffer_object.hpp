// src/python/buffer_object.hpp: _core.Buffer, a Python view of an engine Block.
//
// A Buffer exports the buffer protocol over memory the engine owns.  Each
// Buffer holds a C++ reference to its Block, so the memory stays valid while
// any interpreter holds any Buffer over it, whichever interpreter made it.
#pragma once

#include <memory>

#include "python/module_state.hpp"
#include "runtime/block.hpp"

namespace interpool::py {

struct BufferObject {
  PyObject_HEAD
  std::shared_ptr<rt::Block> block;
  Py_ssize_t exports;  ///< live memoryviews (and other exports) over this Buffer
  PyObject* weakreflist;
};

extern PyType_Spec buffer_spec;

/// A new _core.Buffer over `block`, in the current interpreter.
PyObject* buffer_new(ModuleState& state, std::shared_ptr<rt::Block> block);

/// The Block behind `obj` if it is a _core.Buffer of this interpreter, else null.
std::shared_ptr<rt::Block> buffer_block(ModuleState& state, PyObject* obj);

}  // namespace interpool::py
