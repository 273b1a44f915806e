#pragma once
// Automatic prefix caching over the BlockPool (vLLM V1 / nano-vllm style): every *full* computed
// block is registered under a chained hash — sha256(parent hash, its token ids) truncated to 64
// bits — so a new sequence can reuse the longest run of leading blocks some earlier sequence has
// computed. Hits are verified against the stored token ids, so a hash collision is a miss, never
// wrong KV. Registered blocks whose ref count drops to zero stay cached in LRU order and are
// evicted (least recently released first) only when allocate() finds the free list empty; a
// referenced block is never evicted.
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "flowrank/engine/block_pool.hpp"

namespace flowrank::engine {

class PrefixCache {
 public:
  static constexpr uint64_t kRootHash = 0x9e3779b97f4a7c15ULL;  // parent of a sequence's block 0

  // With enabled = false, lookup never hits and insert registers nothing, so every released
  // block goes straight back to the free list.
  PrefixCache(BlockPool& pool, bool enabled);

  static uint64_t hash_block(uint64_t parent, std::span<const int32_t> tokens);

  bool enabled() const { return enabled_; }
  BlockPool& pool() { return *pool_; }
  const BlockPool& pool() const { return *pool_; }

  // The block registered under `hash` whose stored tokens equal `tokens`, or -1. No ref change.
  int32_t lookup(uint64_t hash, std::span<const int32_t> tokens) const;
  // Takes a reference on a block returned by lookup (an unreferenced one leaves the LRU list).
  void acquire(int32_t block);
  // Registers a full, computed, referenced block. Returns false (and registers nothing) when the
  // hash already names another block: two sequences computed the same prefix at the same time;
  // this copy then stays private and is freed on release.
  bool insert(int32_t block, uint64_t hash, std::span<const int32_t> tokens);
  // Drops one reference. At zero a registered block joins the LRU tail (most recent), an
  // unregistered one goes back to the free list.
  void release(int32_t block);
  // A block with ref 1 that the caller may overwrite: from the free list, else by evicting the
  // least recently released cached block. -1 when every block is referenced.
  int32_t allocate();

  int32_t num_allocatable() const { return pool_->num_free() + num_evictable_; }
  int32_t num_evictable() const { return num_evictable_; }
  int32_t num_cached() const { return static_cast<int32_t>(by_hash_.size()); }
  bool is_cached(int32_t block) const { return registered_[static_cast<std::size_t>(block)]; }
  bool is_evictable(int32_t block) const;
  int64_t evictions() const { return evictions_; }
  // Evictable blocks, next victim first (tests and diagnostics).
  std::vector<int32_t> eviction_order() const;

 private:
  void lru_push_back(int32_t block);
  void lru_remove(int32_t block);
  void unregister(int32_t block);

  BlockPool* pool_;
  bool enabled_;
  int32_t block_size_;
  std::unordered_map<uint64_t, int32_t> by_hash_;
  std::vector<uint64_t> hash_;  // per block, valid when registered
  std::vector<bool> registered_;
  std::vector<int32_t> tokens_;  // per block: block_size token ids, for hit verification
  // Intrusive doubly linked LRU list over block ids (no allocation when blocks move).
  std::vector<int32_t> prev_, next_;
  std::vector<bool> in_lru_;
  int32_t head_ = -1, tail_ = -1;
  int32_t num_evictable_ = 0;
  int64_t evictions_ = 0;
};

}  // namespace flowrank::engine
