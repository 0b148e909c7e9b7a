// src/python/failure.cpp: _core.Failure, how a task failed, as one named structure.
#include "python/failure.hpp"

#include <cstddef>
#include <string_view>

#include "python/heap_type.hpp"

namespace interpool::py {
namespace {

/// Immutable: every field is set once, by make_failure(), and holds only
/// str, bytes, bool, None or another Failure (built before it), so no
/// cycle can form and the type needs no GC.
struct FailureObject {
  PyObject_HEAD
  PyObject* field[kFailureFieldCount];  ///< owned, never null (None)
};

FailureObject* as_failure(PyObject* o) { return reinterpret_cast<FailureObject*>(o); }

constexpr const char* kKindNames[] = {"exception", "broken", "cancelled"};  // FailureKind order

bool kind_named(std::string_view name, FailureKind& kind) {
  for (int i = 0; i < 3; ++i)
    if (name == kKindNames[i]) return kind = static_cast<FailureKind>(i), true;
  return false;
}

/// `obj` as an exact str (a subclass is copied), or null (error set) if it
/// is not a str; None stays None when `optional`.
Ref exact_str(PyObject* obj, const char* name, bool optional) {
  if (!obj || obj == Py_None) {
    if (optional) return Ref::borrow(Py_None);
    PyErr_Format(PyExc_TypeError, "Failure() needs %s: a str", name);
    return Ref();
  }
  if (PyUnicode_CheckExact(obj)) return Ref::borrow(obj);
  if (PyUnicode_Check(obj)) return Ref::steal(PyUnicode_FromObject(obj));
  PyErr_Format(PyExc_TypeError, "Failure() %s must be a str%s, not %.100s", name, optional ? " or None" : "",
               Py_TYPE(obj)->tp_name);
  return Ref();
}

PyObject* failure_repr(PyObject* o) {
  auto* self = as_failure(o);
  PyObject* kind = self->field[kFailureKind];
  if (PyUnicode_CompareWithASCIIString(kind, "exception") == 0)
    return PyUnicode_FromFormat("_core.Failure(kind=%R, type_name=%R, message=%R)", kind, self->field[kFailureTypeName],
                                self->field[kFailureMessage]);
  if (PyUnicode_CompareWithASCIIString(kind, "broken") == 0)
    return PyUnicode_FromFormat("_core.Failure(kind=%R, reason=%R, cause=%R)", kind, self->field[kFailureReason],
                                self->field[kFailureCause]);
  return PyUnicode_FromFormat("_core.Failure(kind=%R)", kind);
}

// Failure(*, kind, pickled=None, type_name=None, message=None,
//         traceback=None, module=None, qualname=None, reason=None,
//         cause=None, notice=False): keyword arguments only.
PyObject* failure_new(PyTypeObject* type, PyObject* args, PyObject* kwds) {
  if (PyTuple_GET_SIZE(args)) {
    PyErr_SetString(PyExc_TypeError, "Failure() takes keyword arguments only");
    return nullptr;
  }
  static const char* keywords[] = {"kind",     "pickled", "type_name", "message", "traceback", "module",
                                   "qualname", "reason",  "cause",     "notice",  nullptr};
  const char* kind = nullptr;
  FailureFields f;
  int notice = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$sOOOOOOOOp:Failure", const_cast<char**>(keywords), &kind, &f.pickled,
                                   &f.type_name, &f.message, &f.traceback, &f.module, &f.qualname, &f.reason, &f.cause,
                                   &notice))
    return nullptr;
  if (!kind) {
    PyErr_SetString(PyExc_TypeError, "Failure() missing required keyword argument 'kind'");
    return nullptr;
  }
  if (!kind_named(kind, f.kind))
    return PyErr_Format(PyExc_ValueError, "Failure() kind must be 'exception', 'broken' or 'cancelled', not '%s'",
                        kind);
  f.notice = notice;
  return make_failure(state_of_type(type), f).release();
}

void failure_dealloc(PyObject* o) {
  heap_dealloc(o, [&] {
    for (PyObject*& field : as_failure(o)->field) Py_CLEAR(field);
  });
}

