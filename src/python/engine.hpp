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
  // The three references below belong to the owner interpreter.  Set at
  // submit; cleared under the owner's GIL by whoever delivers or cancels.
  /// The concurrent.futures.Future (or asyncio.Future, with a bridge) to complete.
  PyObject* future = nullptr;
  /// With asyncio: the loop's bridge, which completes `future` on its loop,
  /// many results per wake-up (interpool._aio.LoopBridge).
  PyObject* bridge = nullptr;
  /// Local tasks: (fn, args, kwargs), run as they are, no encoding.
  PyObject* local_call = nullptr;

  /// The worker that started the task (-1 before).
  int worker = -1;
  /// Deferred tasks: the submitter asked to cancel the running work.
  std::atomic<bool> cancel_requested{false};
  /// Failed because the pool broke before it ran; `broken_reason` says why,
  /// and the response (if any) describes the exception that broke it.
  bool broken = false;
  std::string broken_reason;
  /// Shared by every task that failed when the pool broke: whoever delivers
  /// the first of them (or the notice) logs the failure, exactly once, so
  /// the log precedes any result a caller can see.
  std::shared_ptr<std::atomic<bool>> broken_logged;
};

using TaskPtr = std::shared_ptr<PyTask>;

/// One worker thread's mailbox for deferred tasks (AsyncPool): how many run,
/// and which of them the submitters asked to cancel.  Shared with the
/// Completion objects of that worker, which may outlive the thread.
class EngineCore;

struct WorkerSlot {
  WorkerSlot();
  ~WorkerSlot();
  WorkerSlot(const WorkerSlot&) = delete;
  WorkerSlot& operator=(const WorkerSlot&) = delete;

  /// Hands a deferred task to the worker's event loop (AsyncPool): queues it
  /// and signals the eventfd the loop watches.  Any thread, no Python, no GIL.
  void request_launch(std::shared_ptr<PyTask> task);
  /// Asks the worker's event loop to cancel `task`, the same way.
  void request_cancel(std::shared_ptr<PyTask> task);
  /// Resets the eventfd, then takes both kinds of requests (one read serves
  /// both, so no signal is consumed for requests left behind).
  void take_requests(std::vector<std::shared_ptr<PyTask>>& launches, std::vector<std::shared_ptr<PyTask>>& cancels);

  std::atomic<uint32_t> in_flight{0};  ///< deferred tasks started, not yet completed
  int wakeup_fd = -1;                  ///< eventfd, readable while requests wait
  std::weak_ptr<EngineCore> core;      ///< the engine, for the Completions of launched tasks

 private:
  void signal();
  std::mutex _mutex;  // guards the two request lists
  std::vector<std::shared_ptr<PyTask>> _launch_requests;
  std::vector<std::shared_ptr<PyTask>> _cancel_requests;
};

/// Everything a worker needs to start, as interpreter-neutral data.
struct WorkerRecipe {
  std::size_t workers = 1;
  std::size_t max_tasks = 0;            ///< 0: never replace the interpreter
  std::vector<std::string> sys_path;    ///< fs-encoded; set before any import
  rt::Payload setup;                    ///< encoded (main_spec, argv) for _worker.setup
  rt::Payload initializer;              ///< [callable][args], or empty
  rt::Payload finalizer;                ///< [callable][args], run as a worker ends, or empty
  std::string thread_name_prefix;
  bool local_tasks = false;             ///< workers also run Local tasks (HybridPool)
  uint32_t max_deferred = 1;            ///< deferred tasks each worker runs at once (AsyncPool)
};

/// The shared core of one pool.  Owned jointly by the Python Engine object and
/// every engine thread, so it lives until the last of them is gone.
class EngineCore : public std::enable_shared_from_this<EngineCore> {
 public:
  EngineCore(WorkerRecipe recipe, PyInterpreterState* owner);

  /// Starts the workers and the delivery thread.  `module` and `rebuild` are
  /// owner-interpreter objects; the engine takes its own references, which
  /// the delivery thread drops as the last engine thread of that interpreter.
  void start(PyObject* module, PyObject* rebuild);

  /// Completes a deferred task (from its worker interpreter): pushes it to
  /// the delivery thread and frees its worker's slot.
  void finish_deferred(std::shared_ptr<PyTask> task, WorkerSlot& slot);

  /// The mailbox of worker `index`.
  WorkerSlot& slot(std::size_t index) { return *_slots.at(index); }

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
  /// Marks a task a worker ran as finished and queues it for delivery at once.
  void hand_over(TaskPtr task);
  void deliverer_main();
  /// Runs one Local task in the owner interpreter on a worker thread.
  void run_local(PyTask& task, PyThreadState* owner_tstate);
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
  std::vector<std::shared_ptr<WorkerSlot>> _slots;
  PyObject* _owner_module = nullptr;  ///< owner interpreter's interpool._core (owned)
  PyObject* _rebuild = nullptr;       ///< owner interpreter's _errors.rebuild (owned)
  std::atomic<std::size_t> _live_workers{0};
  std::atomic<bool> _broken{false};
  mutable std::mutex _broken_mutex;  // guards _broken_reason
  std::string _broken_reason;
  std::once_flag _joined;
};

extern PyType_Spec engine_spec;
extern PyType_Spec task_spec;
extern PyType_Spec completion_spec;
extern PyType_Spec worker_slot_spec;

/// The layout of a _core.WorkerSlot object: its type lives in
/// completion_object.cpp; current_worker_slot() (engine.cpp) makes them.
struct WorkerSlotObject {
  PyObject_HEAD
  std::shared_ptr<WorkerSlot> slot;
};

/// _core._current_worker_slot(): the WorkerSlot of the engine worker thread
/// calling it (from an initializer, say).
PyObject* current_worker_slot(PyObject* module, PyObject*);

/// _core._shutdown_all(): shuts down and joins every engine this interpreter owns.
PyObject* shutdown_all_engines(PyObject* module, PyObject*);

}  // namespace interpool::py
