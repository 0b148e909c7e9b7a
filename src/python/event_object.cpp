// src/python/event_object.cpp: interpool.Event, around rt::Event.
//
// The API is threading.Event's.
#include "python/sync_objects.hpp"

#include <chrono>

#include "python/interruptible_wait.hpp"
#include "python/sync_args.hpp"
#include "python/sync_handle.hpp"
#include "runtime/sync.hpp"

namespace interpool::py {

namespace {

// ------------------------------------------------------------------- Event

rt::Event& event(PyObject* o) { return core<rt::Event>(o); }

PyObject* event_is_set(PyObject* self, PyObject*) { return PyBool_FromLong(event(self).is_set()); }

PyObject* event_wait(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* a[1];
  if (!parse_args("wait", args, nargs, kwnames, {"timeout"}, a)) return nullptr;
  Timeout timeout;
  if (!parse_optional_timeout(a[0], timeout)) return nullptr;
  rt::Event& ev = event(self);
  if (ev.is_set()) Py_RETURN_TRUE;
  const uint32_t ticket = ev.ticket();
  return wait_outcome(
      wait_released_for(timeout, [&](std::chrono::nanoseconds slice) { return ev.wait_from(ticket, slice); }));
}

PyObject* event_repr(PyObject* self) {
  return PyUnicode_FromFormat("<interpool.Event %s>", event(self).is_set() ? "set" : "unset");
}

PyMethodDef event_methods[] = {
    {"set", call_void<rt::Event, &rt::Event::set>, METH_NOARGS,
     "set($self, /)\n--\n\nSet the flag and wake every waiter, in every interpreter."},
    {"clear", call_void<rt::Event, &rt::Event::clear>, METH_NOARGS, "clear($self, /)\n--\n\nReset the flag."},
    {"is_set", event_is_set, METH_NOARGS, "is_set($self, /)\n--\n\nWhether the flag is set."},
    {"wait", FASTCALL_KW(event_wait), METH_FASTCALL | METH_KEYWORDS,
     "wait($self, timeout=None)\n--\n\n"
     "Wait until the flag is set, at most timeout seconds.  Returns True if it is set, or was set while this "
     "call waited; False on timeout.  The GIL is released while waiting."},
    {"__reduce__", handle_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot event_slots[] = {
    HANDLE_COMMON_SLOTS,
    {Py_tp_new, reinterpret_cast<void*>(new_handle_no_args<rt::Event, HandleKind::Event>)},
    {Py_tp_repr, reinterpret_cast<void*>(event_repr)},
    {Py_tp_methods, event_methods},
    {Py_tp_doc, const_cast<char*>("Event()\n--\n\n"
                                  "A flag shared by interpreters, with threading.Event's API.")},
    {0, nullptr},
};

}  // namespace

PyType_Spec event_spec = handle_type_spec("interpool.Event", event_slots);

}  // namespace interpool::py
