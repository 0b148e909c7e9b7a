// src/python/worker_context.hpp: a worker interpreter's side of running a task.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "python/callable_codec.hpp"
#include "python/codec.hpp"
#include "python/engine.hpp"
#include "python/handle_object.hpp"
#include "python/interrupt.hpp"

namespace interpool::py {

/// The state of one worker interpreter, on its own thread, under its own GIL.
class WorkerContext {
 public:
  /// Prepares the interpreter: sys.path, interpool imports, __main__, then
  /// the user's initializer.  On failure fills `reason` and, when possible,
  /// `info` (the encoded _core.Failure of the exception, failure.hpp).
  /// The initializer runs in an interrupt window of serial `setup_serial`.
  /// With `output`, the interpreter's sys.stdout, sys.stderr and logging
  /// are forwarded through it to the caller, named as worker `index`.
  bool setup(const WorkerRecipe& recipe, InterruptTarget& target, uint64_t setup_serial, std::string& reason,
             rt::Payload& info, std::shared_ptr<rt::OutputSink> output, std::weak_ptr<EngineCore> core,
             std::size_t index);

  /// After a task: pushes its unfinished output lines and returns the last
  /// output chunk this interpreter pushed (0: none).
  uint64_t end_task_output();

  /// Runs a Call or Map `task` and writes its response.  The user's code runs
  /// in an interrupt window: if TaskInterrupted ends it after a stop request,
  /// the task is marked stopped instead of failed with a Failure.
  void run(PyTask& task);

  /// Runs the recipe's finalizer, if any; errors are reported as unraisable.
  void finalize(const WorkerRecipe& recipe);

  /// Fails `task` with the pending exception.
  void fail_with_pending(PyTask& task) { fail(task, nullptr); }

  /// Drops decoded copies of SharedValues that were released.
  void sweep_shared() {
    if (_state) _state->shared_cache->sweep_if_released();
  }

  /// Drops every reference this interpreter's objects hold, after running
  /// interpool._worker.teardown().
  void clear() {
    end_task_output();
    if (_worker) {
      Ref done = Ref::steal(PyObject_CallMethod(_worker.get(), "teardown", nullptr));
      if (!done) PyErr_WriteUnraisable(_worker.get());
    }
    _callables.clear();
    _describe.reset();
    _decode_stateless.reset();
    _worker.reset();
    _core.reset();
  }

 private:
  /// The callable a request starts with (callable_codec.hpp).  `holder`
  /// owns an uncached one.
  PyObject* callable(Decoder& dec, Ref& holder) { return _callables.decode(dec, holder, _decode_stateless.get()); }
  /// Fails `task` with the pending exception: its response is the Failure,
  /// then, for a Map chunk, `partial` (the values computed before it).
  void fail(PyTask& task, PyObject* partial);
  /// After the user's code raised: true (and the task marked stopped) when
  /// the exception is the TaskInterrupted that a stop request raised.
  bool stopped_by_request(PyTask& task);
  /// Writes the Failure of `exc` (then `partial`, if given) into `out`.
  /// False, with `out` empty, if even that fails.
  bool describe(PyObject* exc, rt::Payload& out, PyObject* partial);

  Ref _core;      // interpool._core, imported in this interpreter
  Ref _worker;    // interpool._worker
  Ref _describe;  // interpool._worker.describe_exception
  ModuleState* _state = nullptr;
  InterruptTarget* _target = nullptr;  // this interpreter's, set by setup()
  Ref _decode_stateless;  // interpool._worker.decode_stateless
  CallableCache _callables;
};

}  // namespace interpool::py
