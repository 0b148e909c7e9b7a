// src/python/codec.cpp: the native encoding, and pickle protocol 5 behind it.
#include "python/codec.hpp"

#include <cstring>
#include <new>

#include "python/failure.hpp"
#include "python/handle_object.hpp"

namespace interpool::py {

namespace {

// One byte tags.  The format is private to one process and one build, so it
// carries no version: both ends are always the same .so.
enum Tag : char {
  kNone = 'N',
  kTrue = 'T',
  kFalse = 'F',
  kInt64 = 'i',
  kBigInt = 'I',     // hex text, as int(text, 0) reads it
  kFloat = 'f',
  kComplex = 'c',
  kLatin1 = 's',     // one byte per character
  kUtf8 = 'u',       // UTF-8, surrogates passed through
  kBytes = 'b',
  kByteArray = 'a',
  kTuple = 't',
  kList = 'l',
  kDict = 'd',
  kSet = 'S',
  kFrozenSet = 'Z',
  kPickle = 'P',     // pickle bytes, then out-of-band buffer handle indices
  kHandle = 'H',     // an engine handle: kind byte, handle index
  kFailure = 'E',    // a _core.Failure: its fields, in FailureField order
  kMemo = 'M',       // the next value is remembered (memo index: its order among kMemo)
  kMemoRef = 'R',    // a remembered value again: memo index
  kTupleMemo = 'm',  // a tuple, remembered once its items are decoded (memo index: its order
                     // among kMemo values and kTupleMemo tuples, each counted when complete).
                     // The encoder learns that a tuple must be remembered only after its
                     // items, so it rewrites the tuple's kTuple tag in place; a tag after
                     // the items would be ambiguous with a nested tuple that ends there.
};

// Strings and bytes at least this big are memoized: below it, a reference
// saves too little to pay for the memo lookup.  Containers are memoized at
// any size, since their identity is observable (they can be mutated).
constexpr Py_ssize_t kMemoMinBytes = 64;

// Nesting beyond this is encoded by pickle, which also handles cycles.
constexpr int kMaxNativeDepth = 100;

struct TooDeep {};
struct Mixed {};  // see Encoder::_value_shared

thread_local rt::Payload* t_encode_payload = nullptr;
thread_local const rt::Payload* t_decode_payload = nullptr;

/// Sets a thread-local context pointer for a scope, restoring the previous
/// one after (pickling can nest: an object's __reduce__ may encode too).
template <class T>
class ScopedContext {
 public:
  ScopedContext(T*& slot, T* value) : _slot(slot), _saved(slot) { slot = value; }
  ~ScopedContext() { _slot = _saved; }
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;

