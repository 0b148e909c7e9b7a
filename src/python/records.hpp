// src/python/records.hpp: the named structures of the contract between the binding and the package.
//
// Besides _core.Failure (failure.hpp, which the codec also encodes), what
// crosses between the binding (src/python) and the package (src/interpool)
// is a record: a small immutable heap type whose fields are read-only
// attributes, built in one place per side and read by name, never a
// positional tuple.
//
//   Delivery(future, outcome, is_exception)
//       One result bound for an event loop: the items of a loop bridge's
//       push_many(items).  Built by make_delivery() (delivery.cpp:
//       BridgeBatch) and in Python by _core.Delivery(...) (LoopBridge.push,
//       TrioBridge.push); read by the bridges' _drain.
//   Guard(container, key, expected)
//       One condition under which the caller reuses a by-value encoding:
//       looking `key` up in `container` still gives `expected` (see
//       interpool._byvalue.EncodedCallable).  Built by interpool._byvalue,
//       read by callable_codec.cpp (guards_hold) on every call.
//   Launch(completion, fn, args, kwargs)
//       One deferred task for the event loop of an AsyncPool worker.
//   Requests(launches, cancels)
//       What WorkerSlot.take_requests() returns: a list of Launch, and a
//       list of the ids (Completion.id) of tasks to cancel.  Both built by
//       completion_object.cpp (slot_take_requests), read by interpool._aworker.
//
// Delivery and Guard can be made from Python, with keyword arguments only,
// and check what they are given (TypeError, ValueError); Launch and
// Requests are made by the binding alone.  Records are GC-tracked, since
// their fields are arbitrary objects.
#pragma once

#include "python/module_state.hpp"

namespace interpool::py {

/// Where a record's fields start: right after the object header.
constexpr Py_ssize_t kRecordFieldsOffset = sizeof(PyObject);

enum DeliveryField : int { kDeliveryFuture, kDeliveryOutcome, kDeliveryIsException };
enum GuardField : int { kGuardContainer, kGuardKey, kGuardExpected };
enum LaunchField : int { kLaunchCompletion, kLaunchFn, kLaunchArgs, kLaunchKwargs };
enum RequestsField : int { kRequestsLaunches, kRequestsCancels };

/// Field `index` of a record (borrowed; never null while the record lives
/// outside a garbage cycle being cleared).  The caller knows the type.
inline PyObject* record_field(PyObject* record, int index) {
  return reinterpret_cast<PyObject**>(reinterpret_cast<char*>(record) + kRecordFieldsOffset)[index];
}

/// The C++ builders, one per record: borrowed references, none null.
/// New reference, or null with an exception set (out of memory).
Ref make_delivery(ModuleState& state, PyObject* future, PyObject* outcome, bool is_exception);
Ref make_launch(ModuleState& state, PyObject* completion, PyObject* fn, PyObject* args, PyObject* kwargs);
Ref make_requests(ModuleState& state, PyObject* launches, PyObject* cancels);

/// Whether `obj` is this interpreter's Guard.
inline bool is_guard(ModuleState& state, PyObject* obj) { return Py_TYPE(obj) == state.guard_type; }

extern PyType_Spec delivery_spec;
extern PyType_Spec guard_spec;
extern PyType_Spec launch_spec;
extern PyType_Spec requests_spec;

}  // namespace interpool::py
