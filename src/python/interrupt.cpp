// src/python/interrupt.cpp: pending calls that raise TaskInterrupted in a worker.
#include "python/interrupt.hpp"

#include <cxxabi.h>

#include <chrono>
#include <thread>

#if PY_VERSION_HEX < 0x030C0000 || PY_VERSION_HEX >= 0x03100000
#error "check _PyEval_AddPendingCall's signature for this CPython version"
#endif

extern "C" int _PyEval_AddPendingCall(PyInterpreterState* interp, int (*func)(void*), void* arg, int flags);

#include "runtime/deadline.hpp"
#include "runtime/futex.hpp"

namespace interpool::py {
namespace {

/// The pending call: runs on a thread of the target's interpreter, with its
/// GIL.  Returning -1 with an exception set raises it in the running frame.
int deliver_interrupt(void* arg) {
  auto* target = static_cast<InterruptTarget*>(arg);
  target->call_queued.store(false, std::memory_order_release);
  uint64_t wanted = target->requested.load(std::memory_order_acquire);
  if (wanted == 0 || wanted != target->window.load(std::memory_order_acquire)) return 0;
  target->requested.store(0, std::memory_order_release);
  auto why = static_cast<StopReason>(target->reason.load(std::memory_order_acquire));
  if (PyThread_get_thread_ident() == target->thread_ident) {
    raise_task_interrupted(target->type, why);
    return -1;
  }
  // A thread that the task started ran the pending call: hand the exception
  // to the worker thread, which raises it at its own next check.
  target->async_sent = true;
  PyThreadState_SetAsyncExc(target->thread_ident, target->type);
  return 0;
}

}  // namespace

PyObject* call_user_code(PyObject* fn, PyObject* args, PyObject* kwargs) {
  try {
    return PyObject_Call(fn, args, kwargs);
  } catch (abi::__forced_unwind&) {
    // Not rethrown, and never returns: the process is exiting anyway.
    park_thread_forever();
  }
}

void park_thread_forever() {
  for (;;) std::this_thread::sleep_for(std::chrono::hours(24));
}

namespace {
/// The thread that runs the process's exit, once interpool's hook ran.
std::atomic<unsigned long> g_exit_thread{0};
}  // namespace

void set_exit_thread() { g_exit_thread.store(PyThread_get_thread_ident()); }

bool exit_must_park_this_thread() {
#if PY_VERSION_HEX >= 0x030D0000
  if (!Py_IsFinalizing()) return false;
#else
  if (!_Py_IsFinalizing()) return false;
#endif
  unsigned long exit_thread = g_exit_thread.load();
  return exit_thread != 0 && exit_thread != PyThread_get_thread_ident();
}

namespace {
/// Threads parked by request_park(); a futex word, woken on each.
std::atomic<uint32_t> g_parked{0};

int park_pending_call(void*) {
  g_parked.fetch_add(1);
  rt::futex_wake_all(g_parked);
  park_thread_forever();
}
}  // namespace

bool request_park(PyInterpreterState* interp) {
  return _PyEval_AddPendingCall(interp, park_pending_call, nullptr, 0) == 0;
}

bool wait_for_parked(uint32_t count, std::chrono::steady_clock::time_point deadline) {
  const rt::Deadline until = rt::Deadline::at(deadline);
  rt::Timeout left;
  for (uint32_t seen; (seen = g_parked.load()) < count;) {
    if (!until.left(left)) return false;
    rt::futex_wait(g_parked, seen, left);
  }
  return true;
}

void raise_task_interrupted(PyObject* type, StopReason why) {
  const char* message = why == StopReason::Timeout    ? "the task ran past its timeout"
                        : why == StopReason::Shutdown ? "the pool was shut down while the task ran"
                                                      : "the task was interrupted";
  PyErr_SetString(type, message);
}

void InterruptTarget::request(uint64_t serial, StopReason why) {
  reason.store(static_cast<uint8_t>(why), std::memory_order_release);
  requested.store(serial, std::memory_order_release);
  if (call_queued.exchange(true, std::memory_order_acq_rel)) return;
  // The queue is small (32 on 3.12) and shared with nothing else in a worker
  // interpreter; should it be full, the grace timer still ends the task.
  if (_PyEval_AddPendingCall(interp, deliver_interrupt, this, 0) != 0) call_queued.store(false);
}

namespace {
/// The target whose window is open on this thread (the worker's own).
thread_local InterruptTarget* t_open_window = nullptr;
}  // namespace

int check_signals_and_interrupt() {
  if (InterruptTarget* target = t_open_window) {
    uint64_t window = target->window.load(std::memory_order_acquire);
    uint64_t expected = window;
    if (window != 0 && target->requested.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) {
      raise_task_interrupted(target->type, static_cast<StopReason>(target->reason.load()));
      return -1;
    }
  }
  return PyErr_CheckSignals();
}

InterruptWindow::InterruptWindow(InterruptTarget* target, uint64_t serial) : _target(target) {
  if (!_target) return;
  t_open_window = _target;
  _target->window.store(serial, std::memory_order_release);
  uint64_t expected = serial;
  if (_target->requested.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) {
    raise_task_interrupted(_target->type, static_cast<StopReason>(_target->reason.load()));
    _raised = true;
  }
}

InterruptWindow::~InterruptWindow() {
  if (!_target) return;
  t_open_window = nullptr;
  _target->window.store(0, std::memory_order_release);
  if (_target->async_sent) {
    // An exception handed over with SetAsyncExc that the task's code did not
    // reach must not go off in the next task: take it back.
    _target->async_sent = false;
    PyThreadState_SetAsyncExc(_target->thread_ident, nullptr);
  }
}

}  // namespace interpool::py
