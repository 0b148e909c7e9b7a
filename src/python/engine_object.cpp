// src/python/engine_object.cpp: the _core.Engine and _core.Task types.
#include "python/engine.hpp"

#include <algorithm>
#include <chrono>
#include <new>
#include <optional>
#include <string>
#include <utility>

#include "python/callable_codec.hpp"
#include "python/codec.hpp"
#include "python/delivery.hpp"
#include "python/heap_type.hpp"
#include "python/int_option.hpp"
#include "python/interruptible_wait.hpp"

namespace interpool::py {
namespace {

struct EngineObject {
  PyObject_HEAD
  std::shared_ptr<EngineCore> core;
  PyObject* rebuild;       ///< interpool._errors.rebuild (or rebuild_stdlib): Failure -> exception
  PyObject* broken_type;   ///< interpool.BrokenPool
  bool stateless;          ///< also send stateless functions as code (InterpreterPoolExecutor)
};

struct TaskObject {
  PyObject_HEAD
  TaskPtr task;
  PyObject* engine;  ///< the EngineObject that made the task
};

EngineObject* as_engine(PyObject* o) { return reinterpret_cast<EngineObject*>(o); }
TaskObject* as_task(PyObject* o) { return reinterpret_cast<TaskObject*>(o); }

PyObject* new_task_object(ModuleState& state, PyObject* engine, TaskPtr task) {
  auto* self = PyObject_GC_New(TaskObject, state.task_type);
  if (!self) return nullptr;
  new (&self->task) TaskPtr(std::move(task));
  self->engine = Py_NewRef(engine);
  PyObject_GC_Track(self);
  return reinterpret_cast<PyObject*>(self);
}

/// Drops the owner-interpreter references of a task that never ran.
void release_unqueued(PyTask& task) {
  Py_CLEAR(task.future);
  Py_CLEAR(task.bridge);
  Py_CLEAR(task.rebuild);
  Py_CLEAR(task.local_call);
}

/// Raises the error that submit() gives once the pool takes no more work.
PyObject* refuse(EngineObject* self) {
  if (self->core->broken()) {
    std::string reason = self->core->broken_reason();
    PyErr_SetString(self->broken_type, reason.c_str());
  } else {
    PyErr_SetString(PyExc_RuntimeError, "cannot schedule new futures after shutdown");
  }
  return nullptr;
}

/// Queues `task` for `future` and returns the _core.Task handle.
PyObject* enqueue(PyObject* engine, ModuleState& state, TaskPtr task, PyObject* future) {
  auto* self = as_engine(engine);
  Ref handle = Ref::steal(new_task_object(state, engine, task));
  if (!handle) return nullptr;
  task->future = Py_NewRef(future);
  task->owner = PyInterpreterState_Get();
  if (!self->core->submit(task)) {
    release_unqueued(*task);
    return refuse(self);
  }
  return handle.release();
}

/// Seconds (a float, >= 0) as nanoseconds; `name` for the error.
bool parse_seconds(double seconds, const char* name, std::chrono::nanoseconds& out) {
  if (!(seconds >= 0) || seconds > 1e9) {
    PyErr_Format(PyExc_ValueError, "%s must be between 0 and 1e9 seconds, got %R", name,
                 Ref::steal(PyFloat_FromDouble(seconds)).get());
    return false;
  }
  out = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(seconds));
  return true;
}

// Engine(*, workers, max_tasks, sys_path, setup, initializer, initargs, rebuild,
//        broken_type, name_prefix, local_threads=0, max_deferred=1,
//        finalizer=None, finalargs=(), stateless=False, task_timeout=0.0,
//        interrupt_grace=1.0, lazy_workers=False, forward_output=True):
// keyword arguments only, made by interpool._pool and interpool._async_pool,
// parsed into a WorkerRecipe.  `setup` is a dict, the keyword arguments of
// interpool._worker.setup; `rebuild` turns a _core.Failure into an
// exception (interpool._errors.rebuild or rebuild_stdlib).
PyObject* engine_new(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  PyObject *workers_obj, *max_tasks_obj;
  PyObject *sys_path, *setup, *initializer, *initargs, *rebuild, *broken_type;
  const char* prefix;
  if (PyTuple_GET_SIZE(args)) {
    PyErr_SetString(PyExc_TypeError, "Engine() takes keyword arguments only");
    return nullptr;
  }
  PyObject* local_threads_obj = nullptr;
  int lazy_workers = 0;
  PyObject* max_deferred_obj = nullptr;
  PyObject* finalizer = Py_None;
  PyObject* finalargs = nullptr;
  int stateless = 0;
  int forward_output = 1;
  double task_timeout = 0.0, interrupt_grace = 1.0;
  static const char* keywords[] = {"workers",         "max_tasks",    "sys_path",       "setup",       "initializer",
                                   "initargs",        "rebuild",      "broken_type",    "name_prefix", "local_threads",
                                   "max_deferred",    "finalizer",    "finalargs",      "stateless",   "task_timeout",
                                   "interrupt_grace", "lazy_workers", "forward_output", nullptr};
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$OOO!O!OO!OOsOOOO!pddpp:Engine", const_cast<char**>(keywords),
                                   &workers_obj, &max_tasks_obj, &PyList_Type, &sys_path, &PyDict_Type, &setup,
                                   &initializer, &PyTuple_Type, &initargs, &rebuild, &broken_type, &prefix,
                                   &local_threads_obj, &max_deferred_obj, &finalizer, &PyTuple_Type, &finalargs,
                                   &stateless, &task_timeout, &interrupt_grace, &lazy_workers, &forward_output))
    return nullptr;
  for (const char* required : {"workers", "max_tasks", "sys_path", "setup", "initializer", "initargs", "rebuild",
                               "broken_type", "name_prefix"}) {
    if (!kwds || !PyDict_GetItemString(kwds, required)) {
      PyErr_Format(PyExc_TypeError, "Engine() missing required keyword argument '%s'", required);
      return nullptr;
    }
  }
  // Checked against the C++ types before anything is allocated (the Python
  // classes also check workers against what the system can run).
  long long workers, max_tasks, max_deferred = 1, local_threads = 0;
  if (!int_option(workers_obj, "workers", 1, PY_SSIZE_T_MAX, workers) ||
      !int_option(max_tasks_obj, "max_tasks_per_worker", 0, PY_SSIZE_T_MAX, max_tasks) ||
      (max_deferred_obj && !int_option(max_deferred_obj, "concurrency", 1, UINT32_MAX, max_deferred)) ||
      (local_threads_obj && !int_option(local_threads_obj, "threads", 0, PY_SSIZE_T_MAX, local_threads)))
    return nullptr;
  std::chrono::nanoseconds timeout_ns, grace_ns;
  if (!parse_seconds(task_timeout, "task_timeout", timeout_ns) ||
      !parse_seconds(interrupt_grace, "interrupt_grace", grace_ns))
    return nullptr;
  ModuleState& state = state_of_type(type);
  WorkerRecipe recipe;
  recipe.workers = static_cast<std::size_t>(workers);
  recipe.max_tasks = static_cast<std::size_t>(max_tasks);
  recipe.thread_name_prefix = prefix;
  recipe.local_threads = static_cast<std::size_t>(local_threads);
  recipe.lazy_workers = lazy_workers;
  recipe.forward_output = forward_output;
  recipe.max_deferred = static_cast<uint32_t>(max_deferred);
  recipe.task_timeout = timeout_ns;
  recipe.interrupt_grace = grace_ns;
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(sys_path); ++i) {
    PyObject* entry = PyList_GET_ITEM(sys_path, i);
    if (!PyUnicode_Check(entry)) continue;  // sys.path may hold odd things; workers get the strings
    Ref encoded = Ref::steal(PyUnicode_EncodeFSDefault(entry));
    if (!encoded) return nullptr;
    recipe.sys_path.emplace_back(PyBytes_AS_STRING(encoded.get()), PyBytes_GET_SIZE(encoded.get()));
  }
  {
    Encoder enc(state, recipe.setup);
    if (!enc.value(setup)) return nullptr;
  }
  if (initializer != Py_None) {
    Encoder enc(state, recipe.initializer);
    if (!encode_callable(state, enc, recipe.initializer, initializer, stateless) || !enc.value(initargs))
      return nullptr;
  }
  if (finalizer != Py_None) {
    Encoder enc(state, recipe.finalizer);
    Ref none = Ref::steal(PyTuple_New(0));
    if (!none || !encode_callable(state, enc, recipe.finalizer, finalizer) ||
        !enc.value(finalargs ? finalargs : none.get()))
      return nullptr;
  }

  auto* self = PyObject_GC_New(EngineObject, type);
  if (!self) return nullptr;
  new (&self->core) std::shared_ptr<EngineCore>();
  self->rebuild = Py_NewRef(rebuild);
  self->broken_type = Py_NewRef(broken_type);
  self->stateless = stateless;
  PyObject_GC_Track(self);
  Ref owner = Ref::steal(reinterpret_cast<PyObject*>(self));
  try {
    self->core = std::make_shared<EngineCore>(std::move(recipe), PyInterpreterState_Get());
    PyObject* module = PyType_GetModule(type);
    if (!module) return nullptr;
    self->core->start(module, rebuild);
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_Format(PyExc_RuntimeError, "could not start the pool: %s", e.what());
    return nullptr;
  }
  return owner.release();
}

