// src/python/fork_guard.hpp: keeping fork() usable while pools run.
#pragma once

#include <atomic>
#include <cstdint>

namespace interpool::py {

/// How many fork()s separate this process from the one that loaded interpool:
/// 0 there, incremented in each child.  Engines made before a fork compare it
/// to tell that they are orphans (EngineCore::orphaned()).
inline std::atomic<uint64_t> g_fork_generation{0};

inline uint64_t fork_generation() { return g_fork_generation.load(std::memory_order_relaxed); }

/// Registers interpool's pthread_atfork handlers, once per process.  False,
/// with a Python exception set, if that failed.
bool install_fork_guard();

}  // namespace interpool::py
