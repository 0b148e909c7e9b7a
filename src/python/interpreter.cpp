// src/python/interpreter.cpp: Py_NewInterpreterFromConfig and Py_EndInterpreter.
#include "python/interpreter.hpp"

#include <mutex>

namespace interpool::py {
namespace {

// CPython 3.12 hands out type version tags (the keys of each interpreter's
// method cache) from one process-wide counter without a lock.  Interpreters
// that start or end at the same moment, each under its own GIL, can give two
// types the same tag; method lookups then mix them up (seen: "descriptor
// 'close' for '_io.BufferedReader' objects doesn't apply to a '_io.FileIO'
// object" while a worker started, when most tags are handed out).  On 3.12
// workers therefore start one at a time (ending is left concurrent: a worker
// that ends may wait for a nested pool's workers to end).
#if PY_VERSION_HEX < 0x030D0000
std::mutex g_lifecycle_mutex;
using LifecycleLock = std::lock_guard<std::mutex>;
#else
struct LifecycleLock {
  explicit LifecycleLock(int) {}
};
int g_lifecycle_mutex = 0;
#endif

}  // namespace

#if PY_VERSION_HEX < 0x030D0000
void lock_interpreter_creation() { g_lifecycle_mutex.lock(); }
void unlock_interpreter_creation() { g_lifecycle_mutex.unlock(); }
#else
void lock_interpreter_creation() {}
void unlock_interpreter_creation() {}
#endif

PyThreadState* new_isolated_interpreter(std::string& error) {
  PyInterpreterConfig config = {};
  config.use_main_obmalloc = 0;
  config.allow_fork = 0;
  config.allow_exec = 0;
  config.allow_threads = 1;
  config.allow_daemon_threads = 0;
  config.check_multi_interp_extensions = 1;
  config.gil = PyInterpreterConfig_OWN_GIL;

  // With no thread state attached, CPython copies the main interpreter's
  // configuration and never touches the main GIL: workers start in parallel
  // (on 3.13+; see g_lifecycle_mutex).
  PyThreadState* tstate = nullptr;
  LifecycleLock lock(g_lifecycle_mutex);
  PyStatus status = Py_NewInterpreterFromConfig(&tstate, &config);
  if (PyStatus_Exception(status) || tstate == nullptr) {
    error = status.err_msg ? status.err_msg : "Py_NewInterpreterFromConfig failed";
    return nullptr;
  }
  return tstate;
}

void end_interpreter(PyThreadState* tstate) {
  assert(PyThreadState_GetUnchecked() == tstate);
  Py_EndInterpreter(tstate);
}

}  // namespace interpool::py