constexpr auto* engine_traverse = &traverse_fields<EngineObject, &EngineObject::rebuild, &EngineObject::broken_type>;
constexpr auto* engine_clear = &clear_fields<EngineObject, &EngineObject::rebuild, &EngineObject::broken_type>;

void engine_dealloc(PyObject* o) {
  heap_dealloc(o, [&] {
    auto* self = as_engine(o);
    // Like an executor that is garbage collected: take no more work, let the
    // queued work finish, and let interpreter shutdown join the threads.
    if (self->core) self->core->shutdown(false);
    self->core.~shared_ptr();
    engine_clear(o);
  });
}

/// A per-call timeout argument: None (the pool's), or seconds > 0.
bool parse_call_timeout(PyObject* arg, PyTask& task) {
  if (arg == Py_None) return true;
  double seconds = PyFloat_AsDouble(arg);
  if (seconds == -1.0 && PyErr_Occurred()) return false;
  if (!(seconds > 0)) {
    PyErr_Format(PyExc_ValueError, "timeout must be a positive number of seconds or None, got %R", arg);
    return false;
  }
  return parse_seconds(seconds, "timeout", task.timeout);
}

/// Gives `task` its asyncio bridge, and the bridge's LoopWaker if its loop watches one.
void set_bridge(ModuleState& state, PyTask& task, PyObject* bridge, PyObject* rebuild) {
  task.bridge = Py_NewRef(bridge);
  Ref waker = Ref::steal(PyObject_GetAttr(bridge, state.str_waker));
  if (!waker) return PyErr_Clear();
  task.waker = waker_of(state.loop_waker_type, waker.get());
  if (task.waker) task.rebuild = Py_NewRef(rebuild);
}