 private:
  T*& _slot;
  T* _saved;
};

}  // namespace

rt::Payload* current_encode_payload() { return t_encode_payload; }
const rt::Payload* current_decode_payload() { return t_decode_payload; }

bool raise_unsendable(PyObject* obj, const char* what) {
  PyObject* reason = PyErr_GetRaisedException();
  PyObject* repr = PyObject_Repr(obj);
  if (!repr) {
    PyErr_Clear();
    repr = PyUnicode_FromFormat("<%s object>", Py_TYPE(obj)->tp_name);
  }
  PyErr_Format(PyExc_TypeError,
               "cannot send %s %.200U to another interpreter: %S. Only objects that pickle (by name, or by value "
               "with cloudpickle) can cross: locks, open files, generators and the like cannot; pass what they "
               "are made from instead",
               what, repr, reason ? reason : Py_None);
  Py_XDECREF(repr);
  if (reason) {
    PyObject* exc = PyErr_GetRaisedException();
    PyException_SetCause(exc, reason);  // steals reason
    PyException_SetContext(exc, Py_NewRef(reason));
    PyErr_SetRaisedException(exc);
  }
  return false;
}

namespace {

bool names_main(PyObject* pickle_bytes) {
  // Protocol 4+ writes a global's module name as SHORT_BINUNICODE, in full
  // the first time, so a pickle that refers to anything in __main__ holds
  // these bytes.  A string value "__main__" matches too: that only costs a
  // pickle by value, which is as correct.
  static constexpr std::string_view kMain{"\x8c\x08__main__", 10};
  std::string_view data{PyBytes_AS_STRING(pickle_bytes), static_cast<std::size_t>(PyBytes_GET_SIZE(pickle_bytes))};
  return data.find(kMain) != std::string_view::npos;
}

}  // namespace

void Encoder::varint(std::size_t n) {
  while (n >= 0x80) {
    _out.bytes.push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  _out.bytes.push_back(static_cast<char>(n));
}

void Encoder::raw(std::string_view bytes) {
  varint(bytes.size());
  _out.bytes.append(bytes);
}

uint32_t& Encoder::MemoTable::find_or_insert(PyObject* key, bool& fresh) {
  if ((_used + 1) * 4 >= _slots.size() * 3) grow();
  std::size_t mask = _slots.size() - 1;
  std::size_t i = home(key);
  while (true) {
    Entry& e = _slots[i];
    if (e.key == key) {
      fresh = false;
      return e.value;
    }
    if (!e.key) {
      e.key = key;
      e.value = kInProgress;
      ++_used;
      fresh = true;
      return e.value;
    }
    i = (i + 1) & mask;
  }
}

uint32_t Encoder::MemoTable::find(PyObject* key) const {
  if (_used == 0) return kInProgress;
  std::size_t mask = _slots.size() - 1;
  for (std::size_t i = home(key);; i = (i + 1) & mask) {
    const Entry& e = _slots[i];
    if (e.key == key) return e.value;
    if (!e.key) return kInProgress;
  }
}

void Encoder::MemoTable::grow() {
  std::vector<Entry> old = std::move(_slots);
  _slots.assign(old.empty() ? 64 : old.size() * 2, Entry{nullptr, 0});
  _used = 0;
  for (const Entry& e : old) {
    if (!e.key) continue;
    bool fresh;
    find_or_insert(e.key, fresh) = e.value;
  }
}

template <class F>
void Encoder::MemoTable::retain(F keep) {
  std::vector<Entry> old = std::move(_slots);
  _slots.assign(old.size(), Entry{nullptr, 0});
  _used = 0;
  for (const Entry& e : old) {
    if (!e.key || !keep(e.value)) continue;
    bool fresh;
    find_or_insert(e.key, fresh) = e.value;
  }
}

bool Encoder::value(PyObject* obj) {
  std::size_t mark = _out.bytes.size();
  std::size_t handles = _out.handles.size();
  _memo_base = _memo_next;
  std::size_t keep = _memo_keep.size();
  auto rewind = [&] {
    // Memo entries made meanwhile point into the discarded bytes.
    _out.bytes.resize(mark);
    _out.handles.resize(handles);
    _memo.retain([this](uint32_t index) { return index != kInProgress && index < _memo_base; });
    _memo_keep.resize(keep);
    _memo_next = _memo_base;
  };
  _value_shared = _value_pickled = _mixed_allowed = false;
  try {
    try {
      return native(obj, 0, 0);
    } catch (const TooDeep&) {
      // Deep or cyclic: start over with pickle for the whole value.
      rewind();
      return pickled(obj);
    } catch (const Mixed&) {
      // An object that pickle encodes may hold a container that the native
      // part holds too: pickle the whole value, which keeps them one object.
      rewind();
      if (pickled(obj)) return true;
      if (!PyErr_ExceptionMatches(PyExc_TypeError)) return false;
      // Pickle refused the value: encode it natively once more, for an
      // error that names the very object that cannot be sent.
      PyObject* refused = PyErr_GetRaisedException();
      rewind();
      _mixed_allowed = true;
      bool ok = false;
      try {
        ok = native(obj, 0, 0);
      } catch (const TooDeep&) {
      }
      if (ok) {
        // Each part pickles alone, the whole does not (pickle's recursion
        // limit, say): send the parts.
        Py_DECREF(refused);
        return true;
      }
      if (PyErr_Occurred())
        Py_DECREF(refused);
      else
        PyErr_SetRaisedException(refused);
      return false;
    }
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
    return false;
  }
}

bool Encoder::native(PyObject* obj, int depth, Py_ssize_t held) {
  if (depth > kMaxNativeDepth) throw TooDeep{};
  PyTypeObject* type = Py_TYPE(obj);
  // Referenced once (by the container being encoded): met once, no memo.
  bool shared = Py_REFCNT(obj) > 1 + held;
  if (type == &PyList_Type || type == &PyDict_Type || type == &PySet_Type || type == &PyByteArray_Type) {
    ++_mutables;
    if (shared) {
      // The native part and a pickled part could both hold it: see
      // _value_shared.  (Not the value itself: only a cycle through a
      // pickled object could lead back to it.)
      if (depth > 0 && !_mixed_allowed) {
        if (_value_pickled) throw Mixed{};
        _value_shared = true;
      }
      return memo_prefix(obj, depth);
    }
  } else if (shared) {
    if (type == &PyTuple_Type) {
      if (PyTuple_GET_SIZE(obj) > 0) return shared_tuple(obj, depth);
    } else if (type == &PyUnicode_Type || type == &PyBytes_Type) {
      if ((type == &PyUnicode_Type ? PyUnicode_GET_LENGTH(obj) : PyBytes_GET_SIZE(obj)) >= kMemoMinBytes)
        return memo_prefix(obj, depth);
    } else if (depth > 0 && !_mixed_allowed && type != &PyLong_Type && type != &PyFloat_Type && type != &PyBool_Type &&
               obj != Py_None && type != &PyComplex_Type && type != &PyFrozenSet_Type && !handle_kind(_state, type) &&
               type != _state.failure_type) {
      // An object for pickle that may repeat (or sit inside another one):
      // separate pickles would make copies of it, so pickle the whole value.
      throw Mixed{};
    }
  }
  return encode_value(obj, depth);
}

bool Encoder::memo_prefix(PyObject* obj, int depth) {
  bool fresh;
  uint32_t index = _memo.find_or_insert(obj, fresh);
  if (!fresh) {
    if (index == kInProgress) throw TooDeep{};  // a cycle: pickle handles those
    tag(kMemoRef);
    varint(index);
    return true;
  }
  _memo_keep.push_back(Ref::borrow(obj));  // its address must not be reused meanwhile
  tag(kMemo);
  if (!encode_value(obj, depth)) return false;
  _memo.find_or_insert(obj, fresh) = _memo_next++;
  return true;
}

bool Encoder::shared_tuple(PyObject* obj, int depth) {
  uint32_t index = _memo.find(obj);
  if (index != kInProgress) {
    tag(kMemoRef);
    varint(index);
    return true;
  }
  std::size_t before = _mutables;
  std::size_t tag_at = _out.bytes.size();  // encode_value writes kTuple here first
  if (!encode_value(obj, depth)) return false;
  if (_mutables != before) {
    // It holds a mutable container: keep it one object, as pickle does.
    _memo_keep.push_back(Ref::borrow(obj));
    bool fresh;
    _memo.find_or_insert(obj, fresh) = _memo_next++;
    _out.bytes[tag_at] = static_cast<char>(kTupleMemo);
  }
  return true;
}

bool Encoder::encode_value(PyObject* obj, int depth) {
  PyTypeObject* type = Py_TYPE(obj);
  if (obj == Py_None) {
    tag(kNone);
  } else if (obj == Py_True) {
    tag(kTrue);
  } else if (obj == Py_False) {
    tag(kFalse);
  } else if (type == &PyLong_Type) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow == 0) {
      if (v == -1 && PyErr_Occurred()) return false;
      tag(kInt64);
      fixed(&v, sizeof v);
    } else {
      Ref hex = Ref::steal(PyNumber_ToBase(obj, 16));
      if (!hex) return false;
      Py_ssize_t n;
      const char* s = PyUnicode_AsUTF8AndSize(hex.get(), &n);
      if (!s) return false;
      tag(kBigInt);
      raw({s, static_cast<std::size_t>(n)});
    }
  } else if (type == &PyFloat_Type) {
    double d = PyFloat_AS_DOUBLE(obj);
    tag(kFloat);
    fixed(&d, sizeof d);
  } else if (type == &PyUnicode_Type) {
    if (PyUnicode_KIND(obj) == PyUnicode_1BYTE_KIND) {
      tag(kLatin1);
      raw({static_cast<const char*>(PyUnicode_DATA(obj)), static_cast<std::size_t>(PyUnicode_GET_LENGTH(obj))});
    } else {
      Ref utf8 = Ref::steal(PyUnicode_AsEncodedString(obj, "utf-8", "surrogatepass"));
      if (!utf8) return false;
      tag(kUtf8);
      raw({PyBytes_AS_STRING(utf8.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(utf8.get()))});
    }
  } else if (type == &PyTuple_Type || type == &PyList_Type) {
    bool is_tuple = type == &PyTuple_Type;
    Py_ssize_t n = is_tuple ? PyTuple_GET_SIZE(obj) : PyList_GET_SIZE(obj);
    tag(is_tuple ? kTuple : kList);
    varint(static_cast<std::size_t>(n));
    for (Py_ssize_t i = 0; i < n; ++i) {
      // A list may shrink while an item's encoding runs Python code (pickle).
      if (!is_tuple && i >= PyList_GET_SIZE(obj)) throw TooDeep{};
      PyObject* item = is_tuple ? PyTuple_GET_ITEM(obj, i) : PyList_GET_ITEM(obj, i);
      if (is_tuple) {
        if (!native(item, depth + 1, 0)) return false;
      } else {
        Ref hold = Ref::borrow(item);
        if (!native(item, depth + 1, 1)) return false;
      }
    }
  } else if (type == &PyDict_Type) {
    tag(kDict);
    varint(static_cast<std::size_t>(PyDict_GET_SIZE(obj)));
    Py_ssize_t pos = 0, count = 0;
    PyObject *k, *v;
    while (PyDict_Next(obj, &pos, &k, &v)) {
      Ref hk = Ref::borrow(k), hv = Ref::borrow(v);
      if (!native(k, depth + 1, 1) || !native(v, depth + 1, 1)) return false;
      ++count;
    }
    if (count != PyDict_GET_SIZE(obj)) throw TooDeep{};  // mutated while encoding
  } else if (type == &PySet_Type || type == &PyFrozenSet_Type) {
    tag(type == &PySet_Type ? kSet : kFrozenSet);
    varint(static_cast<std::size_t>(PySet_GET_SIZE(obj)));
    Ref it = Ref::steal(PyObject_GetIter(obj));
    if (!it) return false;
    Py_ssize_t count = 0;
    while (Ref key = Ref::steal(PyIter_Next(it.get()))) {
      if (!native(key.get(), depth + 1, 1)) return false;
      ++count;
    }
    if (PyErr_Occurred()) {
      // The set changed size while an item's encoding ran Python code.
      PyErr_Clear();
      throw TooDeep{};
    }
    if (count != PySet_GET_SIZE(obj)) throw TooDeep{};
  } else if (type == &PyBytes_Type) {
    tag(kBytes);
    raw({PyBytes_AS_STRING(obj), static_cast<std::size_t>(PyBytes_GET_SIZE(obj))});
  } else if (type == &PyByteArray_Type) {
    tag(kByteArray);
    raw({PyByteArray_AS_STRING(obj), static_cast<std::size_t>(PyByteArray_GET_SIZE(obj))});
  } else if (type == &PyComplex_Type) {
    Py_complex c = PyComplex_AsCComplex(obj);
    tag(kComplex);
    fixed(&c.real, sizeof c.real);
    fixed(&c.imag, sizeof c.imag);
  } else if (type == _state.failure_type) {
    // Immutable, and made of str, bytes, bool, None and Failures: native.
    tag(kFailure);
    for (int i = 0; i < kFailureFieldCount; ++i)
      if (!native(failure_field(obj, static_cast<FailureField>(i)), depth + 1, 0)) return false;
  } else if (auto kind = handle_kind(_state, type)) {
    auto& handle = as_handle(obj)->handle;
    if (!handle) {
      PyErr_Format(PyExc_ValueError, "cannot send a released %.100s", type->tp_name);
      return false;
    }
    tag(kHandle);
    _out.bytes.push_back(static_cast<char>(*kind));
    varint(_out.handles.size());
    _out.handles.push_back(handle);
  } else {
    if (depth > 0 && !_mixed_allowed) {
      // See _value_shared: a memoized container may also sit inside this object.
      if (_value_shared) throw Mixed{};
      _value_pickled = true;
    }
    return pickled(obj);
  }
  return true;
}

