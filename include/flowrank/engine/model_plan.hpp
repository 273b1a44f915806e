#pragma once
// The architecture described once. What a transformer layer does for llama, qwen2, olmo2 and
// OLMo-3 (norm placement, QK-norm, bias, window per layer, RoPE kind and scaling) is decided here
// from the ModelConfig and written down as a flat list of operations; every backend executes the
// same list with its own kernels (as llama.cpp's graph builders run on every ggml backend), so no
// runner carries its own copy of the architecture's branching.
//
// Buffers (per token row): x = the residual stream; h = the input of the next projection; qkv;
// attn = attention output; proj = a projection's output; gate_up; act. A backend may keep them
// in whatever precision it likes (the CPU: f32 everywhere; CUDA: x in f32, the rest bf16).
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "flowrank/engine/model.hpp"

namespace flowrank::engine {

// Weights a step refers to, per layer (or model-level for the embedding/output ones).
enum class WeightSlot : uint8_t {
  kNone,
  kTokenEmbd,   // [V][E]
  kOutputNorm,  // [E]
  kOutput,      // [V][E] (the token embedding when tied)
  kAttnNorm,
  kWqkv,  // [n_q + 2 n_kv][E]: q, k, v rows stacked
  kBqkv,  // [n_q + 2 n_kv]
  kQNorm,
  kKNorm,
  kWo,  // [E][n_q]
  kPostAttnNorm,
  kFfnNorm,
  kWGateUp,  // [2 F][E]: gate rows, then up rows
  kWDown,    // [E][F]
  kPostFfnNorm,
};

enum class OpKind : uint8_t {
  // x = tok_embd[input_ids]; then h = norm(x) * `norm` (or h = x when norm is kNone).
  kEmbed,
  // qkv = h W_qkv^T (+ b_qkv when `bias`).
  kQkvProj,
  // q and k of qkv each RMS-normalised over their whole projection (olmo2), times their weights.
  kQkNorm,
  // q and k of qkv rotated by RoPE table `rope` at each token's position.
  kRope,
  // k, v of qkv written to the paged cache through slot_mapping, then attn = softmax(q k^T *
  // attn_scale) v over each sequence's cached positions (causal; the last `window` positions
  // only when window > 0).
  kAttention,
  // proj = attn W_o^T.
  kOutProj,
  // x += (post_norm ? rmsnorm(proj) * post_norm : proj); then h = norm(x) * `norm`, or h = x when
  // norm is kNone. The fused residual step every layer ends its two halves with.
  kResidual,
  // gate_up = h W_gate_up^T.
  kGateUpProj,
  // act = silu(gate) * up.
  kSwiGlu,
  // proj = act W_down^T.
  kDownProj,
  // For each sampled row: rmsnorm(x[row]) * output_norm, times W_out^T -> logits; then sample.
  kLogits,
};

struct PlanOp {
  OpKind kind;
  int32_t layer = -1;                        // whose weights; -1 for model-level ops
  WeightSlot norm = WeightSlot::kNone;       // kEmbed / kResidual: the norm producing h
  int32_t norm_layer = -1;                   // whose `norm` (a layer's end feeds the next one)
  WeightSlot post_norm = WeightSlot::kNone;  // kResidual: the norm applied to proj first
  bool bias = false;                         // kQkvProj
  int32_t rope = -1;                         // kRope: index into ModelPlan::ropes
  int32_t window = 0;                        // kAttention: 0 = full causal
};

// One RoPE table: per rotated pair i, theta_i(pos) = pos * inv_freq[i]; cos and sin times mscale.
struct RopeTable {
  RopeStyle style = RopeStyle::kNeox;
  int32_t dims = 0;              // rotated dims per head (pairs = dims / 2)
  std::vector<double> inv_freq;  // dims / 2 entries, scaling already applied
  float mscale = 1.0f;
};

struct ModelPlan {
  std::vector<PlanOp> ops;
  std::vector<RopeTable> ropes;
  float attn_scale = 1.0f;  // 1 / sqrt(head_dim)
  float rms_eps = 1e-5f;

  // Throws RunError naming the architecture when the config is not one we can run.
  static ModelPlan build(const ModelConfig& config);
  // "embed, 30 x [qkv, rope, attention(full), ...], logits": for tests and `model info`.
  std::string describe() const;
};

const char* op_name(OpKind kind);

// fn(member) with the member of a backend's per-layer weights that holds `slot` (each backend's
// Layer has members named as these: attn_norm, wqkv, ...; their types may differ), fn(nullptr)
// for a model-level slot.
template <class Layer, class Fn>
decltype(auto) visit_layer_slot(Layer& l, WeightSlot slot, Fn&& fn) {
  switch (slot) {
    case WeightSlot::kAttnNorm:
      return fn(l.attn_norm);
    case WeightSlot::kWqkv:
      return fn(l.wqkv);
    case WeightSlot::kBqkv:
      return fn(l.bqkv);
    case WeightSlot::kQNorm:
      return fn(l.q_norm);
    case WeightSlot::kKNorm:
      return fn(l.k_norm);
    case WeightSlot::kWo:
      return fn(l.wo);
    case WeightSlot::kPostAttnNorm:
      return fn(l.post_attn_norm);
    case WeightSlot::kFfnNorm:
      return fn(l.ffn_norm);
    case WeightSlot::kWGateUp:
      return fn(l.w_gate_up);
    case WeightSlot::kWDown:
      return fn(l.w_down);
    case WeightSlot::kPostFfnNorm:
      return fn(l.post_ffn_norm);
    default:
      return fn(nullptr);
  }
}

// The member of `l` that holds `slot` when it has type T, else null (a model-level slot, or a
// member of another type).
template <class T, class Layer>
auto layer_slot_as(Layer& l, WeightSlot slot) {
  using Ptr = std::conditional_t<std::is_const_v<Layer>, const T*, T*>;
  return visit_layer_slot(l, slot, [](auto&& member) -> Ptr {
    if constexpr (std::is_same_v<std::remove_cvref_t<decltype(member)>, T>) {
      return &member;
    } else {
      return nullptr;
    }
  });
}

// Where every member of a backend's Layer has one type (the same as wqkv's).
template <class Layer>
auto layer_slot(Layer& l, WeightSlot slot) -> decltype(&l.wqkv) {
  return layer_slot_as<std::remove_cvref_t<decltype(l.wqkv)>>(l, slot);
}

}  // namespace flowrank::engine
