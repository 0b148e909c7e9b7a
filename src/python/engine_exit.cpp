// src/python/engine_exit.cpp: shutting down and joining every engine when
// its interpreter exits (_core.shutdown_all), and waiting for one engine.
#include "python/engine.hpp"

#include <chrono>
#include <mutex>

#include "python/engine_threads.hpp"
#include "python/interruptible_wait.hpp"

namespace interpool::py {

namespace {

// At exit: how long interrupted tasks get to unwind before their workers
// are left behind (the process must exit within a second).
constexpr auto kExitGrace = std::chrono::milliseconds(300);
/// At exit, how long abandoned workers running Python get to park.
constexpr auto kParkGrace = std::chrono::milliseconds(200);

// Set once the owner interpreter began to exit (shutdown_all): a worker
// thread that comes back after it was abandoned then leaves its interpreter
// to CPython's finalization instead of ending it itself.  Guarded by
// g_exit_mutex, which such a thread holds while it ends its interpreter.
std::mutex g_exit_mutex;
bool g_exiting = false;

/// Waits for `core`'s threads, running signal handlers every slice.  False
/// when a handler raised (the exception is left set).
bool wait_answering_signals(EngineCore& core, const rt::Deadline& until) {
  return wait_released(
             until, [&](std::chrono::nanoseconds slice) { return core.wait_for_threads(slice); }, PyErr_CheckSignals) >=
         0;
}

}  // namespace

std::unique_lock<std::mutex> hold_off_exit() {
  std::unique_lock<std::mutex> lock(g_exit_mutex);
  if (g_exiting) park_thread_forever();
  return lock;
}

bool wait_for_engine(EngineCore& core) { return wait_answering_signals(core, rt::Deadline()); }

PyObject* shutdown_all_engines(PyObject*, PyObject*) {
  auto engines = EngineCore::live_engines(PyInterpreterState_Get());
  for (auto& core : engines) {
    core->shutdown(false);
    // A pool shut down with cancel_futures=True asked not to wait for work:
    // what still runs is interrupted rather than waited for.
    if (core->stop_on_exit()) core->stop_all_running(StopReason::Shutdown, kExitGrace);
  }
  bool gave_up = false;
  for (auto& core : engines) {
    if (gave_up) break;
    if (!wait_answering_signals(*core, rt::Deadline())) {
      // Ctrl-C while the process exits: stop everything, wait a little
      // for tasks to unwind, then leave the rest behind.
      PyErr_Clear();
      gave_up = true;
    }
  }
  if (gave_up) {
    for (auto& core : engines) core->stop_all_running(StopReason::Shutdown, kExitGrace);
    const rt::Deadline until = rt::Deadline::after(kExitGrace + std::chrono::milliseconds(100));
    for (auto& core : engines)
      if (!wait_answering_signals(*core, until)) PyErr_Clear();
  }
  for (auto& core : engines) core->abandon_all();
  // Worker interpreters run this too as they end (their threading module
  // calls it): only the main interpreter's exit is the process's.
  if (PyInterpreterState_Get() == PyInterpreterState_Main()) {
    {
      ReleasedGil released;  // an abandoned worker may hold the mutex while it ends its interpreter
      std::lock_guard lock(g_exit_mutex);
      g_exiting = true;
    }
    set_exit_thread();
    // An abandoned worker may still run Python code (an interrupt it has
    // not yet unwound, or code that swallows interrupts): park those
    // threads now, before CPython finalizes what they use.  A thread blocked
    // in C code cannot be reached; it parks when it comes back (the exit
    // checks above and in call_user_code).
    uint32_t asked = 0;
    for (auto& core : engines) asked += core->park_abandoned_threads();
    if (asked) {
      ReleasedGil released;
      wait_for_parked(asked, std::chrono::steady_clock::now() + kParkGrace);
    }
    // From here no abandoned worker ends its interpreter: leave them out of
    // CPython's finalization.
    for (auto& core : engines) core->forget_abandoned_interpreters();
  }
  Py_RETURN_NONE;
}

}  // namespace interpool::py
