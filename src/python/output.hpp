// src/python/output.hpp: worker output, forwarded to the caller's streams.
//
// Worker side (a worker interpreter, its GIL): interpool._worker replaces
// sys.stdout and sys.stderr with streams whose writes land here, in the
// interpreter's WorkerOutput.  Complete lines (and whatever flush() asks
// for) become chunks of UTF-8 bytes in the pool's rt::OutputSink; a task's
// partial lines are pushed when it ends.  Logging records travel the same
// way, serialized by the worker.
//
// Caller side (the owner interpreter, its GIL): write_output() takes the
// chunks in order and writes them to the caller's *current* sys.stdout and
// sys.stderr, and hands records to interpool._output.  Only the pool's
// delivery thread calls it, so chunks are written in the order they were
// pushed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "python/module_state.hpp"
#include "runtime/output_sink.hpp"

namespace interpool::py {

class EngineCore;

/// One worker interpreter's output state, owned by its _core ModuleState.
struct WorkerOutput {
  std::weak_ptr<EngineCore> core;      ///< to wake the delivery thread
  std::shared_ptr<rt::OutputSink> sink;
  uint32_t worker = 0;                 ///< the worker's index in its pool
  std::string partial[2];              ///< stdout, stderr: the unfinished line
  uint64_t last_seq = 0;               ///< the last chunk this interpreter pushed

  /// Pushes `bytes` as one chunk (no-op when empty).
  void push(rt::OutputKind kind, std::string bytes);
  /// Pushes the unfinished lines of both streams.  Returns last_seq: the
  /// chunk a task's future must wait for.
  uint64_t flush_partials();
};

/// Makes this worker interpreter's output state (worker side).
bool install_worker_output(ModuleState& state, std::weak_ptr<EngineCore> core, std::shared_ptr<rt::OutputSink> sink,
                           uint32_t worker);

/// End of a task in this worker interpreter: pushes its unfinished lines and
/// returns the number of the last chunk it pushed (0: none, or output is
/// not forwarded).
uint64_t end_task_output(ModuleState& state);

/// Writes every chunk waiting in `sink` to this (the owner) interpreter's
/// sys.stdout / sys.stderr / logging.  `name_prefix` + index names a worker.
/// Owner's GIL held; never raises (errors are reported as unraisable).
void write_output(ModuleState& state, rt::OutputSink& sink, const std::string& name_prefix);

/// Module functions used by interpool._worker's streams and logging handler.
PyObject* output_write(PyObject* module, PyObject* const* args, Py_ssize_t nargs);
PyObject* output_flush(PyObject* module, PyObject* arg);
PyObject* output_record(PyObject* module, PyObject* arg);

}  // namespace interpool::py
