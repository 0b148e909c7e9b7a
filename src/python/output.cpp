// src/python/output.cpp: worker output, forwarded to the caller's streams.
#include "python/output.hpp"

#include <new>
#include <utility>
#include <vector>

#include "python/engine.hpp"

namespace interpool::py {
namespace {

// Set while this thread writes output: a stream whose write() waits on a
// task of the same pool must not start a second, nested writer.
thread_local bool t_writing = false;

WorkerOutput* output_of(PyObject* module) { return state_of(module).output; }

}  // namespace

void WorkerOutput::push(rt::OutputKind kind, std::string bytes) {
  if (bytes.empty()) return;
  bool was_empty = false;
  last_seq = sink->push(worker, kind, std::move(bytes), was_empty);
  if (was_empty)
    if (auto c = core.lock()) c->output_arrived();
}

uint64_t WorkerOutput::flush_partials() {
  for (int i = 0; i < 2; ++i)
    if (!partial[i].empty())
      push(i == 0 ? rt::OutputKind::Stdout : rt::OutputKind::Stderr, std::exchange(partial[i], {}));
  return last_seq;
}

bool install_worker_output(ModuleState& state, std::weak_ptr<EngineCore> core, std::shared_ptr<rt::OutputSink> sink,
                           uint32_t worker) {
  try {
    auto* out = new WorkerOutput();
    out->core = std::move(core);
    out->sink = std::move(sink);
    out->worker = worker;
    delete std::exchange(state.output, out);
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
    return false;
  }
  return true;
}

uint64_t end_task_output(ModuleState& state) { return state.output ? state.output->flush_partials() : 0; }

// output_write(kind, text): buffers text for stdout (1) or stderr (2) and
// pushes every complete line.
PyObject* output_write(PyObject* module, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2 || !PyLong_Check(args[0]) || !PyUnicode_Check(args[1])) {
    PyErr_SetString(PyExc_TypeError, "output_write(kind: int, text: str)");
    return nullptr;
  }
  long kind = PyLong_AsLong(args[0]);
  if (kind != 1 && kind != 2) {
    PyErr_SetString(PyExc_ValueError, "kind must be 1 (stdout) or 2 (stderr)");
    return nullptr;
  }
  WorkerOutput* out = output_of(module);
  if (!out) Py_RETURN_NONE;  // the interpreter is ending
  Py_ssize_t size;
  const char* utf8 = PyUnicode_AsUTF8AndSize(args[1], &size);
  Ref encoded;
  if (!utf8) {
    // Lone surrogates (from surrogateescape'd bytes): pass them through.
    PyErr_Clear();
    encoded = Ref::steal(PyUnicode_AsEncodedString(args[1], "utf-8", "surrogatepass"));
    if (!encoded) return nullptr;
    utf8 = PyBytes_AS_STRING(encoded.get());
    size = PyBytes_GET_SIZE(encoded.get());
  }
  std::string& partial = out->partial[kind - 1];
  std::string_view text(utf8, static_cast<std::size_t>(size));
  std::size_t last_newline = text.rfind('\n');
  if (last_newline == std::string_view::npos) {
    partial.append(text);
  } else {
    std::string lines = std::exchange(partial, {});
    lines.append(text.substr(0, last_newline + 1));
    partial.assign(text.substr(last_newline + 1));
    out->push(kind == 1 ? rt::OutputKind::Stdout : rt::OutputKind::Stderr, std::move(lines));
  }
  Py_RETURN_NONE;
}

// output_flush(kind): pushes the unfinished line of stdout (1) or stderr (2).
PyObject* output_flush(PyObject* module, PyObject* arg) {
  long kind = PyLong_AsLong(arg);
  if (kind == -1 && PyErr_Occurred()) return nullptr;
  WorkerOutput* out = output_of(module);
  if (out && (kind == 1 || kind == 2))
    out->push(kind == 1 ? rt::OutputKind::Stdout : rt::OutputKind::Stderr, std::exchange(out->partial[kind - 1], {}));
  Py_RETURN_NONE;
}

// output_record(data: bytes): pushes one serialized logging record.
PyObject* output_record(PyObject* module, PyObject* arg) {
  if (!PyBytes_Check(arg)) {
    PyErr_SetString(PyExc_TypeError, "output_record(data: bytes)");
    return nullptr;
  }
  WorkerOutput* out = output_of(module);
  if (out) out->push(rt::OutputKind::Record, std::string(PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg)));
  Py_RETURN_NONE;
}

namespace {

/// Writes `text` (UTF-8, surrogates passed) to sys.stdout or sys.stderr as
/// they are now.  None or a missing stream drops it, as print() does.
void write_text(const char* name, const std::string& text) {
  Ref stream = Ref::borrow(PySys_GetObject(name));
  if (!stream || stream.get() == Py_None) return;
  Ref str = Ref::steal(PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "surrogatepass"));
  Ref done = str ? Ref::steal(PyObject_CallMethod(stream.get(), "write", "O", str.get())) : Ref();
  if (!done) PyErr_WriteUnraisable(stream.get());
}

/// Hands records [(worker name, data), ...] to interpool._output.handle_records.
void handle_records(PyObject* records) {
  Ref module = Ref::steal(PyImport_ImportModule("interpool._output"));
  Ref done = module ? Ref::steal(PyObject_CallMethod(module.get(), "handle_records", "O", records)) : Ref();
  if (!done) PyErr_WriteUnraisable(module ? module.get() : nullptr);
}

}  // namespace

void write_output(ModuleState&, rt::OutputSink& sink, const std::string& name_prefix) {
  if (t_writing || !sink.pending()) return;
  PendingError keep;
  t_writing = true;
  std::vector<rt::OutputChunk> chunks = sink.take();
  std::size_t i = 0, n = chunks.size();
  while (i < n) {
    rt::OutputKind kind = chunks[i].kind;
    if (kind == rt::OutputKind::Record) {
      Ref records = Ref::steal(PyList_New(0));
      for (; i < n && chunks[i].kind == kind; ++i) {
        std::string name = name_prefix + std::to_string(chunks[i].worker);
        Ref item = Ref::steal(Py_BuildValue("(s#y#)", name.data(), static_cast<Py_ssize_t>(name.size()),
                                            chunks[i].bytes.data(), static_cast<Py_ssize_t>(chunks[i].bytes.size())));
        if (!item || !records || PyList_Append(records.get(), item.get()) < 0) PyErr_Clear();
      }
      if (records)
        handle_records(records.get());
      else
        PyErr_Clear();
    } else {
      // Consecutive chunks for the same stream go in one write() call.
      std::string text;
      for (; i < n && chunks[i].kind == kind; ++i) text += chunks[i].bytes;
      write_text(kind == rt::OutputKind::Stdout ? "stdout" : "stderr", text);
    }
  }
  if (n) sink.written_through(chunks.back().seq);
  t_writing = false;
}

}  // namespace interpool::py
