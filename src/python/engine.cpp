// src/python/engine.cpp: worker interpreters, delivery, and the _core.Engine
// and _core.Task types.
#include "python/engine.hpp"

#include <algorithm>
#include <chrono>
#include <new>
#include <string_view>
#include <unordered_map>

#include "python/codec.hpp"
#include "python/handle_object.hpp"
#include "python/interpreter.hpp"

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

// How long a waiting caller sleeps before it checks for signals, should a
// signal slip in between its check and its sleep.  The futex wait normally
// returns at once on a signal (EINTR); this only bounds the unlucky case.
constexpr auto kSignalCheckInterval = std::chrono::milliseconds(100);

// Worker-side cache bound: distinct callables (partials with different bound
// arguments count separately) kept per worker interpreter.
constexpr std::size_t kWorkerCallableCacheLimit = 512;
// Caller-side cache bound: callables whose pickled form is remembered.
constexpr Py_ssize_t kCallerCallableCacheLimit = 4096;

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

/// "TypeName: message" for an exception object, for broken-pool reasons.
std::string exception_summary(PyObject* exc) {
  std::string out = Py_TYPE(exc)->tp_name;
  Ref text = Ref::steal(PyObject_Str(exc));
  if (text) {
    const char* s = PyUnicode_AsUTF8(text.get());
    if (s && *s) (out += ": ") += s;
  }
  PyErr_Clear();
  return out;
}

// ------------------------------------------------------------ worker side

/// The state of one worker interpreter, on its own thread, under its own GIL.
class WorkerContext {
 public:
  /// Prepares the interpreter: sys.path, interpool imports, __main__, then
  /// the user's initializer.  On failure fills `reason` and, when possible,
  /// `info` (the encoded exception description).
  bool setup(const WorkerRecipe& recipe, std::string& reason, rt::Payload& info);

  /// Runs `task` and writes its response.
  void run(PyTask& task);

  /// Drops decoded copies of SharedValues that were released.
  void sweep_shared() {
    if (_state && _state->shared_cache->seen_epoch != rt::SharedValue::released_epoch())
      _state->shared_cache->sweep();
  }

  /// Drops every reference this interpreter's objects hold.
  void clear() {
    _callables.clear();
    _describe.reset();
    _worker.reset();
    _core.reset();
  }

 private:
  /// The callable a request starts with: a flag byte ('c': pickled by name,
  /// cacheable; 'u': carries handles, decoded afresh), then the pickle.
  PyObject* callable(Decoder& dec, Ref& holder);
  void fail(PyTask& task, PyObject* partial);
  bool describe(PyObject* exc, rt::Payload& out, PyObject* partial);

  Ref _core;      // interpool._core, imported in this interpreter
  Ref _worker;    // interpool._worker
  Ref _describe;  // interpool._worker.describe_exception
  ModuleState* _state = nullptr;
  std::unordered_map<std::string, Ref, StringHash, std::equal_to<>> _callables;
};

