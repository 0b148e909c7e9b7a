// src/python/engine.cpp: worker interpreters, delivery, and the _core.Engine
// and _core.Task types.
#include "python/engine.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <new>
#include <string_view>
#include <unordered_map>

#include "python/codec.hpp"
#include "python/handle_object.hpp"
#include "python/interpreter.hpp"

namespace interpool::py {

/// The results of one delivery batch bound for asyncio loops, grouped by
/// loop bridge: each bridge gets one push_many() call per batch.
class BridgeBatch {
 public:
  void add(PyObject* bridge, PyObject* future, PyObject* outcome, bool is_exception);
  void flush(ModuleState& state);

 private:
  std::vector<std::pair<Ref, Ref>> _bridges;  // (bridge, list of (future, outcome, is_exception))
};

/// Completes `future` with `outcome` (a value, or an exception object):
/// through `bridge` on its asyncio loop if there is one (collected in
/// `batch` when given), else at once.  Owner interpreter's GIL held; never
/// raises.
void complete_future(ModuleState& state, PyObject* future, PyObject* bridge, PyObject* outcome, bool is_exception,
                     BridgeBatch* batch = nullptr);

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
// Completion batching in workers (see worker_main).
constexpr std::size_t kBatchLimit = 64;
constexpr auto kBatchAge = std::chrono::microseconds(200);

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

  /// Runs `task` and writes its response.  For a Deferred task, returns
  /// false when the work was launched and will complete later.
  bool run(const TaskPtr& task, const std::shared_ptr<EngineCore>& core, const std::shared_ptr<WorkerSlot>& slot);

  /// Runs the recipe's finalizer, if any; errors are reported as unraisable.
  void finalize(const WorkerRecipe& recipe);

  /// Fails `task` with the pending exception.
  void fail_with_pending(PyTask& task) { fail(task, nullptr); }

  /// Drops decoded copies of SharedValues that were released.
  void sweep_shared() {
    if (_state && _state->shared_cache->seen_epoch != rt::SharedValue::released_epoch())
      _state->shared_cache->sweep();
  }

