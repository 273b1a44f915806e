#pragma once
// Projections through cuBLASLt: y[m][n] = x[m][k] . w[n][k]^T, bf16 inputs, f32 accumulation,
// bf16 or f32 output (logits). Row-major x and y, w as GGUF stores a weight (n rows of k). The
// algorithm for each shape is chosen once by cuBLASLt's heuristic and remembered; the workspace
// is fixed, so calls can be captured into CUDA graphs. (Timing the heuristic's other candidates
// per shape was tried and measured slower on the H200's decode shapes, and splitting k by a
// wave-count rule no faster: docs/PERFORMANCE.md.)
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "device_memory.cuh"

namespace flowrank::engine::cuda {

class Gemm {
 public:
  explicit Gemm(std::size_t workspace_bytes = std::size_t{32} << 20);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  void bf16_out(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, int64_t n, int64_t k,
                __nv_bfloat16* y, cudaStream_t stream);
  void f32_out(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, int64_t n, int64_t k,
               float* y, cudaStream_t stream);
  std::size_t device_bytes() const { return workspace_.bytes(); }

 private:
  struct Plan {
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  using Shape = std::tuple<int64_t, int64_t, int64_t, int>;  // m, n, k, output type
  const Plan& plan(int64_t m, int64_t n, int64_t k, cudaDataType_t out);
  void run(const void* x, int64_t m, const void* w, int64_t n, int64_t k, void* y,
           cudaDataType_t out, cudaStream_t stream);

  cublasLtHandle_t handle_ = nullptr;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatmulPreference_t preference_ = nullptr;
  DeviceBuffer workspace_;
  std::map<Shape, Plan> plans_;
};

}  // namespace flowrank::engine::cuda
