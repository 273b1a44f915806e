#include "flowrank/engine/block_pool.hpp"

#include <stdexcept>
#include <string>

namespace flowrank::engine {

BlockPool::BlockPool(int32_t num_blocks, int32_t block_size)
    : block_size_(block_size),
      ref_(static_cast<std::size_t>(num_blocks), 0),
      on_free_list_(static_cast<std::size_t>(num_blocks), true) {
  if (num_blocks <= 0 || block_size <= 0)
    throw std::invalid_argument("BlockPool: num_blocks and block_size must be positive");
  free_.reserve(static_cast<std::size_t>(num_blocks));
  // Stack order: block 0 is handed out first.
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

int32_t BlockPool::allocate() {
  if (free_.empty()) return -1;
  const int32_t b = free_.back();
  free_.pop_back();
  on_free_list_[static_cast<std::size_t>(b)] = false;
  ref_[static_cast<std::size_t>(b)] = 1;
  return b;
}

void BlockPool::retain(int32_t block) {
  const auto i = static_cast<std::size_t>(block);
  if (on_free_list_.at(i))
    throw std::logic_error("BlockPool: retain of free block " + std::to_string(block));
  ++ref_[i];
}

int32_t BlockPool::release(int32_t block) {
  const auto i = static_cast<std::size_t>(block);
  if (ref_.at(i) <= 0)
    throw std::logic_error("BlockPool: release of block " + std::to_string(block) +
                           " with ref count " + std::to_string(ref_[i]));
  return --ref_[i];
}

void BlockPool::free(int32_t block) {
  const auto i = static_cast<std::size_t>(block);
  if (ref_.at(i) != 0 || on_free_list_[i])
    throw std::logic_error("BlockPool: free of block " + std::to_string(block) +
                           " that is referenced or already free");
  on_free_list_[i] = true;
  free_.push_back(block);
}

}  // namespace flowrank::engine
