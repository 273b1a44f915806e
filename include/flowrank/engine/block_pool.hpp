#pragma once
// Fixed pool of KV blocks (block_size token slots each) with reference counts and a free list.
// The pool only counts; the KV itself lives in the backend (ModelRunner), indexed by block id.
// A block whose count drops to zero is handed back by the caller: either to the free list
// (release_to_free) or kept aside by the PrefixCache, which later frees it on eviction.
#include <cstdint>
#include <vector>

namespace flowrank::engine {

class BlockPool {
 public:
  BlockPool(int32_t num_blocks, int32_t block_size);

  int32_t num_blocks() const { return static_cast<int32_t>(ref_.size()); }
  int32_t block_size() const { return block_size_; }
  int32_t num_free() const { return static_cast<int32_t>(free_.size()); }
  int32_t ref_count(int32_t block) const { return ref_.at(static_cast<std::size_t>(block)); }
  // Blocks needed to hold n tokens.
  int32_t blocks_for(int32_t n_tokens) const { return (n_tokens + block_size_ - 1) / block_size_; }

  // Takes a block from the free list with ref 1; -1 when the free list is empty.
  int32_t allocate();
  // ref += 1. A block with ref 0 may be retained only if it is not on the free list (a cached
  // block being revived); retaining a free-listed block is a logic error.
  void retain(int32_t block);
  // ref -= 1; returns the new count. Throws std::logic_error below zero.
  int32_t release(int32_t block);
  // Puts a block with ref 0 back on the free list.
  void free(int32_t block);
  bool is_free(int32_t block) const { return on_free_list_.at(static_cast<std::size_t>(block)); }

 private:
  int32_t block_size_;
  std::vector<int32_t> ref_;
  std::vector<int32_t> free_;  // stack: the most recently freed block is reused first
  std::vector<bool> on_free_list_;
};

}  // namespace flowrank::engine
