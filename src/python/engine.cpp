// src/python/engine.cpp: the worker pool core: its worker and delivery threads.
#include "python/engine.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <new>
#include <optional>
#include <string>
#include <utility>

#include "python/delivery.hpp"
#include "python/interpreter.hpp"
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

void WorkerSlot::request_launch(std::shared_ptr<PyTask> task) {
  {
    std::lock_guard lock(_mutex);
    _launch_requests.push_back(std::move(task));
  }
  signal();
}

void WorkerSlot::request_cancel(std::shared_ptr<PyTask> task) {
  {
    std::lock_guard lock(_mutex);
    _cancel_requests.push_back(std::move(task));
  }
  signal();
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
    : _recipe(std::move(recipe)), _owner(owner), _tasks(/*spin=*/64), _completions(/*spin=*/0) {}

void EngineCore::start(PyObject* module, PyObject* rebuild) {
  for (std::size_t i = 0; i < _recipe.workers; ++i) {
    _slots.push_back(std::make_shared<WorkerSlot>());
    _slots.back()->core = weak_from_this();
  }
  _owner_module = Py_NewRef(module);
  _rebuild = Py_NewRef(rebuild);
  register_engine(shared_from_this());
  _live_workers.store(_recipe.workers);
  auto self = shared_from_this();
  for (std::size_t i = 0; i < _recipe.workers; ++i) {
    std::string name = _recipe.thread_name_prefix + std::to_string(i);
    _worker_threads.spawn(name, [self, i] { self->worker_main(i); });
  }
  _delivery_thread.spawn(_recipe.thread_name_prefix + "deliver", [self] { self->deliverer_main(); });
}

std::string EngineCore::broken_reason() const {
  std::lock_guard lock(_broken_mutex);
  return _broken_reason;
}

std::vector<TaskPtr> EngineCore::shutdown(bool cancel_queued) {
  _tasks.close();
  std::vector<TaskPtr> cancelled;
  if (cancel_queued) {
    for (auto& t : _tasks.drain())
      if (t->try_cancel()) cancelled.push_back(std::move(t));
  }
  return cancelled;
}

void EngineCore::join() {
  std::call_once(_joined, [this] {
    _worker_threads.join_all();
    _delivery_thread.join_all();
  });
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

void EngineCore::break_pool(const std::string& reason, rt::Payload info) {
  {
    std::lock_guard lock(_broken_mutex);
    if (_broken.load()) return;
    _broken_reason = reason;
    _broken.store(true, std::memory_order_release);
  }
  _tasks.close();
  // A notice with no future: the delivery thread reports the failure in the
  // owner interpreter (logged as the stdlib executors do) even if no task
  // waits.
  auto logged = std::make_shared<std::atomic<bool>>(false);
  auto notice = std::make_shared<PyTask>(rt::Task::Kind::Call);
  notice->try_start();
  notice->failed = true;
  notice->broken = true;
  notice->broken_reason = reason;
  notice->broken_logged = logged;
  notice->response = info;
  notice->finish();
  _completions.push(std::move(notice));
  for (auto& t : _tasks.drain()) {
    if (!t->try_start()) continue;  // cancelled meanwhile
    t->failed = true;
    t->broken = true;
    t->broken_reason = reason;
    t->broken_logged = logged;
    t->response = info;
    t->finish();
    _completions.push(std::move(t));
  }
}

void EngineCore::worker_exited() {
  if (_live_workers.fetch_sub(1, std::memory_order_acq_rel) == 1) _completions.close();
}

namespace {
// The worker slot of the engine worker thread running now (AsyncPool's
// initializer reads it).  Null on other threads.
thread_local std::shared_ptr<WorkerSlot>* t_current_slot = nullptr;
}  // namespace

void EngineCore::hand_over(TaskPtr task) {
  // Prompt delivery: a finished task goes to the delivery thread at once,
  // never held back while this worker runs its next task (which may take
  // any time).  Batching happens on the consumer side instead: the delivery
  // thread takes everything that arrived while it woke up and while it
  // waited for the caller's GIL (deliverer_main), so a stream of tiny tasks
  // still costs one GIL acquisition per batch, and a push costs a system
  // call only when the delivery thread sleeps.
  task->finish();  // wakes a caller blocked in result(), which may deliver it itself
  _completions.push(std::move(task));
}

void EngineCore::worker_main(std::size_t index) {
  std::shared_ptr<WorkerSlot> slot = _slots[index];
  t_current_slot = &slot;
  // A HybridPool worker also runs tasks in the owner interpreter.  Its thread
  // state there is made first, so that PyGILState_* on this thread (used by
  // extension modules that do not support subinterpreters, the very ones
  // that run as Local tasks) finds the owner interpreter.
  PyThreadState* owner_tstate = _recipe.local_tasks ? PyThreadState_New(_owner) : nullptr;

  for (;;) {
    std::string error;
    PyThreadState* tstate = new_isolated_interpreter(error);
    if (!tstate) {
      break_pool("could not create a worker interpreter: " + error, {});
      break;
    }
    bool recycle = false;
    {
      WorkerContext context;
      std::string reason;
      rt::Payload info;
      if (!context.setup(_recipe, reason, info)) {
        PyThreadState* saved = PyEval_SaveThread();
        break_pool("a worker could not start: " + reason, std::move(info));
        PyEval_RestoreThread(saved);
      } else {
        std::size_t done = 0;
        uint64_t pokes_seen = 0;
        PyEval_SaveThread();  // idle without holding this interpreter's GIL
        for (;;) {
          // Deferred tasks: take no more than max_deferred at a time, so the
          // other workers get the rest.
          for (uint32_t n; (n = slot->in_flight.load(std::memory_order_acquire)) >= _recipe.max_deferred;) {
            rt::futex_wait(slot->in_flight, n);
          }
          bool poked = false;
          std::optional<TaskPtr> task = _tasks.pop(pokes_seen, poked);
          if (poked) {
            PyEval_RestoreThread(tstate);
            context.sweep_shared();
            PyEval_SaveThread();
            continue;
          }
          if (!task) break;  // closed and drained
          TaskPtr t = std::move(*task);
          if (!t->try_start()) continue;  // cancelled while queued
          t->worker = static_cast<int>(index);
          if (t->kind() == rt::Task::Kind::Local) {
            run_local(*t, owner_tstate);
            continue;
          }
          if (t->kind() == rt::Task::Kind::Deferred) {
            // The event loop of this worker's interpreter decodes and starts
            // it (WorkerSlot.take_requests); this thread needs no GIL for it.
            slot->in_flight.fetch_add(1, std::memory_order_acq_rel);
            slot->request_launch(std::move(t));
            continue;
          }
          PyEval_RestoreThread(tstate);
          context.sweep_shared();
          context.run(*t);
          t->request.clear();
          PyEval_SaveThread();
          done += t->items;
          hand_over(std::move(t));
          if (_recipe.max_tasks && done >= _recipe.max_tasks) {
            recycle = true;
            break;
          }
        }
        // Deferred work still running finishes before the interpreter ends.
        for (uint32_t n; (n = slot->in_flight.load(std::memory_order_acquire)) > 0;) rt::futex_wait(slot->in_flight, n);
        PyEval_RestoreThread(tstate);
        context.finalize(_recipe);
      }
      context.clear();
    }
    end_interpreter(tstate);
    if (!recycle || !accepting()) break;
  }
  if (owner_tstate) {
    PyEval_RestoreThread(owner_tstate);
    PyThreadState_Clear(owner_tstate);
    PyThreadState_DeleteCurrent();
  }
  t_current_slot = nullptr;
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
    outcome = Ref::steal(PyObject_Call(fn, args, kwargs == Py_None ? nullptr : kwargs));
  }
  if (!outcome) {
    outcome = Ref::steal(PyErr_GetRaisedException());
    is_exception = true;
  }
  if (task.claim_delivery()) {
    Ref future = Ref::steal(std::exchange(task.future, nullptr));
    Ref bridge = Ref::steal(std::exchange(task.bridge, nullptr));
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
  _completions.push(std::move(task));
  slot.in_flight.fetch_sub(1, std::memory_order_acq_rel);
  rt::futex_wake_all(slot.in_flight);
}

void EngineCore::deliverer_main() {
  PyThreadState* tstate = PyThreadState_New(_owner);
  ModuleState& state = state_of(_owner_module);
  for (;;) {
    auto batch = _completions.pop_all();
    if (batch.empty()) break;  // closed and drained: every worker has exited
    AttachedThread attached(tstate);
    // Consumer-side batching: what finished while this thread waited for
    // the caller's GIL (up to a switch interval when the caller is busy)
    // joins this batch, so the GIL is taken once for all of it.
    for (auto& t : _completions.drain()) batch.push_back(std::move(t));
    BridgeBatch to_loops;
    for (auto& t : batch) deliver(state, _rebuild, *t, &to_loops);
    to_loops.flush(state);
    batch.clear();
  }
  // Every worker has exited: this thread is the engine's last user of the
  // owner interpreter's objects.
  PyEval_RestoreThread(tstate);
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

PyObject* shutdown_all_engines(PyObject*, PyObject*) {
  auto engines = EngineCore::live_engines(PyInterpreterState_Get());
  for (auto& core : engines) core->shutdown(false);
  {
    ReleasedGil released;
    for (auto& core : engines) core->join();
  }
  Py_RETURN_NONE;
}

}  // namespace interpool::py
