// src/python/sync_errors.hpp: the exceptions the synchronisation objects raise.
#pragma once

#include "python/ref.hpp"

namespace interpool::py {

/// Raises `module.name(message)` (no arguments if message is null).
void raise_named(const char* module, const char* name, const char* message);

PyObject* raise_queue_closed();

PyObject* raise_broken_barrier();

}  // namespace interpool::py
