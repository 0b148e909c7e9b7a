// src/python/frames.hpp: sys._current_frames() and sys._current_exceptions()
// that walk only the calling interpreter's threads.
#pragma once

#include "python/ref.hpp"

namespace interpool::py {

/// _core._current_frames(): {thread id: frame} for this interpreter's threads.
PyObject* current_frames(PyObject* module, PyObject*);
/// _core._current_exceptions(): {thread id: exception or None}, likewise.
PyObject* current_exceptions(PyObject* module, PyObject*);

/// Where CPython's versions walk every interpreter (3.12, 3.13), replaces them
/// in this interpreter's sys module with the two above, unless someone
/// already replaced them.  False with an exception set on failure.
bool install_frame_walkers(PyObject* module);

}  // namespace interpool::py
