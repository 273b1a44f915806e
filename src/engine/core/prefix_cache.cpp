#include "flowrank/engine/prefix_cache.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include "flowrank/common/hash.hpp"

namespace flowrank::engine {

PrefixCache::PrefixCache(BlockPool& pool, bool enabled)
    : pool_(&pool),
      enabled_(enabled),
      block_size_(pool.block_size()),
      hash_(static_cast<std::size_t>(pool.num_blocks()), 0),
      registered_(static_cast<std::size_t>(pool.num_blocks()), false),
      tokens_(enabled ? static_cast<std::size_t>(pool.num_blocks()) *
                            static_cast<std::size_t>(pool.block_size())
                      : 0),
      prev_(static_cast<std::size_t>(pool.num_blocks()), -1),
      next_(static_cast<std::size_t>(pool.num_blocks()), -1),
      in_lru_(static_cast<std::size_t>(pool.num_blocks()), false) {
  if (enabled_) by_hash_.reserve(static_cast<std::size_t>(pool.num_blocks()));
}

uint64_t PrefixCache::hash_block(uint64_t parent, std::span<const int32_t> tokens) {
  // In-memory only (never persisted), so host byte order is fine. SHA-256 makes a collision
  // practically impossible; the token check in lookup() makes one harmless anyway.
  Sha256 h;
  h.update(std::string_view(reinterpret_cast<const char*>(&parent), sizeof parent));
  h.update(std::string_view(reinterpret_cast<const char*>(tokens.data()), tokens.size_bytes()));
  const Sha256Digest d = h.finish();
  uint64_t out = 0;
  std::memcpy(&out, d.data(), sizeof out);
  return out;
}

int32_t PrefixCache::lookup(uint64_t hash, std::span<const int32_t> tokens) const {
  if (!enabled_ || static_cast<int32_t>(tokens.size()) != block_size_) return -1;
  const auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return -1;
  const int32_t b = it->second;
  const int32_t* stored = tokens_.data() + static_cast<std::size_t>(b) * block_size_;
  if (!std::equal(tokens.begin(), tokens.end(), stored)) return -1;  // a collision: a miss
  return b;
}

bool PrefixCache::is_evictable(int32_t block) const {
  return in_lru_.at(static_cast<std::size_t>(block));
}

void PrefixCache::acquire(int32_t block) {
  if (in_lru_.at(static_cast<std::size_t>(block))) lru_remove(block);
  pool_->retain(block);
}

bool PrefixCache::insert(int32_t block, uint64_t hash, std::span<const int32_t> tokens) {
  if (!enabled_) return false;
  if (static_cast<int32_t>(tokens.size()) != block_size_)
    throw std::logic_error("PrefixCache: only full blocks are cached");
  const auto i = static_cast<std::size_t>(block);
  if (pool_->ref_count(block) <= 0)
    throw std::logic_error("PrefixCache: insert of unreferenced block " + std::to_string(block));
  if (registered_[i]) return hash_[i] == hash;
  const auto [it, inserted] = by_hash_.try_emplace(hash, block);
  if (!inserted) return false;
  registered_[i] = true;
  hash_[i] = hash;
  std::copy(tokens.begin(), tokens.end(),
            tokens_.begin() + static_cast<std::ptrdiff_t>(i) * block_size_);
  return true;
}

void PrefixCache::release(int32_t block) {
  if (pool_->release(block) > 0) return;
  if (registered_[static_cast<std::size_t>(block)])
    lru_push_back(block);
  else
    pool_->free(block);
}

int32_t PrefixCache::allocate() {
  int32_t b = pool_->allocate();
  if (b >= 0 || head_ < 0) return b;
  const int32_t victim = head_;
  lru_remove(victim);
  unregister(victim);
  ++evictions_;
  pool_->free(victim);
  return pool_->allocate();
}

std::vector<int32_t> PrefixCache::eviction_order() const {
  std::vector<int32_t> out;
  for (int32_t b = head_; b >= 0; b = next_[static_cast<std::size_t>(b)]) out.push_back(b);
  return out;
}

void PrefixCache::lru_push_back(int32_t block) {
  const auto i = static_cast<std::size_t>(block);
  prev_[i] = tail_;
  next_[i] = -1;
  if (tail_ >= 0)
    next_[static_cast<std::size_t>(tail_)] = block;
  else
    head_ = block;
  tail_ = block;
  in_lru_[i] = true;
  ++num_evictable_;
}

void PrefixCache::lru_remove(int32_t block) {
  const auto i = static_cast<std::size_t>(block);
  const int32_t p = prev_[i], n = next_[i];
  if (p >= 0)
    next_[static_cast<std::size_t>(p)] = n;
  else
    head_ = n;
  if (n >= 0)
    prev_[static_cast<std::size_t>(n)] = p;
  else
    tail_ = p;
  prev_[i] = next_[i] = -1;
  in_lru_[i] = false;
  --num_evictable_;
}

void PrefixCache::unregister(int32_t block) {
  const auto i = static_cast<std::size_t>(block);
  by_hash_.erase(hash_[i]);
  registered_[i] = false;
}

}  // namespace flowrank::engine
