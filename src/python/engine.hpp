// src/python/engine.hpp: the worker pool core behind interpool.Pool.
//
// Threads and what they touch:
//   caller thread   (owner interpreter, its GIL):  encodes requests, pushes
//                   Tasks, may deliver results itself in Task.settle().
//   worker threads  (one own-GIL interpreter each): pop Tasks, decode, run,
//                   encode responses, push them to `completions`.
//   local threads   (HybridPool only; owner interpreter, its GIL per task):
//                   pop Local tasks, run them, complete their futures.
//   delivery thread (owner interpreter, its GIL, taken per batch): pops
//                   completed Tasks in batches and completes their futures.
// Only bytes and engine handles move between them, in rt::Task payloads.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <vector>

#include "python/interrupt.hpp"
#include "python/fork_guard.hpp"
#include "python/module_state.hpp"
#include "runtime/blocking_queue.hpp"
#include "runtime/event_fd.hpp"
#include "runtime/output_sink.hpp"
#include "runtime/task.hpp"
#include "runtime/thread_roster.hpp"
#include "runtime/timer.hpp"

namespace interpool::py {

class Waker;
class WorkerContext;

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
  /// The interpreter those references belong to: Debug builds assert that
  /// it is the one attached wherever they are completed or released.
  PyInterpreterState* owner = nullptr;
  /// With a bridge whose loop watches a LoopWaker: the finished task goes
  /// straight to that loop (hand_over), not through the delivery thread,
  /// and `rebuild` is its pool's exception rebuilder (owner interpreter).
  std::shared_ptr<Waker> waker;
  PyObject* rebuild = nullptr;

  /// The last output chunk the task's interpreter pushed by the time the
  /// task ended: its future completes only once that chunk is written.
  uint64_t output_mark = 0;
  /// The worker that started the task (-1 before).
  int worker = -1;
  /// Names the task in interrupt requests (unique within the process).
  uint64_t serial = 0;
  /// How long the task may run once a worker starts it (zero: no limit).
  std::chrono::nanoseconds timeout{0};
  /// Why a stop was requested (StopReason; the first request wins).
  std::atomic<uint8_t> stop{0};
  /// The task ended because of that request: its future is cancelled, or
  /// fails with TimeoutError.  Written by whoever finishes the task.
  StopReason stopped = StopReason::None;
  /// Deferred tasks: the submitter asked to cancel the running work.
  std::atomic<bool> cancel_requested{false};
  /// Failed because the pool broke before it ran; `broken_reason` says why,
  /// and the response (if any) describes the exception that broke it.
  bool broken = false;
  std::string broken_reason;
  /// Shared by every task that failed when the pool broke: whoever delivers
  /// the first of them (or the notice) logs the failure, exactly once, so
  /// the log precedes any result a caller can see.
  /// 0: not logged, 1: being logged, 2: logged.  A deliverer that finds it
  /// being logged waits for the log before it reports the failure.
  std::shared_ptr<std::atomic<uint32_t>> broken_logged;
};

using TaskPtr = std::shared_ptr<PyTask>;

/// One worker thread's mailbox for deferred tasks (AsyncPool): how many run,
/// and which of them the submitters asked to cancel.  Shared with the
/// Completion objects of that worker, which may outlive the thread.
class EngineCore;

struct WorkerSlot {
  WorkerSlot() = default;
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
  rt::EventFd wakeup;                  ///< readable while requests wait
  std::weak_ptr<EngineCore> core;      ///< the engine, for the Completions of launched tasks

 private:
  /// Appends `task` to `requests` (one of the two lists), signalling the
  /// eventfd if no request was waiting.
  void push_request(std::vector<std::shared_ptr<PyTask>>& requests, std::shared_ptr<PyTask> task);
  std::mutex _mutex;  // guards the two request lists
  std::vector<std::shared_ptr<PyTask>> _launch_requests;
  std::vector<std::shared_ptr<PyTask>> _cancel_requests;
};