/// Parses (future, fn, args, kwargs[, bridge[, timeout]]) and makes a task of `kind`.
TaskPtr make_call_task(PyObject* o, PyObject* const* args, Py_ssize_t nargs, rt::Task::Kind kind, const char* usage) {
  if (nargs < 4 || nargs > 6 || !PyTuple_Check(args[2]) || (args[3] != Py_None && !PyDict_Check(args[3]))) {
    PyErr_Format(PyExc_TypeError, "%s(future, fn, args: tuple, kwargs: dict | None, bridge=None, timeout=None)", usage);
    return nullptr;
  }
  auto* self = as_engine(o);
  if (!self->core->accepting()) return refuse(self), nullptr;
  ModuleState& state = state_of_type(Py_TYPE(o));
  TaskPtr task;
  try {
    task = std::make_shared<PyTask>(kind);
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory(), nullptr;
  }
  if (kind == rt::Task::Kind::Local) {
    if (!PyCallable_Check(args[1])) {
      PyErr_Format(PyExc_TypeError, "fn must be callable, not %.100s", Py_TYPE(args[1])->tp_name);
      return nullptr;
    }
    task->local_call = PyTuple_Pack(3, args[1], args[2], args[3]);
    if (!task->local_call) return nullptr;
  } else {
    Encoder enc(state, task->request);
    if (!encode_callable(state, enc, task->request, args[1], self->stateless) ||
        !encode_call_args(enc, args[2], args[3]))
      return nullptr;
  }
  if (nargs == 6 && !parse_call_timeout(args[5], *task)) return nullptr;
  if (nargs >= 5 && args[4] != Py_None) set_bridge(state, *task, args[4], self->rebuild);
  return task;
}

