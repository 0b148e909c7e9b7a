// src/python/engine.cpp: EngineCore, the worker pool core: starting and
// growing its threads, queueing tasks, stopping and abandoning workers,
// breaking and shutting down.  Its threads' own code is in worker_loop.cpp
// and delivery_thread.cpp.
#include "python/engine.hpp"

#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <string>
#include <utility>

#include "python/engine_threads.hpp"
#include "python/runtime_internals.h"

namespace interpool::py {

// -------------------------------------------------------------- EngineCore

PyTask::~PyTask() {
  // A future still referenced here would need its interpreter's GIL to be
  // released; every path clears it under that GIL first.  Should one slip
  // through, leaking it is safe and decref'ing it here is not.
}

EngineCore::EngineCore(WorkerRecipe recipe, PyInterpreterState* owner)
    : _recipe(std::move(recipe)),
      _owner(owner),
      _tasks(/*spin=*/64),
      _local(/*spin=*/0),
      _completions(/*spin=*/0),
      _timer(_recipe.thread_name_prefix + "timer"),
      _pid(getpid()) {}

uint64_t EngineCore::next_serial() {
  // Process-wide, so that a request can never name a task of another pool
  // that a recycled target happens to run.
  static std::atomic<uint64_t> serial{1};
  return serial.fetch_add(1, std::memory_order_relaxed);
}

void EngineCore::start(PyObject* module, PyObject* rebuild) {
  for (std::size_t i = 0; i < _recipe.workers; ++i) {
    _slots.push_back(std::make_shared<WorkerSlot>());
    _slots.back()->core = weak_from_this();
  }
  _owner_module = Py_NewRef(module);
  _rebuild = Py_NewRef(rebuild);
  register_engine(shared_from_this());
  _runs.resize(_recipe.workers);
  if (!_recipe.lazy_workers) {
    std::lock_guard lock(_grow_mutex);
    _spawned_workers = _recipe.workers;
    _live_workers.store(_recipe.workers);
    for (std::size_t i = 0; i < _recipe.workers; ++i) spawn_worker(i);
  }
  auto self = shared_from_this();
  _threads.spawn(_recipe.thread_name_prefix + "deliver", [self] { self->deliverer_main(); });
}

void EngineCore::spawn_worker(std::size_t index) {
  auto run = std::make_shared<WorkerRun>();
  run->index = index;
  {
    std::lock_guard lock(_runs_mutex);
    _runs[index] = run;
  }
  std::lock_guard lock(run->mutex);  // the thread reads its token under it
  auto self = shared_from_this();
  run->token = _threads.spawn(_recipe.thread_name_prefix + std::to_string(index),
                              [self, run] { self->worker_main(run); });
}

bool EngineCore::submit(TaskPtr task) {
  if (orphaned()) return false;
  task->serial = next_serial();
  if (task->timeout.count() == 0) task->timeout = _recipe.task_timeout;
  const bool local = task->kind() == rt::Task::Kind::Local && _recipe.local_threads > 0;
  if (!(local ? _local : _tasks).push(std::move(task))) return false;
  counts.submitted.fetch_add(1, std::memory_order_relaxed);
  if (local)
    grow_local();
  else if (_recipe.lazy_workers)
    grow_workers();
  return true;
}

void EngineCore::spawn_local(std::size_t index) {
  auto self = shared_from_this();
  _threads.spawn(_recipe.thread_name_prefix + "thread-" + std::to_string(index), [self] { self->local_main(); });
}

bool EngineCore::lane_wants_thread(const Lane& lane, bool stopped) {
  return !stopped && lane.spawned < lane.max && lane.queue.size() > lane.idle.load();
}

void EngineCore::start_lane_thread(const Lane& lane) {
  const std::size_t index = lane.spawned++;
  _live_workers.fetch_add(1);
  try {
    (this->*lane.spawn)(index);  // under the mutex: stop_growth() sees every started thread counted
  } catch (...) {
    --lane.spawned;
    _live_workers.fetch_sub(1);
    throw;
  }
}

void EngineCore::grow(const Lane& lane) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (lane.queue.size() <= lane.idle.load()) return;
  std::string error;
  {
    std::lock_guard lock(_grow_mutex);
    if (!lane_wants_thread(lane, _growth_stopped)) return;
    try {
      start_lane_thread(lane);
      return;
    } catch (const std::exception& e) {
      if (lane.spawned) return;  // the started ones take the task
      error = e.what();
    }
  }
  break_pool(std::string("could not start ") + lane.what + ": " + error, {});
}

