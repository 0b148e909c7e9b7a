// src/python/barrier_object.cpp: interpool.Barrier, around rt::Barrier.
//
// The API is threading.Barrier's.  The action is kept encoded and runs in the
// interpreter of whichever thread trips the barrier.
#include "python/sync_objects.hpp"

#include <chrono>
#include <utility>

#include "python/codec.hpp"
#include "python/int_option.hpp"
#include "python/interruptible_wait.hpp"
#include "python/sync_args.hpp"
#include "python/sync_handle.hpp"
#include "python/sync_errors.hpp"
#include "runtime/sync.hpp"

namespace interpool::py {

namespace {

// ----------------------------------------------------------------- Barrier

rt::Barrier& barrier(PyObject* o) { return core<rt::Barrier>(o); }

PyObject* barrier_tp_new(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  static const char* kwlist[] = {"parties", "action", "timeout", nullptr};
  PyObject* parties_obj;
  PyObject* action = Py_None;
  PyObject* timeout_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OO:Barrier", const_cast<char**>(kwlist), &parties_obj, &action,
                                   &timeout_obj))
    return nullptr;
  long long parties;
  if (!int_option(parties_obj, "Barrier parties", 1, UINT32_MAX, parties, "parties must be > 0"))  // threading's words
    return nullptr;
  Timeout timeout;
  if (!parse_optional_timeout(timeout_obj, timeout)) return nullptr;
  rt::Payload encoded;
  if (action != Py_None) {
    if (!PyCallable_Check(action)) {
      PyErr_Format(PyExc_TypeError, "Barrier action must be callable, not %.100s", Py_TYPE(action)->tp_name);
      return nullptr;
    }
    // The barrier is shared: whichever interpreter's thread trips it runs the
    // action, so it is kept encoded and decoded there.
    Encoder enc(state_of_type(type), encoded);
    if (!enc.value(action)) return nullptr;
  }
  return new_handle<rt::Barrier>(type, HandleKind::Barrier, static_cast<uint32_t>(parties), std::move(encoded),
                                 timeout);
}

/// Runs the barrier's action in this interpreter.  False with its exception.
bool run_action(PyObject* self, rt::Barrier& b) {
  if (b.action().empty()) return true;
  Decoder dec(state_of_type(Py_TYPE(self)), b.action());
  Ref action = Ref::steal(dec.value());
  if (!action) return false;
  Ref result = Ref::steal(PyObject_CallNoArgs(action.get()));
  return static_cast<bool>(result);
}

/// Calls `step(slice)` (an arrive or an await) until the barrier's answer
/// is no longer Pending: first with the GIL held and no wait, then with the
/// GIL released until `deadline`.  `result` is the last answer; returns
/// wait_released's (1: settled, 0: the deadline passed, -1: an exception).
template <class Step>
int until_settled(const rt::Deadline& deadline, rt::Barrier::Result& result, Step&& step) {
  result = step(std::chrono::nanoseconds(0));
  if (result != rt::Barrier::Result::Pending) return 1;
  return wait_released(deadline, [&](std::chrono::nanoseconds slice) {
    result = step(slice);
    return result == rt::Barrier::Result::Pending ? WaitStatus::TimedOut : WaitStatus::Woken;
  });
}

