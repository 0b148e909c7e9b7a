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

/// Takes the exit mutex, which the process's exit (shutdown_all, in
/// engine_exit.cpp) waits for before CPython finalizes: an abandoned worker
/// holds it from its return until it has ended its interpreter.  If the
/// exit has begun, parks this thread for ever instead (it would otherwise
/// end an interpreter CPython is finalizing).  Call without a GIL.
std::unique_lock<std::mutex> hold_off_exit();

}  // namespace interpool::py
