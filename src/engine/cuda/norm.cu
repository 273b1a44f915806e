// RMSNorm kernels: the embedding lookup, the residual step, QK-norm and the logits rows. One CTA
// per row; the sum of squares in double as cpu::rms_norm takes it (only its order differs), the
// scale rounded to f32, then y = (x * scale) * w in f32 and rounded to bf16.
#include "cuda_check.cuh"
#include "device_rows.cuh"
#include "kernels.cuh"

namespace flowrank::engine::cuda {
namespace {

constexpr int kThreads = 256;

__device__ float rms_scale(double sum_sq, int32_t n, float eps) {
  return static_cast<float>(1.0 / sqrt(sum_sq / static_cast<double>(n) + static_cast<double>(eps)));
}

template <int V, typename In>
__device__ double sum_squares(const In* x, int32_t n) {
  double ss = 0.0;
  for (int32_t i = threadIdx.x * V; i < n; i += blockDim.x * V) {
    float v[V];
    load_vec<V>(x + i, v);
#pragma unroll
    for (int k = 0; k < V; ++k) ss += static_cast<double>(v[k]) * static_cast<double>(v[k]);
  }
  return block_reduce(ss, SumOp{});
}

// out = (x * scale) * w over a row of n; out may be x (each element is read and written by the
// same thread).
template <int V, typename In>
__device__ void scale_row(const In* x, float scale, const bf16* w, bf16* out, int32_t n) {
  for (int32_t i = threadIdx.x * V; i < n; i += blockDim.x * V) {
    float v[V], g[V];
    load_vec<V>(x + i, v);
    load_vec<V>(w + i, g);
#pragma unroll
    for (int k = 0; k < V; ++k) v[k] = __fmul_rn(__fmul_rn(v[k], scale), g[k]);
    store_vec<V>(out + i, v);
  }
}

template <int V>
__global__ void embed_rows_kernel(const int32_t* ids, const bf16* table, int32_t E,
                                  const bf16* norm_w, float eps, float* x, bf16* h) {
  const int64_t r = blockIdx.x;
  const bf16* t = table + static_cast<int64_t>(ids[r]) * E;
  float* xr = x + r * E;
  bf16* hr = h + r * E;
  double ss = 0.0;
  for (int32_t i = threadIdx.x * V; i < E; i += blockDim.x * V) {
    float v[V];
    load_vec<V>(t + i, v);
    store_vec<V>(xr + i, v);
    if (norm_w == nullptr) store_vec<V>(hr + i, v);
#pragma unroll
    for (int k = 0; k < V; ++k) ss += static_cast<double>(v[k]) * static_cast<double>(v[k]);
  }
  if (norm_w == nullptr) return;  // the same for the whole block
  scale_row<V>(t, rms_scale(block_reduce(ss, SumOp{}), E, eps), norm_w, hr, E);
}

template <int V>
__global__ void residual_norm_kernel(const bf16* proj, const bf16* post_w, const bf16* norm_w,
                                     float eps, int32_t E, float* x, bf16* h) {
  const int64_t r = blockIdx.x;
  const bf16* pr = proj + r * E;
  float* xr = x + r * E;
  bf16* hr = h + r * E;
  const float post_scale = post_w != nullptr ? rms_scale(sum_squares<V>(pr, E), E, eps) : 1.0f;
  double ss = 0.0;
  for (int32_t i = threadIdx.x * V; i < E; i += blockDim.x * V) {
    float p[V], xv[V];
    load_vec<V>(pr + i, p);
    load_vec<V>(xr + i, xv);
    if (post_w != nullptr) {
      float w[V];
      load_vec<V>(post_w + i, w);
#pragma unroll
      for (int k = 0; k < V; ++k) p[k] = __fmul_rn(__fmul_rn(p[k], post_scale), w[k]);
    }
#pragma unroll
    for (int k = 0; k < V; ++k) {
      xv[k] = __fadd_rn(xv[k], p[k]);
      ss += static_cast<double>(xv[k]) * static_cast<double>(xv[k]);
    }
    store_vec<V>(xr + i, xv);
    if (norm_w == nullptr) store_vec<V>(hr + i, xv);
  }
  if (norm_w == nullptr) return;  // the same for the whole block
  // Reads back the x values this thread wrote above.
  scale_row<V>(xr, rms_scale(block_reduce(ss, SumOp{}), E, eps), norm_w, hr, E);
}

// blockIdx.y = 0: the q part of the row (nq values), 1: the k part (nkv values).
template <int V>
__global__ void qk_norm_kernel(bf16* qkv, const bf16* wq, const bf16* wk, float eps, int32_t nq,
                               int32_t nkv) {
  const bool is_k = blockIdx.y == 1;
  bf16* v = qkv + static_cast<int64_t>(blockIdx.x) * (nq + 2 * nkv) + (is_k ? nq : 0);
  const int32_t n = is_k ? nkv : nq;
  const float scale = rms_scale(sum_squares<V>(v, n), n, eps);
  scale_row<V>(v, scale, is_k ? wk : wq, v, n);
}

template <int V>
__global__ void gather_norm_kernel(const float* x, const int32_t* rows, int32_t E,
                                   const bf16* norm_w, float eps, bf16* out) {
  const float* xr = x + static_cast<int64_t>(rows[blockIdx.x]) * E;
  const float scale = rms_scale(sum_squares<V>(xr, E), E, eps);
  scale_row<V>(xr, scale, norm_w, out + static_cast<int64_t>(blockIdx.x) * E, E);
}

}  // namespace

void embed_rows(const int32_t* ids, const bf16* table, int32_t T, int32_t E, const bf16* norm_w,
                float eps, float* x, bf16* h, cudaStream_t stream) {
  if (T <= 0 || E <= 0) return;
  if (E % kVec == 0 && aligned16(table) && aligned16(norm_w) && aligned16(x) && aligned16(h))
    embed_rows_kernel<kVec><<<T, kThreads, 0, stream>>>(ids, table, E, norm_w, eps, x, h);
  else
    embed_rows_kernel<1><<<T, kThreads, 0, stream>>>(ids, table, E, norm_w, eps, x, h);
  check_launch("embed_rows");
}

void residual_norm(const bf16* proj, const bf16* post_w, const bf16* norm_w, float eps, int32_t T,
                   int32_t E, float* x, bf16* h, cudaStream_t stream) {
  if (T <= 0 || E <= 0) return;
  if (E % kVec == 0 && aligned16(proj) && aligned16(post_w) && aligned16(norm_w) && aligned16(x) &&
      aligned16(h))
    residual_norm_kernel<kVec><<<T, kThreads, 0, stream>>>(proj, post_w, norm_w, eps, E, x, h);
  else
    residual_norm_kernel<1><<<T, kThreads, 0, stream>>>(proj, post_w, norm_w, eps, E, x, h);
  check_launch("residual_norm");
}

void qk_norm(bf16* qkv, const bf16* wq, const bf16* wk, float eps, int32_t T, int32_t nq,
             int32_t nkv, cudaStream_t stream) {
  if (T <= 0 || nq <= 0 || nkv <= 0) return;
  const dim3 grid(static_cast<unsigned>(T), 2);
  if (nq % kVec == 0 && nkv % kVec == 0 && aligned16(qkv) && aligned16(wq) && aligned16(wk))
    qk_norm_kernel<kVec><<<grid, kThreads, 0, stream>>>(qkv, wq, wk, eps, nq, nkv);
  else
    qk_norm_kernel<1><<<grid, kThreads, 0, stream>>>(qkv, wq, wk, eps, nq, nkv);
  check_launch("qk_norm");
}

void gather_norm(const float* x, const int32_t* rows, int32_t n, int32_t E, const bf16* norm_w,
                 float eps, bf16* out, cudaStream_t stream) {
  if (n <= 0 || E <= 0) return;
  if (E % kVec == 0 && aligned16(x) && aligned16(norm_w) && aligned16(out))
    gather_norm_kernel<kVec><<<n, kThreads, 0, stream>>>(x, rows, E, norm_w, eps, out);
  else
    gather_norm_kernel<1><<<n, kThreads, 0, stream>>>(x, rows, E, norm_w, eps, out);
  check_launch("gather_norm");
}

}  // namespace flowrank::engine::cuda
