// src/python/sync_args.cpp: the arguments of the synchronisation objects.
#include "python/sync_args.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace interpool::py {

namespace {

/// Timeouts this long (about 31 years) or longer mean "forever".
constexpr double kForeverSeconds = 1e9;
/// threading.TIMEOUT_MAX on Linux: locks refuse longer timeouts.
constexpr double kLockTimeoutMax = 9223372036.0;

/// The (blocking=True, timeout) arguments of an acquire: `blocking` as a
/// bool, `timeout_obj` borrowed, null when not given.
bool parse_acquire_args(const char* fname, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, bool& blocking,
                        PyObject*& timeout_obj) {
  PyObject* a[2];
  if (!parse_args(fname, args, nargs, kwnames, {"blocking", "timeout"}, a)) return false;
  const int b = truth(a[0], true);
  if (b < 0) return false;
  blocking = b != 0;
  timeout_obj = a[1];
  return true;
}

}  // namespace

Timeout from_seconds(double seconds) {
  if (seconds >= kForeverSeconds) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<int64_t>(std::max(0.0, seconds) * 1e9));
}

bool to_seconds(PyObject* obj, double& out) {
  out = PyFloat_AsDouble(obj);
  if (out == -1.0 && PyErr_Occurred()) return false;
  if (std::isnan(out)) {
    PyErr_SetString(PyExc_ValueError, "timeout must not be NaN");
    return false;
  }
  return true;
}

bool parse_args(const char* fname, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                std::initializer_list<const char*> names, PyObject** out) {
  const Py_ssize_t n = static_cast<Py_ssize_t>(names.size());
  std::fill(out, out + n, nullptr);
  if (nargs > n) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %zd argument%s (%zd given)", fname, n, n == 1 ? "" : "s", nargs);
    return false;
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) out[i] = args[i];
  if (!kwnames) return true;
  const Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, k);
    Py_ssize_t i = 0;
    for (const char* name : names) {
      if (PyUnicode_CompareWithASCIIString(key, name) == 0) break;
      ++i;
    }
    if (i == n) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname, key);
      return false;
    }
    if (out[i]) {
      PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%U'", fname, key);
      return false;
    }
    out[i] = args[nargs + k];
  }
  return true;
}

int truth(PyObject* obj, bool dflt) { return obj ? PyObject_IsTrue(obj) : dflt; }

bool parse_lock_acquire(const char* fname, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                        Timeout& timeout) {
  bool blocking;
  PyObject* timeout_obj;
  if (!parse_acquire_args(fname, args, nargs, kwnames, blocking, timeout_obj)) return false;
  double seconds = -1;
  if (timeout_obj && timeout_obj != Py_None && !to_seconds(timeout_obj, seconds)) return false;
  if (!blocking && seconds != -1) {
    PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
    return false;
  }
  if (seconds < 0 && seconds != -1) {
    PyErr_SetString(PyExc_ValueError, "timeout value must be a non-negative number");
    return false;
  }
  if (seconds > kLockTimeoutMax) {
    PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
    return false;
  }
  if (!blocking)
    timeout = std::chrono::nanoseconds(0);
  else if (seconds == -1)
    timeout.reset();
  else
    timeout = from_seconds(seconds);
  return true;
}

bool parse_semaphore_acquire(const char* fname, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                             Timeout& timeout) {
  bool blocking;
  PyObject* timeout_obj;
  if (!parse_acquire_args(fname, args, nargs, kwnames, blocking, timeout_obj)) return false;
  if (blocking) return parse_optional_timeout(timeout_obj, timeout);
  if (timeout_obj && timeout_obj != Py_None) {
    PyErr_SetString(PyExc_ValueError, "can't specify timeout for non-blocking acquire");  // threading's words
    return false;
  }
  timeout = std::chrono::nanoseconds(0);
  return true;
}

bool parse_optional_timeout(PyObject* obj, Timeout& timeout) {
  timeout.reset();
  if (!obj || obj == Py_None) return true;
  double seconds;
  if (!to_seconds(obj, seconds)) return false;
  timeout = from_seconds(seconds);
  return true;
}

bool parse_queue_wait(PyObject* block_obj, PyObject* timeout_obj, Timeout& timeout) {
  int block = truth(block_obj, true);
  if (block < 0) return false;
  timeout.reset();
  if (!block) {
    timeout = std::chrono::nanoseconds(0);
    return true;
  }
  if (!timeout_obj || timeout_obj == Py_None) return true;
  double seconds;
  if (!to_seconds(timeout_obj, seconds)) return false;
  if (seconds < 0) {
    PyErr_SetString(PyExc_ValueError, "'timeout' must be a non-negative number");
    return false;
  }
  timeout = from_seconds(seconds);
  return true;
}

}  // namespace interpool::py
