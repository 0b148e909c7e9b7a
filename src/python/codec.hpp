// src/python/codec.hpp: Python objects <-> engine-owned bytes.
//
// The sender encodes under its own GIL into an rt::Payload; the receiver
// decodes under its own GIL.  None, bool, int, float, complex, str, bytes,
// bytearray, tuple, list, dict, set and frozenset (exact types, any nesting)
// have a native encoding, and so do _core.Failure (failure.hpp) and engine
// handles (SharedBuffer, Shared, Queue, ...: the payload holds the Handle).
// Everything else is pickled with protocol 5; its out-of-band buffers are
// copied once into engine Blocks and handed to the receiver zero-copy, as
// interpool.SharedBuffer objects that keep the Block alive.  Callables have
// their own encoding, with caches on both sides: callable_codec.hpp.
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

  /// Pickles `obj` with pickle alone (protocol 5, out-of-band buffers to
  /// `append` if given), as the payload's handles register.  Null with no
  /// error set when a receiver could not use that pickle: pickle refused
  /// `obj` (a lambda, a local class), or it names something in __main__,
  /// which only the sender can import.  Null with MemoryError set.
  Ref pickle_by_name(PyObject* obj, PyObject* append);
  /// Pickles `obj` by value with cloudpickle (interpool._byvalue.dumps).
  /// Null with TypeError "cannot send <what> ..." set if that fails too.
  Ref pickle_by_value(PyObject* obj, PyObject* append, const char* what);
  /// By name if a receiver can use it, else by value; `buffers`: a list
  /// for out-of-band buffers, or null for in-band only.
  Ref pickle(PyObject* obj, PyObject* buffers, const char* what);
  /// interpool._byvalue.encode_callable(fn) (an EncodedCallable), as the
  /// payload's handles register; null with TypeError set if it fails.
  Ref encode_callable_by_value(PyObject* fn);

  /// Appends a raw length-prefixed byte string.
  void raw(std::string_view bytes);

 private:
  bool encode_value(PyObject* obj, int depth);
  bool pickled(PyObject* obj);
  void tag(char t) { _out.bytes.push_back(t); }
  void varint(std::size_t n);
  void fixed(const void* p, std::size_t n) { _out.bytes.append(static_cast<const char*>(p), n); }

  /// Objects met again in the same payload decode to one shared object, as
  /// with pickle's memo: mutable containers (so that `[n, n]` arrives with
  /// `p[0] is p[1]`), tuples that hold mutable containers, and big strings
  /// (encoded once).  Tuples of immutable values and frozensets are copied:
  /// their identity cannot be told apart by anything but `is`, and skipping
  /// them keeps map chunks cheap.  An object whose only reference is the
  /// container being encoded (`held` more by the encoder itself) cannot
  /// repeat, so it skips the memo too.  Memo indices count in the order
  /// encodings end, as the decoder finishes the objects.
  static constexpr uint32_t kInProgress = UINT32_MAX;
  bool native(PyObject* obj, int depth, Py_ssize_t held);
  /// Encodes `obj` after a kMemo tag, or a reference if it was met before.
  /// An object met again while its own encoding runs is a cycle: TooDeep.
  bool memo_prefix(PyObject* obj, int depth);
  /// A tuple met more than once: a reference if it was memoized, else its
  /// encoding, its kTuple tag rewritten to kTupleMemo if it turned out to
  /// hold a mutable container.
  bool shared_tuple(PyObject* obj, int depth);
  void remember(PyObject* obj);

  /// Pointer -> memo index, open addressing: the memo is consulted for most
  /// containers of a payload, so it must not allocate per entry.
  class MemoTable {
   public:
    /// The slot for `key`: inserted with kInProgress when new (`fresh`).
    /// Valid until the next insertion.
    uint32_t& find_or_insert(PyObject* key, bool& fresh);
    /// The index of `key`, or kInProgress if it is absent or unfinished.
    uint32_t find(PyObject* key) const;
    /// Keeps only the entries that `keep` accepts (a rare, rebuilding path).
    template <class F>
    void retain(F keep);

   private:
    struct Entry {
      PyObject* key;
      uint32_t value;
    };
    void grow();
    std::size_t home(PyObject* key) const {
      // Fibonacci hashing of the address (objects are 16-byte aligned).
      return ((reinterpret_cast<std::uintptr_t>(key) >> 4) * 0x9E3779B97F4A7C15ull >> 20) & (_slots.size() - 1);
    }
    std::vector<Entry> _slots;
    std::size_t _used = 0;
  };
  MemoTable _memo;
  std::vector<Ref> _memo_keep;
  uint32_t _memo_next = 0;
  uint32_t _memo_base = 0;  ///< _memo_next when the current top-level value() began
  /// Within the current top-level value: a mutable container was memoized /
  /// an object went to pickle.  Both at once could split one object between
  /// the native part and a pickle (pickle cannot refer to the native memo),
  /// so the whole value is pickled instead, as pickle keeps all identities.
  bool _value_shared = false;
  bool _value_pickled = false;
  bool _mixed_allowed = false;  ///< set while re-encoding a refused value for its error
  std::size_t _mutables = 0;  ///< mutable containers met so far (to tell which tuples hold one)

  ModuleState& _state;
  rt::Payload& _out;
};

class Decoder {
 public:
  Decoder(ModuleState& state, const rt::Payload& in, std::size_t pos = 0) : _state(state), _in(in), _pos(pos) {}
  ~Decoder() {
    for (PyObject* o : _memo) Py_XDECREF(o);
  }
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  /// Decodes the next value: a new reference, or NULL with an exception set.
  PyObject* value();

  /// Reads a raw length-prefixed byte string (a view into the payload).
  bool raw(std::string_view& out);

  /// Unpickles a byte string written by Encoder::pickle without buffers.
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
  /// A tuple or list: its length, then its items, decoded into
  /// `make(length)` and stored by `set(seq, i, item)`, which steals `item`.
  template <class Set>
  Ref sequence(PyObject* (*make)(Py_ssize_t), Set&& set);

  ModuleState& _state;
  const rt::Payload& _in;
  std::size_t _pos;
  std::vector<PyObject*> _memo;  ///< owned: objects decoded after a kMemo tag
};

/// A call's arguments: a tuple, and None or a dict.  Without keyword
/// arguments they go as two values, `args` then None.  With them, as one
/// value `(args, kwargs)` then True, so that one encoding covers both and an
/// object passed both ways arrives as one object, as with pickle.
bool encode_call_args(Encoder& enc, PyObject* args, PyObject* kwargs);
/// Reads what encode_call_args wrote: new references, or false with an
/// exception set.  `kwargs` is None when there were none.
bool decode_call_args(Decoder& dec, Ref& args, Ref& kwargs);

/// While the codec pickles (unpickles), the payload being written (read), so
/// that handle objects nested inside pickled objects travel as handles.
/// Null outside the codec.
rt::Payload* current_encode_payload();
const rt::Payload* current_decode_payload();

/// Raises TypeError "cannot send <repr> to another interpreter: <reason>",
/// chained from the pending exception (the reason), and returns false.
bool raise_unsendable(PyObject* obj, const char* what);

}  // namespace interpool::py
