// src/python/engine_threads.hpp: which engine thread runs now, and the
// handshake that keeps an abandoned worker out of the process's exit.
//
// Shared by the engine's files (engine.cpp, worker_loop.cpp,
// delivery_thread.cpp, worker_slot.cpp, engine_exit.cpp); not for the rest
// of the binding.
#pragma once

#include <memory>
#include <mutex>

#include "python/engine.hpp"

namespace interpool::py {

// The worker slot of the engine worker thread running now (AsyncPool's
// initializer reads it).  Null on other threads.
extern thread_local constinit std::shared_ptr<WorkerSlot>* t_current_slot;
// The engine whose thread (worker or delivery) runs now, else null.
extern thread_local constinit const EngineCore* t_current_engine;
// The engine whose delivery thread runs now, else null.
extern thread_local constinit const EngineCore* t_delivery_engine;

// Set once the owner interpreter began to exit (_shutdown_all): a worker
// thread that comes back after it was abandoned then leaves its interpreter
// to CPython's finalization instead of ending it itself.  Guarded by
// g_exit_mutex, which such a thread holds while it ends its interpreter.
extern std::mutex g_exit_mutex;
extern bool g_exiting;

}  // namespace interpool::py
