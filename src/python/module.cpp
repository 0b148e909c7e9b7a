// src/python/module.cpp: module interpool._core, multi-phase init.
//
// The module declares per-interpreter-GIL support: it is imported afresh in
// every worker interpreter, each import with its own heap types and state.
#include <new>

#include "python/engine.hpp"
#include "python/failure.hpp"
#include "python/fork_guard.hpp"
#include "python/frames.hpp"
#include "python/handle_object.hpp"
#include "python/loop_waker.hpp"
#include "python/sync_objects.hpp"
#include "python/module_state.hpp"
#include "python/output.hpp"
#include "python/records.hpp"

namespace interpool::py {

bool load_pickle(ModuleState& st) {
  if (st.pickle_loads) return true;
  // The C pickler alone: pickle.py would also import re, struct and more.
  // Its functions are pickle's own.
  Ref pickle = Ref::steal(PyImport_ImportModule("_pickle"));
  if (!pickle) return false;
  Ref dumps = Ref::steal(PyObject_GetAttrString(pickle.get(), "dumps"));
  Ref loads = dumps ? Ref::steal(PyObject_GetAttrString(pickle.get(), "loads")) : Ref();
  Ref error = loads ? Ref::steal(PyObject_GetAttrString(pickle.get(), "PicklingError")) : Ref();
  if (!error) return false;
  if (!st.pickle_loads) {  // the import may have let another thread of this interpreter in
    st.pickle_dumps = dumps.release();
    st.pickle_error = error.release();
    st.pickle_loads = loads.release();
  }
  return true;
}

template <class F>
void for_each_by_value_field(ByValueState& bv, F&& f) {
  f(bv.dumps);
  f(bv.encode);
  f(bv.absent);
  f(bv.cache);
  f(bv.str_data);
  f(bv.str_guards);
  f(bv.str_per_task);
}

bool load_by_value(ModuleState& st) {
  if (st.by_value) return true;
  Ref module = Ref::steal(PyImport_ImportModule("interpool._byvalue"));
  if (!module) return false;
  if (st.by_value) return true;  // the import may have let another thread of this interpreter in
  auto* bv = new (std::nothrow) ByValueState();
  if (!bv) return PyErr_NoMemory(), false;
  st.by_value = bv;
  bv->dumps = PyObject_GetAttrString(module.get(), "dumps");
  bv->encode = PyObject_GetAttrString(module.get(), "encode_callable");
  bv->absent = PyObject_GetAttrString(module.get(), "ABSENT");
  bv->cache = PyDict_New();
  bv->str_data = PyUnicode_InternFromString("data");
  bv->str_guards = PyUnicode_InternFromString("guards");
  bv->str_per_task = PyUnicode_InternFromString("per_task");
  if (bv->dumps && bv->encode && bv->absent && bv->cache && bv->str_data && bv->str_guards && bv->str_per_task)
    return true;
  for_each_by_value_field(*bv, [](PyObject*& field) { Py_CLEAR(field); });
  delete bv;
  st.by_value = nullptr;
  return false;
}

namespace {

int module_exec(PyObject* module) {
  ModuleState& st = state_of(module);
  auto add_type = [&](PyType_Spec* spec, PyTypeObject*& slot) {
    slot = reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, spec, nullptr));
    return slot && PyModule_AddType(module, slot) == 0;
  };
  if (!add_type(&engine_spec, st.engine_type) || !add_type(&task_spec, st.task_type) ||
      !add_type(&completion_spec, st.completion_type) || !add_type(&worker_slot_spec, st.worker_slot_type) ||
      !add_type(&loop_waker_spec, st.loop_waker_type) || !add_type(&failure_spec, st.failure_type))
    return -1;
  if (!add_type(&delivery_spec, st.delivery_type) || !add_type(&guard_spec, st.guard_type) ||
      !add_type(&launch_spec, st.launch_type) || !add_type(&requests_spec, st.requests_type))
    return -1;
  auto add_handle_type = [&](PyType_Spec* spec, HandleKind kind) {
    return add_type(spec, st.handle_types[static_cast<int>(kind)]);
  };
  if (!add_handle_type(&buffer_spec, HandleKind::Buffer) || !add_handle_type(&shared_spec, HandleKind::Shared))
    return -1;
  for (auto& [spec, kind] : sync_type_specs())
    if (!add_handle_type(spec, kind)) return -1;
  st.handle_from_context = PyObject_GetAttrString(module, "_handle_from_context");
  if (!st.handle_from_context) return -1;
  // A BaseException, like KeyboardInterrupt: `except Exception` in the task
  // must not swallow the request to stop.
  st.task_interrupted_type = PyErr_NewExceptionWithDoc(
      "interpool.TaskInterrupted",
      "Raised inside a task to stop it: by Future.interrupt(), a timeout, or a shutdown or Ctrl-C that "
      "interrupts running work.  A BaseException, so that `except Exception` does not swallow it.",
      PyExc_BaseException, nullptr);
  if (!st.task_interrupted_type || PyModule_AddObjectRef(module, "TaskInterrupted", st.task_interrupted_type) < 0)
    return -1;
  try {
    st.shared_cache = new SharedCache();
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
    return -1;
  }
  rt::SharedValue::set_release_hook(&EngineCore::poke_all);
  if (!install_fork_guard() || !install_frame_walkers(module)) return -1;

