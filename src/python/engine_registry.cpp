// src/python/engine_registry.cpp: every engine with threads still running,
// for interpreter exit, SharedValue release and fork().
#include "python/engine.hpp"

#include <memory>
#include <mutex>
#include <vector>

namespace interpool::py {

namespace {

// Engines with threads still running, so that interpreter shutdown can join
// them even when their Python objects are long gone.  C++ state, no PyObject.
std::mutex g_engines_mutex;
std::vector<std::weak_ptr<EngineCore>> g_engines;

// Engines inherited through fork(), kept alive forever in the child: their
// destructors would join threads that exist only in the parent.
std::vector<std::shared_ptr<EngineCore>>* g_orphans = nullptr;

}  // namespace

void register_engine(const std::shared_ptr<EngineCore>& core) {
  std::lock_guard lock(g_engines_mutex);
  std::erase_if(g_engines, [](auto& w) { return w.expired(); });
  g_engines.push_back(core);
}

void EngineCore::poke_all() {
  std::vector<std::shared_ptr<EngineCore>> engines;
  {
    std::lock_guard lock(g_engines_mutex);
    for (auto& w : g_engines)
      if (auto core = w.lock()) engines.push_back(std::move(core));
  }
  for (auto& core : engines) core->_tasks.poke();
}

std::vector<std::shared_ptr<EngineCore>> EngineCore::live_engines(PyInterpreterState* owner) {
  std::lock_guard lock(g_engines_mutex);
  std::vector<std::shared_ptr<EngineCore>> out;
  for (auto& w : g_engines)
    if (auto core = w.lock(); core && core->_owner == owner) out.push_back(std::move(core));
  return out;
}

void EngineCore::prepare_fork() { g_engines_mutex.lock(); }

void EngineCore::after_fork(bool in_child) {
  if (in_child) {
    // Only the forking thread exists here: move every engine out of the
    // registry, so that no one in the child pokes, shuts down or joins them.
    if (!g_orphans) g_orphans = new std::vector<std::shared_ptr<EngineCore>>();
    for (auto& w : g_engines)
      if (auto core = w.lock()) g_orphans->push_back(std::move(core));
    g_engines.clear();
  }
  g_engines_mutex.unlock();
}

}  // namespace interpool::py
