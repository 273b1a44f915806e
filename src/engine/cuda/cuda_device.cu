// Which CUDA devices exist, in words.
#include <cuda_runtime.h>

#include <cstdio>
#include <string>

#include "cuda_check.cuh"
#include "flowrank/engine/cuda/cuda_model_runner.hpp"

namespace flowrank::engine {

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver or no device: not an error here
    return 0;
  }
  return n;
}

std::string cuda_device_description(int device) {
  const int n = cuda_device_count();
  if (device < 0 || device >= n)
    throw RunError("cuda: device " + std::to_string(device) + " does not exist (" +
                   std::to_string(n) + " visible)");
  cudaDeviceProp p{};
  cuda::check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
  char buf[1024];
  std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor,
                static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

}  // namespace flowrank::engine
