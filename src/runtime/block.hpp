// src/runtime/block.hpp: engine-owned memory that crosses interpreters.
//
// Nothing that belongs to an interpreter ever crosses to another one.  What
// does cross is bytes in a Payload, plus Handles: reference-counted,
// engine-owned objects (Block here; SharedValue, Channel, and the locks,
// Event, Semaphore and Barrier of sync.hpp).  Their lifetime is a C++
// reference count, never an interpreter's, so a handle outlives the
// interpreter that created it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace interpool::rt {

/// Anything engine-owned that a payload may refer to by reference.
class Handle {
 public:
  virtual ~Handle() = default;
};

/// A fixed-size, 64-byte aligned, zero-initialised block of memory.
class Block final : public Handle {
 public:
  static constexpr std::size_t alignment = 64;

  explicit Block(std::size_t size, bool readonly = false);
  ~Block() override;
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  std::byte* data() { return _data; }
  const std::byte* data() const { return _data; }
  std::size_t size() const { return _size; }
  /// Whether receivers get a read-only view (the sender's buffer was read-only).
  bool readonly() const { return _readonly; }

 private:
  std::byte* _data;
  std::size_t _size;
  bool _readonly;
};

/// One message between interpreters: encoded bytes plus the handles the bytes
/// refer to by index.  Holding the payload keeps every handle alive.
struct Payload {
  std::string bytes;
  std::vector<std::shared_ptr<Handle>> handles;

  void clear() {
    std::string().swap(bytes);
    handles.clear();
  }
  bool empty() const { return bytes.empty(); }
};

}  // namespace interpool::rt