/// One worker thread, as the rest of the engine sees it: what it runs now,
/// and how to interrupt it.  A worker that does not stop within the grace
/// period is abandoned: `abandoned` tells its thread, should it ever come
/// back, to leave without touching the pool, which has replaced it.
struct WorkerRun {
  std::mutex mutex;  // guards every field below
  std::size_t index = 0;
  rt::ThreadRoster::Token token;     ///< the thread's place in the engine's roster
  InterruptTarget* target = nullptr;  ///< its interpreter's, while that interpreter lives
  uint64_t running = 0;              ///< serial of the task (or initializer) running now, else 0
  std::shared_ptr<PyTask> current;   ///< the Call/Map task running now
  std::chrono::steady_clock::time_point since;  ///< when `running` started
  long native_id = 0;                ///< the OS thread id (gettid)
  bool abandoned = false;
  /// The worker's interpreter until its thread has ended it: what exit must
  /// forget when the thread was abandoned.
  PyInterpreterState* live_interp = nullptr;
  /// At exit: this worker was asked to park its thread (request_park).
  bool park_requested = false;
};

/// Everything a worker needs to start, as interpreter-neutral data.
struct WorkerRecipe {
  std::size_t workers = 1;
  std::size_t max_tasks = 0;            ///< 0: never replace the interpreter
  std::vector<std::string> sys_path;    ///< fs-encoded; set before any import
  rt::Payload setup;                    ///< encoded dict: the keyword arguments of _worker.setup
  rt::Payload initializer;              ///< [callable][args], or empty
  rt::Payload finalizer;                ///< [callable][args], run as a worker ends, or empty
  std::string thread_name_prefix;
  /// Threads that run Local tasks in the owner interpreter, started on
  /// demand up to this many (HybridPool); 0: Local tasks are refused.
  std::size_t local_threads = 0;
  /// Start worker interpreters on demand, up to `workers` (HybridPool),
  /// rather than all of them at once.
  bool lazy_workers = false;
  /// Worker sys.stdout, sys.stderr and logging go to the caller's (output.hpp);
  /// false: workers write to file descriptors 1 and 2 themselves.
  bool forward_output = true;
  uint32_t max_deferred = 1;            ///< deferred tasks each worker runs at once (AsyncPool)
  std::chrono::nanoseconds task_timeout{0};  ///< per task, unless the call sets one; zero: none
  /// How long an interrupted task may take to stop before its worker is
  /// abandoned and replaced.
  std::chrono::nanoseconds interrupt_grace{std::chrono::seconds(1)};
};

/// Counters of one pool, for Pool.stats().
struct EngineCounts {
  std::atomic<uint64_t> submitted{0}, started{0};
  std::atomic<uint64_t> done{0}, failed{0}, cancelled{0}, interrupted{0}, timed_out{0}, replaced{0};
  /// Tasks waiting for a worker (the queue also holds cancelled ones until popped).
  uint64_t queued() const {
    uint64_t left = submitted.load() - started.load() - cancelled.load();
    return static_cast<int64_t>(left) < 0 ? 0 : left;
  }
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

  /// Worker output on its way to the caller (written by the delivery thread).
  rt::OutputSink& output() { return *_output; }
  /// A worker pushed output into an empty sink: wake the delivery thread.
  void output_arrived() { _completions.push(nullptr); }
  /// Whether the calling thread is this pool's delivery thread (the writer
  /// of its output).
  bool on_delivery_thread() const;
  /// Before `task`'s future completes: its output must be written.  On the
  /// delivery thread, writes it now; elsewhere returns false if it is not
  /// written yet (the caller then waits with output().wait_written).
  bool output_written(const PyTask& task);

  /// The mailbox of worker `index`.
  WorkerSlot& slot(std::size_t index) { return *_slots.at(index); }

  /// Queues a task (a Local one for the local threads), starting a thread
  /// for it if the pool grows on demand and none is idle.  False once the
  /// pool is shut down or broken.
  bool submit(TaskPtr task);

  /// Asks a running Call or Map task to stop: TaskInterrupted is raised in
  /// its user code, and its worker is abandoned if it has not stopped after
  /// the grace period.  False if no worker runs it (any more).
  bool request_stop(const TaskPtr& task, StopReason why);