// submit(future, fn, args, kwargs, bridge=None) -> Task
PyObject* engine_submit(PyObject* o, PyObject* const* args, Py_ssize_t nargs) {
  TaskPtr task = make_call_task(o, args, nargs, rt::Task::Kind::Call, "submit");
  if (!task) return nullptr;
  return enqueue(o, state_of_type(Py_TYPE(o)), std::move(task), args[0]);
}

// submit_local(future, fn, args, kwargs, bridge=None) -> Task: runs on a
// worker thread in this interpreter (HybridPool).
PyObject* engine_submit_local(PyObject* o, PyObject* const* args, Py_ssize_t nargs) {
  TaskPtr task = make_call_task(o, args, nargs, rt::Task::Kind::Local, "submit_local");
  if (!task) return nullptr;
  return enqueue(o, state_of_type(Py_TYPE(o)), std::move(task), args[0]);
}

// submit_deferred(future, fn, args, kwargs, bridge=None) -> Task: the
// event loop of a worker's interpreter gets its Launch(completion, fn, args,
// kwargs) from WorkerSlot.take_requests(); done when the completion finishes.
PyObject* engine_submit_deferred(PyObject* o, PyObject* const* args, Py_ssize_t nargs) {
  TaskPtr task = make_call_task(o, args, nargs, rt::Task::Kind::Deferred, "submit_deferred");
  if (!task) return nullptr;
  return enqueue(o, state_of_type(Py_TYPE(o)), std::move(task), args[0]);
}

// submit_map(future, fn, items: list[tuple], bridge=None) -> Task
PyObject* engine_submit_map(PyObject* o, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs < 3 || nargs > 5 || !PyList_Check(args[2])) {
    PyErr_SetString(PyExc_TypeError, "submit_map(future, fn, items: list, bridge=None, timeout=None)");
    return nullptr;
  }
  auto* self = as_engine(o);
  if (!self->core->accepting()) return refuse(self);
  ModuleState& state = state_of_type(Py_TYPE(o));
  TaskPtr task;
  try {
    task = std::make_shared<PyTask>(rt::Task::Kind::Map);
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  }
  task->items = static_cast<uint32_t>(std::max<Py_ssize_t>(1, PyList_GET_SIZE(args[2])));
  Encoder enc(state, task->request);
  if (!encode_callable(state, enc, task->request, args[1], self->stateless) || !enc.value(args[2])) return nullptr;
  if (nargs == 5 && !parse_call_timeout(args[4], *task)) return nullptr;
  if (nargs >= 4 && args[3] != Py_None) set_bridge(state, *task, args[3], self->rebuild);
  return enqueue(o, state, std::move(task), args[0]);
}