Ref Encoder::pickle_by_name(PyObject* obj, PyObject* append) {
  if (!load_pickle(_state)) return Ref();
  Ref protocol = Ref::steal(PyLong_FromLong(5));
  if (!protocol) return Ref();
  std::size_t handles = _out.handles.size();
  Ref data;
  {
    ScopedContext context(t_encode_payload, &_out);
    if (append) {
      PyObject* args[] = {obj, protocol.get(), append};
      Ref kwnames = Ref::steal(PyTuple_Pack(1, _state.str_buffer_callback));
      if (!kwnames) return Ref();
      data = Ref::steal(PyObject_Vectorcall(_state.pickle_dumps, args, 2, kwnames.get()));
    } else {
      data = Ref::steal(PyObject_CallFunctionObjArgs(_state.pickle_dumps, obj, protocol.get(), nullptr));
    }
  }
  if (data && !names_main(data.get())) return data;
  if (!data && PyErr_ExceptionMatches(PyExc_MemoryError)) return Ref();
  PyErr_Clear();
  _out.handles.resize(handles);  // handles the refused pickle registered
  return Ref();
}

Ref Encoder::pickle_by_value(PyObject* obj, PyObject* append, const char* what) {
  Ref data;
  if (load_by_value(_state)) {
    ScopedContext context(t_encode_payload, &_out);
    data = Ref::steal(PyObject_CallFunctionObjArgs(_state.by_value->dumps, obj, append ? append : Py_None, nullptr));
  }
  if (data && !PyBytes_Check(data.get())) {
    PyErr_SetString(PyExc_SystemError, "interpool._byvalue.dumps returned no bytes");
    data = Ref();
  }
  if (!data) raise_unsendable(obj, what);
  return data;
}

