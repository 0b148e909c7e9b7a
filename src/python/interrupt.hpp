// src/python/interrupt.hpp: raising TaskInterrupted inside a running task.
//
// How: a pending call.  CPython checks each interpreter's "eval breaker" on
// every backward jump and call return, so a tight pure-Python loop sees it
// within microseconds.  _PyEval_AddPendingCall(interp, fn, arg, 0) queues `fn`
// for the worker's interpreter and trips its eval breaker, from any thread
// and without that interpreter's GIL (signal handlers reach the main
// interpreter the same way).  `fn` then runs on a thread of the worker's
// interpreter, holding its GIL, at the next check: on the worker's own
// thread it raises TaskInterrupted right there; on a thread the task started
// it hands the exception to the worker thread with PyThreadState_SetAsyncExc.
// Nothing polls, and code between tasks never sees an interrupt: each request
// names the task it is for, and only that task's user code accepts it.
//
// The symbol is private but exported with one signature from 3.12 to 3.15
// ((interp, int (*)(void*), void*, int flags) -> int, 0 on success); the
// build checks the version range it was written for.
#pragma once

#include <Python.h>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace interpool::py {

/// Why a running task is asked to stop.
enum class StopReason : uint8_t { None = 0, Interrupt = 1, Timeout = 2, Shutdown = 3 };

/// One worker interpreter, as a target for interrupts.  Lives from the
/// worker's setup until after its interpreter has ended, so a pending call
/// queued for it never outlives it.
struct InterruptTarget {
  unsigned long thread_ident = 0;      ///< the worker thread (PyThread_get_thread_ident)
  PyInterpreterState* interp = nullptr;
  PyObject* type = nullptr;            ///< the worker's TaskInterrupted (borrowed; its GIL only)
  /// Serial of the task whose user code runs now, 0 between tasks.  Written
  /// by the worker under its GIL, read by the pending call under that GIL.
  std::atomic<uint64_t> window{0};
  /// Serial of the task asked to stop, and why; 0 once delivered.
  std::atomic<uint64_t> requested{0};
  std::atomic<uint8_t> reason{0};
  std::atomic<bool> call_queued{false};  ///< one pending call at a time is enough
  bool async_sent = false;  ///< PyThreadState_SetAsyncExc was used (worker's GIL)

  /// Asks the interpreter to raise TaskInterrupted in task `serial` if its
  /// user code runs (now or once it starts).  Any thread, no GIL; the target
  /// must be alive (the engine holds its worker's run mutex).
  void request(uint64_t serial, StopReason why);
};

/// Opens the window in which task `serial` may be interrupted, around the
/// user's code, on the worker thread with its GIL.  If a request for it is
/// already there, raises at once: check `raised()` before calling anything.
class InterruptWindow {
 public:
  InterruptWindow(InterruptTarget* target, uint64_t serial);
  ~InterruptWindow();
  InterruptWindow(const InterruptWindow&) = delete;
  InterruptWindow& operator=(const InterruptWindow&) = delete;
  bool raised() const { return _raised; }

 private:
  InterruptTarget* _target;
  bool _raised = false;
};

/// What every blocking wait of the binding runs between its slices, with
/// the GIL: signal handlers (Ctrl-C), and, on a worker thread whose task is
/// asked to stop, TaskInterrupted.  -1 with the exception set, else 0.  So a
/// task blocked in Queue.get(), Event.wait() or Future.result() stops within
/// one slice of an interrupt() or a timeout, with its worker kept.
int check_signals_and_interrupt();

/// Sets TaskInterrupted with a message for `why` (worker's GIL).
void raise_task_interrupted(PyObject* type, StopReason why);

/// PyObject_Call for user code on an engine thread.  While the process
/// finalizes, CPython 3.12 and 3.13 end a thread that asks for a GIL with
/// pthread_exit(), whose forced unwinding would run our RAII destructors
/// (decrefs without a GIL) on the way up.  An abandoned worker can be in
/// that position; this parks its thread instead, before any of our frames
/// unwinds.  (3.14+ parks such threads itself.)
PyObject* call_user_code(PyObject* fn, PyObject* args, PyObject* kwargs);

/// Blocks the calling thread for good, holding nothing: for a thread that
/// the exiting process must no longer hear from.  (Declared in ref.hpp.)
[[noreturn]] void park_thread_forever();
/// Names the thread that runs the process's exit (interpool's exit hook, on
/// the finalizing thread): see exit_must_park_this_thread() in ref.hpp.
void set_exit_thread();

/// At process exit, for an abandoned worker whose thread may still run
/// Python: asks `interp` to park whichever of its threads next checks its
/// eval breaker, holding that interpreter's GIL, so that nothing of it runs
/// while CPython finalizes (any thread, no GIL).  False if it could not be
/// queued.
bool request_park(PyInterpreterState* interp);
/// Waits until `count` threads parked through request_park(), or until
/// `deadline`: a thread blocked in C code never checks (it parks, or
/// CPython ends it, when it comes back).  True if all of them parked.
bool wait_for_parked(uint32_t count, std::chrono::steady_clock::time_point deadline);

}  // namespace interpool::py
