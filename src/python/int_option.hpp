// src/python/int_option.hpp: integer options checked against their C++ type.
//
// Every integer a user passes to a constructor (workers, concurrency, a
// queue's maxsize, a semaphore's value...) ends up in a C++ integer.  It is
// checked against that range before anything is allocated: a bool or a
// non-int is a TypeError, an int outside [min, max] a ValueError that names
// the option, the range and the value (never a silent wrap, never
// OverflowError's "Python int too large to convert to C ssize_t").
#pragma once

#include <Python.h>

#include <cstdint>

namespace interpool::py {

/// Reads `obj` into `out` if it is an int (not a bool) in [min, max].
/// Returns false with TypeError or ValueError set otherwise.  `what` names
/// the option in the message ("Queue maxsize", say); `below_min`, if given,
/// is the message for a value under `min` (", got N" is appended), for
/// types that keep the stdlib's wording.
inline bool int_option(PyObject* obj, const char* what, long long min, long long max, long long& out,
                       const char* below_min = nullptr) {
  if (!PyLong_Check(obj) || PyBool_Check(obj)) {
    PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what, Py_TYPE(obj)->tp_name);
    return false;
  }
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
  if (overflow == 0 && v == -1 && PyErr_Occurred()) return false;
  if (below_min && (overflow < 0 || (overflow == 0 && v < min))) {
    PyErr_Format(PyExc_ValueError, "%s, got %S", below_min, obj);
    return false;
  }
  if (overflow != 0 || v < min || v > max) {
    PyErr_Format(PyExc_ValueError, "%s must be between %lld and %lld, got %S", what, min, max, obj);
    return false;
  }
  out = v;
  return true;
}

}  // namespace interpool::py
