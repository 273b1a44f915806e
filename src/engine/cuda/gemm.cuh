#pragma once
// Projections through cuBLASLt: y[m][n] = x[m][k] . w[n][k]^T, bf16 inputs, f32 accumulation,
// bf16 or f32 output (logits). Row-major x and y, w as GGUF stores a weight (n rows of k). The
// workspace is fixed, so calls can be captured into CUDA graphs.
//
// Algorithms: cuBLASLt's first heuristic choice is good for prefill-sized products but leaves
// most of the GPU idle on the skinny ones of decode (64 rows against 14336: few output tiles).
// For m <= kTunedRows the first uncaptured call of each (m bucket, n, k) times the heuristic's
// candidates on its own operands and keeps the fastest, unless it beats the first choice by less
// than 10% (so near-ties resolve the same way every run and the results stay reproducible).
// Only algorithms without atomics-ordered split-K reductions are considered.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

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
  std::size_t device_bytes() const { return workspace_.bytes() + flush_.bytes(); }

 private:
  static constexpr int64_t kTunedRows = 512;
  struct Plan {
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool settled = false;  // tuned, or not to be tuned
  };
  using Shape = std::tuple<int64_t, int64_t, int64_t, int>;  // m, n, k, output type
  Plan& plan(int64_t m, int64_t n, int64_t k, cudaDataType_t out);
  std::vector<cublasLtMatmulAlgo_t> candidates(const Plan& p, int count);
  void tune(Plan& p, const Shape& bucket, const void* x, const void* w, void* y,
            cudaStream_t stream);
  void run(const void* x, int64_t m, const void* w, int64_t n, int64_t k, void* y,
           cudaDataType_t out, cudaStream_t stream);

  cublasLtHandle_t handle_ = nullptr;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatmulPreference_t preference_ = nullptr;
  DeviceBuffer workspace_;
  DeviceBuffer flush_;  // tuning only
  std::map<Shape, Plan> plans_;
  std::map<Shape, cublasLtMatmulAlgo_t> tuned_;  // by (power-of-two bucket of m, n, k, out)
};

}  // namespace flowrank::engine::cuda
