#pragma once
// The CPU backend's row-level operations: what CpuModelRunner executes for each op of the model
// plan, and the references every CUDA kernel is tested against. Each is a fixed serial order of
// f32 (or, where noted, double) arithmetic, so a row's result never depends on its batch.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "flowrank/engine/model_plan.hpp"

namespace flowrank::engine::cpu {

// y = x / sqrt(mean(x^2) + eps) * w; the sum of squares in double, in index order. y may be x.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);

// cos and sin (times the table's mscale) of every rotated pair at `pos`: out[2i], out[2i + 1].
// The angle is computed in double and rounded to float once.
void rope_cos_sin(const RopeTable& table, int32_t pos, float* out);
// Rotates the first table.dims dims of each of n_heads heads of `v` (head_dim apart) in place:
// pairs (2i, 2i+1) for kInterleaved, (i, i + dims/2) for kNeox.
void rope_apply(const RopeTable& table, float* v, int32_t n_heads, int32_t head_dim,
                const float* cos_sin);

float silu(float x);
// act[i] = silu(gate[i]) * up[i].
void swiglu(const float* gate, const float* up, float* act, int64_t n);

// A layer's K and V in a paged pool: the rows of block b start at k + b * block_stride (and
// v + b * block_stride), one row per slot of n_head_kv * head_dim floats.
struct PagedKv {
  const float* k = nullptr;
  const float* v = nullptr;
  std::size_t block_stride = 0;
  int32_t block_size = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
};

// Attention of the `group` query heads that share KV head `kv_head`, for one query at position
// `pos` of a sequence whose KV pages are `pages`: softmax over positions [first, pos] of
// (q . k) * scale, times v. q and out hold the group's heads back to back (group * head_dim).
// `scores` is scratch of at least group * (pos - first + 1) floats.
void attend(const float* q, int32_t group, int32_t kv_head, std::span<const int32_t> pages,
            int32_t first, int32_t pos, const PagedKv& kv, float scale, float* out,
            std::vector<float>& scores);

}  // namespace flowrank::engine::cpu