// shutdown(wait, cancel_futures, interrupt=False) -> [(future, bridge or None)] of the cancelled tasks
// With interrupt, the running tasks are interrupted too.  The wait answers
// signals: Ctrl-C abandons it (the pool still shuts down).
PyObject* engine_shutdown(PyObject* o, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs < 2 || nargs > 3) {
    PyErr_SetString(PyExc_TypeError, "shutdown(wait, cancel_futures, interrupt=False)");
    return nullptr;
  }
  int wait = PyObject_IsTrue(args[0]);
  int cancel = PyObject_IsTrue(args[1]);
  int interrupt = nargs == 3 ? PyObject_IsTrue(args[2]) : 0;
  if (wait < 0 || cancel < 0 || interrupt < 0) return nullptr;
  auto* self = as_engine(o);
  auto cancelled = self->core->shutdown(cancel);
  self->core->count_cancelled(cancelled.size());
  // Asked not to wait for work: what still runs at exit is interrupted.
  if (cancel || interrupt) self->core->set_stop_on_exit();
  if (interrupt) self->core->stop_all_running(StopReason::Shutdown);
  Ref futures = Ref::steal(PyList_New(0));
  if (!futures) return nullptr;
  for (auto& t : cancelled) {
    Ref f = Ref::steal(std::exchange(t->future, nullptr));
    Ref bridge = Ref::steal(std::exchange(t->bridge, nullptr));
    Py_CLEAR(t->rebuild);
    Py_CLEAR(t->local_call);
    if (!f) continue;
    Ref pair = Ref::steal(PyTuple_Pack(2, f.get(), bridge ? bridge.get() : Py_None));
    if (!pair || PyList_Append(futures.get(), pair.get()) < 0) return nullptr;
  }
  if (wait) {
    std::shared_ptr<EngineCore> core = self->core;
    if (!wait_for_engine(*core)) return nullptr;
  }
  return futures.release();
}

// stats() -> dict: the counters, and per worker what it runs.
PyObject* engine_stats(PyObject* o, PyObject*) {
  auto* self = as_engine(o);
  EngineCore& core = *self->core;
  auto runs = core.snapshot_runs();
  Ref workers = Ref::steal(PyList_New(0));
  if (!workers) return nullptr;
  std::size_t running = 0;
  for (auto& r : runs) {
    PyObject* future = (r.task && r.task->future) ? r.task->future : Py_None;
    if (r.task) ++running;
    Ref entry = Ref::steal(Py_BuildValue("{s:n,s:O,s:O,s:d,s:l}", "index", static_cast<Py_ssize_t>(r.index), "future",
                                         future, "initializing", r.in_setup ? Py_True : Py_False, "seconds", r.seconds,
                                         "native_id", r.native_id));
    if (!entry || PyList_Append(workers.get(), entry.get()) < 0) return nullptr;
  }
  auto& c = core.counts;
  auto load = [](const std::atomic<uint64_t>& a) { return static_cast<unsigned long long>(a.load()); };
  return Py_BuildValue("{s:n,s:n,s:K,s:K,s:K,s:K,s:K,s:K,s:O}", "queued", static_cast<Py_ssize_t>(core.counts.queued()),
                       "running", static_cast<Py_ssize_t>(running), "done", load(c.done), "failed", load(c.failed),
                       "cancelled", load(c.cancelled), "interrupted", load(c.interrupted), "timed_out",
                       load(c.timed_out), "workers_replaced", load(c.replaced), "workers", workers.get());
}

PyObject* engine_get_broken(PyObject* o, void*) { return PyBool_FromLong(as_engine(o)->core->broken()); }

PyObject* engine_get_broken_reason(PyObject* o, void*) {
  auto* self = as_engine(o);
  if (!self->core->broken()) Py_RETURN_NONE;
  return PyUnicode_FromString(self->core->broken_reason().c_str());
}

