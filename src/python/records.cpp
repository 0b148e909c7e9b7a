// src/python/records.cpp: the named structures of the contract between the binding and the package.
#include "python/records.hpp"

#include <array>
#include <cassert>
#include <cstddef>
#include <cstring>
#include <initializer_list>

#include "python/heap_type.hpp"

namespace interpool::py {
namespace {

/// A record of N fields: each owned, never null but while a garbage cycle
/// is cleared (tp_clear).  Every record type shares the slots below, which
/// find the field count from the type's basic size.
template <int N>
struct RecordObject {
  PyObject_HEAD
  PyObject* field[N];
};
static_assert(offsetof(RecordObject<1>, field) == kRecordFieldsOffset &&
              offsetof(RecordObject<4>, field) == kRecordFieldsOffset);

PyObject** fields_of(PyObject* o) {
  return reinterpret_cast<PyObject**>(reinterpret_cast<char*>(o) + kRecordFieldsOffset);
}

Py_ssize_t field_count(PyTypeObject* type) {
  return (type->tp_basicsize - kRecordFieldsOffset) / static_cast<Py_ssize_t>(sizeof(PyObject*));
}

/// "Delivery" for interpool._core.Delivery: how errors name the type.
const char* short_name(PyTypeObject* type) {
  const char* dot = std::strrchr(type->tp_name, '.');
  return dot ? dot + 1 : type->tp_name;
}

/// A new record of `type` whose fields are `values` (borrowed, in field order).
Ref make_record(PyTypeObject* type, std::initializer_list<PyObject*> values) {
  assert(static_cast<Py_ssize_t>(values.size()) == field_count(type));
  PyObject* self = PyObject_GC_New(PyObject, type);
  if (!self) return Ref();
  PyObject** field = fields_of(self);
  for (PyObject* value : values) *field++ = Py_NewRef(value);
  PyObject_GC_Track(self);
  return Ref::steal(self);
}

/// The fields of a record made from Python: keyword arguments only, each
/// field by its name (the type's member), all required.  Borrowed from
/// `kwds`; false with TypeError set if they do not match.
bool fields_from_keywords(PyTypeObject* type, PyObject* args, PyObject* kwds, PyObject** values) {
  const char* name = short_name(type);
  if (PyTuple_GET_SIZE(args)) {
    PyErr_Format(PyExc_TypeError, "%s() takes keyword arguments only", name);
    return false;
  }
  PyMemberDef* members = type->tp_members;
  Py_ssize_t n = field_count(type);
  for (Py_ssize_t i = 0; i < n; ++i) values[i] = nullptr;
  Py_ssize_t pos = 0;
  PyObject *key, *value;
  while (kwds && PyDict_Next(kwds, &pos, &key, &value)) {
    Py_ssize_t i = 0;
    while (i < n && PyUnicode_CompareWithASCIIString(key, members[i].name) != 0) ++i;
    if (i == n) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%S'", name, key);
      return false;
    }
    values[i] = value;
  }
  for (Py_ssize_t i = 0; i < n; ++i)
    if (!values[i]) {
      PyErr_Format(PyExc_TypeError, "%s() missing required keyword argument '%s'", name, members[i].name);
      return false;
    }
  return true;
}

PyObject* record_repr(PyObject* o) {
  PyTypeObject* type = Py_TYPE(o);
  Ref text = Ref::steal(PyUnicode_FromFormat("_core.%s(", short_name(type)));
  for (Py_ssize_t i = 0, n = field_count(type); text && i < n; ++i) {
    PyObject* value = fields_of(o)[i];
    Ref part = Ref::steal(
        PyUnicode_FromFormat("%s%s=%R", i ? ", " : "", type->tp_members[i].name, value ? value : Py_None));
    text = part ? Ref::steal(PyUnicode_Concat(text.get(), part.get())) : Ref();
  }
  Ref close = text ? Ref::steal(PyUnicode_FromString(")")) : Ref();
  return close ? PyUnicode_Concat(text.get(), close.get()) : nullptr;
}

int record_traverse(PyObject* o, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(o));
  PyObject** field = fields_of(o);
  for (Py_ssize_t i = 0, n = field_count(Py_TYPE(o)); i < n; ++i) Py_VISIT(field[i]);
  return 0;
}

