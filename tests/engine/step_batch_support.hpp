#pragma once
// Runner tests build steps item by item (a sequence's new tokens, its start position, its block
// table, whether its logits are wanted); this turns them into the flat StepBatch the runners take
// and hands back the logits of the wanted rows.
#include <cstdint>
#include <span>
#include <vector>

#include "flowrank/engine/model_runner.hpp"

namespace flowrank::engine::testing {

struct TestItem {
  std::span<const int32_t> tokens;
  int32_t start_pos = 0;
  std::span<const int32_t> block_table;
  bool want_logits = false;
};

struct TestBatch {
  std::vector<TestItem> items;
  int32_t block_size = 16;
};

inline StepBatch to_step_batch(const TestBatch& b) {
  StepBatch batch;
  batch.clear();
  batch.return_logits = true;
  const SampleRow greedy;
  for (const TestItem& it : b.items)
    batch.add_sequence(it.tokens, it.start_pos, it.block_table, b.block_size,
                       it.want_logits ? &greedy : nullptr);
  return batch;
}

// Runs the batch as one step; `logits` gets n_vocab values per item that wanted them, in order.
inline void forward_logits(ModelRunner& runner, const TestBatch& b, std::vector<float>& logits) {
  StepResult result;
  runner.run(to_step_batch(b), result);
  logits = std::move(result.logits);
}

inline int32_t preload_blocks(ModelRunner& runner, int32_t blocks, int32_t block_size) {
  RunnerLimits limits;
  limits.kv_blocks = blocks;
  limits.block_size = block_size;
  return runner.preload(limits);
}

}  // namespace flowrank::engine::testing
