#pragma once
// What a backend implements: one step over a batch of sequence chunks whose KV lives in a paged
// pool the backend owns, ending in one sampled token per sequence that asked for one. Scheduling
// and prefix caching are not its business; the sampling rule is shared (sampler.hpp), the runner
// applies it where its logits live, so full-vocabulary logits leave the device only when asked.
//
// The batch is flat metadata built once per step by LlmEngine (as vLLM and nano-vllm hand it to
// their model runners): token-level arrays, sequence-level arrays, the sequences' KV pages in CSR
// form (the layout paged-attention kernels consume; only pages that hold KV are listed), and one
// sampling row per sequence whose last new token is sampled.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "flowrank/engine/model.hpp"
#include "flowrank/engine/sampler.hpp"

namespace flowrank::engine {

// KV of block src is copied to block dst (all layers) before the step's forward.
struct BlockCopy {
  int32_t src = -1;
  int32_t dst = -1;
};

struct StepBatch {
  // Per token (every new token of every sequence, sequences in order).
  std::vector<int32_t> input_ids;
  std::vector<int32_t> positions;
  std::vector<int32_t> slot_mapping;  // pool slot of the token's KV: block * block_size + offset
  // Per sequence (num_seqs entries; query_start and page_start have num_seqs + 1).
  std::vector<int32_t> query_start;  // cumulative new-token counts (cu_seqlens_q)
  std::vector<int32_t> seq_lens;     // tokens with KV once the step is done (cached + new)
  std::vector<int32_t> page_start;   // cumulative page counts into `pages` (kv_indptr)
  std::vector<int32_t> pages;        // each sequence's blocks covering [0, seq_len), in order
  // Per sampled row: the sequence index and how to sample its last new token.
  std::vector<int32_t> sample_seqs;  // ascending sequence indices
  std::vector<SampleRow> sampling;
  std::vector<BlockCopy> copies;
  bool return_logits = false;  // also hand back the sampled rows' logits (tests, --logits)
  int32_t max_query_len = 0;   // longest query_start difference
  int32_t max_seq_len = 0;     // longest seq_len

  int32_t num_tokens() const { return static_cast<int32_t>(input_ids.size()); }
  int32_t num_seqs() const { return static_cast<int32_t>(seq_lens.size()); }
  int32_t num_samples() const { return static_cast<int32_t>(sample_seqs.size()); }
  bool is_decode_only() const { return max_query_len <= 1; }

  void clear();
  // Appends one sequence computing `tokens` at positions [start_pos, start_pos + size) with KV
  // pages `block_table` (which must cover start_pos + size tokens) and, when `sample` is set,
  // a sampling row for its last token.
  void add_sequence(std::span<const int32_t> tokens, int32_t start_pos,
                    std::span<const int32_t> block_table, int32_t block_size,
                    const SampleRow* sample);
};

struct StepResult {
  std::vector<int32_t> tokens;  // one per sampling row, in row order
  std::vector<float> logits;    // num_samples x n_vocab when the batch asked for them
};

// What a runner must size for at preload.
struct RunnerLimits {
  int32_t max_seqs = 64;            // sequences in one step
  int32_t max_batch_tokens = 2048;  // new tokens in one step
  int32_t block_size = 16;          // tokens per KV block
  int32_t kv_blocks = 0;            // > 0: exactly this many blocks; 0: what memory allows
  int32_t kv_blocks_cap = 0;        // with kv_blocks = 0: no more than this (0 = no cap)
};

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual const ModelConfig& config() const = 0;
  // Loads the weights, makes everything a step needs for the limits, then allocates the KV pool
  // from what memory is left. Returns the number of KV blocks. Throws RunError on out of memory,
  // saying how much was asked and how much was free.
  virtual int32_t preload(const RunnerLimits& limits) = 0;
  // Starts a step: the block copies, the forward (KV of every new token written through
  // slot_mapping) and the sampling. May return before the device is done, so the caller can do
  // host work meanwhile; the batch must stay alive until finish().
  virtual void launch(const StepBatch& batch) = 0;
  // Waits for the step launch() started and hands back its tokens (and logits if asked).
  virtual void finish(StepResult& result) = 0;
  virtual std::string device_name() const = 0;
  // Bytes of one weight or KV value as this backend holds them (f32 on the CPU, bf16 on a GPU).
  virtual int32_t value_bytes() const { return 4; }

  // launch() + finish().
  void run(const StepBatch& batch, StepResult& result) {
    launch(batch);
    finish(result);
  }
};

}  // namespace flowrank::engine