int record_clear(PyObject* o) {
  PyObject** field = fields_of(o);
  for (Py_ssize_t i = 0, n = field_count(Py_TYPE(o)); i < n; ++i) Py_CLEAR(field[i]);
  return 0;
}

void record_dealloc(PyObject* o) {
  heap_dealloc(o, [o] { record_clear(o); });
}

#define RECORD_MEMBER(name, index, doc) \
  {name, Py_T_OBJECT_EX, kRecordFieldsOffset + (index) * static_cast<Py_ssize_t>(sizeof(PyObject*)), Py_READONLY, doc}

using RecordSlots = std::array<PyType_Slot, 8>;

/// The slots of a record type: those every record shares, then its members
/// and doc, and tp_new if Python may make it (a null `new_fn` ends the table
/// before it).
RecordSlots record_slots(PyMemberDef* members, const char* doc, newfunc new_fn = nullptr) {
  return {{
      {Py_tp_dealloc, reinterpret_cast<void*>(record_dealloc)},
      {Py_tp_traverse, reinterpret_cast<void*>(record_traverse)},
      {Py_tp_clear, reinterpret_cast<void*>(record_clear)},
      {Py_tp_repr, reinterpret_cast<void*>(record_repr)},
      {Py_tp_members, members},
      {Py_tp_doc, const_cast<char*>(doc)},
      {new_fn ? Py_tp_new : 0, reinterpret_cast<void*>(new_fn)},
      {0, nullptr},
  }};
}

constexpr unsigned long kRecordFlags = Py_TPFLAGS_HAVE_GC;  // with heap_type_spec's defaults

// ------------------------------------------------------------------ Delivery

// Delivery(*, future, outcome, is_exception)
PyObject* delivery_new(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  PyObject* v[3];
  if (!fields_from_keywords(type, args, kwds, v)) return nullptr;
  if (!PyBool_Check(v[kDeliveryIsException]))
    return PyErr_Format(PyExc_TypeError, "Delivery() is_exception must be a bool, not %.100s",
                        Py_TYPE(v[kDeliveryIsException])->tp_name);
  if (v[kDeliveryIsException] == Py_True && !PyExceptionInstance_Check(v[kDeliveryOutcome]))
    return PyErr_Format(PyExc_TypeError,
                        "Delivery() outcome must be an exception when is_exception is True, not %.100s",
                        Py_TYPE(v[kDeliveryOutcome])->tp_name);
  return make_record(type, {v[0], v[1], v[2]}).release();
}

PyMemberDef delivery_members[] = {
    RECORD_MEMBER("future", kDeliveryFuture, "The future to complete: an asyncio Future, or what the bridge awaits."),
    RECORD_MEMBER("outcome", kDeliveryOutcome, "The value, or (is_exception) the exception."),
    RECORD_MEMBER("is_exception", kDeliveryIsException, "Whether outcome is an exception to raise (a bool)."),
    {nullptr, 0, 0, 0, nullptr},
};

RecordSlots delivery_slots = record_slots(
    delivery_members,
    "Delivery(*, future, outcome, is_exception)\n--\n\n"
    "One result bound for an event loop: the items of a loop bridge's push_many() (internal).",
    delivery_new);

// --------------------------------------------------------------------- Guard

// Guard(*, container, key, expected): the key must be one that
// callable_codec.cpp's guards_hold reads as _byvalue.EncodedCallable says.
PyObject* guard_new(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  PyObject* v[3];
  if (!fields_from_keywords(type, args, kwds, v)) return nullptr;
  PyObject *container = v[kGuardContainer], *key = v[kGuardKey];
  if (PyFunction_Check(container) && PyLong_CheckExact(key)) {
    long which = PyLong_AsLong(key);
    if (which < 0 || which > 2) {
      PyErr_Clear();
      return PyErr_Format(PyExc_ValueError,
                          "Guard() key of a function must be 0 (its code), 1 (its defaults), 2 (its keyword "
                          "defaults) or an attribute name, not %R",
                          key);
    }
  } else if (PyCell_Check(container)) {
    if (key != Py_None) return PyErr_Format(PyExc_ValueError, "Guard() key of a cell must be None, not %R", key);
  } else if (PyDict_Check(container) || Py_IS_TYPE(container, &PyDictProxy_Type)) {
    if (PyObject_Hash(key) == -1) {
      PyErr_Clear();
      return PyErr_Format(PyExc_TypeError, "Guard() key of a %.100s must be hashable, not %.100s",
                          Py_TYPE(container)->tp_name, Py_TYPE(key)->tp_name);
    }
  } else if (!PyUnicode_Check(key)) {
    return PyErr_Format(PyExc_TypeError,
                        "Guard() key must be an attribute name (a str) for a %.100s container, not %.100s",
                        Py_TYPE(container)->tp_name, Py_TYPE(key)->tp_name);
  }
  return make_record(type, {v[0], v[1], v[2]}).release();
}