#define FAILURE_MEMBER(name, index, doc) \
  {name, Py_T_OBJECT_EX, offsetof(FailureObject, field) + (index) * sizeof(PyObject*), Py_READONLY, doc}

PyMemberDef failure_members[] = {
    FAILURE_MEMBER("kind", kFailureKind, "'exception', 'broken' or 'cancelled'."),
    FAILURE_MEMBER("pickled", kFailurePickled, "The pickled exception (bytes), or None if it did not pickle."),
    FAILURE_MEMBER("type_name", kFailureTypeName,
                   "'module.QualName' of the exception's type ('QualName' for builtins)."),
    FAILURE_MEMBER("message", kFailureMessage, "str() of the exception."),
    FAILURE_MEMBER("traceback", kFailureTraceback, "The formatted traceback in the worker (may be empty)."),
    FAILURE_MEMBER("module", kFailureModule, "The exception type's __module__, or None."),
    FAILURE_MEMBER("qualname", kFailureQualname, "The exception type's __qualname__, or None."),
    FAILURE_MEMBER("reason", kFailureReason, "Why the pool broke (kind 'broken'), else None."),
    FAILURE_MEMBER("cause", kFailureCause, "The Failure that broke the pool (kind 'broken'), or None."),
    FAILURE_MEMBER("notice", kFailureNotice, "Kind 'broken': also log the failure on 'concurrent.futures'."),
    {nullptr, 0, 0, 0, nullptr},
};

#undef FAILURE_MEMBER

PyType_Slot failure_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(failure_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(failure_dealloc)},
    {Py_tp_repr, reinterpret_cast<void*>(failure_repr)},
    {Py_tp_members, failure_members},
    {Py_tp_doc,
     const_cast<char*>("Failure(*, kind, pickled=None, type_name=None, message=None, traceback=None, module=None, "
                       "qualname=None, reason=None, cause=None, notice=False)\n--\n\n"
                       "How a task failed, as it crosses interpreters (internal): built by "
                       "interpool._worker.describe_exception and the engine, read by interpool._errors.rebuild.")},
    {0, nullptr},
};

/// "module.QualName" ("QualName" for builtins), the module and the qualname
/// of `exc`'s type, as describe_exception gives them; module and qualname
/// are null when they cannot be read.
Ref qualified_type_name(PyObject* exc, Ref& module, Ref& qualname) {
  PyObject* type = reinterpret_cast<PyObject*>(Py_TYPE(exc));
  module = Ref::steal(PyObject_GetAttrString(type, "__module__"));
  qualname = Ref::steal(PyObject_GetAttrString(type, "__qualname__"));
  if (!module || !qualname || !PyUnicode_Check(module.get()) || !PyUnicode_Check(qualname.get())) {
    PyErr_Clear();
    module.reset();
    qualname.reset();
    return Ref::steal(PyUnicode_FromString(Py_TYPE(exc)->tp_name));
  }
  if (PyUnicode_CompareWithASCIIString(module.get(), "__mp_main__") == 0)
    module = Ref::steal(PyUnicode_FromString("__main__"));
  if (!module) return Ref();
  if (PyUnicode_CompareWithASCIIString(module.get(), "builtins") == 0) return qualname;
  return Ref::steal(PyUnicode_FromFormat("%U.%U", module.get(), qualname.get()));
}

}  // namespace