bool WorkerContext::setup(const WorkerRecipe& recipe, std::string& reason, rt::Payload& info) {
  auto fail_here = [&](const char* step) {
    PyObject* exc = PyErr_GetRaisedException();
    reason = std::string(step) + (exc ? " (" + exception_summary(exc) + ")" : "");
    if (exc && _describe) {
      std::string original = exception_summary(exc);
      if (describe(exc, info, nullptr)) reason = std::string(step) + ": " + original;
    }
    Py_XDECREF(exc);
    PyErr_Clear();
    return false;
  };

  // sys.path first: interpool itself may only be importable through it.
  Ref path = Ref::steal(PyList_New(static_cast<Py_ssize_t>(recipe.sys_path.size())));
  if (!path) return fail_here("could not set up sys.path in a worker interpreter");
  for (std::size_t i = 0; i < recipe.sys_path.size(); ++i) {
    const std::string& entry = recipe.sys_path[i];
    PyObject* s = PyUnicode_DecodeFSDefaultAndSize(entry.data(), static_cast<Py_ssize_t>(entry.size()));
    if (!s) return fail_here("could not set up sys.path in a worker interpreter");
    PyList_SET_ITEM(path.get(), i, s);
  }
  if (PySys_SetObject("path", path.get()) < 0) return fail_here("could not set sys.path in a worker interpreter");

  _core = Ref::steal(PyImport_ImportModule("interpool._core"));
  if (!_core) return fail_here("could not import interpool._core in a worker interpreter");
  _state = &state_of(_core.get());
  _worker = Ref::steal(PyImport_ImportModule("interpool._worker"));
  if (!_worker) return fail_here("could not import interpool._worker in a worker interpreter");
  _describe = Ref::steal(PyObject_GetAttrString(_worker.get(), "describe_exception"));
  if (!_describe) return fail_here("interpool._worker is incomplete");

  {
    Decoder dec(*_state, recipe.setup);
    Ref args = Ref::steal(dec.value());
    if (!args) return fail_here("could not decode the worker setup");
    Ref setup = Ref::steal(PyObject_GetAttrString(_worker.get(), "setup"));
    if (!setup) return fail_here("interpool._worker is incomplete");
    Ref done = Ref::steal(PyObject_Call(setup.get(), args.get(), nullptr));
    if (!done) return fail_here("worker setup failed");
  }

  if (!recipe.initializer.empty()) {
    Decoder dec(*_state, recipe.initializer);
    Ref holder;
    PyObject* fn = callable(dec, holder);
    if (!fn) return fail_here("initializer failed");
    Ref args = Ref::steal(dec.value());
    if (!args) return fail_here("initializer failed");
    Ref done = Ref::steal(PyObject_Call(fn, args.get(), nullptr));
    if (!done) return fail_here("initializer failed");
  }
  return true;
}

PyObject* WorkerContext::callable(Decoder& dec, Ref& holder) {
  std::string_view flag, blob;
  if (!dec.raw(flag) || !dec.raw(blob)) return nullptr;
  if (flag != "c") {
    holder = Ref::steal(dec.unpickle(blob));
    return holder.get();
  }
  auto it = _callables.find(blob);
  if (it != _callables.end()) return it->second.get();
  Ref fn = Ref::steal(dec.unpickle(blob));
  if (!fn) return nullptr;
  if (_callables.size() >= kWorkerCallableCacheLimit) _callables.clear();
  return _callables.emplace(std::string(blob), std::move(fn)).first->second.get();
}

bool WorkerContext::describe(PyObject* exc, rt::Payload& out, PyObject* partial) {
  out.clear();
  Ref info = Ref::steal(PyObject_CallOneArg(_describe.get(), exc));
  if (info && partial) info = Ref::steal(PyTuple_Pack(2, info.get(), partial));
  if (!info) {
    PyErr_Clear();
    // describe_exception itself failed: fall back to what C++ can say.
    Ref type_name = Ref::steal(PyUnicode_FromString(Py_TYPE(exc)->tp_name));
    Ref message = Ref::steal(PyUnicode_FromString(exception_summary(exc).c_str()));
    Ref empty = Ref::steal(PyUnicode_FromString(""));
    Ref kind = Ref::steal(PyUnicode_FromString("exception"));
    if (!type_name || !message || !empty || !kind) return PyErr_Clear(), false;
    info = Ref::steal(PyTuple_Pack(5, kind.get(), Py_None, type_name.get(), message.get(), empty.get()));
    if (info && partial) info = Ref::steal(PyTuple_Pack(2, info.get(), partial));
    if (!info) return PyErr_Clear(), false;
  }
  Encoder enc(*_state, out);
  if (!enc.value(info.get())) {
    PyErr_Clear();
    out.clear();
    return false;
  }
  return true;
}

void WorkerContext::fail(PyTask& task, PyObject* partial) {
  PyObject* exc = PyErr_GetRaisedException();
  task.failed = true;
  if (!describe(exc, task.response, partial)) task.response.clear();
  Py_XDECREF(exc);
}

