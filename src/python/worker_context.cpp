// src/python/worker_context.cpp: a worker interpreter's side of running a task.
#include "python/worker_context.hpp"

#include <string_view>
#include <utility>

#include "python/failure.hpp"
#include "python/output.hpp"

namespace interpool::py {
namespace {

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

}  // namespace

uint64_t WorkerContext::end_task_output() { return _state ? interpool::py::end_task_output(*_state) : 0; }

bool WorkerContext::setup(const WorkerRecipe& recipe, InterruptTarget& target, uint64_t setup_serial,
                          std::string& reason, rt::Payload& info, std::shared_ptr<rt::OutputSink> output,
                          std::weak_ptr<EngineCore> core, std::size_t index) {
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
  _target = &target;
  // Before anything can print: interpool._worker.setup installs the streams
  // that write here.
  if (output && !install_worker_output(*_state, std::move(core), std::move(output), static_cast<uint32_t>(index)))
    return fail_here("could not set up output forwarding in a worker interpreter");
  target.type = _state->task_interrupted_type;
  _worker = Ref::steal(PyImport_ImportModule("interpool._worker"));
  if (!_worker) return fail_here("could not import interpool._worker in a worker interpreter");
  _describe = Ref::steal(PyObject_GetAttrString(_worker.get(), "describe_exception"));
  _decode_stateless = _describe ? Ref::steal(PyObject_GetAttrString(_worker.get(), "decode_stateless")) : Ref();
  if (!_decode_stateless) return fail_here("interpool._worker is incomplete");

  {
    Decoder dec(*_state, recipe.setup);
    Ref kwargs = Ref::steal(dec.value());  // a dict (Engine checked it)
    Ref none = kwargs ? Ref::steal(PyTuple_New(0)) : Ref();
    if (!none) return fail_here("could not decode the worker setup");
    Ref setup = Ref::steal(PyObject_GetAttrString(_worker.get(), "setup"));
    if (!setup) return fail_here("interpool._worker is incomplete");
    Ref done = Ref::steal(PyObject_Call(setup.get(), none.get(), kwargs.get()));
    if (!done) return fail_here("worker setup failed");
  }

  if (!recipe.initializer.empty()) {
    Decoder dec(*_state, recipe.initializer);
    Ref holder;
    PyObject* fn = callable(dec, holder);
    if (!fn) return fail_here("initializer failed");
    Ref args = Ref::steal(dec.value());
    if (!args) return fail_here("initializer failed");
    InterruptWindow window(_target, setup_serial);
    Ref done = window.raised() ? Ref() : Ref::steal(call_user_code(fn, args.get(), nullptr));
    if (!done) return fail_here("initializer failed");
  }
  return true;
}

bool WorkerContext::describe(PyObject* exc, rt::Payload& out, PyObject* partial) {
  out.clear();
  Ref info = describe_exception(*_state, exc, _describe.get());
  Encoder enc(*_state, out);
  // A Map chunk's failure is followed by the values computed before it.
  if (!info || !enc.value(info.get()) || (partial && !enc.value(partial))) {
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

void WorkerContext::finalize(const WorkerRecipe& recipe) {
  if (recipe.finalizer.empty() || !_state) return;
  Decoder dec(*_state, recipe.finalizer);
  Ref holder;
  PyObject* fn = callable(dec, holder);
  Ref args = fn ? Ref::steal(dec.value()) : Ref();
  Ref done = args ? Ref::steal(call_user_code(fn, args.get(), nullptr)) : Ref();
  if (!done) PyErr_WriteUnraisable(nullptr);
}

bool WorkerContext::stopped_by_request(PyTask& task) {
  auto why = static_cast<StopReason>(task.stop.load(std::memory_order_acquire));
  if (why == StopReason::None || !PyErr_ExceptionMatches(_target->type)) return false;
  PyErr_Clear();
  task.failed = true;
  task.stopped = why;
  task.response.clear();
  return true;
}

void WorkerContext::run(PyTask& task) {
  Decoder dec(*_state, task.request);
  Ref holder;
  PyObject* fn = callable(dec, holder);
  if (!fn) return fail(task, task.kind() == rt::Task::Kind::Map ? Ref::steal(PyList_New(0)).get() : nullptr);

  if (task.kind() == rt::Task::Kind::Call) {
    Ref args, kwargs;
    if (!decode_call_args(dec, args, kwargs)) return fail(task, nullptr);
    Ref result;
    {
      InterruptWindow window(_target, task.serial);
      if (!window.raised())
        result = Ref::steal(call_user_code(fn, args.get(), kwargs.get() == Py_None ? nullptr : kwargs.get()));
    }
    if (!result) return stopped_by_request(task) ? void() : fail(task, nullptr);
    Encoder enc(*_state, task.response);
    if (!enc.value(result.get())) return fail(task, nullptr);
    return;
  }

  // Map: fn(*item) for each item of the chunk, stopping at the first error.
  Ref results = Ref::steal(PyList_New(0));
  Ref items = results ? Ref::steal(dec.value()) : Ref();
  if (!items) return fail(task, results.get());
  Py_ssize_t n = PyList_GET_SIZE(items.get());
  {
    InterruptWindow window(_target, task.serial);
    for (Py_ssize_t i = 0; i < n && !window.raised(); ++i) {
      PyObject* item = PyList_GET_ITEM(items.get(), i);
      Ref r = Ref::steal(call_user_code(fn, item, nullptr));
      if (!r || PyList_Append(results.get(), r.get()) < 0) break;
    }
  }
  if (PyErr_Occurred()) return stopped_by_request(task) ? void() : fail(task, results.get());
  Encoder enc(*_state, task.response);
  if (!enc.value(results.get())) {
    Ref none = Ref::steal(PyList_New(0));
    task.response.clear();
    return fail(task, none.get());
  }
}

}  // namespace interpool::py
