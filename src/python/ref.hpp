// src/python/ref.hpp: RAII ownership of Python references and thread states.
//
// Ownership of a PyObject* in the binding, one of:
//   - a `Ref`: owned, decref'd on destruction (locals, and members of objects
//     that are only ever destroyed with their interpreter attached);
//   - a plain PyObject* parameter or return value: borrowed for the call,
//     unless the comment says "new reference";
//   - an owned raw PyObject* field, where a destructor must not decref, with
//     its owner and who clears it said where it is declared: ModuleState and
//     ByValueState and SharedCache (module_clear), the objects of heap types
//     (tp_clear or tp_dealloc), EngineCore's _owner_module and _rebuild
//     (dropped by its delivery thread, the last to use them, under the owner
//     interpreter's GIL), and PyTask's future, bridge, local_call and
//     rebuild (cleared under the owner interpreter's GIL by whoever delivers
//     or cancels, since a PyTask may be destroyed on any thread).
// Thread-state guards make each switch between interpreters explicit; the
// binding never uses PyGILState_*, which cannot tell interpreters apart.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cassert>
#include <utility>

#if PY_VERSION_HEX < 0x030D0000
// 3.12 spells the non-fatal "current thread state, or NULL" getter privately.
#define PyThreadState_GetUnchecked _PyThreadState_UncheckedGet
#define Py_HashPointer _Py_HashPointer
#endif

namespace interpool::py {

/// An owned strong reference.  Must be destroyed with its interpreter attached.
class Ref {
 public:
  Ref() = default;
  /// Takes over a new reference (the result of most C API calls).
  static Ref steal(PyObject* o) { return Ref(o); }
  /// Adds a reference to a borrowed one.
  static Ref borrow(PyObject* o) {
    Py_XINCREF(o);
    return Ref(o);
  }
  Ref(const Ref& other) : _p(other._p) { Py_XINCREF(_p); }
  Ref(Ref&& other) noexcept : _p(std::exchange(other._p, nullptr)) {}
  Ref& operator=(Ref other) noexcept {
    std::swap(_p, other._p);
    return *this;
  }
  ~Ref() { Py_XDECREF(_p); }

  PyObject* get() const { return _p; }
  /// Gives up ownership: the caller now owns the reference.
  PyObject* release() { return std::exchange(_p, nullptr); }
  void reset() { Py_CLEAR(_p); }
  explicit operator bool() const { return _p != nullptr; }

 private:
  explicit Ref(PyObject* o) : _p(o) {}
  PyObject* _p = nullptr;
};

/// True while CPython finalizes the process, on any thread but the one that
/// finalizes it (once interpool's exit hook has named that thread): such a
/// thread asking for a GIL would be ended by CPython with pthread_exit(),
/// whose unwinding would need to pass our destructors.  (interrupt.cpp)
bool exit_must_park_this_thread();
[[noreturn]] void park_thread_forever();

/// What the two thread-state guards below share: the one thread state they
/// switch (detached by ReleasedGil, attached by AttachedThread), and no
/// copies, since a copy would switch it twice.
class ThreadStateGuard {
 protected:
  explicit ThreadStateGuard(PyThreadState* tstate) : _tstate(tstate) {}
  ~ThreadStateGuard() = default;
  ThreadStateGuard(const ThreadStateGuard&) = delete;
  ThreadStateGuard& operator=(const ThreadStateGuard&) = delete;

  PyThreadState* const _tstate;
};

/// Detaches the current thread state (releasing its GIL) for the guard's
/// lifetime: Py_BEGIN_ALLOW_THREADS as an object.
class ReleasedGil : ThreadStateGuard {
 public:
  ReleasedGil() : ThreadStateGuard(PyEval_SaveThread()) {}
  // noexcept(false): should a thread still be ended that way (it checked
  // just before the runtime began to finalize), the forced unwinding goes
  // on to call_user_code, which parks it, rather than std::terminate().
  ~ReleasedGil() noexcept(false) {
    // E.g. an abandoned worker, or a daemon thread, blocked in Queue.get()
    // when the process exits: it must never come back.
    if (exit_must_park_this_thread()) park_thread_forever();
    PyEval_RestoreThread(_tstate);
  }
};

/// Attaches `tstate` (taking its interpreter's GIL) for the guard's lifetime.
/// The calling thread must have no thread state attached.
class AttachedThread : ThreadStateGuard {
 public:
  explicit AttachedThread(PyThreadState* tstate) : ThreadStateGuard(tstate) {
    assert(PyThreadState_GetUnchecked() == nullptr);
    PyEval_RestoreThread(_tstate);
  }
  ~AttachedThread() { PyEval_SaveThread(); }
};

/// Saves the pending exception and restores it on destruction, so cleanup
/// code can call the C API without losing the error being propagated.
class PendingError {
 public:
  PendingError() : _exc(PyErr_GetRaisedException()) {}
  ~PendingError() {
    if (_exc) PyErr_SetRaisedException(_exc);
  }
  PendingError(const PendingError&) = delete;
  PendingError& operator=(const PendingError&) = delete;

 private:
  PyObject* _exc;
};

}  // namespace interpool::py
