// src/python/engine_exit.cpp: shutting down and joining every engine when
// its interpreter exits (_core._shutdown_all), and waiting for one engine.
#include "python/engine.hpp"

#include <chrono>
#include <mutex>
#include <optional>

#include "python/engine_threads.hpp"

namespace interpool::py {

namespace {

// How long a waiter sleeps before it runs signal handlers, should a signal
// slip in between its check and its sleep.
constexpr auto kSignalCheckInterval = std::chrono::milliseconds(100);

// At exit: how long interrupted tasks get to unwind before their workers
// are left behind (the process must exit within a second).
constexpr auto kExitGrace = std::chrono::milliseconds(300);
/// At exit, how long abandoned workers running Python get to park.
constexpr auto kParkGrace = std::chrono::milliseconds(200);

}  // namespace

// See engine_threads.hpp.
std::mutex g_exit_mutex;
bool g_exiting = false;

namespace {

/// Waits for `core`'s threads, running signal handlers every slice.  False
/// when a handler raised (the exception is left set).
bool wait_answering_signals(EngineCore& core, std::optional<std::chrono::steady_clock::time_point> until) {
  for (;;) {
    std::chrono::nanoseconds slice = kSignalCheckInterval;
    if (until) {
      auto left = *until - std::chrono::steady_clock::now();
      if (left <= std::chrono::nanoseconds::zero()) return true;
      slice = std::min<std::chrono::nanoseconds>(slice, left);
    }
    rt::WaitStatus status;
    {
      ReleasedGil released;
      status = core.wait_for_threads(slice);
    }
    if (status == rt::WaitStatus::Woken) return true;
    if (PyErr_CheckSignals() < 0) return false;
  }
}

}  // namespace

bool wait_for_engine(EngineCore& core) { return wait_answering_signals(core, std::nullopt); }

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
    if (!wait_answering_signals(*core, std::nullopt)) {
      // Ctrl-C while the process exits: stop everything, wait a little
      // for tasks to unwind, then leave the rest behind.
      PyErr_Clear();
      gave_up = true;
    }
  }
  if (gave_up) {
    for (auto& core : engines) core->stop_all_running(StopReason::Shutdown, kExitGrace);
    auto until = std::chrono::steady_clock::now() + kExitGrace + std::chrono::milliseconds(100);
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
