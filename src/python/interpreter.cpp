// src/python/interpreter.cpp: Py_NewInterpreterFromConfig and Py_EndInterpreter.
#include "python/interpreter.hpp"

namespace interpool::py {

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
  // configuration and never touches the main GIL: workers start in parallel.
  PyThreadState* tstate = nullptr;
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
