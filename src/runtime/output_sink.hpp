// src/runtime/output_sink.hpp: worker output on its way to the caller's streams.
//
// Workers push what their tasks print (and their logging records) as chunks
// of bytes, each numbered in push order.  One writer in the caller's
// interpreter (the pool's delivery thread) takes them in that order and
// writes them to the caller's sys.stdout / sys.stderr / logging, then marks
// them written.  A task records the number of the last chunk its interpreter
// pushed; whoever completes its future first waits until that chunk is
// written, so output a task produced is always written before its future is
// observed as done.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/futex.hpp"

namespace interpool::rt {

enum class OutputKind : uint8_t {
  Stdout = 1,  ///< text for sys.stdout (UTF-8, surrogates passed through)
  Stderr = 2,  ///< text for sys.stderr
  Record = 3,  ///< one logging record, serialized by the worker
};

struct OutputChunk {
  uint64_t seq = 0;     ///< 1, 2, ... in push order
  uint32_t worker = 0;  ///< index of the worker that pushed it
  OutputKind kind = OutputKind::Stdout;
  std::string bytes;
};

class OutputSink {
 public:
  OutputSink() = default;
  OutputSink(const OutputSink&) = delete;
  OutputSink& operator=(const OutputSink&) = delete;

  /// Appends a chunk and returns its number.  `was_empty`: no chunk was
  /// waiting before this one, so the writer may be asleep and must be woken.
  uint64_t push(uint32_t worker, OutputKind kind, std::string bytes, bool& was_empty);

  /// Takes every waiting chunk, oldest first.
  std::vector<OutputChunk> take();

  /// Whether chunks wait to be taken.
  bool pending() const { return _count.load(std::memory_order_acquire) != 0; }

  /// The writer has written every chunk numbered up to `seq`.
  void written_through(uint64_t seq);

  /// The number of the last chunk written (0: none).
  uint64_t written() const { return _written.load(std::memory_order_acquire); }

  /// Blocks until chunk `seq` is written or the sink is closed, for at most
  /// `timeout`.  Returns Woken when that happened, TimedOut, or Interrupted
  /// (a signal arrived).
  WaitStatus wait_written(uint64_t seq, std::optional<std::chrono::nanoseconds> timeout);

  /// The writer is gone: waiters stop waiting, and chunks pushed from now on
  /// are dropped.
  void close();
  bool closed() const { return _closed.load(std::memory_order_acquire); }

 private:
  std::mutex _mutex;  // guards _chunks and _pushed
  std::vector<OutputChunk> _chunks;
  uint64_t _pushed = 0;
  std::atomic<std::size_t> _count{0};     ///< mirrors _chunks.size()
  std::atomic<uint64_t> _written{0};
  std::atomic<uint32_t> _progress{0};    ///< futex word: bumped when chunks are written or on close
  std::atomic<uint32_t> _waiters{0};     ///< threads in wait_written
  std::atomic<bool> _closed{false};
};

}  // namespace interpool::rt
