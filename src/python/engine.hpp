// src/python/engine.hpp: the worker pool core behind interpool.Pool.
//
// Threads and what they touch:
//   caller thread   (owner interpreter, its GIL):  encodes requests, pushes
//                   Tasks, may deliver results itself in Task.settle().
//   worker threads  (one own-GIL interpreter each): pop Tasks, decode, run,
//                   encode responses, push them to `completions`.
//   delivery thread (owner interpreter, its GIL, taken per batch): pops
//                   completed Tasks in batches and completes their futures.
// Only bytes and engine handles move between them, in rt::Task payloads.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "python/module_state.hpp"
#include "runtime/blocking_queue.hpp"
#include "runtime/task.hpp"
#include "runtime/worker_group.hpp"

namespace interpool::py {

/// A Task whose result completes a concurrent.futures.Future in the owner
/// interpreter.
struct PyTask final : rt::Task {
  using rt::Task::Task;
  ~PyTask() override;
  /// Strong reference to the future, owned by the owner interpreter.  Set at
  /// submit, cleared (under the owner's GIL) by whoever delivers or cancels.
  PyObject* future = nullptr;
  /// Failed because the pool broke before it ran; `broken_reason` says why,
  /// and the response (if any) describes the exception that broke it.
  bool broken = false;
  std::string broken_reason;
};

using TaskPtr = std::shared_ptr<PyTask>;

/// Everything a worker needs to start, as interpreter-neutral data.
struct WorkerRecipe {
  std::size_t workers = 1;
  std::size_t max_tasks = 0;            ///< 0: never replace the interpreter
  std::vector<std::string> sys_path;    ///< fs-encoded; set before any import
  rt::Payload setup;                    ///< encoded (main_spec, argv) for _worker.setup
  rt::Payload initializer;              ///< [callable][args], or empty
  std::string thread_name_prefix;
};

/// The shared core of one pool.  Owned jointly by the Python Engine object and
/// every engine thread, so it lives until the last of them is gone.
class EngineCore : public std::enable_shared_from_this<EngineCore> {
 public:
  EngineCore(WorkerRecipe recipe, PyInterpreterState* owner);

  /// Starts the workers and the delivery thread.  `module` and `rebuild` are
  /// owner-interpreter objects; the delivery thread takes its own references.
  void start(PyObject* module, PyObject* rebuild);

  /// Queues a task.  False once the pool is shut down or broken.
  bool submit(TaskPtr task) { return _tasks.push(std::move(task)); }

  /// Stops accepting work; with `cancel_queued`, takes back every queued task
  /// that could still be cancelled (their futures are the caller's to cancel).
  std::vector<TaskPtr> shutdown(bool cancel_queued);

  /// Waits (without holding any GIL) for every thread of the pool to finish.
  void join();

  bool broken() const { return _broken.load(std::memory_order_acquire); }
  std::string broken_reason() const;
  bool accepting() const { return !_tasks.closed(); }
  PyInterpreterState* owner() const { return _owner; }
  std::size_t workers() const { return _recipe.workers; }
  std::size_t queued() const { return _tasks.size(); }

  /// Wakes the idle workers of every engine, so they drop decoded copies of
  /// released SharedValues.  The SharedValue release hook; any thread.
  static void poke_all();

  /// Every engine owned by interpreter `owner` that still has threads.
  static std::vector<std::shared_ptr<EngineCore>> live_engines(PyInterpreterState* owner);

 private:
  void worker_main(std::size_t index);
  void deliverer_main(PyObject* module, PyObject* rebuild);
  void worker_exited();
  /// Marks the pool broken and fails every queued task with `info` (an
  /// encoded exception description).
  void break_pool(const std::string& reason, rt::Payload info);

  WorkerRecipe _recipe;
  PyInterpreterState* _owner;
  rt::BlockingQueue<TaskPtr> _tasks;
  rt::BlockingQueue<TaskPtr> _completions;
  rt::WorkerGroup _worker_threads;
  rt::WorkerGroup _delivery_thread;
  std::atomic<std::size_t> _live_workers{0};
  std::atomic<bool> _broken{false};
  mutable std::mutex _broken_mutex;  // guards _broken_reason
  std::string _broken_reason;
  std::once_flag _joined;
};

/// Completes `task`'s future from its response, if this caller wins the
/// delivery.  Runs under the owner interpreter's GIL; never raises.
void deliver(ModuleState& state, PyObject* rebuild, PyTask& task);

extern PyType_Spec engine_spec;
extern PyType_Spec task_spec;

/// _core._shutdown_all(): shuts down and joins every engine this interpreter owns.
PyObject* shutdown_all_engines(PyObject* module, PyObject*);

}  // namespace interpool::py
