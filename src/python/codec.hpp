// src/python/codec.hpp: Python objects <-> engine-owned bytes.
//
// The sender encodes under its own GIL into an rt::Payload; the receiver
// decodes under its own GIL.  None, bool, int, float, complex, str, bytes,
// bytearray, tuple, list, dict, set and frozenset (exact types, any nesting)
// have a native encoding.  Everything else is pickled with protocol 5; its
// out-of-band buffers are copied once into engine Blocks and handed to the
// receiver zero-copy, as _core.Buffer objects that keep the Block alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "python/module_state.hpp"
#include "runtime/block.hpp"

namespace interpool::py {

class Encoder {
 public:
  Encoder(ModuleState& state, rt::Payload& out) : _state(state), _out(out) {}

  /// Appends `obj`.  Returns false with a Python exception set; an object that
  /// cannot be sent raises TypeError naming it.
  bool value(PyObject* obj);

  /// Appends `obj` pickled in-band (no out-of-band buffers) as a raw string,
  /// and hands back the pickle: the form used for callables, whose bytes
  /// double as a cache key in the workers.  Handle objects inside `obj`
  /// still register in the payload.
  bool pickled_inband(PyObject* obj, const char* what, Ref& data);

  /// Appends a raw length-prefixed byte string.
  void raw(std::string_view bytes);

 private:
  bool native(PyObject* obj, int depth);
  bool encode_value(PyObject* obj, int depth);
  bool pickled(PyObject* obj);
  void tag(char t) { _out.bytes.push_back(t); }
  void varint(std::size_t n);
  void fixed(const void* p, std::size_t n) { _out.bytes.append(static_cast<const char*>(p), n); }

  /// Large objects met again in the same payload (the same grid passed with
  /// every item of a map chunk, say) are encoded once, then referenced, as
  /// pickle's memo does: the receiver decodes them once and shares the one
  /// object, as the sender did.  Value: memo index, or kInProgress while the
  /// object's own encoding runs (a cycle: left to pickle).
  static constexpr uint32_t kInProgress = UINT32_MAX;
  enum class Memo { No, Referenced, Registered };
  Memo memoized(PyObject* obj);
  std::unordered_map<PyObject*, uint32_t> _memo;
  std::vector<Ref> _memo_keep;
  uint32_t _memo_next = 0;
  uint32_t _memo_base = 0;  ///< _memo_next when the current top-level value() began

  ModuleState& _state;
  rt::Payload& _out;
};

class Decoder {
 public:
  Decoder(ModuleState& state, const rt::Payload& in, std::size_t pos = 0)
      : _state(state), _in(in), _pos(pos) {}
  ~Decoder() {
    for (PyObject* o : _memo) Py_XDECREF(o);
  }
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  /// Decodes the next value: a new reference, or NULL with an exception set.
  PyObject* value();

  /// Reads a raw length-prefixed byte string (a view into the payload).
  bool raw(std::string_view& out);

  /// Unpickles a byte string written by Encoder::pickled_inband.
  PyObject* unpickle(std::string_view bytes);
  /// The object a pickle that only names a global refers to, resolved
  /// without the pickler.  Null with no error set for any other pickle (or
  /// a missing attribute: pickle then words the error); null with the error
  /// set if the import fails as it would in pickle.
  PyObject* load_global(std::string_view bytes);

  bool at_end() const { return _pos >= _in.bytes.size(); }

 private:
  bool varint(std::size_t& n);
  bool take(std::size_t n, const char*& p);
  PyObject* corrupt();

  ModuleState& _state;
  const rt::Payload& _in;
  std::size_t _pos;
  std::vector<PyObject*> _memo;  ///< owned: objects decoded after a kMemo tag
};

/// While the codec pickles (unpickles), the payload being written (read), so
/// that handle objects nested inside pickled objects travel as handles.
/// Null outside the codec.
rt::Payload* current_encode_payload();
const rt::Payload* current_decode_payload();

/// Raises TypeError "cannot send <repr> to another interpreter: <reason>",
/// chained from the pending exception (the reason), and returns false.
bool raise_unsendable(PyObject* obj, const char* what);

}  // namespace interpool::py
