// src/python/callable_codec.hpp: encoding callables for a worker, and the caches on both sides.
//
// A request starts with its callable: a flag, then bytes.
//   'c'  stateless, pickled by name (or by value with guards that hold): the
//        worker decodes it once and caches it by its bytes;
//   's'  a stateless function sent as its code (InterpreterPoolExecutor,
//        interpool._callables.encode_stateless): cached the same way, rebuilt
//        by interpool._worker.decode_stateless against the builtins alone;
//   'u'  anything else (a partial, a callable instance, a closure whose
//        cells a call may change): decoded afresh for each task.
// The caller caches the encodings: ModuleState::callable_cache for pickles
// by name, ByValueState::cache for by-value encodings with their guards.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "python/codec.hpp"

namespace interpool::py {

/// Appends `fn` to a request (`enc` writes into `payload`): its flag, then
/// its bytes.  `stateless` (InterpreterPoolExecutor) also sends a function
/// that needs no state as its code.  False with an exception set
/// (TypeError for what cannot be sent).
bool encode_callable(ModuleState& state, Encoder& enc, rt::Payload& payload, PyObject* fn, bool stateless = false);

/// Reads what encode_callable() wrote and decodes it afresh, caching
/// nothing (a Completion's launch, on a worker's event loop).  Null with an
/// exception set if it cannot be decoded.
Ref decode_callable_uncached(Decoder& dec);

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

/// A worker interpreter's decoded callables, by their encoded bytes
/// (bounded in entries and bytes).  The worker's GIL guards it; its Refs
/// belong to that interpreter.
class CallableCache {
 public:
  /// Reads what encode_callable() wrote and returns the callable: cached
  /// (borrowed from the cache), or owned by `holder` when it is not kept.
  /// `decode_stateless`: interpool._worker.decode_stateless.  Null with an
  /// exception set if it cannot be decoded.
  PyObject* decode(Decoder& dec, Ref& holder, PyObject* decode_stateless);
  void clear();

 private:
  std::unordered_map<std::string, Ref, StringHash, std::equal_to<>> _entries;
  std::size_t _bytes = 0;  ///< sum of the keys' sizes
};

}  // namespace interpool::py
