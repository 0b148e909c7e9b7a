// src/python/engine.cpp: the worker pool core: its worker and delivery threads.
#include "python/engine.hpp"

#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <new>
#include <optional>
#include <string>
#include <utility>

#include "python/delivery.hpp"
#include "python/interpreter.hpp"
#include "python/output.hpp"
#include "python/runtime_internals.h"
#include "python/worker_context.hpp"

namespace interpool::py {
namespace {

// --------------------------------------------------------------- registry

// Engines with threads still running, so that interpreter shutdown can join
// them even when their Python objects are long gone.  C++ state, no PyObject.
std::mutex g_engines_mutex;
std::vector<std::weak_ptr<EngineCore>> g_engines;

void register_engine(const std::shared_ptr<EngineCore>& core) {
  std::lock_guard lock(g_engines_mutex);
  std::erase_if(g_engines, [](auto& w) { return w.expired(); });
  g_engines.push_back(core);
}

// How long a waiter sleeps before it runs signal handlers, should a signal
// slip in between its check and its sleep.
constexpr auto kSignalCheckInterval = std::chrono::milliseconds(100);

// At exit: how long interrupted tasks get to unwind before their workers
// are left behind (the process must exit within a second).
constexpr auto kExitGrace = std::chrono::milliseconds(300);
/// At exit, how long abandoned workers running Python get to park.
constexpr auto kParkGrace = std::chrono::milliseconds(200);

// Engines inherited through fork(), kept alive forever in the child: their
// destructors would join threads that exist only in the parent.
std::vector<std::shared_ptr<EngineCore>>* g_orphans = nullptr;

}  // namespace

// -------------------------------------------------------------- WorkerSlot

WorkerSlot::WorkerSlot() : wakeup_fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

WorkerSlot::~WorkerSlot() {
  if (wakeup_fd >= 0) close(wakeup_fd);
}

void WorkerSlot::signal() {
  uint64_t one = 1;
  while (write(wakeup_fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

// Many launches per wake-up: only a request that finds both lists empty
// writes the eventfd.  Any other found a wake-up pending already, which
// take_requests() has not yet answered: it reads the eventfd *before* it
// swaps the lists, so whatever was pushed before the swap is taken with them.
void WorkerSlot::request_launch(std::shared_ptr<PyTask> task) {
  bool first;
  {
    std::lock_guard lock(_mutex);
    first = _launch_requests.empty() && _cancel_requests.empty();
    _launch_requests.push_back(std::move(task));
  }
  if (first) signal();
}

void WorkerSlot::request_cancel(std::shared_ptr<PyTask> task) {
  bool first;
  {
    std::lock_guard lock(_mutex);
    first = _launch_requests.empty() && _cancel_requests.empty();
    _cancel_requests.push_back(std::move(task));
  }
  if (first) signal();
}

void WorkerSlot::take_requests(std::vector<std::shared_ptr<PyTask>>& launches,
                               std::vector<std::shared_ptr<PyTask>>& cancels) {
  uint64_t count;
  while (read(wakeup_fd, &count, sizeof count) < 0 && errno == EINTR) {
  }
  std::lock_guard lock(_mutex);
  launches = std::exchange(_launch_requests, {});
  cancels = std::exchange(_cancel_requests, {});
}

// -------------------------------------------------------------- EngineCore

PyTask::~PyTask() {
  // A future still referenced here would need its interpreter's GIL to be
  // released; every path clears it under that GIL first.  Should one slip
  // through, leaking it is safe and decref'ing it here is not.
}

EngineCore::EngineCore(WorkerRecipe recipe, PyInterpreterState* owner)
    : _recipe(std::move(recipe)),
      _owner(owner),
      _tasks(/*spin=*/64),
      _local(/*spin=*/0),
      _completions(/*spin=*/0),
      _timer(_recipe.thread_name_prefix + "timer"),
      _pid(getpid()) {}

uint64_t EngineCore::next_serial() {
  // Process-wide, so that a request can never name a task of another pool
  // that a recycled target happens to run.
  static std::atomic<uint64_t> serial{1};
  return serial.fetch_add(1, std::memory_order_relaxed);
}

void EngineCore::start(PyObject* module, PyObject* rebuild) {
  for (std::size_t i = 0; i < _recipe.workers; ++i) {
    _slots.push_back(std::make_shared<WorkerSlot>());
    _slots.back()->core = weak_from_this();
  }
  _owner_module = Py_NewRef(module);
  _rebuild = Py_NewRef(rebuild);
  register_engine(shared_from_this());
  _runs.resize(_recipe.workers);
  if (!_recipe.lazy_workers) {
    std::lock_guard lock(_grow_mutex);
    _spawned_workers = _recipe.workers;
    _live_workers.store(_recipe.workers);
    for (std::size_t i = 0; i < _recipe.workers; ++i) spawn_worker(i);
  }
  auto self = shared_from_this();
  _threads.spawn(_recipe.thread_name_prefix + "deliver", [self] { self->deliverer_main(); });
}

void EngineCore::spawn_worker(std::size_t index) {
  auto run = std::make_shared<WorkerRun>();
  run->index = index;
  {
    std::lock_guard lock(_runs_mutex);
    _runs[index] = run;
  }
  std::lock_guard lock(run->mutex);  // the thread reads its token under it
  auto self = shared_from_this();
  run->token = _threads.spawn(_recipe.thread_name_prefix + std::to_string(index),
                              [self, run] { self->worker_main(run); });
}

bool EngineCore::submit(TaskPtr task) {
  if (orphaned()) return false;
  task->serial = next_serial();
  if (task->timeout.count() == 0) task->timeout = _recipe.task_timeout;
  const bool local = task->kind() == rt::Task::Kind::Local && _recipe.local_threads > 0;
  if (!(local ? _local : _tasks).push(std::move(task))) return false;
  counts.submitted.fetch_add(1, std::memory_order_relaxed);
  if (local)
    grow_local();
  else if (_recipe.lazy_workers)
    grow_workers();
  return true;
}

namespace {
/// One on-demand lane's growth step, under the engine's grow mutex: whether
/// another thread should start (more tasks wait than threads are idle).
bool lane_wants_thread(std::size_t queued, std::size_t idle, std::size_t spawned, std::size_t max, bool stopped) {
  return !stopped && spawned < max && queued > idle;
}
}  // namespace

void EngineCore::grow_workers() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (_tasks.size() <= _idle_workers.load()) return;
  std::string error;
  {
    std::lock_guard lock(_grow_mutex);
    if (!lane_wants_thread(_tasks.size(), _idle_workers.load(), _spawned_workers, _recipe.workers, _growth_stopped))
      return;
    std::size_t index = _spawned_workers++;
    _live_workers.fetch_add(1);
    try {
      spawn_worker(index);  // under the mutex: stop_growth() sees every started thread counted
      return;
    } catch (const std::exception& e) {
      --_spawned_workers;
      _live_workers.fetch_sub(1);
      if (_spawned_workers) return;  // the started ones take the task
      error = e.what();
    }
  }
  break_pool("could not start a worker thread: " + error, {});
}

void EngineCore::grow_local() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (_local.size() <= _idle_local.load()) return;
  std::string error;
  {
    std::lock_guard lock(_grow_mutex);
    if (!lane_wants_thread(_local.size(), _idle_local.load(), _spawned_local, _recipe.local_threads, _growth_stopped))
      return;
    std::size_t index = _spawned_local++;
    _live_workers.fetch_add(1);
    try {
      auto self = shared_from_this();
      _threads.spawn(_recipe.thread_name_prefix + "thread-" + std::to_string(index), [self] { self->local_main(); });
      return;
    } catch (const std::exception& e) {
      --_spawned_local;
      _live_workers.fetch_sub(1);
      if (_spawned_local) return;
      error = e.what();
    }
  }
  break_pool("could not start a thread: " + error, {});
}

void EngineCore::stop_growth() {
  std::lock_guard lock(_grow_mutex);
  if (_growth_stopped) return;
  // A task pushed just before the queues closed may have found its lane
  // without a thread: start one now, while that is still allowed.
  auto wants = [&](std::size_t queued, std::size_t idle, std::size_t spawned, std::size_t max) {
    return lane_wants_thread(queued, idle, spawned, max, false);
  };
  try {
    if (_recipe.lazy_workers && wants(_tasks.size(), _idle_workers.load(), _spawned_workers, _recipe.workers)) {
      _live_workers.fetch_add(1);
      spawn_worker(_spawned_workers++);
    }
    if (wants(_local.size(), _idle_local.load(), _spawned_local, _recipe.local_threads)) {
      _live_workers.fetch_add(1);
      std::size_t index = _spawned_local++;
      auto self = shared_from_this();
      _threads.spawn(_recipe.thread_name_prefix + "thread-" + std::to_string(index), [self] { self->local_main(); });
    }
  } catch (const std::exception&) {
    _live_workers.fetch_sub(1);  // the task stays queued; nothing can run it
  }
  _growth_stopped = true;
  if (_live_workers.load() == 0) _completions.close();
}

std::string EngineCore::broken_reason() const {
  if (orphaned())
    return "this pool was started by process " + std::to_string(_pid) +
           " before it forked; its worker interpreters do not exist in this child process. Start a new pool "
           "in the child";
  std::lock_guard lock(_broken_mutex);
  return _broken_reason;
}

std::vector<TaskPtr> EngineCore::shutdown(bool cancel_queued) {
  if (orphaned()) return {};
  _tasks.close();
  _local.close();
  std::vector<TaskPtr> cancelled;
  if (cancel_queued) {
    for (auto* queue : {&_tasks, &_local})
      for (auto& t : queue->drain())
        if (t->try_cancel()) cancelled.push_back(std::move(t));
  }
  stop_growth();
  return cancelled;
}

rt::WaitStatus EngineCore::wait_for_threads(std::optional<std::chrono::nanoseconds> timeout) {
  // A fork child inherits the count, not the threads (nor the locks they held).
  if (orphaned()) return rt::WaitStatus::Woken;
  return _threads.wait(timeout);
}

bool EngineCore::request_stop(const TaskPtr& task, StopReason why) {
  if (orphaned()) return false;
  if (task->kind() != rt::Task::Kind::Call && task->kind() != rt::Task::Kind::Map) return false;
  if (task->state() != rt::Task::State::Running || task->worker < 0) return false;
  std::shared_ptr<WorkerRun> run;
  {
    std::lock_guard lock(_runs_mutex);
    run = _runs.at(static_cast<std::size_t>(task->worker));
  }
  {
    std::lock_guard lock(run->mutex);
    if (run->current != task || !run->target) return false;
    uint8_t none = 0;
    task->stop.compare_exchange_strong(none, static_cast<uint8_t>(why));
    run->target->request(task->serial, why);
  }
  std::weak_ptr<EngineCore> weak = weak_from_this();
  uint64_t serial = task->serial;
  _timer.at(std::chrono::steady_clock::now() + _recipe.interrupt_grace, [weak, run, serial] {
    if (auto core = weak.lock()) core->abandon_if_stuck(run, serial);
  });
  return true;
}

void EngineCore::stop_all_running(StopReason why, std::optional<std::chrono::nanoseconds> grace) {
  if (orphaned()) return;
  // Also for initializers that start from now on (a worker still creating
  // its interpreter would otherwise miss the request).
  _stop_all.store(static_cast<uint8_t>(why), std::memory_order_release);
  std::vector<std::shared_ptr<WorkerRun>> runs;
  {
    std::lock_guard lock(_runs_mutex);
    runs = _runs;
  }
  if (grace) _stop_all_grace_ns.store(grace->count(), std::memory_order_release);
  for (auto& run : runs)
    if (run) stop_run(run, why);
}

void EngineCore::stop_run(const std::shared_ptr<WorkerRun>& run, StopReason why) {
  uint64_t serial;
  {
    std::lock_guard lock(run->mutex);
    serial = run->running;
    if (!serial || !run->target || run->abandoned) return;
    if (run->current) {
      uint8_t none = 0;
      run->current->stop.compare_exchange_strong(none, static_cast<uint8_t>(why));
    }
    run->target->request(serial, why);
  }
  std::weak_ptr<EngineCore> weak = weak_from_this();
  auto grace = std::min(_recipe.interrupt_grace, std::chrono::nanoseconds(_stop_all_grace_ns.load()));
  _timer.at(std::chrono::steady_clock::now() + grace, [weak, run, serial] {
    if (auto core = weak.lock()) core->abandon_if_stuck(run, serial);
  });
}

void EngineCore::abandon_all() {
  if (orphaned()) return;
  std::vector<std::shared_ptr<WorkerRun>> runs;
  {
    std::lock_guard lock(_runs_mutex);
    runs = _runs;
  }
  for (auto& run : runs) {
    if (!run) continue;
    {
      std::lock_guard lock(run->mutex);
      if (run->abandoned) continue;
      run->abandoned = true;
    }
    _threads.release(run->token);
  }
}

std::vector<EngineCore::RunSnapshot> EngineCore::snapshot_runs() {
  if (orphaned()) return {};
  std::vector<std::shared_ptr<WorkerRun>> runs;
  {
    std::lock_guard lock(_runs_mutex);
    runs = _runs;
  }
  std::vector<RunSnapshot> out;
  auto now = std::chrono::steady_clock::now();
  for (auto& run : runs) {
    if (!run) continue;
    std::lock_guard lock(run->mutex);
    RunSnapshot snap{run->index, run->current, run->running != 0 && !run->current,
                     run->running ? std::chrono::duration<double>(now - run->since).count() : 0.0, run->native_id};
    out.push_back(std::move(snap));
  }
  return out;
}

void EngineCore::forget_abandoned_interpreters() {
  if (orphaned()) return;
  std::vector<std::shared_ptr<WorkerRun>> runs;
  {
    std::lock_guard lock(_runs_mutex);
    runs = _runs;
    runs.insert(runs.end(), _abandoned.begin(), _abandoned.end());
  }
  for (auto& run : runs) {
    if (!run) continue;
    std::lock_guard lock(run->mutex);
    if (run->abandoned && run->live_interp) {
      interpool_runtime_forget_interpreter(run->live_interp);
      run->live_interp = nullptr;
    }
  }
}

uint32_t EngineCore::park_abandoned_threads() {
  if (orphaned()) return 0;
  std::vector<std::shared_ptr<WorkerRun>> runs;
  {
    std::lock_guard lock(_runs_mutex);
    runs = _runs;
    runs.insert(runs.end(), _abandoned.begin(), _abandoned.end());
  }
  uint32_t asked = 0;
  for (auto& run : runs) {
    if (!run) continue;
    std::lock_guard lock(run->mutex);
    if (run->abandoned && run->live_interp && !run->park_requested && request_park(run->live_interp)) {
      run->park_requested = true;
      ++asked;
    }
  }
  return asked;
}

void EngineCore::finish_stopped(const TaskPtr& task, StopReason why) {
  task->stopped = why;
  (why == StopReason::Timeout ? counts.timed_out : counts.interrupted).fetch_add(1, std::memory_order_relaxed);
}

void EngineCore::abandon_if_stuck(const std::shared_ptr<WorkerRun>& run, uint64_t serial) {
  TaskPtr task;
  {
    std::lock_guard lock(run->mutex);
    if (run->abandoned || run->running != serial) return;
    run->abandoned = true;
    run->running = 0;
    task = std::move(run->current);
  }
  // The thread may never come back: the pool stops counting it, ends its
  // task (the future must not wait for ever) and starts a replacement.
  _threads.release(run->token);
  {
    std::lock_guard lock(_runs_mutex);
    _abandoned.push_back(run);
  }
  counts.replaced.fetch_add(1, std::memory_order_relaxed);
  if (task) {
    auto why = static_cast<StopReason>(task->stop.load(std::memory_order_acquire));
    task->failed = true;
    finish_stopped(task, why == StopReason::None ? StopReason::Interrupt : why);
    task->finish();
    _completions.push(std::move(task));
  } else {
    // Stuck in its initializer: the pool cannot get a working worker.
    break_pool("a worker's initializer did not return and was abandoned", {});
  }
  if (accepting() && !broken())
    spawn_worker(run->index);
  else
    worker_exited();
}

void EngineCore::poke_all() {
  std::vector<std::shared_ptr<EngineCore>> engines;
  {
    std::lock_guard lock(g_engines_mutex);
    for (auto& w : g_engines)
      if (auto core = w.lock()) engines.push_back(std::move(core));
  }
  for (auto& core : engines) core->_tasks.poke();
}

std::vector<std::shared_ptr<EngineCore>> EngineCore::live_engines(PyInterpreterState* owner) {
  std::lock_guard lock(g_engines_mutex);
  std::vector<std::shared_ptr<EngineCore>> out;
  for (auto& w : g_engines)
    if (auto core = w.lock(); core && core->_owner == owner) out.push_back(std::move(core));
  return out;
}

void EngineCore::prepare_fork() { g_engines_mutex.lock(); }

void EngineCore::after_fork(bool in_child) {
  if (in_child) {
    // Only the forking thread exists here: move every engine out of the
    // registry, so that no one in the child pokes, shuts down or joins them.
    if (!g_orphans) g_orphans = new std::vector<std::shared_ptr<EngineCore>>();
    for (auto& w : g_engines)
      if (auto core = w.lock()) g_orphans->push_back(std::move(core));
    g_engines.clear();
  }
  g_engines_mutex.unlock();
}

void EngineCore::break_pool(const std::string& reason, rt::Payload info, bool log) {
  {
    std::lock_guard lock(_broken_mutex);
    if (_broken.load()) return;
    _broken_reason = reason;
    _broken.store(true, std::memory_order_release);
  }
  _tasks.close();
  _local.close();  // local threads run what is queued there, then end
  // A notice with no future: the delivery thread reports the failure in the
  // owner interpreter (logged as the stdlib executors do) even if no task
  // waits.
  auto logged = std::make_shared<std::atomic<uint32_t>>(log ? 0 : 2);
  auto fail = [&](const TaskPtr& t) {  // t was started: it fails with the pool's failure
    t->failed = true;
    t->broken = true;
    t->broken_reason = reason;
    t->broken_logged = logged;
    t->response = info;
    t->finish();
    _completions.push(t);
  };
  if (log) {
    auto notice = std::make_shared<PyTask>(rt::Task::Kind::Call);
    notice->try_start();
    fail(notice);
  }
  for (auto& t : _tasks.drain()) {
    if (!t->try_start()) continue;  // cancelled meanwhile
    counts.started.fetch_add(1, std::memory_order_relaxed);
    fail(t);
  }
  stop_growth();
}

void EngineCore::worker_exited() {
  // The delivery thread ends after the last worker, once no more can start.
  std::lock_guard lock(_grow_mutex);
  if (_live_workers.fetch_sub(1, std::memory_order_acq_rel) == 1 && _growth_stopped) _completions.close();
}

namespace {
// The worker slot of the engine worker thread running now (AsyncPool's
// initializer reads it).  Null on other threads.
thread_local std::shared_ptr<WorkerSlot>* t_current_slot = nullptr;
// The engine whose thread (worker or delivery) runs now, else null.
thread_local const EngineCore* t_current_engine = nullptr;
// The engine whose delivery thread runs now, else null.
thread_local const EngineCore* t_delivery_engine = nullptr;
}  // namespace

bool EngineCore::on_delivery_thread() const { return t_delivery_engine == this; }

bool EngineCore::output_written(const PyTask& task) {
  if (task.output_mark == 0 || _output->written() >= task.output_mark || _output->closed()) return true;
  if (orphaned()) return true;  // a fork child: the writer is in the parent
  if (!on_delivery_thread()) return false;
  // A done-callback waiting on another task of this pool: this thread is
  // the writer, so it writes now rather than wait for itself.
  write_output(state_of(_owner_module), *_output, _recipe.thread_name_prefix);
  return true;
}

void EngineCore::hand_over(TaskPtr task) {
  // Prompt delivery: a finished task goes to the delivery thread at once,
  // never held back while this worker runs its next task (which may take
  // any time).  Batching happens on the consumer side instead: the delivery
  // thread takes everything that arrived while it woke up and while it
  // waited for the caller's GIL (deliverer_main), so a stream of tiny tasks
  // still costs one GIL acquisition per batch, and a push costs a system
  // call only when the delivery thread sleeps.
  task->finish();  // wakes a caller blocked in result(), which may deliver it itself
  if (task->waker && task->output_mark == 0) {
    // An asyncio call: straight to its event loop, which delivers it itself.
    // (One that printed goes through the delivery thread, the one writer of
    // output, which writes it before the future is done.)
    std::shared_ptr<Waker> waker = std::move(task->waker);
    waker->post(std::move(task), /*backlog=*/_tasks.size() > 0);
    return;
  }
  _completions.push(std::move(task));
}

bool EngineCore::on_own_thread() const { return t_current_engine == this; }

namespace {

// Set once the owner interpreter began to exit (_shutdown_all): a worker
// thread that comes back after it was abandoned then leaves its interpreter
// to CPython's finalization instead of ending it itself.  Guarded by
// g_exit_mutex, which such a thread holds while it ends its interpreter.
std::mutex g_exit_mutex;
bool g_exiting = false;

}  // namespace

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
  target->thread_ident = PyThread_get_thread_ident();
  target->interp = PyThreadState_GetInterpreter(tstate);
  const uint64_t setup_serial = next_serial();
  {
    std::lock_guard lock(run.mutex);
    run.target = target.get();
    run.live_interp = target->interp;
    run.running = setup_serial;
    run.since = std::chrono::steady_clock::now();
  }
  if (auto why = static_cast<StopReason>(_stop_all.load(std::memory_order_acquire)); why != StopReason::None) {
    std::lock_guard lock(_runs_mutex);
    stop_run(_runs.at(run.index), why);
  }
  // Back from code that may have run past its grace period: true if this
  // thread was abandoned meanwhile, and must leave.
  auto abandoned = [&run] {
    std::lock_guard lock(run.mutex);
    if (!run.abandoned) {
      run.current.reset();
      run.running = 0;
    }
    return run.abandoned;
  };
  bool leave = false;
  std::unique_lock<std::mutex> exit_lock;  // held from an abandoned worker's return to its end
  {
    WorkerContext context;
    std::string reason;
    rt::Payload info;
    bool ready = context.setup(_recipe, *target, setup_serial, reason, info,
                               _recipe.forward_output ? _output : nullptr, weak_from_this(), run.index);
    leave = abandoned();
    if (leave) {
      // The initializer came back after the pool gave up on it.
      PyThreadState* saved = PyEval_SaveThread();
      exit_lock = std::unique_lock(g_exit_mutex);
      if (g_exiting) park_thread_forever();
      PyEval_RestoreThread(saved);
    } else if (!ready) {
      // An initializer stopped by shutdown or Ctrl-C is no failure to log.
      bool stopped = _stop_all.load(std::memory_order_acquire) != 0;
      PyThreadState* saved = PyEval_SaveThread();
      break_pool(stopped ? "the pool was shut down while a worker started" : "a worker could not start: " + reason,
                 std::move(info), !stopped);
      PyEval_RestoreThread(saved);
    } else {
      std::size_t done = 0;
      uint64_t pokes_seen = 0;
      std::weak_ptr<EngineCore> weak = weak_from_this();
      PyEval_SaveThread();  // idle without holding this interpreter's GIL
      for (;;) {
        // Deferred tasks: take no more than max_deferred at a time, so the
        // other workers get the rest.
        for (uint32_t n; (n = slot.in_flight.load(std::memory_order_acquire)) >= _recipe.max_deferred;)
          rt::futex_wait(slot.in_flight, n);
        bool poked = false;
        _idle_workers.fetch_add(1);
        std::optional<TaskPtr> task = _tasks.pop(pokes_seen, poked);
        _idle_workers.fetch_sub(1);
        if (task && _recipe.lazy_workers) grow_workers();
        if (poked) {
          PyEval_RestoreThread(tstate);
          context.sweep_shared();
          PyEval_SaveThread();
          continue;
        }
        if (!task) break;  // closed and drained
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
        auto started = std::chrono::steady_clock::now();
        {
          std::lock_guard lock(run.mutex);
          run.current = t;
          run.running = t->serial;
          run.since = started;
        }
        std::optional<rt::Timer::Key> deadline;
        if (t->timeout.count() > 0)
          deadline = _timer.at(started + t->timeout, [weak, t] {
            if (auto core = weak.lock()) core->request_stop(t, StopReason::Timeout);
          });
        PyEval_RestoreThread(tstate);
        context.sweep_shared();
        context.run(*t);
        t->output_mark = context.end_task_output();
        t->request.clear();
        PyEval_SaveThread();
        if (deadline) _timer.cancel(*deadline);
        if (abandoned()) {
          leave = true;  // the pool finished `t` and replaced this worker
          break;
        }
        if (t->stopped != StopReason::None)
          finish_stopped(t, t->stopped);
        else
          (t->failed ? counts.failed : counts.done).fetch_add(1, std::memory_order_relaxed);
        done += t->items;
        hand_over(std::move(t));
        if (_recipe.max_tasks && done >= _recipe.max_tasks) {
          recycle = true;
          break;
        }
      }
      if (!leave) {
        // Deferred work still running finishes before the interpreter ends.
        for (uint32_t n; (n = slot.in_flight.load(std::memory_order_acquire)) > 0;) rt::futex_wait(slot.in_flight, n);
      } else {
        // Abandoned: never ask for a GIL while the process exits (CPython
        // would end this thread inside the request).
        exit_lock = std::unique_lock(g_exit_mutex);
        if (g_exiting) park_thread_forever();
      }
      PyEval_RestoreThread(tstate);
      if (!leave) context.finalize(_recipe);
    }
    context.clear();
  }
  {
    std::lock_guard lock(run.mutex);
    run.target = nullptr;  // no request may reach the interpreter from now on
    leave = leave || run.abandoned;
  }
  auto ended = [&] {
    std::lock_guard lock(run.mutex);
    run.live_interp = nullptr;
  };
  if (!leave) {
    end_interpreter(tstate);
    ended();
    return true;
  }
  if (!exit_lock.owns_lock()) {
    PyThreadState* saved = PyEval_SaveThread();
    exit_lock = std::unique_lock(g_exit_mutex);
    if (g_exiting) park_thread_forever();
    PyEval_RestoreThread(saved);
  }
  end_interpreter(tstate);  // under g_exit_mutex: the exiting process waits for it
  ended();
  return false;
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

void EngineCore::finish_deferred(std::shared_ptr<PyTask> task, WorkerSlot& slot) {
  task->finish();
  if (task->waker && task->output_mark == 0) {  // see hand_over
    std::shared_ptr<Waker> waker = std::move(task->waker);
    waker->post(std::move(task));
  } else {
    _completions.push(std::move(task));
  }
  // The worker thread waits only for the count to fall below max_deferred
  // (to take more) or to reach 0 (to end): no system call for the others.
  uint32_t before = slot.in_flight.fetch_sub(1, std::memory_order_acq_rel);
  if (before == _recipe.max_deferred || before == 1) rt::futex_wake_all(slot.in_flight);
}

void EngineCore::deliverer_main() {
  t_current_engine = this;
  t_delivery_engine = this;
  PyThreadState* tstate = PyThreadState_New(_owner);
  ModuleState& state = state_of(_owner_module);
  for (;;) {
    auto batch = _completions.pop_all();
    if (batch.empty()) break;  // closed and drained: every worker has exited
    BridgeBatch to_loops;
    {
      AttachedThread attached(tstate);
      // Consumer-side batching: what finished while this thread waited for
      // the caller's GIL (up to a switch interval when the caller is busy)
      // joins this batch, so the GIL is taken once for all of it.
      for (auto& t : _completions.drain()) batch.push_back(std::move(t));
      // Output first: what a task printed is written before its future is done.
      write_output(state, *_output, _recipe.thread_name_prefix);
      for (auto& t : batch)
        if (t) deliver(state, _rebuild, *t, &to_loops);
      to_loops.flush(state);
      batch.clear();
    }
    // Event loops are woken only now, with the GIL released: a loop woken
    // earlier would at once wait for this thread to let go of it.
    to_loops.wake();
  }
  // Every worker has exited: this thread is the engine's last user of the
  // owner interpreter's objects.
  PyEval_RestoreThread(tstate);
  write_output(state, *_output, _recipe.thread_name_prefix);  // what the workers printed as they ended
  _output->close();
  Py_CLEAR(_rebuild);
  Py_CLEAR(_owner_module);
  PyThreadState_Clear(tstate);
  PyThreadState_DeleteCurrent();
}

PyObject* current_worker_slot(PyObject* module, PyObject*) {
  if (!t_current_slot) {
    PyErr_SetString(PyExc_RuntimeError, "not on an interpool worker thread");
    return nullptr;
  }
  auto* self = PyObject_New(WorkerSlotObject, state_of(module).worker_slot_type);
  if (!self) return nullptr;
  new (&self->slot) std::shared_ptr<WorkerSlot>(*t_current_slot);
  return reinterpret_cast<PyObject*>(self);
}

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
