// src/python/delivery.hpp: completing futures in the owner interpreter.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "python/engine.hpp"
#include "python/loop_waker.hpp"

namespace interpool::py {

/// The results of one delivery batch bound for asyncio loops, grouped by
/// loop bridge: each bridge gets one push_many() call per batch, with a list
/// of _core.Delivery (records.hpp).  A bridge that needs its loop woken
/// returns its LoopWaker; wake() signals them once the caller has released
/// the loops' GIL, so no woken loop waits for it.
///
/// On the loop's own thread (LoopWaker.deliver), a batch made with that
/// loop's asyncio.CancelledError completes each future at once instead, as
/// LoopBridge._drain would: no list, no push_many(), no second pass.
class BridgeBatch {
 public:
  BridgeBatch() = default;
  explicit BridgeBatch(ModuleState& state, PyObject* cancelled_error) : _on_loop(&state), _cancelled(cancelled_error) {}
  void add(ModuleState& state, PyObject* bridge, PyObject* future, PyObject* outcome, bool is_exception);
  void flush(ModuleState& state);
  /// Signals the wakers that flush() collected.  No GIL needed.
  void wake();

 private:
  std::vector<std::pair<Ref, Ref>> _bridges;  // (bridge, list of Delivery)
  std::vector<std::shared_ptr<Waker>> _wakers;
  ModuleState* _on_loop = nullptr;  // set: complete at once, on the loop's thread
  PyObject* _cancelled = nullptr;   // asyncio.CancelledError (borrowed), with _on_loop
};

/// Completes `future` with `outcome` (a value, or an exception object):
/// through `bridge` on its asyncio loop if there is one (collected in
/// `batch` when given), else at once.  Owner interpreter's GIL held; never
/// raises.
void complete_future(ModuleState& state, PyObject* future, PyObject* bridge, PyObject* outcome, bool is_exception,
                     BridgeBatch* batch = nullptr);

/// Completes `task`'s future from its response, if this caller wins the
/// delivery.  Runs under the owner interpreter's GIL; never raises.
void deliver(ModuleState& state, PyObject* rebuild, PyTask& task, BridgeBatch* batch = nullptr);

}  // namespace interpool::py