  /// Interrupts every task and initializer running now (shutdown, Ctrl-C).
  /// `grace`: shorter than the pool's interrupt_grace (at exit).
  void stop_all_running(StopReason why, std::optional<std::chrono::nanoseconds> grace = std::nullopt);

  /// At exit: stops counting every worker still running, so that none is
  /// waited for; a thread that comes back parks without touching Python.
  void abandon_all();

  /// At exit, after abandon_all(): unlinks the interpreters of abandoned
  /// workers from CPython, which would otherwise finalize them under their
  /// threads (3.13+) or abort on them (3.12).
  void forget_abandoned_interpreters();

  /// At exit, after abandon_all(): asks each abandoned worker's interpreter
  /// to park the thread that runs its Python code (request_park), so that
  /// none runs on while CPython finalizes.  Returns how many were asked.
  uint32_t park_abandoned_threads();

  /// Interrupt what still runs when the process exits (set by a shutdown
  /// with cancel_futures=True).
  bool stop_on_exit() const { return _stop_on_exit.load(std::memory_order_acquire); }
  void set_stop_on_exit() { _stop_on_exit.store(true, std::memory_order_release); }

  /// Sleeps until every thread of the pool has ended (abandoned ones aside),
  /// a signal arrives or `timeout` passes.  No GIL.
  rt::WaitStatus wait_for_threads(std::optional<std::chrono::nanoseconds> timeout);

  /// Every worker's current run, for stats: (index, task or null, seconds, native id).
  struct RunSnapshot {
    std::size_t index;
    std::shared_ptr<PyTask> task;
    bool in_setup;
    double seconds;
    long native_id;
  };
  std::vector<RunSnapshot> snapshot_runs();

  EngineCounts counts;
  void count_cancelled(std::size_t n = 1) { counts.cancelled.fetch_add(n, std::memory_order_relaxed); }
  const WorkerRecipe& recipe() const { return _recipe; }

  /// Stops accepting work; with `cancel_queued`, takes back every queued task
  /// that could still be cancelled (their futures are the caller's to cancel).
  std::vector<TaskPtr> shutdown(bool cancel_queued);

  bool broken() const { return orphaned() || _broken.load(std::memory_order_acquire); }
  /// Whether the calling thread is one of this pool's (a worker, or the
  /// delivery thread that runs done-callbacks): it must not wait for them.
  bool on_own_thread() const;
  std::string broken_reason() const;
  bool accepting() const { return !orphaned() && !_tasks.closed(); }
  PyInterpreterState* owner() const { return _owner; }
  std::size_t workers() const { return _recipe.workers; }
  std::size_t queued() const { return orphaned() ? 0 : _tasks.size() + _local.size(); }

  /// True in a process forked after this engine was made: its threads live
  /// only in the parent, and its locks may have been held by them at the
  /// fork, so the child touches nothing but this flag (fork_guard.cpp).
  bool orphaned() const { return _fork_generation != fork_generation(); }
  /// pthread_atfork handlers for the engine registry (fork_guard.cpp).
  static void prepare_fork();
  static void after_fork(bool in_child);

  /// Wakes the idle workers of every engine, so they drop decoded copies of
  /// released SharedValues.  The SharedValue release hook; any thread.
  static void poke_all();

  /// Every engine owned by interpreter `owner` that still has threads.
  static std::vector<std::shared_ptr<EngineCore>> live_engines(PyInterpreterState* owner);

