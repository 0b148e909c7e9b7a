// src/python/runtime_internals.c: see runtime_internals.h.
//
// C, not C++: CPython 3.12's internal headers do not compile as C++.  This is
// the only file that sees _PyRuntime.
//
// CPython's internal structs contain fields that only its own build defines
// (NDEBUG, _Py_TIER2 in 3.15's thread states, ...), so a field deep inside
// them may sit elsewhere than our compile of the headers says: Debian's
// 3.15.2 is 8 bytes larger than its headers.  The two fields unlinking needs
// are therefore taken where they are reliable: on 3.12 they lead their
// structs, before any such macro; from 3.13 the runtime publishes their
// offsets itself, in _PyRuntime.debug_offsets, for out-of-process debuggers.
// Anything deeper (the static types' counts) is touched only when our
// layout's sizes and offsets equal the published ones.
#define Py_BUILD_CORE_MODULE 1
#include <pyconfig.h>
// Debug builds of CPython are compiled without NDEBUG, release builds with
// it, and some internal structs differ between the two: match the build.
#ifdef Py_DEBUG
#undef NDEBUG
#elif !defined(NDEBUG)
#define NDEBUG 1
#endif
#include <Python.h>

#include <stddef.h>
#include <string.h>

#include "internal/pycore_interp.h"
#include "internal/pycore_runtime.h"

#include "python/runtime_internals.h"

#if PY_VERSION_HEX < 0x030D0000
#define INTERPOOL_LOCK_HEAD_AT_FORK 1
#endif

// Byte offsets of _PyRuntime.interpreters.head and PyInterpreterState.next,
// set once by interpool_runtime_init() while the GIL is held; only read after.
static size_t g_head_offset;
static size_t g_next_offset;
static int g_offsets_known;
// Our compile of the internal headers matches the running interpreter.
static int g_layout_matches;

int interpool_runtime_init(void) {
  if (g_offsets_known) return 1;
#if PY_VERSION_HEX < 0x030D0000
  g_head_offset = offsetof(_PyRuntimeState, interpreters.head);
  g_next_offset = offsetof(PyInterpreterState, next);
  g_layout_matches = 1;
#else
  const _Py_DebugOffsets* published = &_PyRuntime.debug_offsets;
  if (memcmp(published->cookie, _Py_Debug_Cookie, sizeof published->cookie) != 0) return 0;
  g_head_offset = (size_t)published->runtime_state.interpreters_head;
  g_next_offset = (size_t)published->interpreter_state.next;
  g_layout_matches = published->runtime_state.size == sizeof(_PyRuntimeState) &&
                     published->interpreter_state.size == sizeof(PyInterpreterState) &&
                     g_head_offset == offsetof(_PyRuntimeState, interpreters.head) &&
                     g_next_offset == offsetof(PyInterpreterState, next);
#endif
  g_offsets_known = 1;
  return 1;
}

static PyInterpreterState** head_slot(void) { return (PyInterpreterState**)((char*)&_PyRuntime + g_head_offset); }

static PyInterpreterState** next_slot(PyInterpreterState* interp) {
  return (PyInterpreterState**)((char*)interp + g_next_offset);
}

#if PY_VERSION_HEX >= 0x030D0000
static PyMutex* head_mutex(void) {
  // The lock precedes `head` in struct pyinterpreters, whose own layout
  // depends on no build macro.
  if (!g_offsets_known) return &_PyRuntime.interpreters.mutex;
  size_t gap = offsetof(struct pyinterpreters, head) - offsetof(struct pyinterpreters, mutex);
  return (PyMutex*)((char*)&_PyRuntime + g_head_offset - gap);
}
#endif

void interpool_runtime_head_lock(void) {
#if PY_VERSION_HEX < 0x030D0000
  PyThread_acquire_lock(_PyRuntime.interpreters.mutex, WAIT_LOCK);
#else
  PyMutex_Lock(head_mutex());
#endif
}

void interpool_runtime_head_unlock(void) {
#if PY_VERSION_HEX < 0x030D0000
  PyThread_release_lock(_PyRuntime.interpreters.mutex);
#else
  PyMutex_Unlock(head_mutex());
#endif
}

#if PY_VERSION_HEX >= 0x030D0000
// Every interpreter counts itself in each static type it readied
// (managed_static_type_state_init); finalizing the main interpreter asserts
// that it is the last one (debug builds of 3.13+).  Uncount an interpreter
// that will never be finalized, as managed_static_type_state_clear() would.
static void uncount_static_types(PyInterpreterState* interp) {
  for (size_t i = 0; i < _Py_MAX_MANAGED_STATIC_BUILTIN_TYPES; i++)
    if (interp->types.builtins.initialized[i].type != NULL) _PyRuntime.types.managed_static.types[i].interp_count -= 1;
  for (size_t i = 0; i < _Py_MAX_MANAGED_STATIC_EXT_TYPES; i++)
    if (interp->types.for_extensions.initialized[i].type != NULL)
      _PyRuntime.types.managed_static.types[_Py_MAX_MANAGED_STATIC_BUILTIN_TYPES + i].interp_count -= 1;
}
#endif

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
  PyInterpreterState* main = PyInterpreterState_Main();
  if (!g_offsets_known || main == NULL) return;
#if PY_VERSION_HEX >= 0x030D0000
  if (g_layout_matches)
    for (PyInterpreterState* interp = *head_slot(); interp != NULL; interp = *next_slot(interp))
      if (interp != main) uncount_static_types(interp);
#endif
  *head_slot() = main;  // the oldest interpreter: last in the list, newest first
  *next_slot(main) = NULL;
}

void interpool_runtime_forget_interpreter(PyInterpreterState* interp) {
  if (!interpool_runtime_init() || interp == NULL || interp == PyInterpreterState_Main()) return;
  interpool_runtime_head_lock();
  for (PyInterpreterState** slot = head_slot(); *slot != NULL; slot = next_slot(*slot)) {
    if (*slot != interp) continue;
    *slot = *next_slot(interp);
#if PY_VERSION_HEX >= 0x030D0000
    if (g_layout_matches) uncount_static_types(interp);
#endif
    break;
  }
  interpool_runtime_head_unlock();
}
