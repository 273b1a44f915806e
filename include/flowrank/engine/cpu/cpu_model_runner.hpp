#pragma once
// The reference CPU backend: f32 compute over weights dequantized at preload, OpenBLAS sgemm for
// every projection, a paged f32 KV pool; it executes the ModelPlan op by op (cpu_ops.hpp) and
// samples on the host. Exact and batch invariant: a sequence's logits are bitwise the same
// whatever else shares its batch, however its prompt was chunked, and whether a prefix came from
// the cache (see gemm_tile_rows).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flowrank/engine/model.hpp"
#include "flowrank/engine/model_plan.hpp"
#include "flowrank/engine/model_runner.hpp"
#include "flowrank/engine/sampler.hpp"

namespace flowrank::engine {

struct CpuRunnerOptions {
  int32_t threads = 0;  // OpenBLAS and OpenMP threads; 0 = all cores
  // Every projection calls sgemm with M a multiple of this many token rows (the last partial tile
  // zero-padded). OpenBLAS then never takes its M=1 (gemv-like) or small-matrix paths and every
  // row goes through the same full-width micro-kernel with the same K blocking, so a row's
  // reduction order does not depend on how many rows share the batch (tests/engine/cpu checks
  // this bitwise). 16 = the sgemm kernels' M unroll on AVX2/AVX-512 x86.
  // 0 = one sgemm over exactly the batch's rows (naive: faster for batch 1, not invariant).
  int32_t gemm_tile_rows = 16;
  // Bytes of memory this backend may use for f32 weights + KV pool; 0 = MemAvailable.
  std::size_t memory_limit_bytes = 0;
};

// y[m][n] = sum_k x[m][k] * w[n][k] (row-major, w as GGUF stores a weight: n rows of k).
// With tile_rows > 0 sgemm only sees M that are multiples of tile_rows; `scratch` holds the padded
// last tile.
void cpu_matmul(const float* x, int64_t m, const float* w, int64_t n, int64_t k, float* y,
                int32_t tile_rows, std::vector<float>& scratch);

// Bytes the OS says are available (/proc/meminfo MemAvailable); 0 if unreadable.
std::size_t cpu_available_memory();

// Bytes the projection and embedding weights of `config` take as f32 (norms left out): lets a
// caller refuse a model before generating or mapping it.
std::size_t f32_weight_bytes_of(const ModelConfig& config);
// Throws RunError("out of memory: model <source> needs N GiB as f32, M GiB available").
void require_f32_fit(const std::string& source, std::size_t weight_bytes, std::size_t budget);

class CpuModelRunner final : public ModelRunner {
 public:
  explicit CpuModelRunner(ModelWeights weights, CpuRunnerOptions options = {});
  ~CpuModelRunner() override;
  CpuModelRunner(const CpuModelRunner&) = delete;
  CpuModelRunner& operator=(const CpuModelRunner&) = delete;

  const ModelConfig& config() const override { return weights_.config; }
  const ModelPlan& plan() const { return plan_; }
  // Dequantizes the weights to f32 and allocates the pool: limits.kv_blocks blocks, or what
  // (memory limit or MemAvailable) / 2 leaves beside the weights, capped at kv_blocks_cap and 16
  // full contexts. The pool's pages are touched only when KV is written. Throws RunError("out of
  // memory: model needs N GiB as f32, M GiB available") when it does not fit.
  int32_t preload(const RunnerLimits& limits) override;
  // Runs the whole step (the CPU has nothing to overlap with). Throws RunError for a page or
  // token id out of range, or a call before preload.
  void launch(const StepBatch& batch) override;
  void finish(StepResult& result) override;
  std::string device_name() const override;

  int32_t threads() const { return threads_; }
  // Bytes the weights take once dequantized to f32.
  std::size_t f32_weight_bytes() const;

 private:
  struct Layer {
    std::vector<float> wqkv;  // [n_q + 2 n_kv][n_embd]: q, k, v projections stacked
    std::vector<float> bqkv;  // empty unless qkv_bias
    std::vector<float> wo, w_gate_up, w_down;  // w_gate_up: [2 n_ff][n_embd], gate rows first
    std::vector<float> attn_norm, ffn_norm, q_norm, k_norm, post_attn_norm, post_ffn_norm;
  };
  // The plan's buffers for one step, reused between steps.
  struct Buffers {
    std::vector<float> x, h, qkv, attn, proj, gate_up, act;
    std::vector<int32_t> row_seq;             // sequence of each token row
    std::vector<std::vector<float>> cos_sin;  // per RoPE table: rows x pairs x 2
    std::vector<float> logits;                // sampled rows x n_vocab
  };

  void check_weights_fit() const;
  int32_t pool_blocks(const RunnerLimits& limits) const;
  void load_weights();
  const std::vector<float>& weight(int32_t layer, WeightSlot slot) const;
  void validate(const StepBatch& batch) const;
  void prepare(const StepBatch& batch);
  void matmul(const float* x, int64_t m, const std::vector<float>& w, int64_t n, float* y);

  // One function per plan op.
  void embed(const StepBatch& batch, const PlanOp& op);
  void qkv_proj(const PlanOp& op);
  void qk_norm(const PlanOp& op);
  void rope(const PlanOp& op);
  void store_kv(const StepBatch& batch, int32_t layer);
  void attention(const StepBatch& batch, const PlanOp& op);
  void residual(const PlanOp& op);
  void swiglu_rows();
  void logits(const StepBatch& batch);
  void sample(const StepBatch& batch);

  ModelWeights weights_;
  ModelPlan plan_;
  CpuRunnerOptions options_;
  int32_t threads_ = 1;
  std::size_t memory_budget_ = 0;  // bytes, fixed at construction (before our own allocations)

  bool preloaded_ = false;
  std::vector<float> tok_embd_, output_norm_, output_;  // output_ empty when tied
  std::vector<Layer> layers_;

  int32_t num_blocks_ = 0;
  int32_t block_size_ = 0;
  std::size_t block_floats_ = 0;              // floats of K (or V) per block, all layers
  std::unique_ptr<float[]> k_pool_, v_pool_;  // [block][layer][slot][kv_head][head_dim]

  int64_t rows_ = 0;  // token rows of the current step
  Buffers buf_;
  StepResult result_;
  Sampler sampler_;
  std::vector<float> gemm_scratch_;
};

}  // namespace flowrank::engine