 private:
  void worker_main(std::shared_ptr<WorkerRun> run);
  /// One worker interpreter's life: set up, run tasks, end.  False when the
  /// thread must leave at once (it was abandoned).
  bool interpreter_life(WorkerRun& run, WorkerSlot& slot, PyThreadState* owner_tstate, bool& recycle);
  // The steps of interpreter_life (worker_loop.cpp):
  /// Makes the new interpreter of `tstate` reachable through `run` (for
  /// interrupts, stats and exit), running its setup; returns the setup's
  /// serial.  A stop_all_running() already requested reaches it at once.
  uint64_t publish_interpreter(WorkerRun& run, PyThreadState* tstate, InterruptTarget& target);
  enum class SetUp : uint8_t { Ready, Failed, Abandoned };
  /// Runs the worker's setup and initializer (its GIL held).  Failed: the
  /// pool is broken; Abandoned: the pool gave up on this thread meanwhile.
  SetUp set_up_interpreter(WorkerRun& run, WorkerContext& context, InterruptTarget& target, uint64_t setup_serial);
  /// Takes and runs tasks until the queue is closed and drained, or
  /// max_tasks are done (`recycle`).  No GIL on entry or return.  False if
  /// the thread was abandoned meanwhile.
  bool serve_tasks(WorkerRun& run, WorkerSlot& slot, PyThreadState* tstate, WorkerContext& context,
                   PyThreadState* owner_tstate, bool& recycle);
  /// The next task, waiting for one without the GIL; a poke meanwhile
  /// drops the copies of released SharedValues.  Empty once the queue is
  /// closed and drained.
  std::optional<TaskPtr> take_task(uint64_t& pokes_seen, PyThreadState* tstate, WorkerContext& context);
  /// Runs a Call or Map task in the worker's interpreter, under a timer for
  /// its timeout, and counts it.  No GIL on entry or return.  False if the
  /// thread was abandoned meanwhile (the pool finished the task).
  bool run_call(WorkerRun& run, const TaskPtr& t, PyThreadState* tstate, WorkerContext& context);
  void spawn_worker(std::size_t index);
  void spawn_local(std::size_t index);
  /// One lane of threads that start on demand, as growth sees it: the
  /// interpreter workers, or the local threads.  Views the engine's fields.
  struct Lane {
    rt::BlockingQueue<TaskPtr>& queue;
    std::atomic<std::size_t>& idle;           ///< its threads waiting for a task
    std::size_t& spawned;                     ///< its threads started (under _grow_mutex)
    std::size_t max;                          ///< how many it may start
    void (EngineCore::*spawn)(std::size_t);  ///< starts its thread number `index`
    const char* what;                         ///< a thread of it, for errors
  };
  Lane worker_lane() {
    return {_tasks, _idle_workers, _spawned_workers, _recipe.workers, &EngineCore::spawn_worker, "a worker thread"};
  }
  Lane local_lane() {
    return {_local, _idle_local, _spawned_local, _recipe.local_threads, &EngineCore::spawn_local, "a thread"};
  }
  /// Whether `lane` should start another thread now: more tasks wait than
  /// its threads are idle, and it is not full.  _grow_mutex held.
  static bool lane_wants_thread(const Lane& lane, bool stopped);
  /// Starts the next thread of `lane`, counted.  _grow_mutex held.  If it
  /// throws, the counts are as they were.
  void start_lane_thread(const Lane& lane);
  /// On-demand growth (ThreadPoolExecutor's rule): after a push, or after a
  /// thread took a task, start one more thread if more tasks wait than
  /// threads are idle and the lane is not full.  Both sides check after
  /// their own write (a seq_cst fence between), so a task never waits
  /// behind a busy thread while a thread could still be started.
  void grow(const Lane& lane);
  void grow_workers() { grow(worker_lane()); }
  void grow_local() { grow(local_lane()); }
  /// A local thread: runs Local tasks in the owner interpreter until its
  /// queue is closed and drained.
  void local_main();
  /// After shutdown or breakage: no thread starts any more; the delivery
  /// thread ends once the started ones have (none at all, perhaps).
  void stop_growth();
  /// Grace period over: abandon `run`'s worker if it still runs `serial`.
  void abandon_if_stuck(const std::shared_ptr<WorkerRun>& run, uint64_t serial);
  /// Interrupts what `run` runs now, with a grace timer.
  void stop_run(const std::shared_ptr<WorkerRun>& run, StopReason why);
  /// Arms the grace timer of a stop request: after `grace`, abandons `run`'s
  /// worker if it still runs `serial`.
  void abandon_after(const std::shared_ptr<WorkerRun>& run, uint64_t serial, std::chrono::nanoseconds grace);
  /// A copy of every worker's current run (and, `with_abandoned`, of the
  /// runs replaced since), taken under _runs_mutex; null entries (a worker
  /// not started yet) left out.  None for an orphan: its runs are threads of
  /// the parent, and their state may be torn.
  std::vector<std::shared_ptr<WorkerRun>> runs_now(bool with_abandoned);
  /// Puts a task that ended by a stop request (or whose worker was
  /// abandoned) on the delivery queue, counted.
  void finish_stopped(const TaskPtr& task, StopReason why);
  uint64_t next_serial();
  /// Marks a task a worker ran as finished and queues it for delivery at once.
  void hand_over(TaskPtr task);
  void deliverer_main();
  /// Runs one Local task in the owner interpreter on a worker thread.
  void run_local(PyTask& task, PyThreadState* owner_tstate);
  void worker_exited();
  /// Marks the pool broken and fails every queued task with `info` (an
  /// encoded exception description).
  void break_pool(const std::string& reason, rt::Payload info, bool log = true);

