// src/python/sync_objects.cpp: placeholder until the synchronisation types land.
#include "python/sync_objects.hpp"

namespace interpool::py {

std::vector<std::pair<PyType_Spec*, HandleKind>> sync_type_specs() { return {}; }

}  // namespace interpool::py