void WorkerContext::run(PyTask& task) {
  Decoder dec(*_state, task.request);
  Ref holder;
  PyObject* fn = callable(dec, holder);
  if (!fn) return fail(task, task.kind() == rt::Task::Kind::Map ? Ref::steal(PyList_New(0)).get() : nullptr);

  if (task.kind() == rt::Task::Kind::Call) {
    Ref args = Ref::steal(dec.value());
    Ref kwargs = args ? Ref::steal(dec.value()) : Ref();
    if (!kwargs) return fail(task, nullptr);
    Ref result = Ref::steal(PyObject_Call(fn, args.get(), kwargs.get() == Py_None ? nullptr : kwargs.get()));
    if (!result) return fail(task, nullptr);
    Encoder enc(*_state, task.response);
    if (!enc.value(result.get())) return fail(task, nullptr);
    return;
  }

  // Map: fn(*item) for each item of the chunk, stopping at the first error.
  Ref results = Ref::steal(PyList_New(0));
  Ref items = results ? Ref::steal(dec.value()) : Ref();
  if (!items) return fail(task, results.get());
  Py_ssize_t n = PyList_GET_SIZE(items.get());
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* item = PyList_GET_ITEM(items.get(), i);
    Ref r = Ref::steal(PyObject_Call(fn, item, nullptr));
    if (!r || PyList_Append(results.get(), r.get()) < 0) return fail(task, results.get());
  }
  Encoder enc(*_state, task.response);
  if (!enc.value(results.get())) {
    Ref none = Ref::steal(PyList_New(0));
    task.response.clear();
    return fail(task, none.get());
  }
}

}  // namespace

// -------------------------------------------------------------- EngineCore

PyTask::~PyTask() {
  // A future still referenced here would need its interpreter's GIL to be
  // released; every path clears it under that GIL first.  Should one slip
  // through, leaking it is safe and decref'ing it here is not.
}

EngineCore::EngineCore(WorkerRecipe recipe, PyInterpreterState* owner)
    : _recipe(std::move(recipe)), _owner(owner), _tasks(/*spin=*/64), _completions(/*spin=*/0) {}

void EngineCore::start(PyObject* module, PyObject* rebuild) {
  register_engine(shared_from_this());
  _live_workers.store(_recipe.workers);
  auto self = shared_from_this();
  for (std::size_t i = 0; i < _recipe.workers; ++i) {
    std::string name = _recipe.thread_name_prefix + std::to_string(i);
    _worker_threads.spawn(name, [self, i] { self->worker_main(i); });
  }
  Py_INCREF(module);
  Py_INCREF(rebuild);
  _delivery_thread.spawn(_recipe.thread_name_prefix + "deliver",
                         [self, module, rebuild] { self->deliverer_main(module, rebuild); });
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
  for (auto& t : _tasks.drain()) {
    if (!t->try_start()) continue;  // cancelled meanwhile
    t->failed = true;
    t->broken = true;
    t->broken_reason = reason;
    t->response = info;
    t->finish();
    _completions.push(std::move(t));
  }
}

void EngineCore::worker_exited() {
  if (_live_workers.fetch_sub(1, std::memory_order_acq_rel) == 1) _completions.close();
}

void EngineCore::worker_main(std::size_t index) {
  (void)index;
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
          bool poked;
          auto task = _tasks.pop(pokes_seen, poked);
          if (poked) {
            PyEval_RestoreThread(tstate);
            context.sweep_shared();
            PyEval_SaveThread();
            continue;
          }
          if (!task) break;  // closed and drained
          PyTask& t = **task;
          if (!t.try_start()) continue;  // cancelled while queued
          PyEval_RestoreThread(tstate);
          context.sweep_shared();
          context.run(t);
          t.request.clear();
          PyEval_SaveThread();
          t.finish();
          _completions.push(std::move(*task));
          done += t.items;
          if (_recipe.max_tasks && done >= _recipe.max_tasks) {
            recycle = true;
            break;
          }
        }
        PyEval_RestoreThread(tstate);
      }
      context.clear();
    }
    end_interpreter(tstate);
    if (!recycle || !accepting()) break;
  }
  worker_exited();
}

void EngineCore::deliverer_main(PyObject* module, PyObject* rebuild) {
  PyThreadState* tstate = PyThreadState_New(_owner);
  ModuleState& state = state_of(module);
  for (;;) {
    auto batch = _completions.pop_all();
    if (batch.empty()) break;  // closed and drained: every worker has exited
    AttachedThread attached(tstate);
    for (auto& t : batch) deliver(state, rebuild, *t);
    batch.clear();
  }
  PyEval_RestoreThread(tstate);
  Py_DECREF(rebuild);
  Py_DECREF(module);
  PyThreadState_Clear(tstate);
  PyThreadState_DeleteCurrent();
}