void EngineCore::stop_growth() {
  std::lock_guard lock(_grow_mutex);
  if (_growth_stopped) return;
  // A task pushed just before the queues closed may have found its lane
  // without a thread: start one now, while that is still allowed.
  try {
    if (_recipe.lazy_workers && lane_wants_thread(worker_lane(), false)) start_lane_thread(worker_lane());
    if (lane_wants_thread(local_lane(), false)) start_lane_thread(local_lane());
  } catch (const std::exception&) {
    // The task stays queued; nothing can run it.
  }
  _growth_stopped = true;
  if (_live_workers.load() == 0) _completions.close();
}

std::string EngineCore::broken_reason() const {
  if (orphaned())
    return "this pool was started by process " + std::to_string(_pid) +
           " before it forked; its worker interpreters do not exist in this child process. Start a new pool "
           "in the child";
  std::lock_guard lock(_broken_mutex);
  return _broken_reason;
}

std::vector<TaskPtr> EngineCore::shutdown(bool cancel_queued) {
  if (orphaned()) return {};
  _tasks.close();
  _local.close();
  std::vector<TaskPtr> cancelled;
  if (cancel_queued) {
    for (auto* queue : {&_tasks, &_local})
      for (auto& t : queue->drain())
        if (t->try_cancel()) cancelled.push_back(std::move(t));
  }
  stop_growth();
  return cancelled;
}

rt::WaitStatus EngineCore::wait_for_threads(std::optional<std::chrono::nanoseconds> timeout) {
  // A fork child inherits the count, not the threads (nor the locks they held).
  if (orphaned()) return rt::WaitStatus::Woken;
  return _threads.wait(timeout);
}

bool EngineCore::request_stop(const TaskPtr& task, StopReason why) {
  if (orphaned()) return false;
  if (task->kind() != rt::Task::Kind::Call && task->kind() != rt::Task::Kind::Map) return false;
  if (task->state() != rt::Task::State::Running || task->worker < 0) return false;
  std::shared_ptr<WorkerRun> run;
  {
    std::lock_guard lock(_runs_mutex);
    run = _runs.at(static_cast<std::size_t>(task->worker));
  }
  {
    std::lock_guard lock(run->mutex);
    if (run->current != task || !run->target) return false;
    uint8_t none = 0;
    task->stop.compare_exchange_strong(none, static_cast<uint8_t>(why));
    run->target->request(task->serial, why);
  }
  abandon_after(run, task->serial, _recipe.interrupt_grace);
  return true;
}

void EngineCore::stop_all_running(StopReason why, std::optional<std::chrono::nanoseconds> grace) {
  if (orphaned()) return;
  // Also for initializers that start from now on (a worker still creating
  // its interpreter would otherwise miss the request).
  _stop_all.store(static_cast<uint8_t>(why), std::memory_order_release);
  std::vector<std::shared_ptr<WorkerRun>> runs = runs_now(false);
  if (grace) _stop_all_grace_ns.store(grace->count(), std::memory_order_release);
  for (auto& run : runs) stop_run(run, why);
}

void EngineCore::stop_run(const std::shared_ptr<WorkerRun>& run, StopReason why) {
  uint64_t serial;
  {
    std::lock_guard lock(run->mutex);
    serial = run->running;
    if (!serial || !run->target || run->abandoned) return;
    if (run->current) {
      uint8_t none = 0;
      run->current->stop.compare_exchange_strong(none, static_cast<uint8_t>(why));
    }
    run->target->request(serial, why);
  }
  abandon_after(run, serial, std::min(_recipe.interrupt_grace, std::chrono::nanoseconds(_stop_all_grace_ns.load())));
}

void EngineCore::abandon_after(const std::shared_ptr<WorkerRun>& run, uint64_t serial, std::chrono::nanoseconds grace) {
  std::weak_ptr<EngineCore> weak = weak_from_this();
  _timer.at(std::chrono::steady_clock::now() + grace, [weak, run, serial] {
    if (auto core = weak.lock()) core->abandon_if_stuck(run, serial);
  });
}

std::vector<std::shared_ptr<WorkerRun>> EngineCore::runs_now(bool with_abandoned) {
  std::vector<std::shared_ptr<WorkerRun>> runs;
  if (orphaned()) return runs;
  std::lock_guard lock(_runs_mutex);
  std::copy_if(_runs.begin(), _runs.end(), std::back_inserter(runs), [](const auto& run) { return run != nullptr; });
  if (with_abandoned) runs.insert(runs.end(), _abandoned.begin(), _abandoned.end());
  return runs;
}