Ref Encoder::pickle(PyObject* obj, PyObject* buffers, const char* what) {
  Ref append;
  if (buffers) {
    append = Ref::steal(PyObject_GetAttr(buffers, _state.str_append));
    if (!append) return Ref();
  }
  Ref data = pickle_by_name(obj, append.get());
  if (data || PyErr_Occurred()) return data;
  if (buffers && PyList_SetSlice(buffers, 0, PyList_GET_SIZE(buffers), nullptr) < 0) return Ref();
  return pickle_by_value(obj, append.get(), what);
}

bool Encoder::pickled(PyObject* obj) {
  Ref buffers = Ref::steal(PyList_New(0));
  if (!buffers) return false;
  Ref data = pickle(obj, buffers.get(), "object");
  if (!data) return false;

  tag(kPickle);
  raw({PyBytes_AS_STRING(data.get()), static_cast<std::size_t>(PyBytes_GET_SIZE(data.get()))});
  Py_ssize_t nbuf = PyList_GET_SIZE(buffers.get());
  varint(static_cast<std::size_t>(nbuf));
  for (Py_ssize_t i = 0; i < nbuf; ++i) {
    Py_buffer view;
    if (PyObject_GetBuffer(PyList_GET_ITEM(buffers.get(), i), &view, PyBUF_ANY_CONTIGUOUS) < 0)
      return raise_unsendable(obj, "object");
    std::shared_ptr<rt::Block> block;
    try {
      block = std::make_shared<rt::Block>(static_cast<std::size_t>(view.len), view.readonly);
    } catch (const std::bad_alloc&) {
      PyBuffer_Release(&view);
      PyErr_NoMemory();
      return false;
    }
    // The one copy: from the sender's object into engine memory.  The
    // receiver reads it in place.
    std::memcpy(block->data(), view.buf, static_cast<std::size_t>(view.len));
    PyBuffer_Release(&view);
    varint(_out.handles.size());
    _out.handles.push_back(std::move(block));
  }
  return true;
}

