// src/python/fork_guard.cpp: fork() while worker interpreters exist.
//
// CPython's child-side fork handling (PyOS_AfterFork_Child) clears every
// interpreter but the main one without attaching a thread state to it, and
// crashes or deadlocks doing so (gh-101437); it runs before any
// os.register_at_fork hook.  A pthread_atfork child handler runs earlier,
// inside fork() itself, with only the forking thread alive: it hides the
// worker interpreters from CPython (runtime_internals.c) and moves every
// engine aside as an orphan that the child never touches
// (engine_registry.cpp), so the child can run Python, start new pools, and gets a clear error from the
// parent's pools.  Only plain memory writes and malloc happen in the child
// handler; glibc makes malloc safe there.
#include "python/fork_guard.hpp"

#include <pthread.h>

#include <cerrno>
#include <mutex>

#include "python/engine.hpp"
#include "python/interpreter.hpp"
#include "python/runtime_internals.h"

namespace interpool::py {
namespace {

// Lock order: interpreter creation (3.12: a worker creating its interpreter
// takes the interpreter list lock inside), the interpreter list (3.12), then
// the engine registry.  No holder of any waits for anything the forking
// thread may hold.
void prepare() {
  lock_interpreter_creation();
  interpool_runtime_fork_prepare();
  EngineCore::prepare_fork();
}

void parent() {
  EngineCore::after_fork(false);
  interpool_runtime_fork_parent();
  unlock_interpreter_creation();
}

void child() {
  interpool_runtime_fork_child();
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);
  EngineCore::after_fork(true);
  unlock_interpreter_creation();
}

}  // namespace

bool install_fork_guard() {
  static std::once_flag once;
  static int error = 0;
  // If the runtime does not publish where its interpreter list lives (it
  // always should), the child handler leaves the list alone and the child
  // meets CPython's own behaviour; pools in it still become orphans.
  std::call_once(once, [] {
    interpool_runtime_init();
    error = pthread_atfork(prepare, parent, child);
  });
  if (error) {
    errno = error;
    PyErr_SetFromErrno(PyExc_OSError);
    return false;
  }
  return true;
}

}  // namespace interpool::py
