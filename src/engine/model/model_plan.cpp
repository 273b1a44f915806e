#include "flowrank/engine/model_plan.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "flowrank/common/error.hpp"

namespace flowrank::engine {
namespace {

std::vector<double> base_inv_freq(const ModelConfig& c, int32_t dims) {
  std::vector<double> f(static_cast<std::size_t>(dims / 2));
  for (int32_t i = 0; i < dims / 2; ++i)
    f[static_cast<std::size_t>(i)] =
        1.0 / std::pow(static_cast<double>(c.rope_base), (2.0 * i) / dims);
  return f;
}

// Llama 3.1: long wavelengths slowed by `factor`, short ones kept, a smooth ramp between.
void apply_llama3(const ModelConfig& c, std::vector<double>& inv_freq) {
  const double factor = c.rope_factor;
  const double orig = c.rope_orig_context;
  const double low_wavelen = orig / c.llama3_low_freq_factor;
  const double high_wavelen = orig / c.llama3_high_freq_factor;
  for (double& f : inv_freq) {
    const double wavelen = 2.0 * std::numbers::pi / f;
    if (wavelen < high_wavelen) continue;
    if (wavelen > low_wavelen) {
      f /= factor;
      continue;
    }
    const double smooth = (orig / wavelen - c.llama3_low_freq_factor) /
                          (c.llama3_high_freq_factor - c.llama3_low_freq_factor);
    f = (1.0 - smooth) * f / factor + smooth * f;
  }
}

// YaRN as in HF's _compute_yarn_parameters: low frequencies interpolated by `factor`, high ones
// kept, a linear ramp between the correction dims; cos/sin scaled by the mscale.
void apply_yarn(const ModelConfig& c, int32_t dims, RopeTable& t) {
  const double factor = c.rope_factor;
  const double orig = c.rope_orig_context;
  const auto corr_dim = [&](double rotations) {
    return (dims * std::log(orig / (rotations * 2.0 * std::numbers::pi))) /
           (2.0 * std::log(static_cast<double>(c.rope_base)));
  };
  const double low = std::max(0.0, std::floor(corr_dim(c.yarn_beta_fast)));
  double high = std::min(static_cast<double>(dims - 1), std::ceil(corr_dim(c.yarn_beta_slow)));
  if (low == high) high += 0.001;
  for (std::size_t i = 0; i < t.inv_freq.size(); ++i) {
    const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
    const double extrapolation = 1.0 - ramp;
    const double f = t.inv_freq[i];
    t.inv_freq[i] = (f / factor) * (1.0 - extrapolation) + f * extrapolation;
  }
  const double mscale = factor > 1.0 ? 0.1 * std::log(factor) + 1.0 : 1.0;
  t.mscale = static_cast<float>(mscale * c.yarn_attn_factor);
}

// Table 0: the model's RoPE with its scaling. Table 1 (YaRN models only): plain RoPE for the
// sliding-window layers, which OLMo-3 leaves unscaled.
std::vector<RopeTable> rope_tables(const ModelConfig& c) {
  const int32_t dims = c.rope_dim > 0 ? c.rope_dim : c.head_dim;
  RopeTable plain;
  plain.style = c.rope_style;
  plain.dims = dims;
  plain.inv_freq = base_inv_freq(c, dims);
  RopeTable main = plain;
  if (!c.rope_freq_factors.empty() && c.rope_scaling != RopeScaling::kYarn) {
    // Factors from the GGUF (rope_freqs.weight, llama3): llama.cpp divides each pair's
    // frequency by its factor.
    if (c.rope_freq_factors.size() != main.inv_freq.size()) {
      throw RunError("model: " + std::to_string(c.rope_freq_factors.size()) +
                     " rope frequency factors for " + std::to_string(main.inv_freq.size()) +
                     " rotated pairs");
    }
    for (std::size_t i = 0; i < main.inv_freq.size(); ++i)
      main.inv_freq[i] /= c.rope_freq_factors[i];
  } else if (c.rope_scaling == RopeScaling::kLlama3) {
    apply_llama3(c, main.inv_freq);
  } else if (c.rope_scaling == RopeScaling::kYarn) {
    apply_yarn(c, dims, main);
    return {main, plain};
  }
  return {main};
}

void check_supported(const ModelConfig& c) {
  if (c.arch != "llama" && c.arch != "olmo2" && c.arch != "qwen2")
    throw RunError("model: unsupported architecture '" + c.arch + "'");
  if (c.n_layer <= 0 || c.n_head <= 0 || c.n_head_kv <= 0 || c.head_dim <= 0 ||
      c.n_head % c.n_head_kv != 0)
    throw RunError("model: " + std::to_string(c.n_head) + " query heads cannot share " +
                   std::to_string(c.n_head_kv) + " KV heads");
  const int32_t dims = c.rope_dim > 0 ? c.rope_dim : c.head_dim;
  if (dims % 2 != 0 || dims > c.head_dim)
    throw RunError("model: rope dims " + std::to_string(dims) + " for head size " +
                   std::to_string(c.head_dim));
}

}  // namespace

ModelPlan ModelPlan::build(const ModelConfig& c) {
  check_supported(c);
  ModelPlan plan;
  plan.ropes = rope_tables(c);
  plan.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  plan.rms_eps = c.rms_eps;
  // Pre-norm (llama, qwen2): each half starts from norm(x). Post-norm (olmo2): each half reads x
  // itself and normalises its output before the residual add.
  const bool pre = !c.post_norms;
  const WeightSlot attn_in = pre ? WeightSlot::kAttnNorm : WeightSlot::kNone;
  const WeightSlot ffn_in = pre ? WeightSlot::kFfnNorm : WeightSlot::kNone;
  const WeightSlot attn_post = pre ? WeightSlot::kNone : WeightSlot::kPostAttnNorm;
  const WeightSlot ffn_post = pre ? WeightSlot::kNone : WeightSlot::kPostFfnNorm;

  plan.ops.push_back({.kind = OpKind::kEmbed, .norm = attn_in, .norm_layer = 0});
  for (int32_t il = 0; il < c.n_layer; ++il) {
    const auto l = static_cast<std::size_t>(il);
    const bool sliding = c.sliding_window > 0 && l < c.layer_sliding.size() && c.layer_sliding[l];
    // YaRN models keep plain RoPE on their sliding-window layers (OLMo-3).
    const int32_t rope = sliding && plan.ropes.size() > 1 ? 1 : 0;
    plan.ops.push_back({.kind = OpKind::kQkvProj, .layer = il, .bias = c.qkv_bias});
    if (c.qk_norm) plan.ops.push_back({.kind = OpKind::kQkNorm, .layer = il});
    plan.ops.push_back({.kind = OpKind::kRope, .layer = il, .rope = rope});
    plan.ops.push_back(
        {.kind = OpKind::kAttention, .layer = il, .window = sliding ? c.sliding_window : 0});
    plan.ops.push_back({.kind = OpKind::kOutProj, .layer = il});
    plan.ops.push_back({.kind = OpKind::kResidual,
                        .layer = il,
                        .norm = ffn_in,
                        .norm_layer = il,
                        .post_norm = attn_post});
    plan.ops.push_back({.kind = OpKind::kGateUpProj, .layer = il});
    plan.ops.push_back({.kind = OpKind::kSwiGlu, .layer = il});
    plan.ops.push_back({.kind = OpKind::kDownProj, .layer = il});
    // The next layer's input norm is applied here (fused); the last layer leaves h unused.
    const bool last = il + 1 == c.n_layer;
    plan.ops.push_back({.kind = OpKind::kResidual,
                        .layer = il,
                        .norm = last ? WeightSlot::kNone : attn_in,
                        .norm_layer = il + 1,
                        .post_norm = ffn_post});
  }
  plan.ops.push_back({.kind = OpKind::kLogits});
  return plan;
}

const char* op_name(OpKind kind) {
  switch (kind) {
    case OpKind::kEmbed:
      return "embed";
    case OpKind::kQkvProj:
      return "qkv";
    case OpKind::kQkNorm:
      return "qk_norm";
    case OpKind::kRope:
      return "rope";
    case OpKind::kAttention:
      return "attention";
    case OpKind::kOutProj:
      return "out_proj";
    case OpKind::kResidual:
      return "residual";
    case OpKind::kGateUpProj:
      return "gate_up";
    case OpKind::kSwiGlu:
      return "swiglu";
    case OpKind::kDownProj:
      return "down";
    case OpKind::kLogits:
      return "logits";
  }
  return "?";
}

std::string ModelPlan::describe() const {
  std::string s;
  for (const PlanOp& op : ops) {
    if (!s.empty()) s += ", ";
    s += op_name(op.kind);
    if (op.kind == OpKind::kAttention)
      s += op.window > 0 ? "(window " + std::to_string(op.window) + ")" : "(full)";
    if (op.kind == OpKind::kRope) s += "(" + std::to_string(op.rope) + ")";
    if (op.kind == OpKind::kResidual && op.post_norm != WeightSlot::kNone) s += "(post-norm)";
  }
  return s;
}

}  // namespace flowrank::engine
