// src/python/delivery.cpp: completing futures in the owner interpreter.
#include "python/delivery.hpp"

#include <cassert>
#include <chrono>
#include <cstdio>
#include <utility>

#include "python/codec.hpp"
#include "python/failure.hpp"
#include "python/handle_object.hpp"
#include "python/records.hpp"

namespace interpool::py {
namespace {

/// Reads interpool._future.FutureContract into state.future, on the first
/// delivery in this interpreter.  False with an exception set if it fails.
bool load_future_contract(ModuleState& state) {
  if (state.future.state) return true;
  // An interpool.Future exists, so the module is imported already.
  Ref module = Ref::steal(PyImport_ImportModule("interpool._future"));
  Ref contract = module ? Ref::steal(PyObject_GetAttrString(module.get(), "FutureContract")) : Ref();
  if (!contract) return false;
  auto read = [&](const char* name, bool text) {
    Ref value = Ref::steal(PyObject_GetAttrString(contract.get(), name));
    if (value && text && !PyUnicode_CheckExact(value.get())) {
      PyErr_Format(PyExc_TypeError, "interpool._future.FutureContract.%s must be a str", name);
      value.reset();
    }
    return value;
  };
  Ref type = read("future_type", false), observed = read("observed", true), st = read("state", true),
      result = read("result", true), exception = read("exception", true), pending = read("pending", false),
      finished = read("finished", false), mark_cancelled = read("mark_cancelled", true);
  if (!type || !observed || !st || !result || !exception || !pending || !finished || !mark_cancelled) return false;
  if (!PyType_Check(type.get())) {
    PyErr_SetString(PyExc_TypeError, "interpool._future.FutureContract.future_type must be a class");
    return false;
  }
  if (state.future.state) return true;  // the import may have let another delivering thread in
  state.future.future_type = type.release();
  state.future.observed = observed.release();
  state.future.result = result.release();
  state.future.exception = exception.release();
  state.future.pending = pending.release();
  state.future.finished = finished.release();
  state.future.mark_cancelled = mark_cancelled.release();
  state.future.state = st.release();  // last: it says the rest is there
  return true;
}

/// The fast path (interpool._future.FutureContract says why it is sound):
/// completes an interpool.Future that nobody has observed yet (no thread
/// waits on it, no waiter or callback is registered, since each of those
/// first creates its lazy Condition) by setting its state, which is all
/// set_result() would do.  Runs without releasing the GIL, so no other
/// thread can start observing half-way.  False: use set_result().
bool complete_unobserved(ModuleState& state, PyObject* future, PyObject* outcome, bool is_exception) {
  if (!load_future_contract(state)) return PyErr_Clear(), false;
  const auto& c = state.future;
  if (!PyObject_TypeCheck(future, reinterpret_cast<PyTypeObject*>(c.future_type))) return false;
  Ref dict = Ref::steal(PyObject_GenericGetDict(future, nullptr));
  if (!dict) return PyErr_Clear(), false;
  int observed = PyDict_Contains(dict.get(), c.observed);
  if (observed != 0) return PyErr_Clear(), false;
  PyObject* current = PyDict_GetItemWithError(dict.get(), c.state);
  if (!current || current != c.pending) return PyErr_Clear(), false;
  if (PyDict_SetItem(dict.get(), is_exception ? c.exception : c.result, outcome) < 0 ||
      PyDict_SetItem(dict.get(), c.state, c.finished) < 0)
    return PyErr_Clear(), false;
  return true;
}

/// Ends the future of a task that stopped on request: TimeoutError for a
/// timeout, else cancelled.
void complete_stopped(ModuleState& state, PyObject* rebuild, PyTask& task, PyObject* future, PyObject* bridge,
                      BridgeBatch* batch) {
  Ref outcome;
  bool is_exception = true;
  if (task.stopped == StopReason::Timeout) {
    char message[96];
    std::snprintf(message, sizeof message, "the task ran past its timeout of %g s",
                  std::chrono::duration<double>(task.timeout).count());
    outcome = Ref::steal(PyObject_CallFunction(PyExc_TimeoutError, "s", message));
  } else if (bridge) {
    Ref failure = make_failure(state, {.kind = FailureKind::Cancelled});
    outcome = failure ? Ref::steal(PyObject_CallOneArg(rebuild, failure.get())) : Ref();
  } else {
    Ref done = load_future_contract(state) ? Ref::steal(PyObject_CallMethodNoArgs(future, state.future.mark_cancelled))
                                           : Ref();
    if (!done) PyErr_WriteUnraisable(future);
    return;
  }
  if (!outcome) return PyErr_WriteUnraisable(future);
  if (task.kind() == rt::Task::Kind::Map && task.stopped == StopReason::Timeout) {
    // A map chunk's result is (values, exception).
    outcome = Ref::steal(Py_BuildValue("([]O)", outcome.get()));
    is_exception = false;
    if (!outcome) return PyErr_WriteUnraisable(future);
  }
  complete_future(state, future, bridge, outcome.get(), is_exception, batch);
}

/// The Failure of a task that failed because its pool broke: its response,
/// if any, holds the Failure of the exception that broke the pool.
Ref broken_failure(ModuleState& state, PyTask& task, bool notice) {
  Decoder dec(state, task.response);
  Ref cause = task.response.empty() ? Ref::borrow(Py_None) : Ref::steal(dec.value());
  Ref reason = cause ? Ref::steal(PyUnicode_DecodeUTF8(task.broken_reason.data(),
                                                       static_cast<Py_ssize_t>(task.broken_reason.size()), "replace"))
                     : Ref();
  if (!reason) return Ref();
  return make_failure(state,
                      {.kind = FailureKind::Broken, .reason = reason.get(), .cause = cause.get(), .notice = notice});
}

}  // namespace

namespace {

/// What LoopBridge._drain does for one result, on the future's loop thread:
/// a future that is done already (cancelled by whoever awaited it) is left
/// alone, CancelledError cancels it, and StopIteration, which asyncio
/// futures refuse, becomes RuntimeError as asyncio itself converts it.
void complete_on_loop(ModuleState& state, PyObject* cancelled_error, PyObject* future, PyObject* outcome,
                      bool is_exception) {
  Ref done = Ref::steal(PyObject_CallMethodNoArgs(future, state.str_done));
  int is_done = done ? PyObject_IsTrue(done.get()) : -1;
  if (is_done != 0) {
    if (is_done < 0) PyErr_WriteUnraisable(future);
    return;
  }
  Ref result;
  if (!is_exception) {
    result = Ref::steal(PyObject_CallMethodOneArg(future, state.str_set_result, outcome));
  } else if (PyObject_TypeCheck(outcome, reinterpret_cast<PyTypeObject*>(cancelled_error))) {
    result = Ref::steal(PyObject_CallMethodNoArgs(future, state.str_cancel));
  } else if (PyObject_TypeCheck(outcome, reinterpret_cast<PyTypeObject*>(PyExc_StopIteration))) {
    Ref exc = Ref::steal(PyObject_CallFunction(PyExc_RuntimeError, "s", "StopIteration raised in a task"));
    if (exc) {
      PyException_SetCause(exc.get(), Py_NewRef(outcome));
      result = Ref::steal(PyObject_CallMethodOneArg(future, state.str_set_exception, exc.get()));
    }
  } else {
    result = Ref::steal(PyObject_CallMethodOneArg(future, state.str_set_exception, outcome));
  }
  if (!result) PyErr_WriteUnraisable(future);
}

}  // namespace

void BridgeBatch::add(ModuleState& state, PyObject* bridge, PyObject* future, PyObject* outcome, bool is_exception) {
  if (_on_loop) return complete_on_loop(*_on_loop, _cancelled, future, outcome, is_exception);
  Ref item = make_delivery(state, future, outcome, is_exception);
  if (!item) return PyErr_WriteUnraisable(bridge);
  for (auto& [b, items] : _bridges)
    if (b.get() == bridge) {
      if (PyList_Append(items.get(), item.get()) < 0) PyErr_WriteUnraisable(bridge);
      return;
    }
  Ref items = Ref::steal(PyList_New(0));
  if (!items || PyList_Append(items.get(), item.get()) < 0) return PyErr_WriteUnraisable(bridge);
  _bridges.emplace_back(Ref::borrow(bridge), std::move(items));
}

void BridgeBatch::flush(ModuleState& state) {
  PendingError keep;
  for (auto& [bridge, items] : _bridges) {
    Ref waker = Ref::steal(PyObject_CallMethodOneArg(bridge.get(), state.str_push_many, items.get()));
    if (!waker) {
      PyErr_WriteUnraisable(bridge.get());
      continue;
    }
    if (auto w = waker_of(state.loop_waker_type, waker.get())) _wakers.push_back(std::move(w));
  }
  _bridges.clear();
}

void BridgeBatch::wake() {
  for (auto& w : _wakers) w->signal();
  _wakers.clear();
}

void complete_future(ModuleState& state, PyObject* future, PyObject* bridge, PyObject* outcome, bool is_exception,
                     BridgeBatch* batch) {
  PendingError keep;
  if (bridge && batch) {
    batch->add(state, bridge, future, outcome, is_exception);
    return;
  }
  if (bridge) {  // a batch of one
    BridgeBatch one;
    one.add(state, bridge, future, outcome, is_exception);
    one.flush(state);
    one.wake();
    return;
  }
  if (complete_unobserved(state, future, outcome, is_exception)) return;
  Ref done = Ref::steal(
      PyObject_CallMethodOneArg(future, is_exception ? state.str_set_exception : state.str_set_result, outcome));
  if (!done) PyErr_WriteUnraisable(future);
}

void deliver(ModuleState& state, PyObject* rebuild, PyTask& task, BridgeBatch* batch) {
  if (!task.claim_delivery()) return;
  // The future is completed in the interpreter that owns it, never another.
  assert(!task.owner || PyInterpreterState_Get() == task.owner);
  Ref future = Ref::steal(std::exchange(task.future, nullptr));
  Ref bridge = Ref::steal(std::exchange(task.bridge, nullptr));
  // A task posted to its loop carries its pool's rebuilder.
  Ref own_rebuild = Ref::steal(std::exchange(task.rebuild, nullptr));
  if (own_rebuild) rebuild = own_rebuild.get();
  // A pool that broke: the first delivery of its failure logs it (a
  // Failure with notice=True).
  bool log_broken = false;
  if (task.broken && task.broken_logged) {
    uint32_t not_logged = 0;
    log_broken = task.broken_logged->compare_exchange_strong(not_logged, 1);
    if (!log_broken) {
      // Another deliverer logs the failure now: no caller may see the
      // failure before the log (the stdlib's order).
      ReleasedGil released;
      for (uint32_t seen; (seen = task.broken_logged->load()) == 1;) rt::futex_wait(*task.broken_logged, seen);
    }
  }
  // Marks the log done (after the rebuild that writes it) and wakes waiters.
  auto logged = [&] {
    if (!log_broken) return;
    task.broken_logged->store(2);
    rt::futex_wake_all(*task.broken_logged);
  };
  if (!future) {
    if (log_broken) {
      PendingError keep;
      Ref info = broken_failure(state, task, true);
      Ref done = info ? Ref::steal(PyObject_CallOneArg(rebuild, info.get())) : Ref();
      if (!done) PyErr_WriteUnraisable(rebuild);
      logged();
    }
    task.response.clear();
    return;
  }
  PendingError keep;  // the caller's own pending exception, if any, survives

  if (task.stopped != StopReason::None) {
    task.response.clear();
    complete_stopped(state, rebuild, task, future.get(), bridge.get(), batch);
    return;
  }

  Ref outcome;       // the value, or the exception
  bool is_exception = false;
  {
    Decoder dec(state, task.response);
    if (task.broken) {
      Ref info = broken_failure(state, task, log_broken);
      outcome = info ? Ref::steal(PyObject_CallOneArg(rebuild, info.get())) : Ref();
      logged();
      is_exception = true;
      if (outcome && task.kind() == rt::Task::Kind::Map) {
        outcome = Ref::steal(Py_BuildValue("([]O)", outcome.get()));
        is_exception = false;
      }
    } else if (task.failed && task.response.empty()) {
      Ref type_name = Ref::steal(PyUnicode_FromString("Exception"));
      Ref message = Ref::steal(PyUnicode_FromString("the task failed and its exception could not be described"));
      Ref empty = Ref::steal(PyUnicode_FromString(""));
      Ref info = type_name && message && empty ? make_failure(state, {.kind = FailureKind::Exception,
                                                                      .type_name = type_name.get(),
                                                                      .message = message.get(),
                                                                      .traceback = empty.get()})
                                               : Ref();
      outcome = info ? Ref::steal(PyObject_CallOneArg(rebuild, info.get())) : Ref();
      is_exception = true;
    } else if (task.failed) {
      // The Failure, and for a Map chunk then the values computed before it.
      Ref info = Ref::steal(dec.value());
      if (info && task.kind() == rt::Task::Kind::Map) {
        Ref partial = Ref::steal(dec.value());
        Ref exc = partial ? Ref::steal(PyObject_CallOneArg(rebuild, info.get())) : Ref();
        outcome = exc ? Ref::steal(PyTuple_Pack(2, partial.get(), exc.get())) : Ref();
      } else if (info) {
        outcome = Ref::steal(PyObject_CallOneArg(rebuild, info.get()));
        is_exception = true;
      }
    } else {
      Ref value = Ref::steal(dec.value());
      if (value && task.kind() == rt::Task::Kind::Map)
        outcome = Ref::steal(PyTuple_Pack(2, value.get(), Py_None));
      else
        outcome = std::move(value);
    }
  }
  task.response.clear();
  // The response may have held the last reference to a SharedValue that
  // this interpreter decoded: drop the cached copy now, not at the next decode.
  state.shared_cache->sweep_if_released();
  if (!outcome) {
    // The result could not be received here (say, its class does not import
    // in this interpreter): the future fails with that error.
    outcome = Ref::steal(PyErr_GetRaisedException());
    is_exception = true;
    if (outcome && !PyObject_TypeCheck(outcome.get(), reinterpret_cast<PyTypeObject*>(PyExc_Exception))) {
      // SystemExit or KeyboardInterrupt raised by an object's unpickling
      // must not leave result() as if the caller raised it: wrap it.
      Ref wrapped = Ref::steal(
          PyObject_CallFunction(PyExc_RuntimeError, "s",
                                "the task's result could not be rebuilt here: its unpickling raised (see __cause__)"));
      if (wrapped) {
        PyException_SetCause(wrapped.get(), outcome.release());
        outcome = std::move(wrapped);
      } else {
        PyErr_Clear();
      }
    }
    if (task.kind() == rt::Task::Kind::Map) {
      outcome = Ref::steal(Py_BuildValue("([]O)", outcome.get()));
      is_exception = false;
    }
  }
  complete_future(state, future.get(), bridge.get(), outcome.get(), is_exception, batch);
}

}  // namespace interpool::py