Ref Encoder::encode_callable_by_value(PyObject* fn) {
  Ref encoded;
  if (load_by_value(_state)) {
    ScopedContext context(t_encode_payload, &_out);
    encoded = Ref::steal(PyObject_CallOneArg(_state.by_value->encode, fn));
  }
  if (!encoded) raise_unsendable(fn, "callable");
  return encoded;
}

bool encode_call_args(Encoder& enc, PyObject* args, PyObject* kwargs) {
  if (kwargs == Py_None || (PyDict_Check(kwargs) && PyDict_GET_SIZE(kwargs) == 0))
    return enc.value(args) && enc.value(Py_None);
  Ref both = Ref::steal(PyTuple_Pack(2, args, kwargs));
  return both && enc.value(both.get()) && enc.value(Py_True);
}

bool decode_call_args(Decoder& dec, Ref& args, Ref& kwargs) {
  args = Ref::steal(dec.value());
  if (!args) return false;
  kwargs = Ref::steal(dec.value());
  if (!kwargs) return false;
  if (kwargs.get() != Py_True) return true;
  if (!PyTuple_Check(args.get()) || PyTuple_GET_SIZE(args.get()) != 2) {
    PyErr_SetString(PyExc_SystemError, "interpool: corrupt payload (this is a bug in interpool)");
    return false;
  }
  Ref both = std::move(args);
  args = Ref::borrow(PyTuple_GET_ITEM(both.get(), 0));
  kwargs = Ref::borrow(PyTuple_GET_ITEM(both.get(), 1));
  return true;
}

