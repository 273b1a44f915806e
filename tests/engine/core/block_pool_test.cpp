#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "flowrank/engine/block_pool.hpp"
#include "flowrank/engine/prefix_cache.hpp"

using namespace flowrank::engine;

TEST(BlockPool, AllocatesEveryBlockOnceThenRunsOut) {
  BlockPool pool(3, 16);
  EXPECT_EQ(pool.blocks_for(0), 0);
  EXPECT_EQ(pool.blocks_for(16), 1);
  EXPECT_EQ(pool.blocks_for(17), 2);
  std::vector<int32_t> got{pool.allocate(), pool.allocate(), pool.allocate()};
  EXPECT_EQ(got, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(pool.allocate(), -1);
  EXPECT_EQ(pool.num_free(), 0);
  for (int32_t b : got) EXPECT_EQ(pool.ref_count(b), 1);
  EXPECT_EQ(pool.release(1), 0);
  pool.free(1);
  EXPECT_EQ(pool.num_free(), 1);
  EXPECT_EQ(pool.allocate(), 1);
}

TEST(BlockPool, RefCountsNeverGoNegative) {
  BlockPool pool(2, 4);
  const int32_t b = pool.allocate();
  pool.retain(b);
  EXPECT_EQ(pool.release(b), 1);
  EXPECT_EQ(pool.release(b), 0);
  EXPECT_THROW(pool.release(b), std::logic_error);
  EXPECT_EQ(pool.ref_count(b), 0);
  pool.free(b);
  EXPECT_THROW(pool.free(b), std::logic_error);    // already free
  EXPECT_THROW(pool.retain(b), std::logic_error);  // a free block cannot be revived
  const int32_t c = pool.allocate();
  EXPECT_THROW(pool.free(c), std::logic_error);  // still referenced
}

namespace {
std::vector<int32_t> block_tokens(int32_t base) {
  return {base, base + 1, base + 2, base + 3};
}
}  // namespace

TEST(PrefixCache, HashChainCoversParentAndTokens) {
  const auto t = block_tokens(10);
  const uint64_t h1 = PrefixCache::hash_block(PrefixCache::kRootHash, t);
  EXPECT_EQ(h1, PrefixCache::hash_block(PrefixCache::kRootHash, t));
  EXPECT_NE(h1, PrefixCache::hash_block(h1, t));
  EXPECT_NE(h1, PrefixCache::hash_block(PrefixCache::kRootHash, block_tokens(11)));
}

TEST(PrefixCache, HitNeedsSameTokensAndCollisionIsAMiss) {
  BlockPool pool(4, 4);
  PrefixCache cache(pool, true);
  const int32_t b = cache.allocate();
  const auto t = block_tokens(0);
  const uint64_t h = PrefixCache::hash_block(PrefixCache::kRootHash, t);
  ASSERT_TRUE(cache.insert(b, h, t));
  EXPECT_EQ(cache.lookup(h, t), b);
  EXPECT_EQ(cache.lookup(h + 1, t), -1);
  // Same hash, different tokens (a forged collision): must not hit.
  EXPECT_EQ(cache.lookup(h, block_tokens(1)), -1);
  // A second block with the same content is not registered; it is freed on release.
  const int32_t dup = cache.allocate();
  EXPECT_FALSE(cache.insert(dup, h, t));
  cache.release(dup);
  EXPECT_TRUE(pool.is_free(dup));
  cache.release(b);
  EXPECT_FALSE(pool.is_free(b));  // kept, cached with ref 0
  EXPECT_TRUE(cache.is_evictable(b));
  EXPECT_EQ(cache.num_allocatable(), 4);
}

TEST(PrefixCache, EvictsLeastRecentlyReleasedAndNeverAReferencedBlock) {
  BlockPool pool(4, 4);
  PrefixCache cache(pool, true);
  std::vector<uint64_t> hash(4);
  for (int32_t i = 0; i < 4; ++i) {
    ASSERT_EQ(cache.allocate(), i);
    hash[i] = PrefixCache::hash_block(PrefixCache::kRootHash, block_tokens(10 * i));
    ASSERT_TRUE(cache.insert(i, hash[i], block_tokens(10 * i)));
  }
  EXPECT_EQ(cache.allocate(), -1);  // every block referenced: nothing to evict
  for (int32_t b : {2, 0, 3, 1}) cache.release(b);
  EXPECT_EQ(cache.eviction_order(), (std::vector<int32_t>{2, 0, 3, 1}));
  // A hit revives block 0: it leaves the LRU list.
  ASSERT_EQ(cache.lookup(hash[0], block_tokens(0)), 0);
  cache.acquire(0);
  EXPECT_EQ(pool.ref_count(0), 1);
  EXPECT_EQ(cache.eviction_order(), (std::vector<int32_t>{2, 3, 1}));
  // The free list is empty, so allocation evicts the oldest: 2, then 3.
  EXPECT_EQ(cache.allocate(), 2);
  EXPECT_EQ(cache.lookup(hash[2], block_tokens(20)), -1);
  EXPECT_EQ(cache.allocate(), 3);
  EXPECT_EQ(cache.evictions(), 2);
  cache.release(0);  // now the most recent
  EXPECT_EQ(cache.eviction_order(), (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(cache.allocate(), 1);
  EXPECT_EQ(cache.allocate(), 0);
  EXPECT_EQ(cache.allocate(), -1);
  EXPECT_EQ(cache.num_cached(), 0);
}

TEST(PrefixCache, DisabledNeverHitsAndFreesAtOnce) {
  BlockPool pool(2, 4);
  PrefixCache cache(pool, false);
  const int32_t b = cache.allocate();
  const auto t = block_tokens(0);
  const uint64_t h = PrefixCache::hash_block(PrefixCache::kRootHash, t);
  EXPECT_FALSE(cache.insert(b, h, t));
  EXPECT_EQ(cache.lookup(h, t), -1);
  cache.release(b);
  EXPECT_TRUE(pool.is_free(b));
}