  st.callable_cache = PyDict_New();
  if (!st.callable_cache) return -1;

  st.str_set_result = PyUnicode_InternFromString("set_result");
  st.str_set_exception = PyUnicode_InternFromString("set_exception");
  st.str_push_many = PyUnicode_InternFromString("push_many");
  st.str_waker = PyUnicode_InternFromString("waker");
  st.str_done = PyUnicode_InternFromString("done");
  st.str_cancel = PyUnicode_InternFromString("cancel");
  if (!st.str_push_many || !st.str_waker || !st.str_done || !st.str_cancel) return -1;
  st.str_append = PyUnicode_InternFromString("append");
  st.str_buffers = PyUnicode_InternFromString("buffers");
  st.str_buffer_callback = PyUnicode_InternFromString("buffer_callback");
  if (!st.str_set_result || !st.str_set_exception || !st.str_append || !st.str_buffers || !st.str_buffer_callback)
    return -1;

  // st.future (interpool._future, which imports concurrent.futures and
  // logging) loads on the first delivery: workers never need it.
  // Worker interpreters import the pickler when a payload first needs it
  // (load_pickle): a worker whose tasks are functions by name and builtin
  // values never does, and so never imports functools and collections,
  // which _pickle imports and CPython partly leaks when the worker ends.
  if (PyInterpreterState_Get() != PyInterpreterState_Main()) return 0;
  if (!load_pickle(st)) return -1;
  // CPython 3.12 caches the keyword-name tuple of a builtin's argument parser
  // in process-wide state, allocated by the first interpreter that passes a
  // keyword: if that is a worker, the main interpreter later frees memory of
  // the worker's allocator and crashes at exit.  The codec calls pickle.dumps
  // and pickle.loads with keywords; make this interpreter (the first to
  // import _core: workers only exist once it has) go first.
  {
    Ref five = Ref::steal(PyLong_FromLong(5));
    Ref empty = Ref::steal(PyTuple_New(0));
    if (!five || !empty) return -1;
    PyObject* dump_args[] = {Py_None, five.get(), Py_None};
    Ref dump_kw = Ref::steal(PyTuple_Pack(1, st.str_buffer_callback));
    if (!dump_kw) return -1;
    Ref data = Ref::steal(PyObject_Vectorcall(st.pickle_dumps, dump_args, 2, dump_kw.get()));
    if (!data) return -1;
    PyObject* load_args[] = {data.get(), empty.get()};
    Ref load_kw = Ref::steal(PyTuple_Pack(1, st.str_buffers));
    if (!load_kw) return -1;
    Ref back = Ref::steal(PyObject_Vectorcall(st.pickle_loads, load_args, 1, load_kw.get()));
    if (!back) return -1;
  }
  return 0;
}

