// src/python/interpreter.hpp: creating and ending worker interpreters.
#pragma once

#include <string>

#include "python/ref.hpp"

namespace interpool::py {

/// Creates an isolated interpreter (own GIL, own obmalloc, no fork/exec, no
/// daemon threads, strict multi-interpreter extension checks) on the calling
/// thread, which must have no thread state attached.  Returns the new
/// interpreter's thread state, attached; or null with `error` filled in.
PyThreadState* new_isolated_interpreter(std::string& error);

/// Held around fork() (pthread_atfork), so that the child never inherits
/// the creation lock of 3.12 (see interpreter.cpp) taken by a worker thread
/// that does not exist there.  No-ops on 3.13+.
void lock_interpreter_creation();
void unlock_interpreter_creation();

/// Ends the interpreter whose thread state `tstate` is attached to the
/// calling thread.  Afterwards the thread has no thread state.
void end_interpreter(PyThreadState* tstate);

}  // namespace interpool::py