void EngineCore::abandon_all() {
  for (auto& run : runs_now(false)) {
    {
      std::lock_guard lock(run->mutex);
      if (run->abandoned) continue;
      run->abandoned = true;
    }
    _threads.release(run->token);
  }
}

std::vector<EngineCore::RunSnapshot> EngineCore::snapshot_runs() {
  std::vector<RunSnapshot> out;
  auto now = std::chrono::steady_clock::now();
  for (auto& run : runs_now(false)) {
    std::lock_guard lock(run->mutex);
    RunSnapshot snap{run->index, run->current, run->running != 0 && !run->current,
                     run->running ? std::chrono::duration<double>(now - run->since).count() : 0.0, run->native_id};
    out.push_back(std::move(snap));
  }
  return out;
}

void EngineCore::forget_abandoned_interpreters() {
  for (auto& run : runs_now(true)) {
    std::lock_guard lock(run->mutex);
    if (run->abandoned && run->live_interp) {
      interpool_runtime_forget_interpreter(run->live_interp);
      run->live_interp = nullptr;
    }
  }
}

uint32_t EngineCore::park_abandoned_threads() {
  uint32_t asked = 0;
  for (auto& run : runs_now(true)) {
    std::lock_guard lock(run->mutex);
    if (run->abandoned && run->live_interp && !run->park_requested && request_park(run->live_interp)) {
      run->park_requested = true;
      ++asked;
    }
  }
  return asked;
}

void EngineCore::finish_stopped(const TaskPtr& task, StopReason why) {
  task->stopped = why;
  (why == StopReason::Timeout ? counts.timed_out : counts.interrupted).fetch_add(1, std::memory_order_relaxed);
}

void EngineCore::abandon_if_stuck(const std::shared_ptr<WorkerRun>& run, uint64_t serial) {
  TaskPtr task;
  {
    std::lock_guard lock(run->mutex);
    if (run->abandoned || run->running != serial) return;
    run->abandoned = true;
    run->running = 0;
    task = std::move(run->current);
  }
  // The thread may never come back: the pool stops counting it, ends its
  // task (the future must not wait for ever) and starts a replacement.
  _threads.release(run->token);
  {
    std::lock_guard lock(_runs_mutex);
    _abandoned.push_back(run);
  }
  counts.replaced.fetch_add(1, std::memory_order_relaxed);
  if (task) {
    auto why = static_cast<StopReason>(task->stop.load(std::memory_order_acquire));
    task->failed = true;
    finish_stopped(task, why == StopReason::None ? StopReason::Interrupt : why);
    task->finish();
    _completions.push(std::move(task));
  } else {
    // Stuck in its initializer: the pool cannot get a working worker.
    break_pool("a worker's initializer did not return and was abandoned", {});
  }
  if (accepting() && !broken())
    spawn_worker(run->index);
  else
    worker_exited();
}

void EngineCore::break_pool(const std::string& reason, rt::Payload info, bool log) {
  {
    std::lock_guard lock(_broken_mutex);
    if (_broken.load()) return;
    _broken_reason = reason;
    _broken.store(true, std::memory_order_release);
  }
  _tasks.close();
  _local.close();  // local threads run what is queued there, then end
  // A notice with no future: the delivery thread reports the failure in the
  // owner interpreter (logged as the stdlib executors do) even if no task
  // waits.
  auto logged = std::make_shared<std::atomic<uint32_t>>(log ? 0 : 2);
  auto fail = [&](const TaskPtr& t) {  // t was started: it fails with the pool's failure
    t->failed = true;
    t->broken = true;
    t->broken_reason = reason;
    t->broken_logged = logged;
    t->response = info;
    t->finish();
    _completions.push(t);
  };
  if (log) {
    auto notice = std::make_shared<PyTask>(rt::Task::Kind::Call);
    notice->try_start();
    fail(notice);
  }
  for (auto& t : _tasks.drain()) {
    if (!t->try_start()) continue;  // cancelled meanwhile
    counts.started.fetch_add(1, std::memory_order_relaxed);
    fail(t);
  }
  stop_growth();
}

void EngineCore::worker_exited() {
  // The delivery thread ends after the last worker, once no more can start.
  std::lock_guard lock(_grow_mutex);
  if (_live_workers.fetch_sub(1, std::memory_order_acq_rel) == 1 && _growth_stopped) _completions.close();
}

// See engine_threads.hpp.
constinit thread_local std::shared_ptr<WorkerSlot>* t_current_slot = nullptr;
constinit thread_local const EngineCore* t_current_engine = nullptr;
constinit thread_local const EngineCore* t_delivery_engine = nullptr;

bool EngineCore::on_own_thread() const { return t_current_engine == this; }

}  // namespace interpool::py
