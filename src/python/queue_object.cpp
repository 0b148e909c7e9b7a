// src/python/queue_object.cpp: interpool.Queue, around rt::Channel.
//
// The API is queue.Queue's, plus close().  Items cross by value (codec.hpp),
// encoded by put() in the putter's interpreter, decoded by get() in the getter's.
#include "python/sync_objects.hpp"

#include <algorithm>
#include <chrono>

#include "python/codec.hpp"
#include "python/int_option.hpp"
#include "python/interruptible_wait.hpp"
#include "python/sync_args.hpp"
#include "python/sync_handle.hpp"
#include "python/sync_errors.hpp"
#include "runtime/channel.hpp"

namespace interpool::py {

namespace {

// ------------------------------------------------------------------- Queue

rt::Channel& channel(PyObject* o) { return core<rt::Channel>(o); }

PyObject* queue_tp_new(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  static const char* kwlist[] = {"maxsize", nullptr};
  PyObject* maxsize_obj = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Queue", const_cast<char**>(kwlist), &maxsize_obj)) return nullptr;
  long long maxsize = 0;
  if (maxsize_obj && !int_option(maxsize_obj, "Queue maxsize", PY_SSIZE_T_MIN, PY_SSIZE_T_MAX, maxsize)) return nullptr;
  // As queue.Queue: a maxsize <= 0 means no bound.
  return new_handle<rt::Channel>(type, HandleKind::Queue, static_cast<std::size_t>(std::max<long long>(maxsize, 0)));
}

/// After a try that found the queue full (put) or empty (get): retries
/// `op(slice)` with the GIL released until it succeeds, the queue closes,
/// or the timeout passes (zero: no retry).  `status` is the last outcome.
/// False with the exception of a signal handler or an interrupt.
template <class Op>
bool retry_released(const Timeout& timeout, rt::ChannelStatus& status, Op&& op) {
  if (status != rt::ChannelStatus::TimedOut) return true;
  return wait_released_for(timeout, [&](std::chrono::nanoseconds slice) {
           status = op(slice);
           return status == rt::ChannelStatus::Ok || status == rt::ChannelStatus::Closed ? WaitStatus::Woken
                                                                                         : WaitStatus::TimedOut;
         }) >= 0;
}

PyObject* queue_put_impl(PyObject* self, PyObject* item, const Timeout& timeout) {
  rt::Channel& ch = channel(self);
  ModuleState& state = state_of_type(Py_TYPE(self));
  if (ch.closed()) return raise_queue_closed(state);
  rt::Payload payload;
  Encoder enc(state, payload);
  if (!enc.value(item)) return nullptr;
  rt::ChannelStatus status = ch.try_put(payload);
  if (!retry_released(timeout, status, [&](std::chrono::nanoseconds slice) { return ch.put(payload, slice); }))
    return nullptr;
  switch (status) {
    case rt::ChannelStatus::Ok: Py_RETURN_NONE;
    case rt::ChannelStatus::Closed: return raise_queue_closed(state);
    default: return raise_queue_full(state);
  }
}

PyObject* queue_get_impl(PyObject* self, const Timeout& timeout) {
  rt::Channel& ch = channel(self);
  ModuleState& state = state_of_type(Py_TYPE(self));
  rt::Payload payload;
  rt::ChannelStatus status = ch.try_get(payload);
  if (!retry_released(timeout, status, [&](std::chrono::nanoseconds slice) { return ch.get(payload, slice); }))
    return nullptr;
  switch (status) {
    case rt::ChannelStatus::Ok: {
      PyObject* value = Decoder(state, payload).value();
      // The item may have held the last reference to a Shared decoded here:
      // drop the cached copy now, so that it goes with the caller's value.
      payload.clear();
      if (value) state.shared_cache->sweep_if_released();
      return value;
    }
    case rt::ChannelStatus::Closed: return raise_queue_closed(state);
    default: return raise_queue_empty(state);
  }
}

PyObject* queue_put(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* a[3];
  if (!parse_args("put", args, nargs, kwnames, {"item", "block", "timeout"}, a)) return nullptr;
  if (!a[0]) {
    PyErr_SetString(PyExc_TypeError, "put() missing required argument 'item' (pos 1)");
    return nullptr;
  }
  Timeout timeout;
  if (!parse_queue_wait(a[1], a[2], timeout)) return nullptr;
  return queue_put_impl(self, a[0], timeout);
}

PyObject* queue_get(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* a[2];
  if (!parse_args("get", args, nargs, kwnames, {"block", "timeout"}, a)) return nullptr;
  Timeout timeout;
  if (!parse_queue_wait(a[0], a[1], timeout)) return nullptr;
  return queue_get_impl(self, timeout);
}

PyObject* queue_put_nowait(PyObject* self, PyObject* item) {
  return queue_put_impl(self, item, std::chrono::nanoseconds(0));
}

PyObject* queue_get_nowait(PyObject* self, PyObject*) { return queue_get_impl(self, std::chrono::nanoseconds(0)); }

PyObject* queue_qsize(PyObject* self, PyObject*) { return PyLong_FromSize_t(channel(self).size()); }
PyObject* queue_empty(PyObject* self, PyObject*) { return PyBool_FromLong(channel(self).size() == 0); }
PyObject* queue_full(PyObject* self, PyObject*) { return PyBool_FromLong(channel(self).full()); }

PyObject* queue_get_closed(PyObject* self, void*) { return PyBool_FromLong(channel(self).closed()); }
PyObject* queue_get_maxsize(PyObject* self, void*) { return PyLong_FromSize_t(channel(self).capacity()); }

PyObject* queue_repr(PyObject* self) {
  rt::Channel& ch = channel(self);
  return PyUnicode_FromFormat("<interpool.Queue maxsize=%zu qsize=%zu%s>", ch.capacity(), ch.size(),
                              ch.closed() ? " closed" : "");
}

PyMethodDef queue_methods[] = {
    {"put", FASTCALL_KW(queue_put), METH_FASTCALL | METH_KEYWORDS,
     "put($self, item, block=True, timeout=None)\n--\n\n"
     "Put item into the queue (encoded now, in this interpreter).  If the queue is full, wait (at most timeout "
     "seconds) for a free slot, then raise queue.Full; with block=False raise queue.Full at once.  Raises "
     "interpool.QueueClosed once the queue is closed, TypeError if item cannot be sent."},
    {"get", FASTCALL_KW(queue_get), METH_FASTCALL | METH_KEYWORDS,
     "get($self, block=True, timeout=None)\n--\n\n"
     "Remove and return the oldest item (decoded in this interpreter).  If the queue is empty, wait (at most "
     "timeout seconds), then raise queue.Empty; with block=False raise queue.Empty at once.  A closed queue "
     "still hands out the items left in it, then raises interpool.QueueClosed."},
    {"put_nowait", queue_put_nowait, METH_O,
     "put_nowait($self, item, /)\n--\n\nput(item, block=False): raise queue.Full at once if the queue is full."},
    {"get_nowait", queue_get_nowait, METH_NOARGS,
     "get_nowait($self, /)\n--\n\nget(block=False): raise queue.Empty at once if the queue is empty."},
    {"qsize", queue_qsize, METH_NOARGS, "qsize($self, /)\n--\n\nThe number of items in the queue (a snapshot)."},
    {"empty", queue_empty, METH_NOARGS, "empty($self, /)\n--\n\nWhether the queue holds no items (a snapshot)."},
    {"full", queue_full, METH_NOARGS,
     "full($self, /)\n--\n\nWhether a bounded queue holds maxsize items (a snapshot)."},
    {"close", call_void<rt::Channel, &rt::Channel::close>, METH_NOARGS,
     "close($self, /)\n--\n\nClose the queue, in every interpreter: put() raises interpool.QueueClosed from now on, "
     "get() returns the items left, then raises it.  Wakes every blocked put() and get().  Idempotent."},
    {"__reduce__", handle_reduce, METH_NOARGS, nullptr},
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS, "See PEP 585"},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef queue_getset[] = {
    {"closed", queue_get_closed, nullptr, "Whether close() was called (by any interpreter).", nullptr},
    {"maxsize", queue_get_maxsize, nullptr, "The bound on the number of items; 0 for none.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot queue_slots[] = {
    HANDLE_COMMON_SLOTS,
    {Py_tp_new, reinterpret_cast<void*>(queue_tp_new)},
    {Py_tp_repr, reinterpret_cast<void*>(queue_repr)},
    {Py_tp_methods, queue_methods},
    {Py_tp_getset, queue_getset},
    {Py_tp_doc,
     const_cast<char*>("Queue(maxsize=0)\n--\n\n"
                       "A FIFO queue shared by interpreters: pass it to tasks (or through another Queue) and every "
                       "interpreter puts to and gets from the same queue.  Items cross by value, like task "
                       "arguments: whatever a task can receive, including SharedBuffer, Shared and other "
                       "queues and locks, which travel as handles.  maxsize <= 0 means unbounded.  The API is "
                       "queue.Queue's, plus close().")},
    {0, nullptr},
};

}  // namespace

PyType_Spec queue_spec = handle_type_spec("interpool.Queue", queue_slots);

}  // namespace interpool::py
