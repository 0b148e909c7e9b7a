// src/runtime/shared_value.hpp: a frozen, encoded snapshot shared by handle.
//
// interpool.share(obj) encodes obj once into a SharedValue.  Tasks receive a
// handle (O(1) to pass); each interpreter decodes it at most once and keeps
// the result while the SharedValue lives.  When the last handle goes, the
// destructor bumps a process-wide epoch and calls the release hook, so that
// interpreters drop their decoded copies (the binding pokes idle workers).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "runtime/block.hpp"

namespace interpool::rt {

class SharedValue final : public Handle {
 public:
  SharedValue(Payload payload, std::string type_name)
      : _payload(std::move(payload)), _type_name(std::move(type_name)) {}
  ~SharedValue() override;

  const Payload& payload() const { return _payload; }
  const std::string& type_name() const { return _type_name; }
  std::size_t nbytes() const { return _payload.bytes.size(); }

  /// Incremented each time a SharedValue is destroyed.
  static uint64_t released_epoch() { return _released_epoch.load(std::memory_order_acquire); }
  /// Called (from whatever thread drops the last handle) after each release.
  static void set_release_hook(void (*hook)()) { _release_hook.store(hook); }

 private:
  Payload _payload;
  std::string _type_name;
  static inline std::atomic<uint64_t> _released_epoch{0};
  static inline std::atomic<void (*)()> _release_hook{nullptr};
};

inline SharedValue::~SharedValue() {
  _released_epoch.fetch_add(1, std::memory_order_acq_rel);
  if (auto hook = _release_hook.load()) hook();
}

}  // namespace interpool::rt
