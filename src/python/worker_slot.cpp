// src/python/worker_slot.cpp: WorkerSlot, one worker thread's mailbox for
// deferred tasks (AsyncPool), and _core.current_worker_slot().
#include "python/engine.hpp"

#include <new>
#include <utility>

#include "python/engine_threads.hpp"

namespace interpool::py {

// Many launches per wake-up: only a request that finds both lists empty
// writes the eventfd.  Any other found a wake-up pending already, which
// take_requests() has not yet answered: it reads the eventfd *before* it
// swaps the lists, so whatever was pushed before the swap is taken with them.
void WorkerSlot::request_launch(std::shared_ptr<PyTask> task) { push_request(_launch_requests, std::move(task)); }

void WorkerSlot::request_cancel(std::shared_ptr<PyTask> task) { push_request(_cancel_requests, std::move(task)); }

void WorkerSlot::push_request(std::vector<std::shared_ptr<PyTask>>& requests, std::shared_ptr<PyTask> task) {
  bool first;
  {
    std::lock_guard lock(_mutex);
    first = _launch_requests.empty() && _cancel_requests.empty();
    requests.push_back(std::move(task));
  }
  if (first) wakeup.signal();
}

void WorkerSlot::take_requests(std::vector<std::shared_ptr<PyTask>>& launches,
                               std::vector<std::shared_ptr<PyTask>>& cancels) {
  wakeup.drain();
  std::lock_guard lock(_mutex);
  launches = std::exchange(_launch_requests, {});
  cancels = std::exchange(_cancel_requests, {});
}

PyObject* current_worker_slot(PyObject* module, PyObject*) {
  if (!t_current_slot) {
    PyErr_SetString(PyExc_RuntimeError, "not on an interpool worker thread");
    return nullptr;
  }
  auto* self = PyObject_New(WorkerSlotObject, state_of(module).worker_slot_type);
  if (!self) return nullptr;
  new (&self->slot) std::shared_ptr<WorkerSlot>(*t_current_slot);
  return reinterpret_cast<PyObject*>(self);
}

}  // namespace interpool::py