PyMemberDef guard_members[] = {
    RECORD_MEMBER("container", kGuardContainer,
                  "A dict, a cell, a function, a class's __dict__ (a mappingproxy), or any object."),
    RECORD_MEMBER("key", kGuardKey,
                  "A dict or mappingproxy key; None for a cell; 0, 1, 2 for a function's code, defaults, keyword "
                  "defaults; else an attribute name."),
    RECORD_MEMBER("expected", kGuardExpected, "What the lookup gave at encoding time (_byvalue.ABSENT: unbound)."),
    {nullptr, 0, 0, 0, nullptr},
};

RecordSlots guard_slots = record_slots(
    guard_members,
    "Guard(*, container, key, expected)\n--\n\n"
    "One condition under which the caller reuses a by-value encoding: looking key up in container still gives "
    "expected, by identity (internal; see interpool._byvalue.EncodedCallable).",
    guard_new);

// -------------------------------------------------------------------- Launch

PyMemberDef launch_members[] = {
    RECORD_MEMBER("completion", kLaunchCompletion, "The Completion that ends the task, exactly once."),
    RECORD_MEMBER("fn", kLaunchFn, "The coroutine function to run."),
    RECORD_MEMBER("args", kLaunchArgs, "Its positional arguments (a tuple)."),
    RECORD_MEMBER("kwargs", kLaunchKwargs, "Its keyword arguments: a dict, or None for none."),
    {nullptr, 0, 0, 0, nullptr},
};

RecordSlots launch_slots = record_slots(
    launch_members, "One deferred task for the event loop of an AsyncPool worker (internal; made by the engine).");

// ------------------------------------------------------------------ Requests

PyMemberDef requests_members[] = {
    RECORD_MEMBER("launches", kRequestsLaunches, "The tasks to start: a list of Launch, in submission order."),
    RECORD_MEMBER("cancels", kRequestsCancels, "The ids (Completion.id) of the tasks to cancel: a list of int."),
    {nullptr, 0, 0, 0, nullptr},
};

RecordSlots requests_slots = record_slots(requests_members,
                                          "What WorkerSlot.take_requests() returns (internal; made by the engine).");

#undef RECORD_MEMBER

}  // namespace

Ref make_delivery(ModuleState& state, PyObject* future, PyObject* outcome, bool is_exception) {
  return make_record(state.delivery_type, {future, outcome, is_exception ? Py_True : Py_False});
}

Ref make_launch(ModuleState& state, PyObject* completion, PyObject* fn, PyObject* args, PyObject* kwargs) {
  return make_record(state.launch_type, {completion, fn, args, kwargs});
}

Ref make_requests(ModuleState& state, PyObject* launches, PyObject* cancels) {
  return make_record(state.requests_type, {launches, cancels});
}

PyType_Spec delivery_spec = heap_type_spec<RecordObject<3>>("interpool._core.Delivery", kRecordFlags,
                                                            delivery_slots.data());
PyType_Spec guard_spec = heap_type_spec<RecordObject<3>>("interpool._core.Guard", kRecordFlags, guard_slots.data());
PyType_Spec launch_spec = heap_type_spec<RecordObject<4>>(
    "interpool._core.Launch", kRecordFlags | Py_TPFLAGS_DISALLOW_INSTANTIATION, launch_slots.data());
PyType_Spec requests_spec = heap_type_spec<RecordObject<2>>(
    "interpool._core.Requests", kRecordFlags | Py_TPFLAGS_DISALLOW_INSTANTIATION, requests_slots.data());

}  // namespace interpool::py
