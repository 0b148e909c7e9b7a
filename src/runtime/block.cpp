// src/runtime/block.cpp: aligned allocation for Block.
#include "runtime/block.hpp"

#include <cstring>
#include <new>

namespace interpool::rt {

Block::Block(std::size_t size, bool readonly) : _size(size), _readonly(readonly) {
  // operator new with an alignment never returns null: it throws bad_alloc.
  std::size_t rounded = size == 0 ? alignment : size;
  _data = static_cast<std::byte*>(::operator new(rounded, std::align_val_t{alignment}));
  std::memset(_data, 0, rounded);
}

Block::~Block() { ::operator delete(_data, std::align_val_t{alignment}); }

}  // namespace interpool::rt