// ---------------------------------------------------------------- delivery

namespace {

/// Completes an interpool.Future that nobody has observed yet: no thread
/// waits on it, no waiter or callback is registered, since each of those
/// first creates the future's lazy Condition ("_cond").  Then setting the
/// state is all set_result() would do.  Runs without releasing the GIL, so
/// no other thread can start observing half-way.  False: use set_result().
bool complete_unobserved(ModuleState& state, PyObject* future, PyObject* outcome, bool is_exception) {
  Ref dict = Ref::steal(PyObject_GenericGetDict(future, nullptr));
  if (!dict) return PyErr_Clear(), false;
  int observed = PyDict_Contains(dict.get(), state.str_cond);
  if (observed != 0) return PyErr_Clear(), false;
  PyObject* current = PyDict_GetItemWithError(dict.get(), state.str_state);
  if (!current || current != state.state_pending) return PyErr_Clear(), false;
  if (PyDict_SetItem(dict.get(), is_exception ? state.str_exception : state.str_result, outcome) < 0 ||
      PyDict_SetItem(dict.get(), state.str_state, state.state_finished) < 0)
    return PyErr_Clear(), false;
  return true;
}

}  // namespace

void deliver(ModuleState& state, PyObject* rebuild, PyTask& task) {
  if (!task.claim_delivery()) return;
  Ref future = Ref::steal(std::exchange(task.future, nullptr));
  if (!future) return;
  PendingError keep;  // the caller's own pending exception, if any, survives

  Ref outcome;       // the value, or the exception
  bool is_exception = false;
  {
    Decoder dec(state, task.response);
    if (task.broken) {
      // ("broken", reason, cause_info or None)
      Ref cause = task.response.empty() ? Ref::borrow(Py_None) : Ref::steal(dec.value());
      Ref info = cause ? Ref::steal(Py_BuildValue("(ssO)", "broken", task.broken_reason.c_str(), cause.get()))
                       : Ref();
      outcome = info ? Ref::steal(PyObject_CallOneArg(rebuild, info.get())) : Ref();
      is_exception = true;
      if (outcome && task.kind() == rt::Task::Kind::Map) {
        outcome = Ref::steal(Py_BuildValue("([]O)", outcome.get()));
        is_exception = false;
      }
    } else if (task.failed && task.response.empty()) {
      outcome = Ref::steal(PyObject_CallFunction(rebuild, "((sOsss))", "exception", Py_None, "Exception",
                                                 "the task failed and its exception could not be described", ""));
      is_exception = true;
    } else if (task.failed) {
      Ref info = Ref::steal(dec.value());
      if (info && task.kind() == rt::Task::Kind::Map) {
        // (info, partial values) -> (partial values, exception)
        Ref exc = Ref::steal(PyObject_CallOneArg(rebuild, PyTuple_GET_ITEM(info.get(), 0)));
        outcome = exc ? Ref::steal(PyTuple_Pack(2, PyTuple_GET_ITEM(info.get(), 1), exc.get())) : Ref();
      } else if (info) {
        outcome = Ref::steal(PyObject_CallOneArg(rebuild, info.get()));
        is_exception = true;
      }
    } else {
      Ref value = Ref::steal(dec.value());
      if (value && task.kind() == rt::Task::Kind::Map)
        outcome = Ref::steal(PyTuple_Pack(2, value.get(), Py_None));
      else
        outcome = std::move(value);
    }
  }
  task.response.clear();
  if (!outcome) {
    // The result could not be received here (say, its class does not import
    // in this interpreter): the future fails with that error.
    outcome = Ref::steal(PyErr_GetRaisedException());
    is_exception = true;
    if (task.kind() == rt::Task::Kind::Map) {
      outcome = Ref::steal(Py_BuildValue("([]O)", outcome.get()));
      is_exception = false;
    }
  }
  if (complete_unobserved(state, future.get(), outcome.get(), is_exception)) return;
  Ref done = Ref::steal(PyObject_CallMethodOneArg(
      future.get(), is_exception ? state.str_set_exception : state.str_set_result, outcome.get()));
  if (!done) PyErr_WriteUnraisable(future.get());
}

