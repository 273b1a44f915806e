// Elementwise kernels on projection outputs: SwiGLU and the qkv bias. One CTA per token row.
#include "cuda_check.cuh"
#include "device_rows.cuh"
#include "kernels.cuh"

namespace flowrank::engine::cuda {
namespace {

constexpr int kThreads = 256;

// As cpu::silu: x / (1 + exp(-x)) in f32 (expf within 2 ulp of cpu::exp_ref, IEEE division;
// below x = -88 expf overflows to inf where exp_ref stops at e^88: -0 here, ~1e-36 there).
__device__ float silu(float x) {
  return __fdiv_rn(x, __fadd_rn(1.0f, expf(-x)));
}

struct SiluTimes {
  __device__ float operator()(float gate, float up) const { return __fmul_rn(silu(gate), up); }
};

struct Plus {
  __device__ float operator()(float a, float b) const { return __fadd_rn(a, b); }
};

// out[r][i] = op(a[r][i], b[r][i]) for i < n, rows `stride` values apart (b's stride 0: one row
// for all). One CTA per row.
struct RowPair {
  const bf16* a;
  int64_t a_stride;
  const bf16* b;
  int64_t b_stride;
  bf16* out;
  int64_t out_stride;
  int32_t n;
};

template <int V, typename Op>
__global__ void combine_rows_kernel(RowPair p, Op op) {
  const int64_t r = blockIdx.x;
  const bf16* a = p.a + r * p.a_stride;
  const bf16* b = p.b + r * p.b_stride;
  bf16* out = p.out + r * p.out_stride;
  for (int32_t i = threadIdx.x * V; i < p.n; i += blockDim.x * V) {
    float x[V], y[V];
    load_vec<V>(a + i, x);
    load_vec<V>(b + i, y);
#pragma unroll
    for (int k = 0; k < V; ++k) x[k] = op(x[k], y[k]);
    store_vec<V>(out + i, x);
  }
}

// 16-byte vectors when every row of every operand starts 16-byte aligned.
template <typename Op>
void combine_rows(const RowPair& p, int32_t T, Op op, cudaStream_t stream) {
  const bool vec = p.n % kVec == 0 && p.a_stride % kVec == 0 && p.b_stride % kVec == 0 &&
                   p.out_stride % kVec == 0 && aligned16(p.a) && aligned16(p.b) && aligned16(p.out);
  if (vec)
    combine_rows_kernel<kVec><<<T, kThreads, 0, stream>>>(p, op);
  else
    combine_rows_kernel<1><<<T, kThreads, 0, stream>>>(p, op);
}

}  // namespace

void swiglu(const bf16* gate_up, bf16* act, int32_t T, int32_t F, cudaStream_t stream) {
  if (T <= 0 || F <= 0) return;
  combine_rows(RowPair{gate_up, 2 * int64_t{F}, gate_up + F, 2 * int64_t{F}, act, F, F}, T,
               SiluTimes{}, stream);
  check_launch("swiglu");
}

// In place: each element is read and then written by the same thread.
void add_bias(bf16* qkv, const bf16* bias, int32_t T, int32_t nqkv, cudaStream_t stream) {
  if (T <= 0 || nqkv <= 0) return;
  combine_rows(RowPair{qkv, nqkv, bias, 0, qkv, nqkv, nqkv}, T, Plus{}, stream);
  check_launch("add_bias");
}

}  // namespace flowrank::engine::cuda
