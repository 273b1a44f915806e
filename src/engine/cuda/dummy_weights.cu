// dummy: weights generated on the device, bit for bit those of fill_dummy_f16 (engine/model)
// widened to f32 and rounded to bf16: element i is lane i % 4 of splitmix64(key + i / 4).
#include <cuda_fp16.h>

#include <algorithm>

#include "cuda_check.cuh"
#include "flowrank/common/mix64.hpp"
#include "kernels.cuh"

namespace flowrank::engine::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per group of 4 elements (one splitmix64 draw).
__global__ void fill_dummy_kernel(bf16* dst, int64_t n, uint64_t key, const uint16_t* table) {
  const int64_t groups = (n + 3) / 4;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < groups;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint64_t r = splitmix64(key + static_cast<uint64_t>(g));
    for (int lane = 0; lane < 4 && 4 * g + lane < n; ++lane) {
      const uint16_t bits = table[(r >> (16 * lane)) & 0xFFFF];
      dst[4 * g + lane] = __float2bfloat16_rn(__half2float(__ushort_as_half(bits)));
    }
  }
}

__global__ void fill_ones_kernel(bf16* dst, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = __float2bfloat16_rn(1.0f);
}

}  // namespace

void fill_dummy_bf16(bf16* dst, int64_t n, uint64_t stream_key, bool ones, const uint16_t* table,
                     cudaStream_t stream) {
  if (n <= 0) return;
  const int64_t threads_needed = ones ? n : (n + 3) / 4;
  const auto blocks =
      static_cast<unsigned>(std::min<int64_t>((threads_needed + kThreads - 1) / kThreads, 1 << 20));
  if (ones)
    fill_ones_kernel<<<blocks, kThreads, 0, stream>>>(dst, n);
  else
    fill_dummy_kernel<<<blocks, kThreads, 0, stream>>>(dst, n, stream_key, table);
  check_launch("fill_dummy_bf16");
}

}  // namespace flowrank::engine::cuda
