// src/python/callable_codec.cpp: encoding callables for a worker, and the caches on both sides.
#include "python/callable_codec.hpp"

#include <string>
#include <utility>

#include "python/records.hpp"

namespace interpool::py {
namespace {

// Caller-side cache bound: callables whose pickled form is remembered.
constexpr Py_ssize_t kCallerCallableCacheLimit = 4096;

/// Whether `fn` carries no state of its own: decoding its pickle in a
/// worker always gives the same object (a module-level function or class, a
/// builtin, a method of a module or of a class, a method descriptor), so the
/// worker may decode it once and reuse it.  Anything else (a partial, a
/// callable instance, a bound method of an instance) holds objects that a
/// call may change, and is decoded afresh for each task, as
/// ProcessPoolExecutor does.
bool stateless_by_name(PyObject* fn) {
  if (PyFunction_Check(fn) || PyType_Check(fn)) return true;
  if (PyCFunction_Check(fn)) {
    PyObject* self = PyCFunction_GET_SELF(fn);
    return !self || PyModule_Check(self) || PyType_Check(self);
  }
  if (PyMethod_Check(fn)) return PyType_Check(PyMethod_GET_SELF(fn)) && PyFunction_Check(PyMethod_GET_FUNCTION(fn));
  PyTypeObject* type = Py_TYPE(fn);
  return type == &PyMethodDescr_Type || type == &PyWrapperDescr_Type || type == &PyClassMethodDescr_Type;
}

// Caller-side cache bounds for callables sent by value: their encodings are
// reused while their guards hold; bigger ones are encoded for each call.
constexpr Py_ssize_t kCallerByValueCacheLimit = 1024;
constexpr Py_ssize_t kCallerByValueMaxCachedBytes = 16 << 10;

/// Whether every guard of a by-value encoding (a tuple of _core.Guard,
/// checked by guards_well_formed) still holds: looking each key up in its
/// container gives the object it gave at encoding time.
bool guards_hold(ModuleState& state, PyObject* guards) {
  for (Py_ssize_t i = 0, n = PyTuple_GET_SIZE(guards); i < n; ++i) {
    PyObject* guard = PyTuple_GET_ITEM(guards, i);
    PyObject* container = record_field(guard, kGuardContainer);
    PyObject* key = record_field(guard, kGuardKey);
    PyObject* current;
    Ref owned;
    if (PyDict_CheckExact(container)) {
      current = PyDict_GetItemWithError(container, key);
    } else if (PyFunction_Check(container) && PyLong_CheckExact(key)) {
      // A function's code (0), defaults (1) or keyword defaults (2): read
      // in place, as these guards are checked on every call.
      long which = PyLong_AsLong(key);
      current = which == 0   ? PyFunction_GET_CODE(container)
                : which == 1 ? PyFunction_GET_DEFAULTS(container)
                             : PyFunction_GET_KW_DEFAULTS(container);
      if (!current) current = Py_None;  // as the attribute reads
    } else if (PyCell_Check(container)) {
      current = PyCell_GET(container);
    } else {
      owned = Ref::steal(Py_IS_TYPE(container, &PyDictProxy_Type) ? PyObject_GetItem(container, key)
                                                                  : PyObject_GetAttr(container, key));
      current = owned.get();
    }
    if (!current) {
      PyErr_Clear();  // unbound (or failing: then the encoding says why)
      current = state.by_value->absent;
    }
    if (current != record_field(guard, kGuardExpected)) return false;
  }
  return true;
}

/// Whether `guards`, from _byvalue.encode_callable, is None or a tuple of
/// this interpreter's _core.Guard: what guards_hold reads without checks.
bool guards_well_formed(ModuleState& state, PyObject* guards) {
  if (guards == Py_None) return true;
  if (!PyTuple_Check(guards)) return false;
  for (Py_ssize_t i = 0, n = PyTuple_GET_SIZE(guards); i < n; ++i)
    if (!is_guard(state, PyTuple_GET_ITEM(guards, i))) return false;
  return true;
}

/// Appends the flag and bytes of a cached by-value encoding of `fn`, if
/// there is one whose guards hold.  False if there is none (no error set).
bool reuse_by_value(ModuleState& state, Encoder& enc, PyObject* fn) {
  PyObject* entry = PyDict_GetItemWithError(state.by_value->cache, fn);
  if (!entry) return PyErr_Clear(), false;
  Ref hold = Ref::borrow(entry);
  if (!guards_hold(state, PyTuple_GET_ITEM(entry, 1))) {
    if (PyDict_DelItem(state.by_value->cache, fn) < 0) PyErr_Clear();
    return false;
  }
  PyObject* data = PyTuple_GET_ITEM(entry, 0);
  enc.raw(PyTuple_GET_ITEM(entry, 2) == Py_True ? "u" : "c");
  enc.raw({PyBytes_AS_STRING(data), static_cast<std::size_t>(PyBytes_GET_SIZE(data))});
  return true;
}

}  // namespace

/// Appends `fn` to a request: a flag, then its pickled bytes.
///
/// By name when a worker can import it: the bytes of stateless callables
/// (see stateless_by_name) are remembered; those are flagged 'c' and
/// workers cache them by their bytes.  Every other callable is flagged 'u':
/// workers decode it for each task.  InterpreterPoolExecutor (`stateless`)
/// then sends a function that needs no state as its code ('s').  Anything
/// else goes by value (interpool._byvalue, cloudpickle): flagged 'c' unless
/// it holds state a call may change, its encoding reused while its guards
/// hold.
bool encode_callable(ModuleState& state, Encoder& enc, rt::Payload& payload, PyObject* fn, bool stateless) {
  if (!PyCallable_Check(fn)) {
    PyErr_Format(PyExc_TypeError, "fn must be callable, not %.100s", Py_TYPE(fn)->tp_name);
    return false;
  }
  bool by_name = stateless_by_name(fn);
  if (by_name) {
    PyObject* hit = PyDict_GetItemWithError(state.callable_cache, fn);
    if (hit) {
      enc.raw("c");
      enc.raw({PyBytes_AS_STRING(hit), static_cast<std::size_t>(PyBytes_GET_SIZE(hit))});
      return true;
    }
    if (PyErr_Occurred()) return false;
    if (state.by_value && PyDict_GET_SIZE(state.by_value->cache) && reuse_by_value(state, enc, fn)) return true;
  }
  std::size_t handles_before = payload.handles.size();
  Ref data = enc.pickle_by_name(fn, nullptr);
  if (data) {
    bool keep = by_name && payload.handles.size() == handles_before;
    enc.raw(keep ? "c" : "u");
    enc.raw({PyBytes_AS_STRING(data.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(data.get()))});
    if (keep) {
      if (PyDict_GET_SIZE(state.callable_cache) >= kCallerCallableCacheLimit) PyDict_Clear(state.callable_cache);
      if (PyDict_SetItem(state.callable_cache, fn, data.get()) < 0) return false;
    }
    return true;
  }
  if (PyErr_Occurred()) return false;
  if (stateless && PyFunction_Check(fn)) {
    // InterpreterPoolExecutor, like the stdlib's, sends functions that need
    // no state (a lambda, a local function) as their code.
    Ref callables = Ref::steal(PyImport_ImportModule("interpool._callables"));
    Ref code = callables ? Ref::steal(PyObject_CallMethod(callables.get(), "encode_stateless", "O", fn)) : Ref();
    if (code && PyBytes_Check(code.get())) {
      enc.raw("s");
      enc.raw({PyBytes_AS_STRING(code.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(code.get()))});
      return true;
    }
    if (!code && !PyErr_ExceptionMatches(PyExc_TypeError)) return false;
    PyErr_Clear();  // it needs state: by value
  }
  Ref encoded = enc.encode_callable_by_value(fn);
  if (!encoded) return false;
  Ref value = Ref::steal(PyObject_GetAttr(encoded.get(), state.by_value->str_data));
  Ref guards = value ? Ref::steal(PyObject_GetAttr(encoded.get(), state.by_value->str_guards)) : Ref();
  Ref per_task_obj = guards ? Ref::steal(PyObject_GetAttr(encoded.get(), state.by_value->str_per_task)) : Ref();
  if (!per_task_obj) return false;
  if (!PyBytes_Check(value.get()) || !guards_well_formed(state, guards.get())) {
    PyErr_SetString(PyExc_SystemError,
                    "interpool._byvalue.encode_callable returned a malformed encoding (data must be bytes, guards "
                    "None or a tuple of _core.Guard)");
    return false;
  }
  bool own_handles = payload.handles.size() != handles_before;
  bool per_task = PyObject_IsTrue(per_task_obj.get()) == 1 || own_handles || !by_name;
  enc.raw(per_task ? "u" : "c");
  enc.raw({PyBytes_AS_STRING(value.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(value.get()))});
  if (by_name && !own_handles && guards.get() != Py_None &&
      PyBytes_GET_SIZE(value.get()) <= kCallerByValueMaxCachedBytes) {
    Ref entry = Ref::steal(PyTuple_Pack(3, value.get(), guards.get(), per_task ? Py_True : Py_False));
    if (!entry) return false;
    if (PyDict_GET_SIZE(state.by_value->cache) >= kCallerByValueCacheLimit) PyDict_Clear(state.by_value->cache);
    if (PyDict_SetItem(state.by_value->cache, fn, entry.get()) < 0) PyErr_Clear();  // unhashable: not kept
  }
  return true;
}

// ------------------------------------------------------------ worker side

namespace {

// Worker-side cache bounds.  Only stateless callables are cached (the caller
// flags them 'c' or 's'), so entries are small pickles by name; the bounds
// keep a stream of distinct ones (stateless functions sent as code, say)
// from growing a worker without limit.
constexpr std::size_t kWorkerCallableCacheLimit = 512;           // entries
constexpr std::size_t kWorkerCallableCacheBytes = 1 << 20;       // sum of their encoded sizes
constexpr std::size_t kWorkerCallableMaxCachedBytes = 16 << 10;  // bigger ones are decoded each time

}  // namespace

PyObject* CallableCache::decode(Decoder& dec, Ref& holder, PyObject* decode_stateless) {
  std::string_view flag, blob;
  if (!dec.raw(flag) || !dec.raw(blob)) return nullptr;
  if (flag == "u") {
    // Not stateless (a partial, a callable instance...): a fresh copy per
    // task, so that no call sees what an earlier one left in it.
    holder = Ref::steal(dec.unpickle(blob));
    return holder.get();
  }
  auto it = _entries.find(blob);
  if (it != _entries.end()) return it->second.get();
  Ref fn;
  if (flag == "s") {
    Ref code = Ref::steal(PyBytes_FromStringAndSize(blob.data(), static_cast<Py_ssize_t>(blob.size())));
    fn = code ? Ref::steal(PyObject_CallOneArg(decode_stateless, code.get())) : Ref();
  } else {
    fn = Ref::steal(dec.unpickle(blob));
  }
  if (!fn) return nullptr;
  if (blob.size() > kWorkerCallableMaxCachedBytes) {
    holder = std::move(fn);
    return holder.get();
  }
  if (_entries.size() >= kWorkerCallableCacheLimit || _bytes + blob.size() > kWorkerCallableCacheBytes) {
    _entries.clear();
    _bytes = 0;
  }
  _bytes += blob.size();
  return _entries.emplace(std::string(blob), std::move(fn)).first->second.get();
}

Ref decode_callable_uncached(Decoder& dec) {
  std::string_view flag, blob;
  if (!dec.raw(flag) || !dec.raw(blob)) return Ref();
  if (flag != "s") return Ref::steal(dec.unpickle(blob));
  Ref worker = Ref::steal(PyImport_ImportModule("interpool._worker"));
  Ref code = worker ? Ref::steal(PyBytes_FromStringAndSize(blob.data(), static_cast<Py_ssize_t>(blob.size()))) : Ref();
  return code ? Ref::steal(PyObject_CallMethod(worker.get(), "decode_stateless", "O", code.get())) : Ref();
}

void CallableCache::clear() {
  _entries.clear();
  _bytes = 0;
}

}  // namespace interpool::py
