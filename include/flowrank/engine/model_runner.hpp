#pragma once
// What a backend implements: forward passes over a batch of sequence chunks whose KV lives in a
// paged pool the backend owns. Scheduling, prefix caching and sampling are not its business.
#include <cstdint>
#include <span>
#include <vector>

#include "flowrank/engine/model.hpp"

namespace flowrank::engine {

struct ForwardItem {
  std::span<const int32_t> tokens;       // new tokens to compute for this sequence
  int32_t start_pos = 0;                 // position of tokens[0]; KV of [0, start_pos) is cached
  std::span<const int32_t> block_table;  // KV blocks of the sequence, covering start_pos+size
  bool want_logits = false;              // logits of the last token are needed (sampling)
};

struct ForwardBatch {
  std::vector<ForwardItem> items;
};

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual const ModelConfig& config() const = 0;
  // Converts weights and allocates a KV pool of `num_blocks` blocks of `block_size` tokens.
  virtual void preload(int32_t num_blocks, int32_t block_size) = 0;
  // Largest pool that fits the memory the backend may use (for sizing when not given).
  virtual int32_t max_kv_blocks(int32_t block_size) const = 0;
  // Writes the KV of every item's tokens into its blocks and, for each item with want_logits,
  // n_vocab logits into `logits` (in item order, only for those items).
  virtual void forward(const ForwardBatch& batch, std::vector<float>& logits) = 0;
  // Copies the KV of one block to another (copy-on-write of a shared partial block).
  virtual void copy_block(int32_t src, int32_t dst) = 0;
  virtual std::string device_name() const = 0;
};

}  // namespace flowrank::engine
