// src/python/failure.hpp: _core.Failure, how a task failed, as one named structure.
//
// A task's exception crosses interpreters as a description, never as the
// object: a Failure.  It is built in one place per side: on the C++ side by
// make_failure() (a broken pool, a cancelled asyncio task, the fallbacks
// when the Python describer itself fails), on the Python side by
// interpool._worker.describe_exception, which calls _core.Failure(...) with
// keywords.  The codec encodes it natively (no pickle) and the receiver's
// decoder rebuilds it as its own interpreter's Failure.  interpool._errors
// reads it by field name.
//
//   kind       "exception": a task (or initializer) raised;
//              "broken":    the pool broke before the task ran;
//              "cancelled": a task stopped on request, for an asyncio future.
//   pickled    (exception) the pickled exception, or None if it does not pickle
//   type_name  (exception) "module.QualName" ("QualName" for builtins)
//   message    (exception) str() of the exception
//   traceback  (exception) the formatted traceback, possibly ""
//   module     (exception) the type's __module__, or None if unknown
//   qualname   (exception) the type's __qualname__, or None if unknown
//   reason     (broken) why the pool broke
//   cause      (broken) the Failure of the exception that broke it, or None
//   notice     (broken) True: also log the failure on "concurrent.futures"
#pragma once

#include "python/module_state.hpp"

namespace interpool::py {

enum class FailureKind { Exception, Broken, Cancelled };

/// The fields of a Failure, in their one order (the codec's too).
enum FailureField : int {
  kFailureKind,
  kFailurePickled,
  kFailureTypeName,
  kFailureMessage,
  kFailureTraceback,
  kFailureModule,
  kFailureQualname,
  kFailureReason,
  kFailureCause,
  kFailureNotice,
  kFailureFieldCount,
};

/// What make_failure() takes: borrowed references, null meaning None.
/// Spelled with designated initializers at every call site, e.g.
/// `make_failure(state, {.kind = FailureKind::Broken, .reason = r, .cause = c})`.
struct FailureFields {
  FailureKind kind = FailureKind::Exception;
  PyObject* pickled = nullptr;
  PyObject* type_name = nullptr;
  PyObject* message = nullptr;
  PyObject* traceback = nullptr;
  PyObject* module = nullptr;
  PyObject* qualname = nullptr;
  PyObject* reason = nullptr;
  PyObject* cause = nullptr;
  bool notice = false;
};

/// The one C++ builder of a Failure.  Null with an exception set if a field
/// has the wrong type (a kind "exception" needs str type_name, message and
/// traceback; a kind "broken" a str reason).
Ref make_failure(ModuleState& state, const FailureFields& fields);

/// Describes the exception `exc` (this interpreter's) as a Failure:
/// interpool._worker.describe_exception(exc) (`describe`, or imported when
/// null), or, should that fail (out of memory, say), what C++ alone can say
/// (type name, str(), no traceback).  Null (error set) only if both fail.
Ref describe_exception(ModuleState& state, PyObject* exc, PyObject* describe = nullptr);

/// Whether `obj` is this interpreter's Failure.
inline bool is_failure(ModuleState& state, PyObject* obj) { return Py_TYPE(obj) == state.failure_type; }

/// The codec's access, in FailureField order: borrowed references.
PyObject* failure_field(PyObject* failure, FailureField field);
/// A Failure from decoded fields in FailureField order (checked as by
/// make_failure, so a corrupt payload raises instead of crashing).
Ref failure_from_fields(ModuleState& state, PyObject* const* fields);

extern PyType_Spec failure_spec;

}  // namespace interpool::py