Ref make_failure(ModuleState& state, const FailureFields& f) {
  bool exception = f.kind == FailureKind::Exception;
  Ref kind = Ref::steal(PyUnicode_InternFromString(kKindNames[static_cast<int>(f.kind)]));
  if (!kind) return Ref();
  if (f.pickled && f.pickled != Py_None && !PyBytes_CheckExact(f.pickled)) {
    PyErr_Format(PyExc_TypeError, "Failure() pickled must be bytes or None, not %.100s", Py_TYPE(f.pickled)->tp_name);
    return Ref();
  }
  if (f.cause && f.cause != Py_None && !is_failure(state, f.cause)) {
    PyErr_Format(PyExc_TypeError, "Failure() cause must be a Failure or None, not %.100s", Py_TYPE(f.cause)->tp_name);
    return Ref();
  }
  Ref type_name = exact_str(f.type_name, "type_name", !exception);
  Ref message = type_name ? exact_str(f.message, "message", !exception) : Ref();
  Ref traceback = message ? exact_str(f.traceback, "traceback", !exception) : Ref();
  Ref module = traceback ? exact_str(f.module, "module", true) : Ref();
  Ref qualname = module ? exact_str(f.qualname, "qualname", true) : Ref();
  Ref reason = qualname ? exact_str(f.reason, "reason", f.kind != FailureKind::Broken) : Ref();
  if (!reason) return Ref();

  auto* self = PyObject_New(FailureObject, state.failure_type);
  if (!self) return Ref();
  PyObject** field = self->field;
  field[kFailureKind] = kind.release();
  field[kFailurePickled] = Py_NewRef(f.pickled ? f.pickled : Py_None);
  field[kFailureTypeName] = type_name.release();
  field[kFailureMessage] = message.release();
  field[kFailureTraceback] = traceback.release();
  field[kFailureModule] = module.release();
  field[kFailureQualname] = qualname.release();
  field[kFailureReason] = reason.release();
  field[kFailureCause] = Py_NewRef(f.cause ? f.cause : Py_None);
  field[kFailureNotice] = Py_NewRef(f.notice ? Py_True : Py_False);
  return Ref::steal(reinterpret_cast<PyObject*>(self));
}

Ref describe_exception(ModuleState& state, PyObject* exc, PyObject* describe) {
  Ref info;
  {
    Ref fn = Ref::borrow(describe);
    if (!fn) {
      Ref worker = Ref::steal(PyImport_ImportModule("interpool._worker"));
      fn = worker ? Ref::steal(PyObject_GetAttrString(worker.get(), "describe_exception")) : Ref();
    }
    info = fn ? Ref::steal(PyObject_CallOneArg(fn.get(), exc)) : Ref();
    if (info && !is_failure(state, info.get())) {
      PyErr_Format(PyExc_TypeError, "describe_exception returned %.100s, not a Failure", Py_TYPE(info.get())->tp_name);
      info.reset();
    }
  }
  if (info) return info;
  // describe_exception itself failed (out of memory, say): what C++ alone
  // can say, in the same form.
  PyErr_Clear();
  Ref module, qualname;
  Ref type_name = qualified_type_name(exc, module, qualname);
  Ref message = Ref::steal(PyObject_Str(exc));
  if (!message) {
    PyErr_Clear();
    message = Ref::steal(PyUnicode_FromString("<exception str() failed>"));
  }
  Ref empty = Ref::steal(PyUnicode_FromString(""));
  if (!type_name || !message || !empty) return Ref();
  return make_failure(state, {.kind = FailureKind::Exception,
                              .type_name = type_name.get(),
                              .message = message.get(),
                              .traceback = empty.get(),
                              .module = module.get(),
                              .qualname = qualname.get()});
}

PyObject* failure_field(PyObject* failure, FailureField field) { return as_failure(failure)->field[field]; }

Ref failure_from_fields(ModuleState& state, PyObject* const* fields) {
  PyObject* kind = fields[kFailureKind];
  const char* name = PyUnicode_Check(kind) ? PyUnicode_AsUTF8(kind) : nullptr;
  FailureFields f;
  if (!name || !kind_named(name, f.kind)) {
    PyErr_Clear();
    PyErr_SetString(PyExc_SystemError, "interpool: corrupt payload (this is a bug in interpool)");
    return Ref();
  }
  f.pickled = fields[kFailurePickled];
  f.type_name = fields[kFailureTypeName];
  f.message = fields[kFailureMessage];
  f.traceback = fields[kFailureTraceback];
  f.module = fields[kFailureModule];
  f.qualname = fields[kFailureQualname];
  f.reason = fields[kFailureReason];
  f.cause = fields[kFailureCause];
  f.notice = fields[kFailureNotice] == Py_True;
  return make_failure(state, f);
}

PyType_Spec failure_spec = heap_type_spec<FailureObject>("interpool._core.Failure", 0, failure_slots);

}  // namespace interpool::py
