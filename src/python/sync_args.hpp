// src/python/sync_args.hpp: the arguments of the synchronisation objects.
//
// Vectorcall arguments by name, and timeouts as queue.Queue and the
// threading module read them, turned into rt::Timeout.
#pragma once

#include <initializer_list>

#include "python/ref.hpp"
#include "runtime/deadline.hpp"

namespace interpool::py {

using rt::Timeout;

/// Seconds (already validated: >= 0, not NaN) as a Timeout.
Timeout from_seconds(double seconds);

/// `obj` as seconds.  False with TypeError (not a number) or ValueError (NaN).
bool to_seconds(PyObject* obj, double& out);

/// Parses vectorcall arguments by name into `out` (borrowed; null when not
/// given).  Positional arguments come first, in the order of `names`.
bool parse_args(const char* fname, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                std::initializer_list<const char*> names, PyObject** out);

/// `obj` as a bool; a null `obj` gives `dflt`.  -1 on error.
int truth(PyObject* obj, bool dflt);

/// threading.Lock.acquire's (blocking=True, timeout=-1).  On success, `timeout`
/// is zero for a non-blocking call, empty for "forever".
bool parse_lock_acquire(const char* fname, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                        Timeout& timeout);

/// threading.Semaphore.acquire's (blocking=True, timeout=None).  On success,
/// `timeout` is zero for a non-blocking call, empty for "forever".
bool parse_semaphore_acquire(const char* fname, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                             Timeout& timeout);

/// An optional `timeout=None` argument as threading.Event.wait and
/// Barrier.wait read it: None is forever, a negative number is zero.
bool parse_optional_timeout(PyObject* obj, Timeout& timeout);

/// Queue.put/get's (block=True, timeout=None).  `timeout` zero: don't block.
bool parse_queue_wait(PyObject* block_obj, PyObject* timeout_obj, Timeout& timeout);

}  // namespace interpool::py
