// src/python/runtime_internals.c: see runtime_internals.h.
//
// C, not C++: CPython 3.12's internal headers do not compile as C++.  This is
// the only file that sees _PyRuntime; it touches nothing but the interpreter
// list and its lock, whose layout (struct pyinterpreters) is the same on 3.12
// to 3.15 but for the lock's type.
#define Py_BUILD_CORE_MODULE 1
#include <Python.h>

#include "internal/pycore_interp.h"
#include "internal/pycore_runtime.h"

#include "python/runtime_internals.h"

#if PY_VERSION_HEX < 0x030D0000
#  define INTERPOOL_LOCK_HEAD_AT_FORK 1
#endif

void interpool_runtime_head_lock(void) {
#if PY_VERSION_HEX < 0x030D0000
  PyThread_acquire_lock(_PyRuntime.interpreters.mutex, WAIT_LOCK);
#else
  PyMutex_Lock(&_PyRuntime.interpreters.mutex);
#endif
}

void interpool_runtime_head_unlock(void) {
#if PY_VERSION_HEX < 0x030D0000
  PyThread_release_lock(_PyRuntime.interpreters.mutex);
#else
  PyMutex_Unlock(&_PyRuntime.interpreters.mutex);
#endif
}

void interpool_runtime_fork_prepare(void) {
#ifdef INTERPOOL_LOCK_HEAD_AT_FORK
  // So that the child never sees the list half-updated by a worker thread
  // that was creating or ending an interpreter or thread state.  Nothing that
  // holds this lock waits for the caller's GIL, so this cannot deadlock.
  interpool_runtime_head_lock();
#endif
}

void interpool_runtime_fork_parent(void) {
#ifdef INTERPOOL_LOCK_HEAD_AT_FORK
  interpool_runtime_head_unlock();
#endif
}

void interpool_runtime_fork_child(void) {
  _PyRuntimeState* runtime = &_PyRuntime;
#ifdef INTERPOOL_LOCK_HEAD_AT_FORK
  interpool_runtime_head_unlock();
#endif
  // PyOS_AfterFork_Child() runs _PyInterpreterState_DeleteExceptMain(), which
  // clears every other interpreter with no thread state attached: on 3.12 it
  // deadlocks on the list lock it already holds, on 3.13 it aborts
  // ("PyThreadState_Get: ... the GIL is released"), on 3.14 and 3.15 it
  // crashes in _Py_Dealloc.  The worker threads that own those interpreters
  // do not exist in the child, so the interpreters cannot be used or ended
  // properly anyway: forget them.  Their memory is the parent's, copied on
  // write, and costs the child nothing while untouched.
  PyInterpreterState* main = runtime->interpreters.main;
  if (main == NULL) return;
  runtime->interpreters.head = main;
  main->next = NULL;
}