// ---------------------------------------------------------------- decoding

PyObject* Decoder::corrupt() {
  PyErr_SetString(PyExc_SystemError, "interpool: corrupt payload (this is a bug in interpool)");
  return nullptr;
}

bool Decoder::varint(std::size_t& n) {
  n = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (_pos >= _in.bytes.size()) return corrupt(), false;
    auto b = static_cast<unsigned char>(_in.bytes[_pos++]);
    n |= static_cast<std::size_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return corrupt(), false;
}

bool Decoder::take(std::size_t n, const char*& p) {
  if (n > _in.bytes.size() - _pos) return corrupt(), false;
  p = _in.bytes.data() + _pos;
  _pos += n;
  return true;
}

bool Decoder::raw(std::string_view& out) {
  std::size_t n;
  const char* p;
  if (!varint(n) || !take(n, p)) return false;
  out = {p, n};
  return true;
}

namespace {

/// Splits a pickle that holds nothing but a reference to a global, as
/// pickle.dumps(fn, 4 or 5) writes it for a function, builtin or class
/// (PROTO, [FRAME], SHORT_BINUNICODE module, [MEMOIZE], SHORT_BINUNICODE
/// qualname, [MEMOIZE], STACK_GLOBAL, [MEMOIZE], STOP), into its two names.
bool split_global_pickle(std::string_view p, std::string_view& module, std::string_view& name) {
  std::size_t i = 0;
  auto at = [&](char op) { return i < p.size() && p[i] == op; };
  auto skip_memoize = [&] {
    if (at('\x94')) ++i;
  };
  auto short_unicode = [&](std::string_view& out) {
    if (!at('\x8c') || i + 1 >= p.size()) return false;
    std::size_t n = static_cast<unsigned char>(p[i + 1]);
    if (i + 2 + n > p.size()) return false;
    out = p.substr(i + 2, n);
    i += 2 + n;
    skip_memoize();
    return true;
  };
  if (!at('\x80') || p.size() < 2 || static_cast<unsigned char>(p[1]) < 4) return false;
  i = 2;
  if (at('\x95')) i += 9;  // FRAME and its 8-byte length
  if (!short_unicode(module) || !short_unicode(name) || !at('\x93')) return false;
  ++i;
  skip_memoize();
  return at('.') && i + 1 == p.size();
}

}  // namespace

