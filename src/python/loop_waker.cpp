// src/python/loop_waker.cpp: the _core.LoopWaker type (an eventfd that wakes one asyncio loop).
#include "python/loop_waker.hpp"

#include <new>
#include <utility>

#include "python/delivery.hpp"
#include "python/heap_type.hpp"
#include "python/module_state.hpp"

namespace interpool::py {

void Waker::signal() {
  if (_armed.exchange(true, std::memory_order_seq_cst)) return;
  _event.signal();
}

void Waker::post(TaskPtr task, bool backlog) {
  {
    std::lock_guard lock(_mutex);
    _inbox.push_back(std::move(task));
  }
  _backlog.store(backlog, std::memory_order_seq_cst);
  // The pool ran out of queued work: a loop that holds results back must
  // take them now (its workers may go idle waiting for its next calls).
  // _armed stays set: the write is the pending signal.
  if (!backlog && _holding.exchange(false, std::memory_order_seq_cst)) return _event.signal();
  signal();
}

bool Waker::answer() {
  // Read first, then disarm.  (Disarming first lost wake-ups: a signal()
  // between the two wrote, the read consumed that write, and _armed stayed
  // true with nothing pending, so every later signal() skipped its write.)
  // A signal() that finds _armed still true before the disarm skipped its
  // write, but posted its task before: the caller's take() comes after the
  // disarm and sees it.  One after the disarm writes, and wakes the loop
  // again.
  _event.drain();
  // _holding first, then the backlog: a post without a backlog that lands
  // in between either cleared _backlog before the exchange (no hold) or
  // finds _holding set and writes (the loop looks again at once).
  _holding.store(true, std::memory_order_seq_cst);
  if (_backlog.exchange(false, std::memory_order_seq_cst)) return true;  // _armed stays set: no writes
  _holding.store(false, std::memory_order_seq_cst);
  _armed.store(false, std::memory_order_seq_cst);
  return false;
}

std::vector<TaskPtr> Waker::take() {
  std::lock_guard lock(_mutex);
  return std::exchange(_inbox, {});
}

namespace {

struct LoopWakerObject {
  PyObject_HEAD
  std::shared_ptr<Waker> waker;
};

LoopWakerObject* as_waker(PyObject* o) { return reinterpret_cast<LoopWakerObject*>(o); }

PyObject* waker_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  if (PyTuple_GET_SIZE(args) != 0 || (kwargs && PyDict_GET_SIZE(kwargs) != 0)) {
    PyErr_SetString(PyExc_TypeError, "LoopWaker() takes no arguments");
    return nullptr;
  }
  std::shared_ptr<Waker> waker;
  try {
    waker = std::make_shared<Waker>();
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  }
  if (!waker->ok()) return PyErr_SetFromErrno(PyExc_OSError);
  auto* self = reinterpret_cast<LoopWakerObject*>(type->tp_alloc(type, 0));
  if (!self) return nullptr;
  new (&self->waker) std::shared_ptr<Waker>(std::move(waker));
  return reinterpret_cast<PyObject*>(self);
}

void waker_dealloc(PyObject* o) {
  // The eventfd closes once no delivery thread holds the Waker either.
  heap_dealloc(o, [&] { as_waker(o)->waker.~shared_ptr(); });
}

PyObject* waker_fileno(PyObject* o, PyObject*) { return PyLong_FromLong(as_waker(o)->waker->fd()); }

PyObject* waker_signal(PyObject* o, PyObject*) {
  as_waker(o)->waker->signal();
  Py_RETURN_NONE;
}

// deliver(rebuild, cancelled_error) -> hold: answers the signal, then
// completes the futures of the tasks posted so far, at once: it runs on the
// loop's own thread (the loop's reader callback).  Each task carries its
// own pool's rebuilder; `rebuild` is the fallback.  `cancelled_error` is
// asyncio.CancelledError: a task stopped on request cancels its future.
// True: the loop holds results back (Waker::answer) and must call again soon.
PyObject* waker_deliver(PyObject* o, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2 || !PyType_Check(args[1])) {
    PyErr_SetString(PyExc_TypeError, "deliver(rebuild, cancelled_error: type)");
    return nullptr;
  }
  ModuleState& state = state_of_type(Py_TYPE(o));
  Waker& waker = *as_waker(o)->waker;
  bool hold = waker.answer();  // before take(): a post that comes after it signals again
  std::vector<TaskPtr> tasks = waker.take();
  if (!tasks.empty()) {
    BridgeBatch batch(state, args[1]);
    for (auto& t : tasks) deliver(state, args[0], *t, &batch);
  }
  return Py_NewRef(hold ? Py_True : Py_False);
}

// discard(): drops the tasks posted for a loop that closed.
PyObject* waker_discard(PyObject* o, PyObject*) {
  for (auto& t : as_waker(o)->waker->take()) {
    if (!t->claim_delivery()) continue;
    Py_CLEAR(t->future);
    Py_CLEAR(t->bridge);
    Py_CLEAR(t->rebuild);
    t->response.clear();
  }
  Py_RETURN_NONE;
}

PyMethodDef waker_methods[] = {
    {"deliver", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(waker_deliver)), METH_FASTCALL,
     "deliver(rebuild, cancelled_error) -> hold: answer the signal and complete the futures of the tasks posted "
     "so far (the loop's thread); true: results are held back, call again soon."},
    {"discard", waker_discard, METH_NOARGS, "Drop the tasks posted so far (their loop is closed)."},
    {"fileno", waker_fileno, METH_NOARGS, "The eventfd to watch: readable once signalled."},
    {"signal", waker_signal, METH_NOARGS, "Make the eventfd readable (one write for any number of signals)."},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot waker_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(waker_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(waker_dealloc)},
    {Py_tp_methods, waker_methods},
    {Py_tp_doc, const_cast<char*>("LoopWaker()\n--\n\nAn eventfd that wakes one asyncio event loop (internal).")},
    {0, nullptr},
};

}  // namespace

PyType_Spec loop_waker_spec = heap_type_spec<LoopWakerObject>("interpool._core.LoopWaker", 0, waker_slots);

std::shared_ptr<Waker> waker_of(PyTypeObject* waker_type, PyObject* obj) {
  if (!waker_type || Py_TYPE(obj) != waker_type) return nullptr;
  return as_waker(obj)->waker;
}

}  // namespace interpool::py