template <class F>
void for_each_field(ModuleState& st, F&& f) {
  f(reinterpret_cast<PyObject*&>(st.engine_type));
  f(reinterpret_cast<PyObject*&>(st.task_type));
  f(reinterpret_cast<PyObject*&>(st.completion_type));
  f(reinterpret_cast<PyObject*&>(st.worker_slot_type));
  f(reinterpret_cast<PyObject*&>(st.loop_waker_type));
  f(reinterpret_cast<PyObject*&>(st.failure_type));
  f(reinterpret_cast<PyObject*&>(st.delivery_type));
  f(reinterpret_cast<PyObject*&>(st.guard_type));
  f(reinterpret_cast<PyObject*&>(st.launch_type));
  f(reinterpret_cast<PyObject*&>(st.requests_type));
  f(st.str_push_many);
  f(st.str_waker);
  f(st.str_done);
  f(st.str_cancel);
  for (auto*& type : st.handle_types) f(reinterpret_cast<PyObject*&>(type));
  f(st.handle_from_context);
  f(st.task_interrupted_type);
  f(st.queue_closed_type);
  f(st.queue_full_type);
  f(st.queue_empty_type);
  f(st.broken_barrier_type);
  f(st.pickle_dumps);
  f(st.pickle_loads);
  f(st.pickle_error);
  f(st.callable_cache);
  if (st.by_value) for_each_by_value_field(*st.by_value, f);
  f(st.str_set_result);
  f(st.str_set_exception);
  f(st.str_append);
  f(st.str_buffers);
  f(st.str_buffer_callback);
  f(st.future.future_type);
  f(st.future.observed);
  f(st.future.state);
  f(st.future.result);
  f(st.future.exception);
  f(st.future.pending);
  f(st.future.finished);
  f(st.future.mark_cancelled);
}

int module_traverse(PyObject* module, visitproc visit, void* arg) {
  ModuleState* st = static_cast<ModuleState*>(PyModule_GetState(module));
  if (!st) return 0;
  int err = 0;
  for_each_field(*st, [&](PyObject*& field) {
    if (!err && field) err = visit(field, arg);
  });
  return err;
}

int module_clear(PyObject* module) {
  ModuleState* st = static_cast<ModuleState*>(PyModule_GetState(module));
  if (!st) return 0;
  if (st->shared_cache) st->shared_cache->clear();
  for_each_field(*st, [](PyObject*& field) { Py_CLEAR(field); });
  delete st->by_value;  // its fields were cleared just now
  st->by_value = nullptr;
  return 0;
}

void module_free(void* module) {
  module_clear(static_cast<PyObject*>(module));
  ModuleState* st = static_cast<ModuleState*>(PyModule_GetState(static_cast<PyObject*>(module)));
  if (st) {
    delete st->shared_cache;
    st->shared_cache = nullptr;
    if (st->output) {
      // What the interpreter printed while it ended, unfinished lines included.
      st->output->flush_partials();
      delete st->output;
      st->output = nullptr;
    }
  }
}

PyMethodDef module_methods[] = {
    {"share", share, METH_O,
     "share(obj, /) -> Shared\n--\n\nEncode a frozen snapshot of obj once, into engine memory, for O(1) passing to "
     "tasks.  Raises TypeError if obj (or something inside it) cannot be sent."},
    {"_handle_from_context", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(handle_from_context)),
     METH_FASTCALL, "Rebuild a handle while interpool decodes a payload (pickle support)."},
    {"current_worker_slot", current_worker_slot, METH_NOARGS,
     "The WorkerSlot of the engine worker thread that calls it (AsyncPool workers)."},
    {"output_write", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(output_write)), METH_FASTCALL,
     "output_write(kind, text): a worker's sys.stdout (1) or sys.stderr (2) write, forwarded to the caller."},
    {"output_flush", output_flush, METH_O, "output_flush(kind): forward the unfinished line of stream kind."},
    {"output_record", output_record, METH_O, "output_record(data): forward one serialized logging record."},
    {"shutdown_all", shutdown_all_engines, METH_NOARGS,
     "Shut down and join every pool this interpreter owns (run at interpreter exit)."},
    {"_current_frames", current_frames, METH_NOARGS,
     "sys._current_frames() for this interpreter's threads only (installed as sys._current_frames on 3.12 and "
     "3.13, whose own walks every interpreter's threads and crashes while workers run)."},
    {"_current_exceptions", current_exceptions, METH_NOARGS,
     "sys._current_exceptions() for this interpreter's threads only (see _current_frames)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, reinterpret_cast<void*>(module_exec)},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    {0, nullptr},
};

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "interpool._core", "The C++ engine of interpool: worker interpreters, tasks, the codec.",
    sizeof(ModuleState),   module_methods,    module_slots,
    module_traverse,       module_clear,      module_free,
};

}  // namespace
}  // namespace interpool::py

PyMODINIT_FUNC PyInit__core(void) { return PyModuleDef_Init(&interpool::py::module_def); }