PyObject* Decoder::load_global(std::string_view bytes) {
  // Most callables arrive as such references.  Resolving them here as pickle
  // would (audit hook, import, attribute path) keeps a worker that needs
  // nothing else from importing the pickler at all.  Anything unusual
  // returns null with no error, and pickle does the work, with its errors.
  std::string_view module_name, qualname;
  if (!split_global_pickle(bytes, module_name, qualname)) return nullptr;
  if (qualname.find("<locals>") != std::string_view::npos) return nullptr;
  Ref module_str = Ref::steal(
      PyUnicode_DecodeUTF8(module_name.data(), static_cast<Py_ssize_t>(module_name.size()), "strict"));
  Ref name_str = module_str ? Ref::steal(PyUnicode_DecodeUTF8(qualname.data(), static_cast<Py_ssize_t>(qualname.size()),
                                                              "strict"))
                            : Ref();
  if (!name_str) return PyErr_Clear(), nullptr;
  if (PySys_Audit("pickle.find_class", "OO", module_str.get(), name_str.get()) < 0) return nullptr;
  Ref obj = Ref::steal(PyImport_Import(module_str.get()));
  if (!obj) return nullptr;  // the same error pickle would raise
  std::size_t start = 0;
  for (;;) {
    std::size_t dot = qualname.find('.', start);
    std::string_view part = qualname.substr(start, dot == std::string_view::npos ? dot : dot - start);
    Ref attr_name = Ref::steal(PyUnicode_DecodeUTF8(part.data(), static_cast<Py_ssize_t>(part.size()), "strict"));
    obj = attr_name ? Ref::steal(PyObject_GetAttr(obj.get(), attr_name.get())) : Ref();
    if (!obj) {
      // pickle words a missing attribute its own way: let it.
      if (PyErr_ExceptionMatches(PyExc_AttributeError)) PyErr_Clear();
      return nullptr;
    }
    if (dot == std::string_view::npos) return obj.release();
    start = dot + 1;
  }
}

PyObject* Decoder::unpickle(std::string_view bytes) {
  if (PyObject* found = load_global(bytes)) return found;
  if (PyErr_Occurred() || !load_pickle(_state)) return nullptr;
  Ref view = Ref::steal(
      PyMemoryView_FromMemory(const_cast<char*>(bytes.data()), static_cast<Py_ssize_t>(bytes.size()), PyBUF_READ));
  if (!view) return nullptr;
  ScopedContext context(t_decode_payload, &_in);
  return PyObject_CallOneArg(_state.pickle_loads, view.get());
}

template <class Set>
Ref Decoder::sequence(PyObject* (*make)(Py_ssize_t), Set&& set) {
  std::size_t n;
  if (!varint(n)) return {};
  Ref seq = Ref::steal(make(static_cast<Py_ssize_t>(n)));
  if (!seq) return {};
  for (std::size_t i = 0; i < n; ++i) {
    PyObject* item = value();
    if (!item) return {};
    set(seq.get(), static_cast<Py_ssize_t>(i), item);
  }
  return seq;
}

