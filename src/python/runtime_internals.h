// src/python/runtime_internals.h: the few CPython runtime internals interpool
// must reach, behind plain C functions (implemented in runtime_internals.c,
// the only file compiled against CPython's internal headers).
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

/// Finds the runtime fields the functions below use (once; GIL held).
/// 0 if this interpreter does not publish them as expected: then the fork
/// handlers leave the interpreter list alone.
int interpool_runtime_init(void);

/// pthread_atfork "prepare": on 3.12, takes the runtime's interpreter-list
/// lock (3.13+ CPython takes it itself in PyOS_BeforeFork).
void interpool_runtime_fork_prepare(void);
/// pthread_atfork "parent": releases what prepare took.
void interpool_runtime_fork_parent(void);
/// pthread_atfork "child": releases what prepare took and unlinks every
/// interpreter but the main one from the runtime's list, so that CPython's
/// own after-fork cleanup never touches them.  Single-threaded: the child.
void interpool_runtime_fork_child(void);

/// Unlinks `interp` from the runtime's list and (3.13+) from the static
/// types' interpreter counts, so that process exit neither finalizes it nor
/// finds it remaining.  For an interpreter whose thread was abandoned and
/// will never end it; its memory is left to the process's end.
void interpool_runtime_forget_interpreter(PyInterpreterState* interp);

/// Takes and releases the runtime's interpreter-list lock (HEAD_LOCK), under
/// which CPython links and unlinks thread states.  Hold it only briefly, and
/// never while running Python code.
void interpool_runtime_head_lock(void);
void interpool_runtime_head_unlock(void);

#ifdef __cplusplus
}
#endif
