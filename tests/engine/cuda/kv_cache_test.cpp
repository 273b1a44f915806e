// store_kv and copy_blocks against host copies in the same layout; exact, and every element the
// kernels must not touch keeps its poison.
#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "cuda_test_support.hpp"
#include "kernels.cuh"

namespace flowrank::engine::cuda {
namespace {

using namespace testing;  // cuda_test_support.hpp

class KvCache : public CudaTest {};

TEST_F(KvCache, StoreKvWritesEachRowToItsSlot) {
  struct Shape {
    int32_t T, nq, nkv;
  };
  std::mt19937 rng(8);
  for (const Shape& s : {Shape{33, 4096, 1024}, Shape{7, 100, 36}, Shape{1, 64, 64}}) {
    const int32_t block_size = 16, blocks = 8, slots = block_size * blocks;
    const int32_t row = s.nq + 2 * s.nkv;
    const std::vector<bf16> qkv =
        to_bf16(normal_bf16_values(static_cast<std::size_t>(s.T) * row, 0.0f, 1.0f, 9));
    std::vector<int32_t> all(slots);
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng);
    std::vector<int32_t> slot_mapping(all.begin(), all.begin() + s.T);
    if (s.T > 2) slot_mapping[1] = -1;  // a padding row
    // The expected caches: poison (0xFFFF) except the written slots.
    std::vector<bf16> k_want(static_cast<std::size_t>(slots) * s.nkv, __ushort_as_bfloat16(0xFFFF));
    std::vector<bf16> v_want = k_want;
    for (int32_t r = 0; r < s.T; ++r) {
      if (slot_mapping[r] < 0) continue;
      const auto* k = qkv.data() + static_cast<std::ptrdiff_t>(r) * row + s.nq;
      std::copy_n(k, s.nkv, k_want.begin() + static_cast<std::ptrdiff_t>(slot_mapping[r]) * s.nkv);
      std::copy_n(k + s.nkv, s.nkv,
                  v_want.begin() + static_cast<std::ptrdiff_t>(slot_mapping[r]) * s.nkv);
    }
    DeviceBuffer<bf16> d_qkv(qkv), k_cache(k_want.size()), v_cache(v_want.size());
    DeviceBuffer<int32_t> d_slots(slot_mapping);
    k_cache.poison();
    v_cache.poison();
    store_kv(d_qkv.get(), d_slots.get(), s.T, s.nq, s.nkv, k_cache.get(), v_cache.get(), nullptr);
    EXPECT_TRUE(all_equal(k_cache.download(), k_want)) << s.T << " rows, nkv " << s.nkv;
    EXPECT_TRUE(all_equal(v_cache.download(), v_want)) << s.T << " rows, nkv " << s.nkv;
  }
}

TEST_F(KvCache, CopyBlocksCopiesEveryLayer) {
  const int32_t n_layer = 3, blocks = 10;
  for (int64_t block_elems : {int64_t{16} * 1024, int64_t{5} * 36}) {
    const int64_t layer_stride = blocks * block_elems;
    const std::size_t n = static_cast<std::size_t>(n_layer * layer_stride);
    const std::vector<bf16> k0 = to_bf16(normal_bf16_values(n, 0.0f, 1.0f, 12));
    const std::vector<bf16> v0 = to_bf16(normal_bf16_values(n, 0.0f, 1.0f, 13));
    const std::vector<int32_t> pairs = {0, 5, 2, 7, 3, 3, 9, 1};  // (3, 3) does nothing
    std::vector<bf16> k_want = k0, v_want = v0;
    for (std::size_t p = 0; p < pairs.size(); p += 2) {
      for (int32_t l = 0; l < n_layer; ++l) {
        const int64_t src = l * layer_stride + pairs[p] * block_elems;
        const int64_t dst = l * layer_stride + pairs[p + 1] * block_elems;
        std::copy_n(k0.begin() + src, block_elems, k_want.begin() + dst);
        std::copy_n(v0.begin() + src, block_elems, v_want.begin() + dst);
      }
    }
    DeviceBuffer<bf16> k(k0), v(v0);
    DeviceBuffer<int32_t> d_pairs(pairs);
    copy_blocks(d_pairs.get(), static_cast<int32_t>(pairs.size() / 2), n_layer, layer_stride,
                block_elems, k.get(), v.get(), nullptr);
    EXPECT_TRUE(all_equal(k.download(), k_want)) << "block of " << block_elems;
    EXPECT_TRUE(all_equal(v.download(), v_want)) << "block of " << block_elems;
  }
}

}  // namespace
}  // namespace flowrank::engine::cuda