// ----------------------------------------------------------- Python types

namespace {

struct EngineObject {
  PyObject_HEAD
  std::shared_ptr<EngineCore> core;
  PyObject* rebuild;       ///< interpool._errors.rebuild
  PyObject* broken_type;   ///< interpool.BrokenPool
};

struct TaskObject {
  PyObject_HEAD
  TaskPtr task;
  PyObject* engine;  ///< the EngineObject that made the task
};

EngineObject* as_engine(PyObject* o) { return reinterpret_cast<EngineObject*>(o); }
TaskObject* as_task(PyObject* o) { return reinterpret_cast<TaskObject*>(o); }

/// Appends `fn` to a request: a flag, then its pickled bytes.  Remembers the
/// bytes of callables that pickle by name.  A callable whose pickle carries
/// handles (a partial over a Queue, say) is flagged so that workers decode
/// it afresh each time instead of caching it by its bytes.
bool encode_callable(ModuleState& state, Encoder& enc, rt::Payload& payload, PyObject* fn) {
  if (!PyCallable_Check(fn)) {
    PyErr_Format(PyExc_TypeError, "fn must be callable, not %.100s", Py_TYPE(fn)->tp_name);
    return false;
  }
  bool by_name = PyFunction_Check(fn) || PyType_Check(fn) ||
                 (PyCFunction_Check(fn) && (!PyCFunction_GET_SELF(fn) || PyModule_Check(PyCFunction_GET_SELF(fn))));
  if (by_name) {
    PyObject* hit = PyDict_GetItemWithError(state.callable_cache, fn);
    if (hit) {
      enc.raw("c");
      enc.raw({PyBytes_AS_STRING(hit), static_cast<std::size_t>(PyBytes_GET_SIZE(hit))});
      return true;
    }
    if (PyErr_Occurred()) return false;
  }
  std::size_t handles_before = payload.handles.size();
  std::size_t flag_at = payload.bytes.size();
  enc.raw("c");
  Ref data;
  if (!enc.pickled_inband(fn, "callable", data)) return false;
  if (payload.handles.size() != handles_before) {
    payload.bytes[flag_at + 1] = 'u';
    return true;
  }
  if (by_name) {
    if (PyDict_GET_SIZE(state.callable_cache) >= kCallerCallableCacheLimit) PyDict_Clear(state.callable_cache);
    if (PyDict_SetItem(state.callable_cache, fn, data.get()) < 0) return false;
  }
  return true;
}

PyObject* new_task_object(ModuleState& state, PyObject* engine, TaskPtr task) {
  auto* self = PyObject_GC_New(TaskObject, state.task_type);
  if (!self) return nullptr;
  new (&self->task) TaskPtr(std::move(task));
  self->engine = Py_NewRef(engine);
  PyObject_GC_Track(self);
  return reinterpret_cast<PyObject*>(self);
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
  if (!self->core->submit(task)) {
    Py_CLEAR(task->future);
    return refuse(self);
  }
  return handle.release();
}

// Engine(workers, max_tasks, sys_path, setup, initializer, initargs, rebuild, broken_type, name_prefix)
PyObject* engine_new(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  Py_ssize_t workers, max_tasks;
  PyObject *sys_path, *setup, *initializer, *initargs, *rebuild, *broken_type;
  const char* prefix;
  if (kwds && PyDict_GET_SIZE(kwds)) {
    PyErr_SetString(PyExc_TypeError, "Engine() takes positional arguments only");
    return nullptr;
  }
  if (!PyArg_ParseTuple(args, "nnO!OOO!OOs:Engine", &workers, &max_tasks, &PyList_Type, &sys_path, &setup,
                        &initializer, &PyTuple_Type, &initargs, &rebuild, &broken_type, &prefix))
    return nullptr;
  if (workers < 1) {
    PyErr_SetString(PyExc_ValueError, "workers must be greater than 0");
    return nullptr;
  }
  ModuleState& state = state_of_type(type);
  WorkerRecipe recipe;
  recipe.workers = static_cast<std::size_t>(workers);
  recipe.max_tasks = max_tasks > 0 ? static_cast<std::size_t>(max_tasks) : 0;
  recipe.thread_name_prefix = prefix;
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
    if (!encode_callable(state, enc, recipe.initializer, initializer) || !enc.value(initargs)) return nullptr;
  }

