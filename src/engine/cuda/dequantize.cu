// GGUF tensors to bf16 at preload: one thread per element, decoding its block as the CPU's
// dequantize() does (engine/model/quant.cpp, same f32 operations in the same order, each product
// rounded on its own), then rounding to bf16: bit for bit bf16(dequantize()).
#include <cuda_fp16.h>

#include <algorithm>
#include <string>

#include "cuda_check.cuh"
#include "flowrank/engine/quant_blocks.hpp"
#include "kernels.cuh"

namespace flowrank::engine::cuda {
namespace {

constexpr int kThreads = 256;

// f16 fields sit at even offsets of blocks of even size: 2-byte loads are aligned.
__device__ float half_at(const unsigned char* p) {
  return __half2float(__ushort_as_half(*reinterpret_cast<const unsigned short*>(p)));
}

// Element j (< 32) of a 4-bit block: the low nibbles of qs hold elements 0-15, the high 16-31.
__device__ int nibble32(const unsigned char* qs, int j) {
  return j < 16 ? qs[j] & 0x0F : qs[j - 16] >> 4;
}

__device__ float q4_k_element(const unsigned char* b, int e) {
  const int chunk = e / 64, within = e % 64;  // each 32-byte chunk of qs feeds two sub-blocks
  const unsigned char q = b[16 + chunk * 32 + within % 32];
  const int nib = within < 32 ? q & 0x0F : q >> 4;
  int sc = 0, m = 0;
  q4k_scale_min(2 * chunk + within / 32, b + 4, sc, m);
  const float d = __fmul_rn(half_at(b), static_cast<float>(sc));
  const float dm = __fmul_rn(half_at(b + 2), static_cast<float>(m));
  return __fsub_rn(__fmul_rn(d, static_cast<float>(nib)), dm);
}

__device__ float q6_k_element(const unsigned char* b, int e) {
  const int half = e / 128, run = (e % 128) / 32, l = e % 32;  // four runs of 32 per half
  const unsigned char* ql = b + half * 64;
  const unsigned char* qh = b + 128 + half * 32;
  const auto* sc = reinterpret_cast<const signed char*>(b + 192) + half * 8;
  const unsigned char lo = ql[l + 32 * (run & 1)];
  const int q = ((run < 2 ? lo & 0x0F : lo >> 4) | (((qh[l] >> (2 * run)) & 3) << 4)) - 32;
  const float ds = __fmul_rn(half_at(b + 208), static_cast<float>(sc[l / 16 + 2 * run]));
  return __fmul_rn(ds, static_cast<float>(q));
}

__device__ float element(TensorType type, const unsigned char* src, int64_t i) {
  switch (type) {
    case TensorType::kF32:
      return reinterpret_cast<const float*>(src)[i];
    case TensorType::kF16:
      return half_at(src + 2 * i);
    case TensorType::kBF16:
      return __uint_as_float(static_cast<unsigned>(reinterpret_cast<const unsigned short*>(src)[i])
                             << 16);
    case TensorType::kQ8_0: {
      const unsigned char* b = src + (i / 32) * 34;
      return __fmul_rn(static_cast<float>(static_cast<signed char>(b[2 + i % 32])), half_at(b));
    }
    case TensorType::kQ4_0: {
      const unsigned char* b = src + (i / 32) * 18;
      return __fmul_rn(static_cast<float>(nibble32(b + 2, static_cast<int>(i % 32)) - 8),
                       half_at(b));
    }
    case TensorType::kQ4_1: {
      const unsigned char* b = src + (i / 32) * 20;
      const float q = static_cast<float>(nibble32(b + 4, static_cast<int>(i % 32)));
      return __fadd_rn(__fmul_rn(q, half_at(b)), half_at(b + 2));
    }
    case TensorType::kQ4_K:
      return q4_k_element(src + (i / 256) * 144, static_cast<int>(i % 256));
    case TensorType::kQ6_K:
      return q6_k_element(src + (i / 256) * 210, static_cast<int>(i % 256));
  }
  return 0.0f;
}

__global__ void dequantize_kernel(TensorType type, const unsigned char* src, bf16* dst, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = __float2bfloat16_rn(element(type, src, i));
}

}  // namespace

void dequantize_bf16(TensorType type, const void* src, bf16* dst, int64_t n, cudaStream_t stream) {
  const int64_t block = block_elements(type);  // throws for a type we do not read
  if (n < 0 || n % block != 0)
    throw RunError("dequantize_bf16: " + std::to_string(n) + " elements is not a whole number of " +
                   tensor_type_name(type) + " blocks");
  if (reinterpret_cast<std::uintptr_t>(src) % 4 != 0)
    throw RunError("dequantize_bf16: source not 4-byte aligned");
  if (n == 0) return;
  const auto blocks =
      static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, 1 << 20));
  dequantize_kernel<<<blocks, kThreads, 0, stream>>>(type, static_cast<const unsigned char*>(src),
                                                     dst, n);
  check_launch("dequantize_bf16");
}

}  // namespace flowrank::engine::cuda
