#pragma once
// Device helpers shared by the row kernels: V contiguous values between memory (bf16 or f32) and
// f32 registers, 16 bytes at a time when V = 8 (the caller checks alignment), and deterministic
// block-wide reductions (a fixed tree of warp shuffles and one shared-memory step, so two runs
// give the same bits).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace flowrank::engine::cuda {

// Widest vector the kernels use: 8 bf16 (16 bytes) or 8 f32 (two 16-byte loads).
inline constexpr int kVec = 8;

inline bool aligned16(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

template <int V>
__device__ __forceinline__ void load_vec(const __nv_bfloat16* p, float* v) {
  if constexpr (V == 8) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const auto* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float2 f = __bfloat1622float2(h[k]);
      v[2 * k] = f.x;
      v[2 * k + 1] = f.y;
    }
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) v[k] = __bfloat162float(p[k]);
  }
}

template <int V>
__device__ __forceinline__ void load_vec(const float* p, float* v) {
  if constexpr (V == 8) {
    const float4 a = reinterpret_cast<const float4*>(p)[0];
    const float4 b = reinterpret_cast<const float4*>(p)[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
    v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) v[k] = p[k];
  }
}

// Rounds to nearest even.
template <int V>
__device__ __forceinline__ void store_vec(__nv_bfloat16* p, const float* v) {
  if constexpr (V == 8) {
    uint4 raw;
    auto* h = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
    for (int k = 0; k < 4; ++k) h[k] = __floats2bfloat162_rn(v[2 * k], v[2 * k + 1]);
    *reinterpret_cast<uint4*>(p) = raw;
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) p[k] = __float2bfloat16_rn(v[k]);
  }
}

template <int V>
__device__ __forceinline__ void store_vec(float* p, const float* v) {
  if constexpr (V == 8) {
    reinterpret_cast<float4*>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) p[k] = v[k];
  }
}

// Copies V bf16 values (raw bits).
template <int V>
__device__ __forceinline__ void copy_vec(const __nv_bfloat16* src, __nv_bfloat16* dst) {
  if constexpr (V == 8) {
    *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) dst[k] = src[k];
  }
}

// op-reduction of v over the block, returned to every thread. blockDim.x is a multiple of 32;
// every thread of the block must call it (it synchronises). T{} must be op's identity.
template <typename T, typename Op>
__device__ T block_reduce(T v, Op op) {
  __shared__ T warp_part[32];
  __shared__ T result;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int off = 16; off > 0; off /= 2) v = op(v, __shfl_down_sync(0xFFFFFFFFu, v, off));
  if (lane == 0) warp_part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < static_cast<int>(blockDim.x / 32) ? warp_part[lane] : T{};
#pragma unroll
    for (int off = 16; off > 0; off /= 2) v = op(v, __shfl_down_sync(0xFFFFFFFFu, v, off));
    if (lane == 0) result = v;
  }
  __syncthreads();
  // A later call writes warp_part and result only after its own first barrier, which every
  // thread reaches after reading this result: no barrier needed here.
  return result;
}

struct SumOp {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};

struct MaxOp {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a > b ? a : b;
  }
};

}  // namespace flowrank::engine::cuda