PyObject* barrier_wait(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* a[1];
  if (!parse_args("wait", args, nargs, kwnames, {"timeout"}, a)) return nullptr;
  rt::Barrier& b = barrier(self);
  Timeout timeout = b.default_timeout();
  if (a[0] && a[0] != Py_None && !parse_optional_timeout(a[0], timeout)) return nullptr;
  const rt::Deadline deadline = rt::Deadline::after(timeout);

  // Step 1: arrive, once the previous cycle has drained (no timeout, as
  // threading.Barrier; a slice only for signals).
  uint32_t index = 0;
  rt::Barrier::Result result;
  if (until_settled(rt::Deadline(), result, [&](std::chrono::nanoseconds slice) { return b.arrive(index, slice); }) < 0)
    return nullptr;
  if (result == rt::Barrier::Result::Broken) return raise_broken_barrier(state_of_type(Py_TYPE(self)));

  // Step 2: the last party runs the action and releases the others; the
  // others wait for that.  Every path then leaves (step 3).
  if (index + 1 == b.parties()) {
    const bool ok = run_action(self, b);
    result = b.trip(ok);
    if (!ok) {
      b.leave();
      return nullptr;  // the action's exception; the others get BrokenBarrierError
    }
  } else {
    const int r = until_settled(deadline, result, [&](std::chrono::nanoseconds slice) { return b.await(slice); });
    if (r < 0) {
      b.leave();
      return nullptr;
    }
    if (r == 0) {  // timed out: as threading.Barrier, that breaks it for all
      b.abort();
      result = rt::Barrier::Result::Broken;
    }
  }
  b.leave();
  if (result != rt::Barrier::Result::Ok) return raise_broken_barrier(state_of_type(Py_TYPE(self)));
  return PyLong_FromUnsignedLong(index);
}

PyObject* barrier_get_parties(PyObject* self, void*) { return PyLong_FromUnsignedLong(barrier(self).parties()); }
PyObject* barrier_get_n_waiting(PyObject* self, void*) { return PyLong_FromUnsignedLong(barrier(self).n_waiting()); }
PyObject* barrier_get_broken(PyObject* self, void*) { return PyBool_FromLong(barrier(self).broken()); }

PyObject* barrier_repr(PyObject* self) {
  rt::Barrier& b = barrier(self);
  if (b.broken()) return PyUnicode_FromFormat("<interpool.Barrier broken, parties=%u>", b.parties());
  return PyUnicode_FromFormat("<interpool.Barrier waiters=%u/%u>", b.n_waiting(), b.parties());
}

PyMethodDef barrier_methods[] = {
    {"wait", FASTCALL_KW(barrier_wait), METH_FASTCALL | METH_KEYWORDS,
     "wait($self, timeout=None)\n--\n\n"
     "Wait until `parties` threads (of any interpreters) wait, then pass together.  Returns this thread's "
     "arrival index, 0 to parties-1.  The last to arrive runs the action first, in its interpreter.  Raises "
     "threading.BrokenBarrierError if the barrier is or gets broken (abort(), reset(), a timeout, or an action "
     "that raised).  timeout None: the barrier's default."},
    {"reset", call_void<rt::Barrier, &rt::Barrier::reset>, METH_NOARGS,
     "reset($self, /)\n--\n\nReturn the barrier to its empty state; current waiters get BrokenBarrierError."},
    {"abort", call_void<rt::Barrier, &rt::Barrier::abort>, METH_NOARGS,
     "abort($self, /)\n--\n\nBreak the barrier: current and future waiters get BrokenBarrierError until reset()."},
    {"__reduce__", handle_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef barrier_getset[] = {
    {"parties", barrier_get_parties, nullptr, "How many threads must wait() for the barrier to pass.", nullptr},
    {"n_waiting", barrier_get_n_waiting, nullptr, "How many threads wait now.", nullptr},
    {"broken", barrier_get_broken, nullptr, "Whether the barrier is broken.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot barrier_slots[] = {
    HANDLE_COMMON_SLOTS,
    {Py_tp_new, reinterpret_cast<void*>(barrier_tp_new)},
    {Py_tp_repr, reinterpret_cast<void*>(barrier_repr)},
    {Py_tp_methods, barrier_methods},
    {Py_tp_getset, barrier_getset},
    {Py_tp_doc,
     const_cast<char*>("Barrier(parties, action=None, timeout=None)\n--\n\n"
                       "A barrier shared by interpreters, with threading.Barrier's API.  action, if given, must be "
                       "sendable to other interpreters (a module-level function, say): it is stored encoded and "
                       "run by whichever thread trips the barrier, in that thread's interpreter.")},
    {0, nullptr},
};

}  // namespace

PyType_Spec barrier_spec = handle_type_spec("interpool.Barrier", barrier_slots);

}  // namespace interpool::py