PyObject* Decoder::value() {
  const char* p;
  if (!take(1, p)) return nullptr;
  switch (static_cast<Tag>(*p)) {
    case kMemo: {
      PyObject* v = value();
      if (!v) return nullptr;
      _memo.push_back(Py_NewRef(v));
      return v;
    }
    case kMemoRef: {
      std::size_t index;
      if (!varint(index)) return nullptr;
      if (index >= _memo.size()) return corrupt();
      return Py_NewRef(_memo[index]);
    }
    case kNone: Py_RETURN_NONE;
    case kTrue: Py_RETURN_TRUE;
    case kFalse: Py_RETURN_FALSE;
    case kInt64: {
      long long v;
      if (!take(sizeof v, p)) return nullptr;
      std::memcpy(&v, p, sizeof v);
      return PyLong_FromLongLong(v);
    }
    case kBigInt: {
      std::string_view s;
      if (!raw(s)) return nullptr;
      std::string text(s);  // NUL-terminated for PyLong_FromString
      return PyLong_FromString(text.c_str(), nullptr, 0);
    }
    case kFloat: {
      double d;
      if (!take(sizeof d, p)) return nullptr;
      std::memcpy(&d, p, sizeof d);
      return PyFloat_FromDouble(d);
    }
    case kComplex: {
      Py_complex c;
      if (!take(sizeof c.real, p)) return nullptr;
      std::memcpy(&c.real, p, sizeof c.real);
      if (!take(sizeof c.imag, p)) return nullptr;
      std::memcpy(&c.imag, p, sizeof c.imag);
      return PyComplex_FromCComplex(c);
    }
    case kLatin1: {
      std::string_view s;
      if (!raw(s)) return nullptr;
      return PyUnicode_DecodeLatin1(s.data(), static_cast<Py_ssize_t>(s.size()), nullptr);
    }
    case kUtf8: {
      std::string_view s;
      if (!raw(s)) return nullptr;
      return PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "surrogatepass");
    }
    case kBytes: {
      std::string_view s;
      if (!raw(s)) return nullptr;
      return PyBytes_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
    }
    case kByteArray: {
      std::string_view s;
      if (!raw(s)) return nullptr;
      return PyByteArray_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
    }
    case kTuple:
    case kTupleMemo: {
      Ref t = sequence(PyTuple_New, [](PyObject* t, Py_ssize_t i, PyObject* item) { PyTuple_SET_ITEM(t, i, item); });
      if (t && static_cast<Tag>(*p) == kTupleMemo) _memo.push_back(Py_NewRef(t.get()));
      return t.release();
    }
    case kList:
      return sequence(PyList_New, [](PyObject* l, Py_ssize_t i, PyObject* item) { PyList_SET_ITEM(l, i, item); })
          .release();
    case kDict: {
      std::size_t n;
      if (!varint(n)) return nullptr;
      Ref d = Ref::steal(PyDict_New());
      if (!d) return nullptr;
      for (std::size_t i = 0; i < n; ++i) {
        Ref k = Ref::steal(value());
        if (!k) return nullptr;
        Ref v = Ref::steal(value());
        if (!v || PyDict_SetItem(d.get(), k.get(), v.get()) < 0) return nullptr;
      }
      return d.release();
    }
    case kSet:
    case kFrozenSet: {
      bool frozen = *p == kFrozenSet;
      std::size_t n;
      if (!varint(n)) return nullptr;
      Ref s = Ref::steal(frozen ? PyFrozenSet_New(nullptr) : PySet_New(nullptr));
      if (!s) return nullptr;
      for (std::size_t i = 0; i < n; ++i) {
        Ref k = Ref::steal(value());
        if (!k || PySet_Add(s.get(), k.get()) < 0) return nullptr;
      }
      return s.release();
    }
    case kFailure: {
      Ref fields[kFailureFieldCount];
      PyObject* borrowed[kFailureFieldCount];
      for (int i = 0; i < kFailureFieldCount; ++i) {
        fields[i] = Ref::steal(value());
        if (!fields[i]) return nullptr;
        borrowed[i] = fields[i].get();
      }
      return failure_from_fields(_state, borrowed).release();
    }
    case kHandle: {
      const char* k;
      std::size_t index;
      if (!take(1, k) || !varint(index)) return nullptr;
      auto kind = static_cast<unsigned char>(*k);
      if (kind >= kHandleKinds || index >= _in.handles.size()) return corrupt();
      return handle_receive(_state, static_cast<HandleKind>(kind), _in.handles[index]);
    }
    case kPickle: {
      std::string_view data;
      std::size_t nbuf;
      if (!raw(data) || !varint(nbuf)) return nullptr;
      if (nbuf == 0) return unpickle(data);
      Ref buffers = Ref::steal(PyList_New(static_cast<Py_ssize_t>(nbuf)));
      if (!buffers) return nullptr;
      for (std::size_t i = 0; i < nbuf; ++i) {
        std::size_t index;
        if (!varint(index)) return nullptr;
        if (index >= _in.handles.size()) return corrupt();
        auto block = std::dynamic_pointer_cast<rt::Block>(_in.handles[index]);
        if (!block) return corrupt();
        PyObject* buf = handle_new(_state, HandleKind::Buffer, std::move(block));
        if (!buf) return nullptr;
        PyList_SET_ITEM(buffers.get(), i, buf);
      }
      Ref view = Ref::steal(
          PyMemoryView_FromMemory(const_cast<char*>(data.data()), static_cast<Py_ssize_t>(data.size()), PyBUF_READ));
      if (!view) return nullptr;
      PyObject* args[] = {view.get(), buffers.get()};
      Ref kwnames = Ref::steal(PyTuple_Pack(1, _state.str_buffers));
      if (!kwnames) return nullptr;
      if (!load_pickle(_state)) return nullptr;
      ScopedContext context(t_decode_payload, &_in);
      return PyObject_Vectorcall(_state.pickle_loads, args, 1, kwnames.get());
    }
  }
  return corrupt();
}

}  // namespace interpool::py
