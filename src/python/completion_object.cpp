// src/python/completion_object.cpp: the _core.Completion and _core.WorkerSlot types.
#include "python/engine.hpp"

#include <algorithm>
#include <atomic>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

#include "python/callable_codec.hpp"
#include "python/codec.hpp"
#include "python/failure.hpp"
#include "python/heap_type.hpp"
#include "python/output.hpp"
#include "python/records.hpp"
#include "runtime/shared_value.hpp"

namespace interpool::py {
namespace {

// -------------------------------------------------------------- Completion

struct CompletionObject {
  PyObject_HEAD
  TaskPtr task;
  std::shared_ptr<EngineCore> core;
  std::shared_ptr<WorkerSlot> slot;
  std::atomic<bool> done;  ///< its outcome written (or it failed to launch): exactly once
  bool finished;           ///< handed back to its engine: exactly once, after `done`
};

PyObject* new_completion(ModuleState& state, TaskPtr task, std::shared_ptr<EngineCore> core,
                         std::shared_ptr<WorkerSlot> slot);

CompletionObject* as_completion(PyObject* o) { return reinterpret_cast<CompletionObject*>(o); }

/// Claims the completion; raises if its outcome was written already.
bool claim_completion(CompletionObject* self) {
  if (self->done.exchange(true)) {
    PyErr_SetString(PyExc_RuntimeError, "this task's outcome was set already");
    return false;
  }
  return true;
}

/// Writes the Failure that describes `exc` into the task's response.
void describe_failure(ModuleState& state, PyTask& task, PyObject* exc) {
  task.failed = true;
  task.response.clear();
  Ref info = describe_exception(state, exc);
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
  // Whether the value carries a Shared: the worker then finishes the task
  // only after the loop callback that produced the value has returned (see
  // completion_finish).
  const auto& handles = self->task->response.handles;
  return PyBool_FromLong(std::any_of(handles.begin(), handles.end(), [](const auto& handle) {
    return dynamic_cast<const rt::SharedValue*>(handle.get()) != nullptr;
  }));
}

PyObject* completion_set_exception(PyObject* o, PyObject* exc) {
  auto* self = as_completion(o);
  if (!PyExceptionInstance_Check(exc)) {
    PyErr_SetString(PyExc_TypeError, "set_exception() takes an exception instance");
    return nullptr;
  }
  if (!claim_completion(self)) return nullptr;
  describe_failure(state_of_type(Py_TYPE(o)), *self->task, exc);
  Py_RETURN_NONE;
}

/// Hands the task, its outcome written, back to its engine.
void hand_back(CompletionObject* self) {
  self->finished = true;
  self->core->finish_deferred(self->task, *self->slot);
}

// finish() -> id: separate from set_result() and set_exception() so that the
// worker drops its own references to the outcome (a Shared in it above all)
// before its caller can receive it; else the caller's SharedCache would keep
// its copy after the caller dropped it, which Pool's workers never cause.
PyObject* completion_finish(PyObject* o, PyObject*) {
  auto* self = as_completion(o);
  if (!self->done.load() || self->finished) {
    PyErr_SetString(PyExc_RuntimeError, self->finished ? "this task was finished already"
                                                       : "finish() needs set_result() or set_exception() first");
    return nullptr;
  }
  self->task->output_mark = end_task_output(state_of_type(Py_TYPE(o)));
  hand_back(self);
  return PyLong_FromVoidPtr(self->task.get());
}

PyObject* completion_get_cancel_requested(PyObject* o, void*) {
  return PyBool_FromLong(as_completion(o)->task->cancel_requested.load());
}
PyObject* completion_get_done(PyObject* o, void*) { return PyBool_FromLong(as_completion(o)->finished); }
PyObject* completion_get_id(PyObject* o, void*) { return PyLong_FromVoidPtr(as_completion(o)->task.get()); }

void completion_dealloc(PyObject* o) {
  heap_dealloc(o, [&] {
    auto* self = as_completion(o);
    if (!self->done.exchange(true)) {
      // Dropped without completing: fail the task rather than hang its caller.
      Ref exc = Ref::steal(
          PyObject_CallFunction(PyExc_RuntimeError, "s", "the worker dropped the task without completing it"));
      if (exc) describe_failure(state_of_type(Py_TYPE(o)), *self->task, exc.get());
      PyErr_Clear();
    }
    if (!self->finished) hand_back(self);
    self->task.~TaskPtr();
    self->core.~shared_ptr();
    self->slot.~shared_ptr();
  });
}

constexpr auto* completion_traverse = &traverse_fields<CompletionObject>;

PyMethodDef completion_methods[] = {
    {"set_result", completion_set_result, METH_O,
     "set_result(value) -> whether it carries a Shared: write the task's value (sent back by the codec); then "
     "finish()."},
    {"set_exception", completion_set_exception, METH_O, "Write the task's exception; then finish()."},
    {"finish", completion_finish, METH_NOARGS,
     "finish() -> id: hand the task back to its caller, once its outcome is set and the worker dropped it."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef completion_getset[] = {
    {"cancel_requested", completion_get_cancel_requested, nullptr, "Whether the submitter asked to cancel.", nullptr},
    {"done", completion_get_done, nullptr, "Whether the task was handed back (finish()).", nullptr},
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

PyObject* slot_fileno(PyObject* o, PyObject*) {
  return PyLong_FromLong(reinterpret_cast<WorkerSlotObject*>(o)->slot->wakeup.fd());
}

// take_requests() -> Requests(launches=[Launch], cancels=[ids]) (records.hpp)
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
    Ref fn = decode_callable_uncached(dec), args, kwargs;
    if (!fn || !decode_call_args(dec, args, kwargs)) {
      PyObject* exc = PyErr_GetRaisedException();
      Ref done = Ref::steal(completion_set_exception(completion.get(), exc));
      Py_XDECREF(exc);
      if (done) done = Ref::steal(completion_finish(completion.get(), nullptr));
      if (!done) return nullptr;
      continue;
    }
    t->request.clear();
    Ref item = make_launch(state, completion.get(), fn.get(), args.get(), kwargs.get());
    if (!item || PyList_Append(started.get(), item.get()) < 0) return nullptr;
  }
  for (auto& t : cancels) {
    Ref id = Ref::steal(PyLong_FromVoidPtr(t.get()));
    if (!id || PyList_Append(cancel_ids.get(), id.get()) < 0) return nullptr;
  }
  return make_requests(state, started.get(), cancel_ids.get()).release();
}

void slot_dealloc(PyObject* o) {
  heap_dealloc(o, [&] { reinterpret_cast<WorkerSlotObject*>(o)->slot.~shared_ptr(); });
}

PyMethodDef slot_methods[] = {
    {"fileno", slot_fileno, METH_NOARGS, "An eventfd that is readable while launch or cancellation requests wait."},
    {"take_requests", slot_take_requests, METH_NOARGS,
     "take_requests() -> Requests: the Launch of each task to start, and the ids of the tasks to cancel."},
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
  self->finished = false;
  PyObject_GC_Track(self);
  return reinterpret_cast<PyObject*>(self);
}

}  // namespace

PyType_Spec completion_spec = heap_type_spec<CompletionObject>(
    "interpool._core.Completion", Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION, completion_slots);

PyType_Spec worker_slot_spec = heap_type_spec<WorkerSlotObject>("interpool._core.WorkerSlot",
                                                                Py_TPFLAGS_DISALLOW_INSTANTIATION, slot_slots);

}  // namespace interpool::py
