// src/python/worker_loop.cpp: the engine's worker threads: an interpreter
// worker's life (set up, run tasks, end), and the local threads of a
// HybridPool.
#include "python/engine.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "python/delivery.hpp"
#include "python/engine_threads.hpp"
#include "python/interpreter.hpp"
#include "python/worker_context.hpp"

namespace interpool::py {

void EngineCore::worker_main(std::shared_ptr<WorkerRun> run) {
  std::shared_ptr<WorkerSlot> slot = _slots[run->index];
  t_current_slot = &slot;
  t_current_engine = this;
  {
    std::lock_guard lock(run->mutex);
    run->native_id = static_cast<long>(syscall(SYS_gettid));
  }
  for (;;) {
    bool recycle = false;
    if (!interpreter_life(*run, *slot, nullptr, recycle)) {
      // Abandoned and replaced: the pool no longer counts this thread.
      t_current_slot = nullptr;
      return;
    }
    if (!recycle || !accepting()) break;
  }
  t_current_slot = nullptr;
  worker_exited();
}

namespace {

/// Back from code that may have run past its grace period (an initializer,
/// a task): clears what `run` runs, unless the pool abandoned this thread
/// meanwhile.  True if it did: the thread must leave.
bool abandoned_meanwhile(WorkerRun& run) {
  std::lock_guard lock(run.mutex);
  if (!run.abandoned) {
    run.current.reset();
    run.running = 0;
  }
  return run.abandoned;
}

/// hold_off_exit() for a thread that holds its interpreter's GIL: released
/// while it waits, held again on return.
std::unique_lock<std::mutex> hold_off_exit_attached() {
  PyThreadState* saved = PyEval_SaveThread();
  std::unique_lock<std::mutex> lock = hold_off_exit();
  PyEval_RestoreThread(saved);
  return lock;
}

/// Sleeps until fewer than `limit` deferred tasks of this worker run.
void wait_in_flight_below(std::atomic<uint32_t>& in_flight, uint32_t limit) {
  for (uint32_t n; (n = in_flight.load(std::memory_order_acquire)) >= limit;) rt::futex_wait(in_flight, n);
}

/// Ends the worker's interpreter (its GIL held), which runs nothing any
/// more.  An abandoned thread (`leave`, or abandoned meanwhile) ends it under
/// `exit_lock`, which the exiting process waits for.  False if the thread
/// was abandoned: it must then leave without touching the pool.
bool end_worker_interpreter(WorkerRun& run, PyThreadState* tstate, bool leave,
                            std::unique_lock<std::mutex>& exit_lock) {
  {
    std::lock_guard lock(run.mutex);
    run.target = nullptr;  // no request may reach the interpreter from now on
    leave = leave || run.abandoned;
  }
  if (leave && !exit_lock.owns_lock()) exit_lock = hold_off_exit_attached();
  end_interpreter(tstate);
  {
    std::lock_guard lock(run.mutex);
    run.live_interp = nullptr;
  }
  return !leave;
}

}  // namespace

bool EngineCore::interpreter_life(WorkerRun& run, WorkerSlot& slot, PyThreadState* owner_tstate, bool& recycle) {
  std::string error;
  PyThreadState* tstate = new_isolated_interpreter(error);
  if (!tstate) {
    break_pool("could not create a worker interpreter: " + error, {});
    return true;
  }
  // Outlives the interpreter: a pending call queued for it may still run
  // while the interpreter ends.
  auto target = std::make_unique<InterruptTarget>();
  const uint64_t setup_serial = publish_interpreter(run, tstate, *target);
  bool leave = false;
  std::unique_lock<std::mutex> exit_lock;  // held from an abandoned worker's return to its end
  {
    WorkerContext context;
    switch (set_up_interpreter(run, context, *target, setup_serial)) {
      case SetUp::Abandoned:  // the initializer came back after the pool gave up on it
        leave = true;
        exit_lock = hold_off_exit_attached();
        break;
      case SetUp::Failed: break;
      case SetUp::Ready:
        PyEval_SaveThread();  // idle without holding this interpreter's GIL
        leave = !serve_tasks(run, slot, tstate, context, owner_tstate, recycle);
        if (leave)  // never ask for a GIL while the process exits (CPython would end this thread in the request)
          exit_lock = hold_off_exit();
        else  // deferred work still running finishes before the interpreter ends
          wait_in_flight_below(slot.in_flight, 1);
        PyEval_RestoreThread(tstate);
        if (!leave) context.finalize(_recipe);
        break;
    }
    context.clear();
  }
  return end_worker_interpreter(run, tstate, leave, exit_lock);
}

uint64_t EngineCore::publish_interpreter(WorkerRun& run, PyThreadState* tstate, InterruptTarget& target) {
  target.thread_ident = PyThread_get_thread_ident();
  target.interp = PyThreadState_GetInterpreter(tstate);
  const uint64_t setup_serial = next_serial();
  {
    std::lock_guard lock(run.mutex);
    run.target = &target;
    run.live_interp = target.interp;
    run.running = setup_serial;
    run.since = std::chrono::steady_clock::now();
  }
  if (auto why = static_cast<StopReason>(_stop_all.load(std::memory_order_acquire)); why != StopReason::None) {
    std::lock_guard lock(_runs_mutex);
    stop_run(_runs.at(run.index), why);
  }
  return setup_serial;
}

EngineCore::SetUp EngineCore::set_up_interpreter(WorkerRun& run, WorkerContext& context, InterruptTarget& target,
                                                 uint64_t setup_serial) {
  std::string reason;
  rt::Payload info;
  bool ready = context.setup(_recipe, target, setup_serial, reason, info, _recipe.forward_output ? _output : nullptr,
                             weak_from_this(), run.index);
  if (abandoned_meanwhile(run)) return SetUp::Abandoned;
  if (ready) return SetUp::Ready;
  // An initializer stopped by shutdown or Ctrl-C is no failure to log.
  bool stopped = _stop_all.load(std::memory_order_acquire) != 0;
  PyThreadState* saved = PyEval_SaveThread();
  break_pool(stopped ? "the pool was shut down while a worker started" : "a worker could not start: " + reason,
             std::move(info), !stopped);
  PyEval_RestoreThread(saved);
  return SetUp::Failed;
}

bool EngineCore::serve_tasks(WorkerRun& run, WorkerSlot& slot, PyThreadState* tstate, WorkerContext& context,
                             PyThreadState* owner_tstate, bool& recycle) {
  std::size_t done = 0;
  uint64_t pokes_seen = 0;
  for (;;) {
    // Deferred tasks: take no more than max_deferred at a time, so the
    // other workers get the rest.
    wait_in_flight_below(slot.in_flight, _recipe.max_deferred);
    std::optional<TaskPtr> task = take_task(pokes_seen, tstate, context);
    if (!task) return true;  // closed and drained
    TaskPtr t = std::move(*task);
    if (!t->try_start()) continue;  // cancelled while queued
    counts.started.fetch_add(1, std::memory_order_relaxed);
    t->worker = static_cast<int>(run.index);
    if (t->kind() == rt::Task::Kind::Local) {
      run_local(*t, owner_tstate);
      continue;
    }
    if (t->kind() == rt::Task::Kind::Deferred) {
      // The event loop of this worker's interpreter decodes and starts
      // it (WorkerSlot.take_requests); this thread needs no GIL for it.
      slot.in_flight.fetch_add(1, std::memory_order_acq_rel);
      slot.request_launch(std::move(t));
      continue;
    }
    if (!run_call(run, t, tstate, context)) return false;  // the pool finished `t` and replaced this worker
    done += t->items;
    hand_over(std::move(t));
    if (_recipe.max_tasks && done >= _recipe.max_tasks) {
      recycle = true;
      return true;
    }
  }
}

std::optional<TaskPtr> EngineCore::take_task(uint64_t& pokes_seen, PyThreadState* tstate, WorkerContext& context) {
  for (;;) {
    bool poked = false;
    _idle_workers.fetch_add(1);
    std::optional<TaskPtr> task = _tasks.pop(pokes_seen, poked);
    _idle_workers.fetch_sub(1);
    if (task && _recipe.lazy_workers) grow_workers();
    if (!poked) return task;
    PyEval_RestoreThread(tstate);
    context.sweep_shared();
    PyEval_SaveThread();
  }
}

bool EngineCore::run_call(WorkerRun& run, const TaskPtr& t, PyThreadState* tstate, WorkerContext& context) {
  auto started = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(run.mutex);
    run.current = t;
    run.running = t->serial;
    run.since = started;
  }
  std::optional<rt::Timer::Key> deadline;
  if (t->timeout.count() > 0) {
    std::weak_ptr<EngineCore> weak = weak_from_this();
    deadline = _timer.at(started + t->timeout, [weak, t] {
      if (auto core = weak.lock()) core->request_stop(t, StopReason::Timeout);
    });
  }
  PyEval_RestoreThread(tstate);
  context.sweep_shared();
  context.run(*t);
  t->output_mark = context.end_task_output();
  t->request.clear();
  PyEval_SaveThread();
  if (deadline) _timer.cancel(*deadline);
  if (abandoned_meanwhile(run)) return false;
  if (t->stopped != StopReason::None)
    finish_stopped(t, t->stopped);
  else
    (t->failed ? counts.failed : counts.done).fetch_add(1, std::memory_order_relaxed);
  return true;
}

