// tests/cpp/test_block.cpp: specification of runtime/block.hpp (Handle, Block, Payload).
#include "runtime/block.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

using interpool::rt::Block;
using interpool::rt::Handle;
using interpool::rt::Payload;

static_assert(!std::is_copy_constructible_v<Block>, "a Block owns its memory: no copies");
static_assert(!std::is_copy_assignable_v<Block>, "a Block owns its memory: no copies");
static_assert(std::is_base_of_v<Handle, Block>, "a Block travels in a Payload as a Handle");
static_assert(std::has_virtual_destructor_v<Handle>, "handles are destroyed through Handle*");

namespace {

const std::vector<std::size_t> kSizes = {0, 1, 7, 63, 64, 65, 100, 4096, 4097, 1 << 20};

bool aligned64(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 64 == 0; }

bool all_zero(const Block& b) {
  return std::all_of(b.data(), b.data() + b.size(), [](std::byte x) { return x == std::byte{0}; });
}

/// A handle that records its own destruction.
class CountedHandle final : public Handle {
 public:
  explicit CountedHandle(int& destroyed) : _destroyed(destroyed) {}
  ~CountedHandle() override { ++_destroyed; }

 private:
  int& _destroyed;
};

}  // namespace

TEST(Block, AlignmentConstantIs64) { EXPECT_EQ(Block::alignment, 64u); }

TEST(Block, DataIsAlignedTo64BytesForEverySize) {
  for (std::size_t size : kSizes) {
    Block b(size);
    EXPECT_TRUE(aligned64(b.data())) << "size " << size;
  }
}

TEST(Block, ReportsTheSizeItWasGiven) {
  for (std::size_t size : kSizes) EXPECT_EQ(Block(size).size(), size);
}

TEST(Block, ContentsStartZeroed) {
  for (std::size_t size : kSizes) {
    Block b(size);
    EXPECT_TRUE(all_zero(b)) << "size " << size;
  }
}

TEST(Block, ContentsStartZeroedEvenOverRecycledMemory) {
  // Dirty a block, free it, allocate the same size again: the allocator is
  // likely to hand back the same memory, which must be zeroed anew.
  for (std::size_t size : {64u, 100u, 4096u}) {
    for (int round = 0; round < 8; ++round) {
      {
        Block dirty(size);
        std::memset(dirty.data(), 0xAB, dirty.size());
      }
      Block fresh(size);
      ASSERT_TRUE(all_zero(fresh)) << "size " << size << " round " << round;
    }
  }
}

TEST(Block, SizeZeroIsAValidEmptyBlock) {
  Block a(0), b(0);
  EXPECT_EQ(a.size(), 0u);
  ASSERT_NE(a.data(), nullptr);
  ASSERT_NE(b.data(), nullptr);
  EXPECT_TRUE(aligned64(a.data()));
  EXPECT_NE(a.data(), b.data()) << "two live blocks must not share memory";
}

TEST(Block, WholeSizeIsWritableAndReadsBack) {
  for (std::size_t size : kSizes) {
    Block b(size);
    for (std::size_t i = 0; i < size; ++i) b.data()[i] = static_cast<std::byte>(i * 31 + 7);
    const Block& cb = b;
    EXPECT_EQ(cb.data(), b.data());
    for (std::size_t i = 0; i < size; ++i)
      ASSERT_EQ(cb.data()[i], static_cast<std::byte>(i * 31 + 7)) << "size " << size << " at " << i;
  }
}

TEST(Block, LiveBlocksDoNotOverlap) {
  std::vector<std::unique_ptr<Block>> blocks;
  for (std::size_t size : kSizes) blocks.push_back(std::make_unique<Block>(size));
  for (std::size_t i = 0; i < blocks.size(); ++i)
    for (std::size_t j = i + 1; j < blocks.size(); ++j) {
      auto* a = blocks[i]->data();
      auto* b = blocks[j]->data();
      const std::size_t na = std::max<std::size_t>(blocks[i]->size(), 1);
      const std::size_t nb = std::max<std::size_t>(blocks[j]->size(), 1);
      EXPECT_TRUE(a + na <= b || b + nb <= a) << "blocks " << i << " and " << j;
    }
}

