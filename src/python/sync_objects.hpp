// src/python/sync_objects.hpp: Queue, Lock, RLock, Event, Semaphore, Barrier.
//
// Python wrappers (handle objects, see handle_object.hpp) around the
// runtime's cross-interpreter synchronisation primitives, one file each:
// queue_object.cpp, lock_object.cpp (Lock and RLock), event_object.cpp,
// semaphore_object.cpp, barrier_object.cpp.
#pragma once

#include <utility>
#include <vector>

#include "python/handle_object.hpp"

namespace interpool::py {

extern PyType_Spec queue_spec;
extern PyType_Spec lock_spec;
extern PyType_Spec rlock_spec;
extern PyType_Spec event_spec;
extern PyType_Spec semaphore_spec;
extern PyType_Spec barrier_spec;

/// The specs of the synchronisation types and the handle kind of each, for
/// module exec to create and register.
inline std::vector<std::pair<PyType_Spec*, HandleKind>> sync_type_specs() {
  return {
      {&queue_spec, HandleKind::Queue}, {&lock_spec, HandleKind::Lock},           {&rlock_spec, HandleKind::RLock},
      {&event_spec, HandleKind::Event}, {&semaphore_spec, HandleKind::Semaphore}, {&barrier_spec, HandleKind::Barrier},
  };
}

}  // namespace interpool::py