PyObject* engine_get_workers(PyObject* o, void*) { return PyLong_FromSize_t(as_engine(o)->core->workers()); }
PyObject* engine_get_queued(PyObject* o, void*) { return PyLong_FromSize_t(as_engine(o)->core->queued()); }
PyObject* engine_get_accepting(PyObject* o, void*) { return PyBool_FromLong(as_engine(o)->core->accepting()); }
PyObject* engine_get_on_own_thread(PyObject* o, void*) { return PyBool_FromLong(as_engine(o)->core->on_own_thread()); }

PyMethodDef engine_methods[] = {
    {"submit", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(engine_submit)), METH_FASTCALL,
     "submit(future, fn, args, kwargs) -> Task"},
    {"submit_map", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(engine_submit_map)), METH_FASTCALL,
     "submit_map(future, fn, items, bridge=None) -> Task: fn(*item) for each item, one task"},
    {"submit_local", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(engine_submit_local)), METH_FASTCALL,
     "submit_local(future, fn, args, kwargs, bridge=None) -> Task: run on a worker thread, here"},
    {"submit_deferred", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(engine_submit_deferred)),
     METH_FASTCALL, "submit_deferred(future, fn, args, kwargs, bridge=None) -> Task: for a worker's event loop"},
    {"shutdown", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(engine_shutdown)), METH_FASTCALL,
     "shutdown(wait, cancel_futures, interrupt=False) -> [(future, bridge)] of the cancelled tasks"},
    {"stats", engine_stats, METH_NOARGS, "stats() -> dict: task counts, and what each worker runs now"},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef engine_getset[] = {
    {"broken", engine_get_broken, nullptr, "Whether a worker failed to start.", nullptr},
    {"broken_reason", engine_get_broken_reason, nullptr, "Why the pool is broken, or None.", nullptr},
    {"workers", engine_get_workers, nullptr, "Number of worker interpreters.", nullptr},
    {"queued", engine_get_queued, nullptr, "Tasks waiting for a worker.", nullptr},
    {"accepting", engine_get_accepting, nullptr, "Whether submit() still takes work.", nullptr},
    {"on_own_thread", engine_get_on_own_thread, nullptr, "Whether the calling thread is one of the pool's.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot engine_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(engine_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(engine_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(engine_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(engine_clear)},
    {Py_tp_methods, engine_methods},
    {Py_tp_getset, engine_getset},
    {Py_tp_doc, const_cast<char*>("The C++ core of one pool (internal: use interpool.Pool).")},
    {0, nullptr},
};

// ------------------------------------------------------------------- Task

constexpr auto* task_traverse = &traverse_fields<TaskObject, &TaskObject::engine>;
constexpr auto* task_clear = &clear_fields<TaskObject, &TaskObject::engine>;

void task_dealloc(PyObject* o) {
  heap_dealloc(o, [&] {
    auto* self = as_task(o);
    if (self->task && self->task->state() == rt::Task::State::Cancelled) release_unqueued(*self->task);
    self->task.~TaskPtr();
    task_clear(o);
  });
}

// cancel() -> bool: True if the task was still queued and now never runs.
PyObject* task_cancel(PyObject* o, PyObject*) {
  auto* self = as_task(o);
  if (!self->task->try_cancel()) Py_RETURN_FALSE;
  release_unqueued(*self->task);
  as_engine(self->engine)->core->count_cancelled();
  Py_RETURN_TRUE;
}

// interrupt() -> bool: raise TaskInterrupted in the running task's code
// (its worker is replaced if it has not stopped after the grace period).
// False if no worker runs it now.
PyObject* task_interrupt(PyObject* o, PyObject*) {
  auto* self = as_task(o);
  return PyBool_FromLong(as_engine(self->engine)->core->request_stop(self->task, StopReason::Interrupt));
}

// request_cancel() -> bool: ask a running Deferred task's worker to cancel it.
PyObject* task_request_cancel(PyObject* o, PyObject*) {
  auto* self = as_task(o);
  PyTask& task = *self->task;
  if (task.kind() != rt::Task::Kind::Deferred || task.state() != rt::Task::State::Running || task.worker < 0 ||
      as_engine(self->engine)->core->orphaned() || task.cancel_requested.exchange(true))
    Py_RETURN_FALSE;
  as_engine(self->engine)->core->slot(static_cast<std::size_t>(task.worker)).request_cancel(self->task);
  Py_RETURN_TRUE;
}

// settle(timeout: float | None) -> bool
// Waits, without holding the GIL and interruptibly, until the task finished,
// then delivers its result to the future unless someone already did.  Returns
// False on timeout.  Raises whatever a signal handler raises (Ctrl-C).
PyObject* task_settle(PyObject* o, PyObject* arg) {
  auto* self = as_task(o);
  auto* engine = as_engine(self->engine);
  PyTask& task = *self->task;
  rt::Deadline deadline;
  if (arg != Py_None) {
    double seconds = PyFloat_AsDouble(arg);
    if (seconds == -1.0 && PyErr_Occurred()) return nullptr;
    deadline = rt::Deadline::after(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(std::max(0.0, seconds))));
  }
  if (!task.finished()) {
    if (engine->core->orphaned()) {  // its worker is in the parent
      PyErr_SetString(engine->broken_type, engine->core->broken_reason().c_str());
      return nullptr;
    }
    int r = wait_released(deadline, [&](std::chrono::nanoseconds slice) { return task.wait(slice); });
    if (r < 0) return nullptr;
    if (r == 0 && !task.finished()) Py_RETURN_FALSE;
  }
  if (task.state() == rt::Task::State::Done) {
    // What the task printed is written (by the delivery thread) before its
    // future can be seen done.
    if (!engine->core->output_written(task)) {
      int r = wait_released(deadline, [&](std::chrono::nanoseconds slice) {
        return engine->core->output().wait_written(task.output_mark, slice);
      });
      if (r < 0) return nullptr;
      if (r == 0 && !engine->core->output_written(task)) Py_RETURN_FALSE;
    }
    deliver(state_of_type(Py_TYPE(o)), engine->rebuild, task);
  }
  Py_RETURN_TRUE;
}