TEST(Block, ReadonlyDefaultsToFalseAndIsKept) {
  EXPECT_FALSE(Block(16).readonly());
  EXPECT_FALSE(Block(16, false).readonly());
  EXPECT_TRUE(Block(16, true).readonly());
  EXPECT_TRUE(Block(0, true).readonly());
}

TEST(Block, IsDestroyedThroughAHandlePointer) {
  // Under ASan a non-virtual or mismatched (aligned/unaligned) delete is reported.
  std::unique_ptr<Handle> h = std::make_unique<Block>(256);
  auto* block = dynamic_cast<Block*>(h.get());
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(block->size(), 256u);
  h.reset();
  SUCCEED();
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define INTERPOOL_UNDER_SANITIZER 1
#endif

TEST(Block, ImpossibleSizeThrowsBadAlloc) {
#ifdef INTERPOOL_UNDER_SANITIZER
  GTEST_SKIP() << "sanitizer allocators abort on impossible sizes instead of throwing";
#else
  EXPECT_THROW({ Block b(std::numeric_limits<std::size_t>::max() / 2); }, std::bad_alloc);
#endif
}

TEST(Handle, DerivedDestructorRunsThroughBasePointer) {
  int destroyed = 0;
  {
    std::shared_ptr<Handle> h = std::make_shared<CountedHandle>(destroyed);
    std::unique_ptr<Handle> u(new CountedHandle(destroyed));
  }
  EXPECT_EQ(destroyed, 2);
}

TEST(Payload, StartsEmptyWithoutHandles) {
  Payload p;
  EXPECT_TRUE(p.empty());
  EXPECT_TRUE(p.bytes.empty());
  EXPECT_TRUE(p.handles.empty());
}

TEST(Payload, IsNotEmptyOnceItHoldsBytes) {
  Payload p;
  p.bytes = "x";
  EXPECT_FALSE(p.empty());
}

TEST(Payload, HoldingThePayloadKeepsEveryHandleAlive) {
  Payload p;
  std::weak_ptr<Block> weak;
  {
    auto block = std::make_shared<Block>(128);
    weak = block;
    p.bytes = "ref:0";
    p.handles.push_back(block);
  }
  ASSERT_FALSE(weak.expired()) << "the payload alone must keep the block alive";
  EXPECT_EQ(weak.lock()->size(), 128u);
}

TEST(Payload, ClearReleasesHandlesAndBytes) {
  Payload p;
  std::weak_ptr<Block> weak;
  {
    auto block = std::make_shared<Block>(64);
    weak = block;
    p.handles.push_back(block);
  }
  p.bytes.assign(100'000, 'z');
  p.clear();
  EXPECT_TRUE(weak.expired());
  EXPECT_TRUE(p.empty());
  EXPECT_TRUE(p.handles.empty());
  EXPECT_EQ(p.bytes.capacity(), std::string().capacity()) << "clear() must give the byte storage back";
}

TEST(Payload, DestroyingThePayloadReleasesHandles) {
  int destroyed = 0;
  {
    Payload p;
    p.handles.push_back(std::make_shared<CountedHandle>(destroyed));
    p.handles.push_back(std::make_shared<CountedHandle>(destroyed));
    EXPECT_EQ(destroyed, 0);
  }
  EXPECT_EQ(destroyed, 2);
}

TEST(Payload, CopiesShareHandlesAndTheLastOneReleasesThem) {
  int destroyed = 0;
  auto p = std::make_unique<Payload>();
  p->bytes = "abc";
  p->handles.push_back(std::make_shared<CountedHandle>(destroyed));
  Payload copy = *p;
  EXPECT_EQ(copy.bytes, "abc");
  ASSERT_EQ(copy.handles.size(), 1u);
  EXPECT_EQ(copy.handles[0], p->handles[0]);
  p.reset();
  EXPECT_EQ(destroyed, 0);
  copy.clear();
  EXPECT_EQ(destroyed, 1);
}

TEST(Payload, BlockOutlivesThePayloadThatCarriedIt) {
  std::shared_ptr<Handle> kept;
  {
    Payload p;
    auto block = std::make_shared<Block>(32);
    block->data()[31] = std::byte{0x5A};
    p.handles.push_back(std::move(block));
    kept = p.handles[0];
  }
  auto* block = dynamic_cast<Block*>(kept.get());
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(block->data()[31], std::byte{0x5A});
}
