// src/python/module_state.hpp: per-interpreter state of interpool._core.
//
// The extension is imported separately in every interpreter that uses it (the
// caller and each worker), and each import gets its own ModuleState.  Every
// PyObject* here is owned by the module and belongs to that one interpreter;
// module_clear() drops them.  There is no static PyObject* anywhere.
#pragma once

#include "python/ref.hpp"

namespace interpool::py {

struct SharedCache;
struct WorkerOutput;

/// interpool._byvalue (cloudpickle behind it), for what a receiver cannot
/// import by name.  Owned by its ModuleState; the PyObject*s are that
/// interpreter's.
struct ByValueState {
  PyObject* dumps = nullptr;   ///< _byvalue.dumps
  PyObject* encode = nullptr;  ///< _byvalue.encode_callable
  PyObject* absent = nullptr;  ///< _byvalue.ABSENT: a guard's "unbound"
  /// {function or class: (data, guards, per_task)}: by-value encodings the
  /// caller reuses while their guards hold (see _byvalue.EncodedCallable).
  /// Bounded.
  PyObject* cache = nullptr;
  PyObject* str_data = nullptr;
  PyObject* str_guards = nullptr;
  PyObject* str_per_task = nullptr;
};
constexpr int kHandleKinds = 8;  ///< HandleKind::Count

struct ModuleState {
  // Heap types, created from specs at module exec.
  PyTypeObject* engine_type = nullptr;  ///< _core.Engine
  PyTypeObject* task_type = nullptr;    ///< _core.Task
  PyTypeObject* completion_type = nullptr;   ///< _core.Completion (worker side of a deferred task)
  PyTypeObject* worker_slot_type = nullptr;  ///< _core.WorkerSlot
  PyTypeObject* loop_waker_type = nullptr;   ///< _core.LoopWaker (wakes one asyncio loop)
  PyTypeObject* failure_type = nullptr;      ///< _core.Failure (how a task failed; failure.hpp)
  // The records of the contract with the package (records.hpp).
  PyTypeObject* delivery_type = nullptr;  ///< _core.Delivery (an item of LoopBridge.push_many)
  PyTypeObject* guard_type = nullptr;     ///< _core.Guard (one guard of a by-value encoding)
  PyTypeObject* launch_type = nullptr;    ///< _core.Launch (a deferred task for a worker's loop)
  PyTypeObject* requests_type = nullptr;  ///< _core.Requests (WorkerSlot.take_requests())
  /// Wrapper types of engine handles, indexed by HandleKind (Buffer, Shared,
  /// Queue, ...).  A null entry: that kind has no type in this build.
  PyTypeObject* handle_types[kHandleKinds] = {};
  PyObject* handle_from_context = nullptr;  ///< _core._handle_from_context
  /// _core.TaskInterrupted (BaseException): raised in a task's code to stop it.
  PyObject* task_interrupted_type = nullptr;
  /// Exceptions the synchronisation objects raise (sync_errors.cpp): each
  /// imported the first time it is raised in this interpreter, then kept.
  /// Not at module exec: interpool._errors imports logging and
  /// concurrent.futures, which a worker whose queues never close or fill
  /// must not pay for.
  PyObject* queue_closed_type = nullptr;    ///< interpool.QueueClosed
  PyObject* queue_full_type = nullptr;      ///< queue.Full
  PyObject* queue_empty_type = nullptr;     ///< queue.Empty
  PyObject* broken_barrier_type = nullptr;  ///< threading.BrokenBarrierError
  /// Decoded copies of SharedValues in this interpreter (C++ object, owned;
  /// its PyObject* values are this interpreter's).
  SharedCache* shared_cache = nullptr;
  /// Worker interpreters of a pool that forwards output: where sys.stdout,
  /// sys.stderr and logging records go (output.hpp; C++ object, owned).
  /// Null elsewhere.
  WorkerOutput* output = nullptr;

  // The codec's fallback for objects it has no native encoding for; null
  // in a worker until load_pickle().
  PyObject* pickle_dumps = nullptr;   ///< pickle.dumps
  PyObject* pickle_loads = nullptr;   ///< pickle.loads
  PyObject* pickle_error = nullptr;   ///< pickle.PicklingError

  /// {callable: pickled bytes}, for functions, builtins and classes only:
  /// they pickle by name, so one encoding serves every call.  Bounded.
  PyObject* callable_cache = nullptr;

  /// What sending by value needs (C++ object, owned); null until
  /// load_by_value(), so that an interpreter that never sends anything by
  /// value never makes it.
  ByValueState* by_value = nullptr;

  // Interned names used on hot paths.
  PyObject* str_set_result = nullptr;
  PyObject* str_set_exception = nullptr;
  PyObject* str_push_many = nullptr;  ///< LoopBridge.push_many
  PyObject* str_waker = nullptr;      ///< LoopBridge.waker
  PyObject* str_done = nullptr;       ///< asyncio.Future.done
  PyObject* str_cancel = nullptr;     ///< asyncio.Future.cancel
  PyObject* str_append = nullptr;
  PyObject* str_buffers = nullptr;
  PyObject* str_buffer_callback = nullptr;
  /// interpool._future.FutureContract: every name of interpool.Future that
  /// the binding touches (see that class, and delivery.cpp:
  /// complete_unobserved).  Read on the first delivery, since importing
  /// interpool._future imports concurrent.futures (and logging), which
  /// worker interpreters, delivering nothing, never need.  All null before.
  struct {
    PyObject* future_type = nullptr;     ///< interpool.Future: the fast path completes only these
    PyObject* observed = nullptr;        ///< "_cond": the lazy Condition, made once observed
    PyObject* state = nullptr;           ///< "_state"
    PyObject* result = nullptr;          ///< "_result"
    PyObject* exception = nullptr;       ///< "_exception"
    PyObject* pending = nullptr;         ///< concurrent.futures._base.PENDING
    PyObject* finished = nullptr;        ///< concurrent.futures._base.FINISHED
    PyObject* mark_cancelled = nullptr;  ///< "_mark_cancelled"
  } future;
};

/// Fills the pickle_* fields on first use (module.cpp): the main
/// interpreter imports the pickler at once, workers when a payload needs it.
/// False with an exception set if it cannot be imported.
bool load_pickle(ModuleState& state);

/// Makes state.by_value on first use (module.cpp): imports
/// interpool._byvalue, and cloudpickle with it, in this interpreter.  False
/// with an exception set if that fails.
bool load_by_value(ModuleState& state);

/// The state of the module object `module`.
inline ModuleState& state_of(PyObject* module) { return *static_cast<ModuleState*>(PyModule_GetState(module)); }

/// The state of the module that defined heap type `type`.
inline ModuleState& state_of_type(PyTypeObject* type) {
  return *static_cast<ModuleState*>(PyType_GetModuleState(type));
}

}  // namespace interpool::py
