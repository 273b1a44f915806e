#pragma once
// The CPU backend's row-level operations: what CpuModelRunner executes for each op of the model
// plan, and the references every CUDA kernel is tested against. Each is a fixed serial order of
// f32 (or, where noted, double) arithmetic, so a row's result never depends on its batch. The
// fast kernels (cpu_kernels.hpp) compute the same bits; these scalar versions say what they are.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "flowrank/engine/model_plan.hpp"

namespace flowrank::engine::cpu {

// The dot product of every projection: 16 running sums, element i going to sum i % 16 as
// s = fma(x[i], w[i], s) in index order, then added pairwise as a tree (sum i + sum i+8, then
// +4, +2, +1), the order one 16-wide vector register reduces in. k may be any length.
float dot16(const float* x, const float* w, int64_t k);
// The tree of dot16 over 16 partial sums.
float reduce16(const float* partial);
// sum of v[0..n) with the same 16 running sums (plain additions) and tree.
float sum16(const float* v, int64_t n);

// e^x in f32, to about 1 ulp: n = nearest(x * log2 e), r = x - n ln2 (two fma steps), a degree-6
// polynomial in r (fma Horner), times 2^n. 0 for x < -87.3 (below the smallest normal float);
// x is capped at 88 (finite result). One formula for every vector width, so softmax gives the
// same bits on each.
float exp_ref(float x);
// exp_ref's constants (Cephes' expf split of ln 2 and polynomial), shared with the vector code.
inline constexpr float kExpMin = -87.3f;
inline constexpr float kExpMax = 88.0f;
inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2Hi = 0.693359375f;
inline constexpr float kLn2Lo = -2.12194440e-4f;
inline constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                      4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

// y = x / sqrt(mean(x^2) + eps) * w; the sum of squares in double, in index order. y may be x.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);

// cos and sin (times the table's mscale) of every rotated pair at `pos`: out[2i], out[2i + 1].
// The angle is computed in double and rounded to float once.
void rope_cos_sin(const RopeTable& table, int32_t pos, float* out);
// Rotates the first table.dims dims of each of n_heads heads of `v` (head_dim apart) in place:
// pairs (2i, 2i+1) for kInterleaved, (i, i + dims/2) for kNeox.
void rope_apply(const RopeTable& table, float* v, int32_t n_heads, int32_t head_dim,
                const float* cos_sin);

// x / (1 + exp_ref(-x)).
float silu(float x);
// act[i] = silu(gate[i]) * up[i].
void swiglu(const float* gate, const float* up, float* act, int64_t n);

// A layer's K and V in a paged pool. Block b's K starts at k + b * block_stride and holds, per
// KV head, head_dim rows of block_size floats: K transposed within the block, so the keys of
// consecutive positions sit side by side for a vector of scores. Block b's V starts at
// v + b * block_stride with one row per slot of n_head_kv * head_dim floats.
struct PagedKv {
  const float* k = nullptr;
  const float* v = nullptr;
  std::size_t block_stride = 0;
  int32_t block_size = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  // Key dim d of the position at `slot` of block `page`, KV head `kv_head`.
  const float* key(int32_t page, int32_t kv_head, int32_t d, int32_t slot) const {
    return k + static_cast<std::size_t>(page) * block_stride +
           (static_cast<std::size_t>(kv_head) * head_dim + d) * block_size + slot;
  }
  const float* value(int32_t page, int32_t kv_head, int32_t slot) const {
    return v + static_cast<std::size_t>(page) * block_stride +
           (static_cast<std::size_t>(slot) * n_head_kv + kv_head) * head_dim;
  }
};

// Attention of the `group` query heads that share KV head `kv_head`, for one query at position
// `pos` of a sequence whose KV pages are `pages`, over positions [first, pos]. Per head:
//   s_j = (q . k_j) * scale, the dot an fma chain over dims in order;
//   e_j = exp_ref(s_j - max_j s_j);  sum = sum16(e);
//   out = (sum_j e_j v_j, an fma chain over positions in order per dim) * (1 / sum).
// q and out hold the group's heads back to back (group * head_dim). `scores` is scratch.
void attend(const float* q, int32_t group, int32_t kv_head, std::span<const int32_t> pages,
            int32_t first, int32_t pos, const PagedKv& kv, float scale, float* out,
            std::vector<float>& scores);

}  // namespace flowrank::engine::cpu
