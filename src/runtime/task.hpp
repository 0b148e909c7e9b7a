// src/runtime/task.hpp: one unit of work and its completion state.
//
// A Task moves Queued -> Running -> Done, or Queued -> Cancelled.  The state
// lives in one 32-bit word so that waiters can sleep on it with a futex; a
// separate bit records that someone sleeps, so finishing a task nobody waits
// for costs no system call.
//
// Delivery of the result to the submitting interpreter happens exactly once:
// whoever wins claim_delivery() (the pool's delivery thread, or a caller
// blocked in result()) decodes the response and completes the user's future.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

#include "runtime/block.hpp"
#include "runtime/futex.hpp"

namespace interpool::rt {

class Task {
 public:
  enum class State : uint32_t { Queued = 0, Running = 1, Done = 2, Cancelled = 3 };
  enum class Kind : uint8_t {
    Call,      ///< fn(*args, **kwargs) in a worker interpreter
    Map,       ///< fn(*args) for each args tuple of a chunk
    Local,     ///< fn(*args, **kwargs) on a worker thread, in the submitter's interpreter
    Deferred,  ///< fn(completion, *args, **kwargs); finishes when `completion` is completed
  };

  explicit Task(Kind kind) : _kind(kind) {}
  virtual ~Task() = default;
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;

  Kind kind() const { return _kind; }
  State state() const { return static_cast<State>(_word.load(std::memory_order_acquire) & kStateMask); }
  /// Done or Cancelled: nothing will change any more.
  bool finished() const { return state() >= State::Done; }

  /// Queued -> Running.  False if the task was cancelled first.
  bool try_start();
  /// Queued -> Cancelled, waking waiters.  False if it already started.
  bool try_cancel();
  /// Running -> Done, waking waiters.  The response must be written first.
  void finish();

  /// Sleeps until the task is finished, a signal arrives, or the timeout passes.
  WaitStatus wait(std::optional<std::chrono::nanoseconds> timeout = std::nullopt);

  /// True for exactly one caller over the task's life.
  bool claim_delivery() { return !_claimed.exchange(true, std::memory_order_acq_rel); }

  Payload request;    ///< written by the submitter before the task is queued
  Payload response;   ///< written by the worker before finish()
  bool failed = false;  ///< the response describes an exception, not a value
  uint32_t items = 1;   ///< how many calls the task stands for (a Map chunk's length)

 private:
  static constexpr uint32_t kStateMask = 3;
  static constexpr uint32_t kWaiters = 4;
  uint32_t set_state(State to);

  std::atomic<uint32_t> _word{static_cast<uint32_t>(State::Queued)};
  std::atomic<bool> _claimed{false};
  Kind _kind;
};

}  // namespace interpool::rt