PyObject* task_get_running(PyObject* o, void*) {
  return PyBool_FromLong(as_task(o)->task->state() == rt::Task::State::Running);
}

PyObject* task_get_finished(PyObject* o, void*) { return PyBool_FromLong(as_task(o)->task->finished()); }

PyMethodDef task_methods[] = {
    {"cancel", task_cancel, METH_NOARGS, "Cancel the task if it has not started.  Returns whether it was."},
    {"interrupt", task_interrupt, METH_NOARGS,
     "Raise TaskInterrupted in the task's code if a worker runs it.  Returns whether one did."},
    {"request_cancel", task_request_cancel, METH_NOARGS,
     "Ask the worker running a deferred task to cancel it.  Returns whether the request was sent."},
    {"settle", task_settle, METH_O, "settle(timeout) -> bool: wait for the task and deliver its result to its future."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef task_getset[] = {
    {"running", task_get_running, nullptr, "Whether a worker runs the task now.", nullptr},
    {"finished", task_get_finished, nullptr, "Whether the task completed or was cancelled.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot task_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(task_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(task_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(task_clear)},
    {Py_tp_methods, task_methods},
    {Py_tp_getset, task_getset},
    {Py_tp_doc, const_cast<char*>("The engine side of one submitted task (internal).")},
    {0, nullptr},
};

}  // namespace

PyType_Spec engine_spec = heap_type_spec<EngineObject>("interpool._core.Engine", Py_TPFLAGS_HAVE_GC, engine_slots);

PyType_Spec task_spec = heap_type_spec<TaskObject>("interpool._core.Task",
                                                   Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION, task_slots);

}  // namespace interpool::py