  auto* self = PyObject_GC_New(EngineObject, type);
  if (!self) return nullptr;
  new (&self->core) std::shared_ptr<EngineCore>();
  self->rebuild = Py_NewRef(rebuild);
  self->broken_type = Py_NewRef(broken_type);
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

int engine_traverse(PyObject* o, visitproc visit, void* arg) {
  auto* self = as_engine(o);
  Py_VISIT(Py_TYPE(o));
  Py_VISIT(self->rebuild);
  Py_VISIT(self->broken_type);
  return 0;
}

int engine_clear(PyObject* o) {
  auto* self = as_engine(o);
  Py_CLEAR(self->rebuild);
  Py_CLEAR(self->broken_type);
  return 0;
}

void engine_dealloc(PyObject* o) {
  auto* self = as_engine(o);
  PyTypeObject* type = Py_TYPE(o);
  PyObject_GC_UnTrack(o);
  // Like an executor that is garbage collected: take no more work, let the
  // queued work finish, and let interpreter shutdown join the threads.
  if (self->core) self->core->shutdown(false);
  self->core.~shared_ptr();
  engine_clear(o);
  type->tp_free(o);
  Py_DECREF(type);
}

// submit(future, fn, args, kwargs) -> Task
PyObject* engine_submit(PyObject* o, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 4 || !PyTuple_Check(args[2]) || (args[3] != Py_None && !PyDict_Check(args[3]))) {
    PyErr_SetString(PyExc_TypeError, "submit(future, fn, args: tuple, kwargs: dict | None)");
    return nullptr;
  }
  auto* self = as_engine(o);
  if (!self->core->accepting()) return refuse(self);
  ModuleState& state = state_of_type(Py_TYPE(o));
  TaskPtr task;
  try {
    task = std::make_shared<PyTask>(rt::Task::Kind::Call);
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  }
  Encoder enc(state, task->request);
  if (!encode_callable(state, enc, task->request, args[1]) || !enc.value(args[2]) || !enc.value(args[3]))
    return nullptr;
  return enqueue(o, state, std::move(task), args[0]);
}

// submit_map(future, fn, items: list[tuple]) -> Task
PyObject* engine_submit_map(PyObject* o, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3 || !PyList_Check(args[2])) {
    PyErr_SetString(PyExc_TypeError, "submit_map(future, fn, items: list)");
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
  if (!encode_callable(state, enc, task->request, args[1]) || !enc.value(args[2])) return nullptr;
  return enqueue(o, state, std::move(task), args[0]);
}

// shutdown(wait, cancel_futures) -> list of futures whose tasks were cancelled
PyObject* engine_shutdown(PyObject* o, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "shutdown(wait, cancel_futures)");
    return nullptr;
  }
  int wait = PyObject_IsTrue(args[0]);
  int cancel = PyObject_IsTrue(args[1]);
  if (wait < 0 || cancel < 0) return nullptr;
  auto* self = as_engine(o);
  auto cancelled = self->core->shutdown(cancel);
  Ref futures = Ref::steal(PyList_New(0));
  if (!futures) return nullptr;
  for (auto& t : cancelled) {
    Ref f = Ref::steal(std::exchange(t->future, nullptr));
    if (f && PyList_Append(futures.get(), f.get()) < 0) return nullptr;
  }
  if (wait) {
    std::shared_ptr<EngineCore> core = self->core;
    ReleasedGil released;
    core->join();
  }
  return futures.release();
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

