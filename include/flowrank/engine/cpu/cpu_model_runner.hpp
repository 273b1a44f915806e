#pragma once
// The reference CPU backend: f32 compute straight from the weights as the model file stores them
// (quantized blocks dequantized on the fly, cpu_kernels.hpp), a paged f32 KV pool; it executes
// the ModelPlan op by op (cpu_ops.hpp) and samples on the host. Exact and batch invariant: a
// sequence's logits are bitwise the same whatever else shares its batch, however its prompt was
// chunked, whether a prefix came from the cache, and on whichever kernels the processor runs,
// because every output element is computed by one fixed sequence of f32 operations.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flowrank/engine/cpu/cpu_kernels.hpp"
#include "flowrank/engine/cpu/thread_pool.hpp"
#include "flowrank/engine/model.hpp"
#include "flowrank/engine/model_plan.hpp"
#include "flowrank/engine/model_runner.hpp"
#include "flowrank/engine/sampler.hpp"

namespace flowrank::engine {

struct CpuRunnerOptions {
  int32_t threads = 0;  // worker threads (the caller included); 0 = all cores
  // Bytes of memory this backend may use for weights + KV pool; 0 = MemAvailable.
  std::size_t memory_limit_bytes = 0;
};

// Bytes the OS says are available (/proc/meminfo MemAvailable); 0 if unreadable.
std::size_t cpu_available_memory();

// Bytes the projection and embedding weights of `config` take stored as `type` (norms left out):
// lets a caller refuse a model before generating or mapping it.
std::size_t weight_bytes_of(const ModelConfig& config, TensorType type);
// Throws RunError("out of memory: model <source> needs N GiB of weights, M GiB available").
void require_weights_fit(const std::string& source, std::size_t weight_bytes, std::size_t budget);

class CpuModelRunner final : public ModelRunner {
 public:
  explicit CpuModelRunner(ModelWeights weights, CpuRunnerOptions options = {});
  ~CpuModelRunner() override;
  CpuModelRunner(const CpuModelRunner&) = delete;
  CpuModelRunner& operator=(const CpuModelRunner&) = delete;

  const ModelConfig& config() const override { return weights_.config; }
  const ModelPlan& plan() const { return plan_; }
  // Checks the weights, reads them into memory once and allocates the pool: limits.kv_blocks
  // blocks, or what (memory limit or MemAvailable) / 2 leaves beside the weights, capped at
  // kv_blocks_cap and 16 full contexts. The pool's pages are touched only when KV is written.
  // Throws RunError("out of memory: model needs N GiB of weights, M GiB available") when it does
  // not fit.
  int32_t preload(const RunnerLimits& limits) override;
  // Runs the whole step (the CPU has nothing to overlap with). Throws RunError for a page or
  // token id out of range, or a call before preload.
  void launch(const StepBatch& batch) override;
  void finish(StepResult& result) override;
  std::string device_name() const override;

  int32_t threads() const { return threads_; }
  // Bytes the weights take in memory, as the model file stores them.
  std::size_t weight_bytes() const;

 private:
  // A layer's projections as views of the model's tensors; norms and biases as f32 copies.
  struct Layer {
    // Members named as the WeightSlots (visit_layer_slot).
    cpu::WeightRows wqkv[3], w_gate_up[2], wo, w_down;
    std::vector<float> bqkv;  // empty unless qkv_bias
    std::vector<float> attn_norm, ffn_norm, q_norm, k_norm, post_attn_norm, post_ffn_norm;
  };
  // The plan's buffers for one step, reused between steps.
  struct Buffers {
    std::vector<float> x, h, qkv, attn, proj, gate_up, act;
    std::vector<int32_t> row_seq;             // sequence of each token row
    std::vector<std::vector<float>> cos_sin;  // per RoPE table: rows x pairs x 2
    std::vector<float> last;                  // sampled rows' normed hidden states
    std::vector<float> logits;                // sampled rows x n_vocab
  };
  // One attention job: a tile of consecutive query rows of one sequence, one KV head.
  struct AttentionJob {
    int32_t seq, row0, rows, kv_head;
  };

  void check_weights_fit() const;
  int32_t pool_blocks(const RunnerLimits& limits) const;
  void load_weights();
  const std::vector<float>& vector_weight(int32_t layer, WeightSlot slot) const;
  void validate(const StepBatch& batch) const;
  void prepare(const StepBatch& batch);
  void matmul(const float* x, std::span<const cpu::WeightRows> parts, float* y, int64_t n);
  // fn(r) for every token row, on the pool when there are enough rows.
  template <typename Fn>
  void for_rows(Fn&& fn);

  // One function per plan op.
  void embed(const StepBatch& batch, const PlanOp& op);
  void qkv_proj(const PlanOp& op);
  void qk_norm(const PlanOp& op);
  void rope(const PlanOp& op);
  void store_kv(const StepBatch& batch, int32_t layer);
  void attention(const StepBatch& batch, const PlanOp& op);
  void residual(const PlanOp& op);
  void logits(const StepBatch& batch);
  void sample(const StepBatch& batch);

  ModelWeights weights_;
  ModelPlan plan_;
  CpuRunnerOptions options_;
  int32_t threads_ = 1;
  std::unique_ptr<cpu::ThreadPool> pool_;
  std::size_t memory_budget_ = 0;  // bytes, fixed at construction (before our own allocations)

  bool preloaded_ = false;
  cpu::WeightRows tok_embd_, output_;  // output_ is the token embedding when tied
  std::vector<float> output_norm_;
  std::vector<Layer> layers_;

  int32_t num_blocks_ = 0;
  int32_t block_size_ = 0;
  std::size_t block_floats_ = 0;              // floats of K (or V) per block, all layers
  std::unique_ptr<float[]> k_pool_, v_pool_;  // see cpu::PagedKv for the layout

  int64_t rows_ = 0;  // token rows of the current step
  Buffers buf_;
  std::vector<AttentionJob> jobs_;
  StepResult result_;
  Sampler sampler_;
};

}  // namespace flowrank::engine
