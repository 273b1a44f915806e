#pragma once
// CUDA and cuBLAS errors become RunError naming what failed: the API call, or the kernel whose
// launch or execution broke (checked after every launch; execution errors surface at the next
// synchronising call, which names itself).
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <string>

#include "flowrank/common/error.hpp"

namespace flowrank::engine::cuda {

[[noreturn]] inline void throw_cuda(cudaError_t err, const char* what) {
  throw RunError(std::string("cuda: ") + what + ": " + cudaGetErrorString(err));
}

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw_cuda(err, what);
}

inline void check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw RunError(std::string("cublasLt: ") + what + ": status " +
                   std::to_string(static_cast<int>(status)));
}

// After a kernel launch: a bad configuration or an earlier asynchronous fault names this kernel.
inline void check_launch(const char* kernel) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw_cuda(err, kernel);
}

}  // namespace flowrank::engine::cuda