  /// Drops every reference this interpreter's objects hold, after running
  /// interpool._worker.teardown().
  void clear() {
    if (_worker) {
      Ref done = Ref::steal(PyObject_CallMethod(_worker.get(), "teardown", nullptr));
      if (!done) PyErr_WriteUnraisable(_worker.get());
    }
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
  if (flag == "u") {
    holder = Ref::steal(dec.unpickle(blob));
    return holder.get();
  }
  auto it = _callables.find(blob);
  if (it != _callables.end()) return it->second.get();
  Ref fn;
  if (flag == "s") {
    Ref code = Ref::steal(PyBytes_FromStringAndSize(blob.data(), static_cast<Py_ssize_t>(blob.size())));
    fn = code ? Ref::steal(PyObject_CallMethod(_worker.get(), "decode_stateless", "O", code.get())) : Ref();
  } else {
    fn = Ref::steal(dec.unpickle(blob));
  }
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

struct CompletionObject {
  PyObject_HEAD
  TaskPtr task;
  std::shared_ptr<EngineCore> core;
  std::shared_ptr<WorkerSlot> slot;
  std::atomic<bool> done;  ///< completed (or failed to launch): exactly once
};

PyObject* new_completion(ModuleState& state, TaskPtr task, std::shared_ptr<EngineCore> core,
                         std::shared_ptr<WorkerSlot> slot);

void WorkerContext::finalize(const WorkerRecipe& recipe) {
  if (recipe.finalizer.empty() || !_state) return;
  Decoder dec(*_state, recipe.finalizer);
  Ref holder;
  PyObject* fn = callable(dec, holder);
  Ref args = fn ? Ref::steal(dec.value()) : Ref();
  Ref done = args ? Ref::steal(PyObject_Call(fn, args.get(), nullptr)) : Ref();
  if (!done) PyErr_WriteUnraisable(nullptr);
}

bool WorkerContext::run(const TaskPtr& task_ptr, const std::shared_ptr<EngineCore>& core,
                        const std::shared_ptr<WorkerSlot>& slot) {
  PyTask& task = *task_ptr;
  Decoder dec(*_state, task.request);
  Ref holder;
  PyObject* fn = callable(dec, holder);
  if (!fn) return fail(task, task.kind() == rt::Task::Kind::Map ? Ref::steal(PyList_New(0)).get() : nullptr), true;

  if (task.kind() == rt::Task::Kind::Call) {
    Ref args = Ref::steal(dec.value());
    Ref kwargs = args ? Ref::steal(dec.value()) : Ref();
    if (!kwargs) return fail(task, nullptr), true;
    Ref result = Ref::steal(PyObject_Call(fn, args.get(), kwargs.get() == Py_None ? nullptr : kwargs.get()));
    if (!result) return fail(task, nullptr), true;
    Encoder enc(*_state, task.response);
    if (!enc.value(result.get())) return fail(task, nullptr), true;
    return true;
  }

  // Map: fn(*item) for each item of the chunk, stopping at the first error.
  Ref results = Ref::steal(PyList_New(0));
  Ref items = results ? Ref::steal(dec.value()) : Ref();
  if (!items) return fail(task, results.get()), true;
  Py_ssize_t n = PyList_GET_SIZE(items.get());
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* item = PyList_GET_ITEM(items.get(), i);
    Ref r = Ref::steal(PyObject_Call(fn, item, nullptr));
    if (!r || PyList_Append(results.get(), r.get()) < 0) return fail(task, results.get()), true;
  }
  Encoder enc(*_state, task.response);
  if (!enc.value(results.get())) {
    Ref none = Ref::steal(PyList_New(0));
    task.response.clear();
    return fail(task, none.get()), true;
  }
  return true;
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

void EngineCore::worker_main(std::size_t index) {
  std::shared_ptr<WorkerSlot> slot = _slots[index];
  t_current_slot = &slot;
  auto self = shared_from_this();
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
        // Finished tasks go to the delivery thread in batches: at once when
        // no work waits, else after kBatchLimit tasks or kBatchAge.  A
        // caller blocked in result() is woken by finish() regardless.
        std::vector<TaskPtr> finished_batch;
        std::chrono::steady_clock::time_point batch_started;
        auto flush = [&] { _completions.push_many(finished_batch); };
        PyEval_SaveThread();  // idle without holding this interpreter's GIL
        for (;;) {
          // Deferred tasks: take no more than max_deferred at a time, so the
          // other workers get the rest.
          for (uint32_t n; (n = slot->in_flight.load(std::memory_order_acquire)) >= _recipe.max_deferred;) {
            flush();  // never sleep on results
            rt::futex_wait(slot->in_flight, n);
          }
          // With results pending, never block: take work only if some is
          // there, else hand the results over first.
          std::optional<TaskPtr> task;
          bool poked = false;
          if (!finished_batch.empty()) {
            if (finished_batch.size() < kBatchLimit && std::chrono::steady_clock::now() - batch_started < kBatchAge)
              task = _tasks.try_pop();
            if (!task) flush();
          }
          if (!task) task = _tasks.pop(pokes_seen, poked);
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
          bool finished = context.run(t, self, slot);
          t->request.clear();
          PyEval_SaveThread();
          if (finished) {
            t->finish();
            if (finished_batch.empty()) batch_started = std::chrono::steady_clock::now();
            finished_batch.push_back(t);
          }
          done += t->items;
          if (_recipe.max_tasks && done >= _recipe.max_tasks) {
            recycle = true;
            break;
          }
        }
        flush();
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

void BridgeBatch::add(PyObject* bridge, PyObject* future, PyObject* outcome, bool is_exception) {
  Ref item = Ref::steal(PyTuple_Pack(3, future, outcome, is_exception ? Py_True : Py_False));
  if (!item) return PyErr_WriteUnraisable(bridge);
  for (auto& [b, items] : _bridges)
    if (b.get() == bridge) {
      if (PyList_Append(items.get(), item.get()) < 0) PyErr_WriteUnraisable(bridge);
      return;
    }
  Ref items = Ref::steal(PyList_New(0));
  if (!items || PyList_Append(items.get(), item.get()) < 0) return PyErr_WriteUnraisable(bridge);
  _bridges.emplace_back(Ref::borrow(bridge), std::move(items));
}

void BridgeBatch::flush(ModuleState& state) {
  PendingError keep;
  for (auto& [bridge, items] : _bridges) {
    Ref done = Ref::steal(PyObject_CallMethodOneArg(bridge.get(), state.str_push_many, items.get()));
    if (!done) PyErr_WriteUnraisable(bridge.get());
  }
  _bridges.clear();
}

void complete_future(ModuleState& state, PyObject* future, PyObject* bridge, PyObject* outcome, bool is_exception,
                     BridgeBatch* batch) {
  PendingError keep;
  if (bridge && batch) {
    batch->add(bridge, future, outcome, is_exception);
    return;
  }
  if (bridge) {
    PyObject* args[] = {bridge, future, outcome, is_exception ? Py_True : Py_False};
    Ref done = Ref::steal(PyObject_VectorcallMethod(state.str_push, args, 4, nullptr));
    if (!done) PyErr_WriteUnraisable(bridge);
    return;
  }
  if (complete_unobserved(state, future, outcome, is_exception)) return;
  Ref done = Ref::steal(
      PyObject_CallMethodOneArg(future, is_exception ? state.str_set_exception : state.str_set_result, outcome));
  if (!done) PyErr_WriteUnraisable(future);
}

void deliver(ModuleState& state, PyObject* rebuild, PyTask& task, BridgeBatch* batch) {
  if (!task.claim_delivery()) return;
  Ref future = Ref::steal(std::exchange(task.future, nullptr));
  Ref bridge = Ref::steal(std::exchange(task.bridge, nullptr));
  // A pool that broke: the first delivery of its failure logs it, with
  // ("broken", reason, cause, True).
  bool log_broken = task.broken && task.broken_logged && !task.broken_logged->exchange(true);
  if (!future) {
    if (log_broken) {
      PendingError keep;
      Decoder dec(state, task.response);
      Ref cause = task.response.empty() ? Ref::borrow(Py_None) : Ref::steal(dec.value());
      Ref info = cause ? Ref::steal(Py_BuildValue("(ssOO)", "broken", task.broken_reason.c_str(), cause.get(), Py_True))
                       : Ref();
      Ref done = info ? Ref::steal(PyObject_CallOneArg(rebuild, info.get())) : Ref();
      if (!done) PyErr_WriteUnraisable(rebuild);
    }
    task.response.clear();
    return;
  }
  PendingError keep;  // the caller's own pending exception, if any, survives

  Ref outcome;       // the value, or the exception
  bool is_exception = false;
  {
    Decoder dec(state, task.response);
    if (task.broken) {
      // ("broken", reason, cause_info or None)
      Ref cause = task.response.empty() ? Ref::borrow(Py_None) : Ref::steal(dec.value());
      Ref info = cause ? Ref::steal(Py_BuildValue("(ssOO)", "broken", task.broken_reason.c_str(), cause.get(),
                                                  log_broken ? Py_True : Py_False))
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
  // The response may have held the last reference to a SharedValue that
  // this interpreter decoded: drop the cached copy now, not at the next decode.
  if (state.shared_cache->seen_epoch != rt::SharedValue::released_epoch()) state.shared_cache->sweep();
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
  complete_future(state, future.get(), bridge.get(), outcome.get(), is_exception, batch);
}

// ----------------------------------------------------------- Python types

namespace {

struct EngineObject {
  PyObject_HEAD
  std::shared_ptr<EngineCore> core;
  PyObject* rebuild;       ///< interpool._errors.rebuild
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

/// Appends `fn` to a request: a flag, then its pickled bytes.  Remembers the
/// bytes of callables that pickle by name.  A callable whose pickle carries
/// handles (a partial over a Queue, say) is flagged so that workers decode
/// it afresh each time instead of caching it by its bytes.
bool encode_callable(ModuleState& state, Encoder& enc, rt::Payload& payload, PyObject* fn, bool stateless = false) {
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
  if (!enc.pickled_inband(fn, "callable", data)) {
    if (!stateless || !PyFunction_Check(fn)) return false;
    // InterpreterPoolExecutor, like the stdlib's, also sends functions that
    // need no state (a lambda, a local function) as their code.
    PyObject* unsendable = PyErr_GetRaisedException();
    Ref worker = Ref::steal(PyImport_ImportModule("interpool._worker"));
    Ref code = worker ? Ref::steal(PyObject_CallMethod(worker.get(), "encode_stateless", "O", fn)) : Ref();
    if (!code || !PyBytes_Check(code.get())) {
      PyErr_Clear();
      PyErr_SetRaisedException(unsendable);
      return false;
    }
    Py_DECREF(unsendable);
    payload.bytes.resize(flag_at);
    payload.handles.resize(handles_before);
    enc.raw("s");
    enc.raw({PyBytes_AS_STRING(code.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(code.get()))});
    return true;
  }
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

/// Drops the owner-interpreter references of a task that never ran.
void release_unqueued(PyTask& task) {
  Py_CLEAR(task.future);
  Py_CLEAR(task.bridge);
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
  if (!self->core->submit(task)) {
    release_unqueued(*task);
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
  int local_tasks = 0;
  unsigned int max_deferred = 1;
  PyObject* finalizer = Py_None;
  PyObject* finalargs = nullptr;
  int stateless = 0;
  if (!PyArg_ParseTuple(args, "nnO!OOO!OOs|pIOO!p:Engine", &workers, &max_tasks, &PyList_Type, &sys_path, &setup,
                        &initializer, &PyTuple_Type, &initargs, &rebuild, &broken_type, &prefix, &local_tasks,
                        &max_deferred, &finalizer, &PyTuple_Type, &finalargs, &stateless))
    return nullptr;
  if (max_deferred < 1) {
    PyErr_SetString(PyExc_ValueError, "concurrency must be greater than 0");
    return nullptr;
  }
  if (workers < 1) {
    PyErr_SetString(PyExc_ValueError, "workers must be greater than 0");
    return nullptr;
  }
  ModuleState& state = state_of_type(type);
  WorkerRecipe recipe;
  recipe.workers = static_cast<std::size_t>(workers);
  recipe.max_tasks = max_tasks > 0 ? static_cast<std::size_t>(max_tasks) : 0;
  recipe.thread_name_prefix = prefix;
  recipe.local_tasks = local_tasks;
  recipe.max_deferred = max_deferred;
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

/// Parses (future, fn, args, kwargs[, bridge]) and makes a task of `kind`.
TaskPtr make_call_task(PyObject* o, PyObject* const* args, Py_ssize_t nargs, rt::Task::Kind kind, const char* usage) {
  if (nargs < 4 || nargs > 5 || !PyTuple_Check(args[2]) || (args[3] != Py_None && !PyDict_Check(args[3]))) {
    PyErr_Format(PyExc_TypeError, "%s(future, fn, args: tuple, kwargs: dict | None, bridge=None)", usage);
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
    if (!encode_callable(state, enc, task->request, args[1], self->stateless) || !enc.value(args[2]) ||
        !enc.value(args[3]))
      return nullptr;
  }
  if (nargs == 5 && args[4] != Py_None) task->bridge = Py_NewRef(args[4]);
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
// event loop of a worker's interpreter gets (completion, fn, args, kwargs)
// from WorkerSlot.take_requests(); done when completion is.
PyObject* engine_submit_deferred(PyObject* o, PyObject* const* args, Py_ssize_t nargs) {
  TaskPtr task = make_call_task(o, args, nargs, rt::Task::Kind::Deferred, "submit_deferred");
  if (!task) return nullptr;
  return enqueue(o, state_of_type(Py_TYPE(o)), std::move(task), args[0]);
}

// submit_map(future, fn, items: list[tuple], bridge=None) -> Task
PyObject* engine_submit_map(PyObject* o, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs < 3 || nargs > 4 || !PyList_Check(args[2])) {
    PyErr_SetString(PyExc_TypeError, "submit_map(future, fn, items: list, bridge=None)");
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
  if (nargs == 4 && args[3] != Py_None) task->bridge = Py_NewRef(args[3]);
  return enqueue(o, state, std::move(task), args[0]);
}

// shutdown(wait, cancel_futures) -> [(future, bridge or None)] of the cancelled tasks
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
    Ref bridge = Ref::steal(std::exchange(t->bridge, nullptr));
    Py_CLEAR(t->local_call);
    if (!f) continue;
    Ref pair = Ref::steal(PyTuple_Pack(2, f.get(), bridge ? bridge.get() : Py_None));
    if (!pair || PyList_Append(futures.get(), pair.get()) < 0) return nullptr;
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
     "submit_map(future, fn, items, bridge=None) -> Task: fn(*item) for each item, one task"},
    {"submit_local", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(engine_submit_local)),
     METH_FASTCALL, "submit_local(future, fn, args, kwargs, bridge=None) -> Task: run on a worker thread, here"},
    {"submit_deferred", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(engine_submit_deferred)),
     METH_FASTCALL, "submit_deferred(future, fn, args, kwargs, bridge=None) -> Task: for a worker's event loop"},
    {"shutdown", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(engine_shutdown)), METH_FASTCALL,
     "shutdown(wait, cancel_futures) -> [(future, bridge)] of the cancelled tasks"},
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
  if (self->task && self->task->state() == rt::Task::State::Cancelled) release_unqueued(*self->task);
  self->task.~TaskPtr();
  task_clear(o);
  type->tp_free(o);
  Py_DECREF(type);
}

// cancel() -> bool: True if the task was still queued and now never runs.
PyObject* task_cancel(PyObject* o, PyObject*) {
  auto* self = as_task(o);
  if (!self->task->try_cancel()) Py_RETURN_FALSE;
  release_unqueued(*self->task);
  Py_RETURN_TRUE;
}

// request_cancel() -> bool: ask a running Deferred task's worker to cancel it.
PyObject* task_request_cancel(PyObject* o, PyObject*) {
  auto* self = as_task(o);
  PyTask& task = *self->task;
  if (task.kind() != rt::Task::Kind::Deferred || task.state() != rt::Task::State::Running || task.worker < 0 ||
      task.cancel_requested.exchange(true))
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
    {"request_cancel", task_request_cancel, METH_NOARGS,
     "Ask the worker running a deferred task to cancel it.  Returns whether the request was sent."},
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


// -------------------------------------------------------------- Completion

CompletionObject* as_completion(PyObject* o) { return reinterpret_cast<CompletionObject*>(o); }

/// Claims the completion; raises if it was completed already.
bool claim_completion(CompletionObject* self) {
  if (self->done.exchange(true)) {
    PyErr_SetString(PyExc_RuntimeError, "this task was completed already");
    return false;
  }
  return true;
}

/// Writes an exception description of `exc` into the task's response.
void describe_failure(ModuleState& state, PyTask& task, PyObject* exc) {
  task.failed = true;
  task.response.clear();
  Ref worker = Ref::steal(PyImport_ImportModule("interpool._worker"));
  Ref info = worker ? Ref::steal(PyObject_CallMethod(worker.get(), "describe_exception", "O", exc)) : Ref();
  if (info) {
    Encoder enc(state, task.response);
    if (enc.value(info.get())) return;
  }
  PyErr_Clear();
  task.response.clear();  // the caller then reports an undescribable failure
}

PyObject* completion_set_result(PyObject* o, PyObject* value) {
  auto* self = as_completion(o);
  if (!claim_completion(self)) return nullptr;
  ModuleState& state = state_of_type(Py_TYPE(o));
  Encoder enc(state, self->task->response);
  if (!enc.value(value)) {
    PyObject* exc = PyErr_GetRaisedException();
    describe_failure(state, *self->task, exc);
    Py_XDECREF(exc);
  }
  self->core->finish_deferred(self->task, *self->slot);
  Py_RETURN_NONE;
}

PyObject* completion_set_exception(PyObject* o, PyObject* exc) {
  auto* self = as_completion(o);
  if (!PyExceptionInstance_Check(exc)) {
    PyErr_SetString(PyExc_TypeError, "set_exception() takes an exception instance");
    return nullptr;
  }
  if (!claim_completion(self)) return nullptr;
  describe_failure(state_of_type(Py_TYPE(o)), *self->task, exc);
  self->core->finish_deferred(self->task, *self->slot);
  Py_RETURN_NONE;
}

PyObject* completion_get_cancel_requested(PyObject* o, void*) {
  return PyBool_FromLong(as_completion(o)->task->cancel_requested.load());
}
PyObject* completion_get_done(PyObject* o, void*) { return PyBool_FromLong(as_completion(o)->done.load()); }
PyObject* completion_get_id(PyObject* o, void*) { return PyLong_FromVoidPtr(as_completion(o)->task.get()); }

void completion_dealloc(PyObject* o) {
  auto* self = as_completion(o);
  PyTypeObject* type = Py_TYPE(o);
  PyObject_GC_UnTrack(o);
  if (!self->done.exchange(true)) {
    // Dropped without completing: fail the task rather than hang its caller.
    Ref exc = Ref::steal(PyObject_CallFunction(PyExc_RuntimeError, "s",
                                               "the worker dropped the task without completing it"));
    if (exc) describe_failure(state_of_type(type), *self->task, exc.get());
    PyErr_Clear();
    self->core->finish_deferred(self->task, *self->slot);
  }
  self->task.~TaskPtr();
  self->core.~shared_ptr();
  self->slot.~shared_ptr();
  type->tp_free(o);
  Py_DECREF(type);
}

int completion_traverse(PyObject* o, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(o));
  return 0;
}

PyMethodDef completion_methods[] = {
    {"set_result", completion_set_result, METH_O, "Complete the task with a value (sent back by the codec)."},
    {"set_exception", completion_set_exception, METH_O, "Complete the task with an exception."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef completion_getset[] = {
    {"cancel_requested", completion_get_cancel_requested, nullptr, "Whether the submitter asked to cancel.", nullptr},
    {"done", completion_get_done, nullptr, "Whether the task was completed.", nullptr},
    {"id", completion_get_id, nullptr, "An id of the task, as WorkerSlot.take_requests() reports it.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot completion_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(completion_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(completion_traverse)},
    {Py_tp_methods, completion_methods},
    {Py_tp_getset, completion_getset},
    {Py_tp_doc, const_cast<char*>("The worker side of a deferred task: complete it exactly once.")},
    {0, nullptr},
};

// -------------------------------------------------------------- WorkerSlot

struct WorkerSlotObject {
  PyObject_HEAD
  std::shared_ptr<WorkerSlot> slot;
};

PyObject* slot_fileno(PyObject* o, PyObject*) {
  return PyLong_FromLong(reinterpret_cast<WorkerSlotObject*>(o)->slot->wakeup_fd);
}

// take_requests() -> ([(completion, fn, args, kwargs)], [ids to cancel])
// Runs on the worker interpreter's event-loop thread, under its GIL: decodes
// each launched task here.  A task that cannot be decoded fails at once.
PyObject* slot_take_requests(PyObject* o, PyObject*) {
  auto& slot = reinterpret_cast<WorkerSlotObject*>(o)->slot;
  ModuleState& state = state_of_type(Py_TYPE(o));
  std::vector<TaskPtr> launches, cancels;
  slot->take_requests(launches, cancels);
  auto core = slot->core.lock();
  Ref started = Ref::steal(PyList_New(0));
  Ref cancel_ids = Ref::steal(PyList_New(0));
  if (!started || !cancel_ids) return nullptr;
  for (auto& t : launches) {
    if (!core) break;  // the engine is gone: nobody waits for these
    Ref completion = Ref::steal(new_completion(state, t, core, slot));
    if (!completion) return nullptr;
    Decoder dec(state, t->request);
    std::string_view flag, blob;
    Ref fn, args, kwargs;
    if (dec.raw(flag) && dec.raw(blob)) fn = Ref::steal(dec.unpickle(blob));
    if (fn) args = Ref::steal(dec.value());
    if (args) kwargs = Ref::steal(dec.value());
    if (!kwargs) {
      PyObject* exc = PyErr_GetRaisedException();
      Ref done = Ref::steal(completion_set_exception(completion.get(), exc));
      Py_XDECREF(exc);
      if (!done) return nullptr;
      continue;
    }
    t->request.clear();
    Ref item = Ref::steal(PyTuple_Pack(4, completion.get(), fn.get(), args.get(), kwargs.get()));
    if (!item || PyList_Append(started.get(), item.get()) < 0) return nullptr;
  }
  for (auto& t : cancels) {
    Ref id = Ref::steal(PyLong_FromVoidPtr(t.get()));
    if (!id || PyList_Append(cancel_ids.get(), id.get()) < 0) return nullptr;
  }
  return PyTuple_Pack(2, started.get(), cancel_ids.get());
}

void slot_dealloc(PyObject* o) {
  PyTypeObject* type = Py_TYPE(o);
  reinterpret_cast<WorkerSlotObject*>(o)->slot.~shared_ptr();
  type->tp_free(o);
  Py_DECREF(type);
}

PyMethodDef slot_methods[] = {
    {"fileno", slot_fileno, METH_NOARGS, "An eventfd that is readable while launch or cancellation requests wait."},
    {"take_requests", slot_take_requests, METH_NOARGS,
     "take_requests() -> ([(completion, fn, args, kwargs)], [task ids to cancel])"},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot slot_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(slot_dealloc)},
    {Py_tp_methods, slot_methods},
    {Py_tp_doc, const_cast<char*>("One engine worker's mailbox for deferred tasks (internal).")},
    {0, nullptr},
};

PyObject* new_completion(ModuleState& state, TaskPtr task, std::shared_ptr<EngineCore> core,
                         std::shared_ptr<WorkerSlot> slot) {
  auto* self = PyObject_GC_New(CompletionObject, state.completion_type);
  if (!self) return nullptr;
  new (&self->task) TaskPtr(std::move(task));
  new (&self->core) std::shared_ptr<EngineCore>(std::move(core));
  new (&self->slot) std::shared_ptr<WorkerSlot>(std::move(slot));
  new (&self->done) std::atomic<bool>(false);
  PyObject_GC_Track(self);
  return reinterpret_cast<PyObject*>(self);
}

}  // namespace

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

PyType_Spec completion_spec = {
    "interpool._core.Completion",
    sizeof(CompletionObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    completion_slots,
};

PyType_Spec worker_slot_spec = {
    "interpool._core.WorkerSlot",
    sizeof(WorkerSlotObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    slot_slots,
};

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