  WorkerRecipe _recipe;
  PyInterpreterState* _owner;
  rt::BlockingQueue<TaskPtr> _tasks;
  rt::BlockingQueue<TaskPtr> _local;  // Local tasks, for the local threads
  rt::BlockingQueue<TaskPtr> _completions;  // finished tasks; null: output arrived
  std::shared_ptr<rt::OutputSink> _output = std::make_shared<rt::OutputSink>();
  std::mutex _grow_mutex;  // guards the three fields below, and orders spawns against stop_growth()
  std::size_t _spawned_workers = 0;
  std::size_t _spawned_local = 0;
  bool _growth_stopped = false;
  std::atomic<std::size_t> _idle_workers{0};  // interpreter workers waiting for a task
  std::atomic<std::size_t> _idle_local{0};    // local threads waiting for a task
  rt::ThreadRoster _threads;  // workers and the delivery thread
  std::vector<std::shared_ptr<WorkerSlot>> _slots;
  std::mutex _runs_mutex;  // guards _runs (a replaced worker gets a new WorkerRun)
  std::vector<std::shared_ptr<WorkerRun>> _runs;
  std::vector<std::shared_ptr<WorkerRun>> _abandoned;  // replaced runs, for exit (guarded by _runs_mutex)
  rt::Timer _timer;  // task timeouts and interrupt grace periods
  std::atomic<bool> _stop_on_exit{false};
  std::atomic<uint8_t> _stop_all{0};
  std::atomic<int64_t> _stop_all_grace_ns{
      INT64_MAX};  // shortens the grace once at exit  // a StopReason once stop_all_running() was called
  PyObject* _owner_module = nullptr;  ///< owner interpreter's interpool._core (owned)
  PyObject* _rebuild = nullptr;       ///< owner interpreter's _errors.rebuild (owned)
  std::atomic<std::size_t> _live_workers{0};  // worker and local threads started and not yet ended
  std::atomic<bool> _broken{false};
  mutable std::mutex _broken_mutex;  // guards _broken_reason
  std::string _broken_reason;
  uint64_t _fork_generation = fork_generation();  ///< see orphaned()
  long _pid;                                      ///< the process that made the engine
};

extern PyType_Spec engine_spec;
extern PyType_Spec task_spec;
extern PyType_Spec completion_spec;
extern PyType_Spec worker_slot_spec;

/// The layout of a _core.WorkerSlot object: its type lives in
/// completion_object.cpp; current_worker_slot() (worker_slot.cpp) makes them.
struct WorkerSlotObject {
  PyObject_HEAD
  std::shared_ptr<WorkerSlot> slot;
};

/// Adds `core` to the registry of engines with threads (engine_registry.cpp).
void register_engine(const std::shared_ptr<EngineCore>& core);

/// _core.current_worker_slot(): the WorkerSlot of the engine worker thread
/// calling it (from an initializer, say).
PyObject* current_worker_slot(PyObject* module, PyObject*);

/// Waits for every thread of `core` to end (abandoned ones aside), running
/// signal handlers meanwhile.  False, with the exception set, when one raised.
bool wait_for_engine(EngineCore& core);

/// _core.shutdown_all(): shuts down and joins every engine this interpreter owns.
PyObject* shutdown_all_engines(PyObject* module, PyObject*);

}  // namespace interpool::py