void EngineCore::local_main() {
  t_current_engine = this;
  // Made on this thread before anything else, so that PyGILState_* here
  // (used by extension modules that do not support subinterpreters, the
  // very ones that run as Local tasks) finds the owner interpreter.
  PyThreadState* tstate = PyThreadState_New(_owner);
  for (;;) {
    _idle_local.fetch_add(1);
    std::optional<TaskPtr> task = _local.pop();
    _idle_local.fetch_sub(1);
    if (!task) break;  // closed and drained
    grow_local();
    TaskPtr t = std::move(*task);
    if (!t->try_start()) continue;  // cancelled while queued
    counts.started.fetch_add(1, std::memory_order_relaxed);
    run_local(*t, tstate);
  }
  PyEval_RestoreThread(tstate);
  PyThreadState_Clear(tstate);
  PyThreadState_DeleteCurrent();
  worker_exited();
}

void EngineCore::run_local(PyTask& task, PyThreadState* owner_tstate) {
  if (!owner_tstate) {  // a Local task sent to a pool without local workers
    task.failed = true;
    task.finish();
    return;
  }
  AttachedThread attached(owner_tstate);
  ModuleState& state = state_of(_owner_module);
  Ref call = Ref::steal(std::exchange(task.local_call, nullptr));
  PyObject *fn, *args, *kwargs;
  Ref outcome;
  bool is_exception = false;
  if (call && PyArg_UnpackTuple(call.get(), "local", 3, 3, &fn, &args, &kwargs)) {
    outcome = Ref::steal(call_user_code(fn, args, kwargs == Py_None ? nullptr : kwargs));
  }
  if (!outcome) {
    outcome = Ref::steal(PyErr_GetRaisedException());
    is_exception = true;
  }
  (is_exception ? counts.failed : counts.done).fetch_add(1, std::memory_order_relaxed);
  if (task.claim_delivery()) {
    Ref future = Ref::steal(std::exchange(task.future, nullptr));
    Ref bridge = Ref::steal(std::exchange(task.bridge, nullptr));
    Py_CLEAR(task.rebuild);
    if (future) complete_future(state, future.get(), bridge.get(), outcome.get(), is_exception);
  }
  outcome.reset();
  call.reset();
  // finish() after the future is complete: a caller woken by it in settle()
  // finds the result already there.
  task.finish();
}

}  // namespace interpool::py
