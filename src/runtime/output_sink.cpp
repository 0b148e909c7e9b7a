// src/runtime/output_sink.cpp: worker output on its way to the caller's streams.
#include "runtime/output_sink.hpp"

#include <utility>

#include "runtime/deadline.hpp"

namespace interpool::rt {

uint64_t OutputSink::push(uint32_t worker, OutputKind kind, std::string bytes, bool& was_empty) {
  std::lock_guard lock(_mutex);
  was_empty = _chunks.empty();
  uint64_t seq = ++_pushed;
  if (_closed.load(std::memory_order_acquire)) {
    // No writer any more (the pool has ended): count it as written, so
    // that no one waits for it.
    was_empty = false;
    written_through(seq);
    return seq;
  }
  _chunks.push_back(OutputChunk{seq, worker, kind, std::move(bytes)});
  _count.store(_chunks.size(), std::memory_order_release);
  return seq;
}

std::vector<OutputChunk> OutputSink::take() {
  std::lock_guard lock(_mutex);
  _count.store(0, std::memory_order_release);
  return std::exchange(_chunks, {});
}

void OutputSink::written_through(uint64_t seq) {
  uint64_t seen = _written.load(std::memory_order_relaxed);
  while (seen < seq && !_written.compare_exchange_weak(seen, seq, std::memory_order_acq_rel)) {
  }
  _progress.fetch_add(1, std::memory_order_acq_rel);
  if (_waiters.load(std::memory_order_acquire)) futex_wake_all(_progress);
}

WaitStatus OutputSink::wait_written(uint64_t seq, std::optional<std::chrono::nanoseconds> timeout) {
  const Deadline deadline = Deadline::after(timeout);
  _waiters.fetch_add(1, std::memory_order_acq_rel);
  WaitStatus status = WaitStatus::Woken;
  for (;;) {
    uint32_t progress = _progress.load(std::memory_order_acquire);
    if (written() >= seq || closed()) break;
    Timeout left;
    if (!deadline.left(left)) {
      status = WaitStatus::TimedOut;
      break;
    }
    if (futex_wait(_progress, progress, left) == WaitStatus::Interrupted) {
      status = WaitStatus::Interrupted;
      break;
    }
  }
  _waiters.fetch_sub(1, std::memory_order_acq_rel);
  return status;
}

void OutputSink::close() {
  {
    std::lock_guard lock(_mutex);
    _closed.store(true, std::memory_order_release);
  }
  _progress.fetch_add(1, std::memory_order_acq_rel);
  futex_wake_all(_progress);
}

}  // namespace interpool::rt
