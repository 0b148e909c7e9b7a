// src/python/sync_objects.hpp: Queue, Lock, RLock, Event, Semaphore, Barrier.
//
// Python wrappers (handle objects, see handle_object.hpp) around the
// runtime's cross-interpreter synchronisation primitives.
#pragma once

#include <utility>
#include <vector>

#include "python/handle_object.hpp"

namespace interpool::py {

/// The specs of the synchronisation types and the handle kind of each, for
/// module exec to create and register.
std::vector<std::pair<PyType_Spec*, HandleKind>> sync_type_specs();

}  // namespace interpool::py
