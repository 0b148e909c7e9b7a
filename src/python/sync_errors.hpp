// src/python/sync_errors.hpp: the exceptions the synchronisation objects raise.
//
// Their types live in Python modules (interpool._errors, queue, threading):
// each is imported the first time this interpreter raises it, and kept in
// its module state.  Every function sets the exception and returns null.
#pragma once

#include "python/module_state.hpp"

namespace interpool::py {

/// interpool.QueueClosed("the queue is closed").
PyObject* raise_queue_closed(ModuleState& state);
/// queue.Full().
PyObject* raise_queue_full(ModuleState& state);
/// queue.Empty().
PyObject* raise_queue_empty(ModuleState& state);
/// threading.BrokenBarrierError().
PyObject* raise_broken_barrier(ModuleState& state);

}  // namespace interpool::py
