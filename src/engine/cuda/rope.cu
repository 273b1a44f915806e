// RoPE: the cos/sin table (once per table at preload) and the rotation of q and k in place.
#include <algorithm>

#include "cuda_check.cuh"
#include "kernels.cuh"

namespace flowrank::engine::cuda {
namespace {

constexpr int kThreads = 256;

// As cpu::rope_cos_sin: the angle and its cos/sin in double, rounded to f32, times mscale.
__global__ void rope_table_kernel(const double* inv_freq, int32_t pairs, float mscale, int64_t n,
                                  float2* cos_sin) {
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t pos = idx / pairs;
    const auto i = static_cast<int32_t>(idx % pairs);
    const double angle = static_cast<double>(pos) * inv_freq[i];
    cos_sin[idx] = make_float2(__fmul_rn(static_cast<float>(cos(angle)), mscale),
                               __fmul_rn(static_cast<float>(sin(angle)), mscale));
  }
}

// One CTA per row; a thread per rotated pair of one head (q heads, then k heads, head_dim apart).
// As cpu::rope_apply: (x0 c - x1 s, x0 s + x1 c), each product rounded on its own.
__global__ void apply_rope_kernel(bf16* qkv, const int32_t* positions, const float2* cos_sin,
                                  bool interleaved, int32_t pairs, int32_t head_dim,
                                  int32_t n_heads, int64_t row_stride) {
  bf16* row = qkv + static_cast<int64_t>(blockIdx.x) * row_stride;
  const float2* cs = cos_sin + static_cast<int64_t>(positions[blockIdx.x]) * pairs;
  for (int32_t job = threadIdx.x; job < n_heads * pairs; job += blockDim.x) {
    const int32_t i = job % pairs;
    bf16* x = row + static_cast<int64_t>(job / pairs) * head_dim;
    const int32_t a = interleaved ? 2 * i : i;
    const int32_t b = interleaved ? 2 * i + 1 : i + pairs;
    const float x0 = __bfloat162float(x[a]);
    const float x1 = __bfloat162float(x[b]);
    const float2 c = cs[i];
    x[a] = __float2bfloat16_rn(__fsub_rn(__fmul_rn(x0, c.x), __fmul_rn(x1, c.y)));
    x[b] = __float2bfloat16_rn(__fadd_rn(__fmul_rn(x0, c.y), __fmul_rn(x1, c.x)));
  }
}

}  // namespace

void rope_table(const double* inv_freq, int32_t pairs, float mscale, int32_t max_pos,
                float2* cos_sin, cudaStream_t stream) {
  if (pairs <= 0 || max_pos <= 0) return;
  const int64_t n = static_cast<int64_t>(max_pos) * pairs;
  const auto blocks =
      static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65536));
  rope_table_kernel<<<blocks, kThreads, 0, stream>>>(inv_freq, pairs, mscale, n, cos_sin);
  check_launch("rope_table");
}

void apply_rope(bf16* qkv, const int32_t* positions, const float2* cos_sin, bool interleaved,
                int32_t dims, int32_t head_dim, int32_t n_head, int32_t n_head_kv, int32_t T,
                cudaStream_t stream) {
  if (T <= 0 || dims < 2) return;
  const int64_t row_stride = static_cast<int64_t>(n_head + 2 * n_head_kv) * head_dim;
  apply_rope_kernel<<<T, kThreads, 0, stream>>>(qkv, positions, cos_sin, interleaved, dims / 2,
                                                head_dim, n_head + n_head_kv, row_stride);
  check_launch("apply_rope");
}

}  // namespace flowrank::engine::cuda
