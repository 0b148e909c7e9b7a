// src/python/delivery_thread.cpp: the engine's delivery thread, and how
// finished tasks reach it (or an asyncio loop) from the workers.
#include "python/engine.hpp"

#include <utility>

#include "python/delivery.hpp"
#include "python/engine_threads.hpp"
#include "python/loop_waker.hpp"
#include "python/output.hpp"

namespace interpool::py {

bool EngineCore::on_delivery_thread() const { return t_delivery_engine == this; }

bool EngineCore::output_written(const PyTask& task) {
  if (task.output_mark == 0 || _output->written() >= task.output_mark || _output->closed()) return true;
  if (orphaned()) return true;  // a fork child: the writer is in the parent
  if (!on_delivery_thread()) return false;
  // A done-callback waiting on another task of this pool: this thread is
  // the writer, so it writes now rather than wait for itself.
  write_output(state_of(_owner_module), *_output, _recipe.thread_name_prefix);
  return true;
}

void EngineCore::hand_over(TaskPtr task) {
  // Prompt delivery: a finished task goes to the delivery thread at once,
  // never held back while this worker runs its next task (which may take
  // any time).  Batching happens on the consumer side instead: the delivery
  // thread takes everything that arrived while it woke up and while it
  // waited for the caller's GIL (deliverer_main), so a stream of tiny tasks
  // still costs one GIL acquisition per batch, and a push costs a system
  // call only when the delivery thread sleeps.
  task->finish();  // wakes a caller blocked in result(), which may deliver it itself
  if (task->waker && task->output_mark == 0) {
    // An asyncio call: straight to its event loop, which delivers it itself.
    // (One that printed goes through the delivery thread, the one writer of
    // output, which writes it before the future is done.)
    std::shared_ptr<Waker> waker = std::move(task->waker);
    waker->post(std::move(task), /*backlog=*/_tasks.size() > 0);
    return;
  }
  _completions.push(std::move(task));
}

void EngineCore::finish_deferred(std::shared_ptr<PyTask> task, WorkerSlot& slot) {
  task->finish();
  if (task->waker && task->output_mark == 0) {  // see hand_over
    std::shared_ptr<Waker> waker = std::move(task->waker);
    waker->post(std::move(task));
  } else {
    _completions.push(std::move(task));
  }
  // The worker thread waits only for the count to fall below max_deferred
  // (to take more) or to reach 0 (to end): no system call for the others.
  uint32_t before = slot.in_flight.fetch_sub(1, std::memory_order_acq_rel);
  if (before == _recipe.max_deferred || before == 1) rt::futex_wake_all(slot.in_flight);
}

void EngineCore::deliverer_main() {
  t_current_engine = this;
  t_delivery_engine = this;
  PyThreadState* tstate = PyThreadState_New(_owner);
  ModuleState& state = state_of(_owner_module);
  for (;;) {
    auto batch = _completions.pop_all();
    if (batch.empty()) break;  // closed and drained: every worker has exited
    BridgeBatch to_loops;
    {
      AttachedThread attached(tstate);
      // Consumer-side batching: what finished while this thread waited for
      // the caller's GIL (up to a switch interval when the caller is busy)
      // joins this batch, so the GIL is taken once for all of it.
      for (auto& t : _completions.drain()) batch.push_back(std::move(t));
      // Output first: what a task printed is written before its future is done.
      write_output(state, *_output, _recipe.thread_name_prefix);
      for (auto& t : batch)
        if (t) deliver(state, _rebuild, *t, &to_loops);
      to_loops.flush(state);
      batch.clear();
    }
    // Event loops are woken only now, with the GIL released: a loop woken
    // earlier would at once wait for this thread to let go of it.
    to_loops.wake();
  }
  // Every worker has exited: this thread is the engine's last user of the
  // owner interpreter's objects.
  PyEval_RestoreThread(tstate);
  write_output(state, *_output, _recipe.thread_name_prefix);  // what the workers printed as they ended
  _output->close();
  Py_CLEAR(_rebuild);
  Py_CLEAR(_owner_module);
  PyThreadState_Clear(tstate);
  PyThreadState_DeleteCurrent();
}

}  // namespace interpool::py
