// The device's copy bandwidth and bf16 GEMM rate, measured with CUDA events (median of 10 after
// warm-up, on random data: zeros run faster and would flatter the ceilings).
#include <algorithm>
#include <vector>

#include "cuda_weights.cuh"
#include "device_memory.cuh"
#include "flowrank/engine/cuda/cuda_model_runner.hpp"
#include "gemm.cuh"
#include "kernels.cuh"

namespace flowrank::engine {
namespace {

template <class F>
double median_ms(cudaStream_t stream, int reps, F&& body) {
  cudaEvent_t a = nullptr, b = nullptr;
  cuda::check(cudaEventCreate(&a), "cudaEventCreate");
  cuda::check(cudaEventCreate(&b), "cudaEventCreate");
  for (int i = 0; i < 3; ++i) body();
  std::vector<float> ms;
  for (int i = 0; i < reps; ++i) {
    cuda::check(cudaEventRecord(a, stream), "cudaEventRecord");
    body();
    cuda::check(cudaEventRecord(b, stream), "cudaEventRecord");
    cuda::check(cudaEventSynchronize(b), "limits measurement");
    float t = 0;
    cuda::check(cudaEventElapsedTime(&t, a, b), "cudaEventElapsedTime");
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

DeviceLimits measure_cuda_limits(int device) {
  cuda::check(cudaSetDevice(device), "cudaSetDevice");
  cudaStream_t stream = nullptr;
  cuda::check(cudaStreamCreate(&stream), "cudaStreamCreate");
  DeviceLimits out;
  {
    const std::size_t bytes = std::size_t{4} << 30;
    cuda::DeviceBuffer src(bytes, "copy bandwidth source"), dst(bytes, "copy bandwidth target");
    const cuda::DeviceBuffer d_table = cuda::dummy_table_on_device(stream);
    cuda::fill_dummy_bf16(src.as<cuda::bf16>(), static_cast<int64_t>(bytes / 2), 1, false,
                          d_table.as<uint16_t>(), stream);
    const double ms = median_ms(stream, 10, [&] {
      cuda::check(cudaMemcpyAsync(dst.as(), src.as(), bytes, cudaMemcpyDeviceToDevice, stream),
                  "device copy");
    });
    out.copy_bytes_per_s = 2.0 * static_cast<double>(bytes) / (ms * 1e-3);
  }
  {
    const int64_t n = 8192;
    const std::size_t elems = static_cast<std::size_t>(n * n);
    cuda::DeviceBuffer a(elems * 2, "gemm A"), b(elems * 2, "gemm B"), c(elems * 2, "gemm C");
    const cuda::DeviceBuffer d_table = cuda::dummy_table_on_device(stream);
    cuda::fill_dummy_bf16(a.as<cuda::bf16>(), n * n, 2, false, d_table.as<uint16_t>(), stream);
    cuda::fill_dummy_bf16(b.as<cuda::bf16>(), n * n, 3, false, d_table.as<uint16_t>(), stream);
    cuda::Gemm gemm;
    const double ms = median_ms(stream, 10, [&] {
      gemm.bf16_out(a.as<cuda::bf16>(), n, b.as<cuda::bf16>(), n, n, c.as<cuda::bf16>(), stream);
    });
    out.bf16_gemm_flops = 2.0 * n * n * n / (ms * 1e-3);
  }
  cudaStreamDestroy(stream);
  return out;
}

}  // namespace flowrank::engine