PyMethodDef engine_methods[] = {
    {"submit", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(engine_submit)), METH_FASTCALL,
     "submit(future, fn, args, kwargs) -> Task"},
    {"submit_map", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(engine_submit_map)), METH_FASTCALL,
     "submit_map(future, fn, items) -> Task: fn(*item) for each item, one task"},
    {"shutdown", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(engine_shutdown)), METH_FASTCALL,
     "shutdown(wait, cancel_futures) -> futures of the cancelled tasks"},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef engine_getset[] = {
    {"broken", engine_get_broken, nullptr, "Whether a worker failed to start.", nullptr},
    {"broken_reason", engine_get_broken_reason, nullptr, "Why the pool is broken, or None.", nullptr},
    {"workers", engine_get_workers, nullptr, "Number of worker interpreters.", nullptr},
    {"queued", engine_get_queued, nullptr, "Tasks waiting for a worker.", nullptr},
    {"accepting", engine_get_accepting, nullptr, "Whether submit() still takes work.", nullptr},
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

int task_traverse(PyObject* o, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(o));
  Py_VISIT(as_task(o)->engine);
  return 0;
}

int task_clear(PyObject* o) {
  Py_CLEAR(as_task(o)->engine);
  return 0;
}

void task_dealloc(PyObject* o) {
  auto* self = as_task(o);
  PyTypeObject* type = Py_TYPE(o);
  PyObject_GC_UnTrack(o);
  if (self->task && self->task->future && self->task->state() == rt::Task::State::Cancelled)
    Py_CLEAR(self->task->future);
  self->task.~TaskPtr();
  task_clear(o);
  type->tp_free(o);
  Py_DECREF(type);
}

// cancel() -> bool: True if the task was still queued and now never runs.
PyObject* task_cancel(PyObject* o, PyObject*) {
  auto* self = as_task(o);
  if (!self->task->try_cancel()) Py_RETURN_FALSE;
  Py_CLEAR(self->task->future);
  Py_RETURN_TRUE;
}

// settle(timeout: float | None) -> bool
// Waits, without holding the GIL and interruptibly, until the task finished,
// then delivers its result to the future unless someone already did.  Returns
// False on timeout.  Raises whatever a signal handler raises (Ctrl-C).
PyObject* task_settle(PyObject* o, PyObject* arg) {
  auto* self = as_task(o);
  rt::Task& task = *self->task;
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (arg != Py_None) {
    double seconds = PyFloat_AsDouble(arg);
    if (seconds == -1.0 && PyErr_Occurred()) return nullptr;
    deadline = std::chrono::steady_clock::now() +
               std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(std::max(0.0, seconds)));
  }
  while (!task.finished()) {
    std::chrono::nanoseconds slice = kSignalCheckInterval;
    if (deadline) {
      auto left = *deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::nanoseconds::zero()) Py_RETURN_FALSE;
      slice = std::min<std::chrono::nanoseconds>(slice, left);
    }
    rt::WaitStatus status;
    {
      ReleasedGil released;
      status = task.wait(slice);
    }
    if (status != rt::WaitStatus::Woken && PyErr_CheckSignals() < 0) return nullptr;
  }
  if (task.state() == rt::Task::State::Done) {
    auto* engine = as_engine(self->engine);
    deliver(state_of_type(Py_TYPE(o)), engine->rebuild, *self->task);
  }
  Py_RETURN_TRUE;
}

PyObject* task_get_running(PyObject* o, void*) {
  return PyBool_FromLong(as_task(o)->task->state() == rt::Task::State::Running);
}

PyObject* task_get_finished(PyObject* o, void*) { return PyBool_FromLong(as_task(o)->task->finished()); }

PyMethodDef task_methods[] = {
    {"cancel", task_cancel, METH_NOARGS, "Cancel the task if it has not started.  Returns whether it was."},
    {"settle", task_settle, METH_O,
     "settle(timeout) -> bool: wait for the task and deliver its result to its future."},
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

PyObject* shutdown_all_engines(PyObject*, PyObject*) {
  auto engines = EngineCore::live_engines(PyInterpreterState_Get());
  for (auto& core : engines) core->shutdown(false);
  {
    ReleasedGil released;
    for (auto& core : engines) core->join();
  }
  Py_RETURN_NONE;
}

PyType_Spec engine_spec = {
    "interpool._core.Engine",
    sizeof(EngineObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    engine_slots,
};

PyType_Spec task_spec = {
    "interpool._core.Task",
    sizeof(TaskObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    task_slots,
};

}  // namespace interpool::py
