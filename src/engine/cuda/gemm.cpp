#include "gemm.cuh"

#include <string>

namespace flowrank::engine::cuda {

Gemm::Gemm(std::size_t workspace_bytes) : workspace_(workspace_bytes, "cuBLASLt workspace") {
  check(cublasLtCreate(&handle_), "cublasLtCreate");
  check(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F),
        "cublasLtMatmulDescCreate");
  // Column-major view: y^T (n x m) = w (n x k, stored as k x n, so transposed) . x^T (k x m).
  const cublasOperation_t trans = CUBLAS_OP_T, none = CUBLAS_OP_N;
  check(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof trans),
        "matmul desc TRANSA");
  check(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof none),
        "matmul desc TRANSB");
  check(cublasLtMatmulPreferenceCreate(&preference_), "cublasLtMatmulPreferenceCreate");
  const uint64_t ws = workspace_.bytes();
  check(cublasLtMatmulPreferenceSetAttribute(preference_, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                             &ws, sizeof ws),
        "matmul preference workspace");
  // No split-K reduction through atomics: the same call gives the same bits every run.
  const uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_INPLACE |
                           CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE |
                           CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE;
  check(cublasLtMatmulPreferenceSetAttribute(
            preference_, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes, sizeof schemes),
        "matmul preference reduction scheme");
}

Gemm::~Gemm() {
  for (auto& [shape, p] : plans_) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
  }
  if (preference_ != nullptr) cublasLtMatmulPreferenceDestroy(preference_);
  if (desc_ != nullptr) cublasLtMatmulDescDestroy(desc_);
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

const Gemm::Plan& Gemm::plan(int64_t m, int64_t n, int64_t k, cudaDataType_t out) {
  const Shape shape{m, n, k, static_cast<int>(out)};
  const auto it = plans_.find(shape);
  if (it != plans_.end()) return it->second;
  Plan p;
  check(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, static_cast<uint64_t>(k),
                                   static_cast<uint64_t>(n), k),
        "matrix layout (weight)");
  check(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, static_cast<uint64_t>(k),
                                   static_cast<uint64_t>(m), k),
        "matrix layout (input)");
  check(
      cublasLtMatrixLayoutCreate(&p.c, out, static_cast<uint64_t>(n), static_cast<uint64_t>(m), n),
      "matrix layout (output)");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  check(cublasLtMatmulAlgoGetHeuristic(handle_, desc_, p.a, p.b, p.c, p.c, preference_, 1, &result,
                                       &found),
        "cublasLtMatmulAlgoGetHeuristic");
  if (found == 0)
    throw RunError("cublasLt: no algorithm for a " + std::to_string(m) + " x " + std::to_string(n) +
                   " x " + std::to_string(k) + " bf16 product");
  p.algo = result.algo;
  return plans_.emplace(shape, p).first->second;
}

void Gemm::run(const void* x, int64_t m, const void* w, int64_t n, int64_t k, void* y,
               cudaDataType_t out, cudaStream_t stream) {
  if (m == 0) return;
  const Plan& p = plan(m, n, k, out);
  const float alpha = 1.0f, beta = 0.0f;
  check(cublasLtMatmul(handle_, desc_, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &p.algo,
                       workspace_.as(), workspace_.bytes(), stream),
        "cublasLtMatmul");
}

void Gemm::bf16_out(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, int64_t n, int64_t k,
                    __nv_bfloat16* y, cudaStream_t stream) {
  run(x, m, w, n, k, y, CUDA_R_16BF, stream);
}

void Gemm::f32_out(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, int64_t n, int64_t k,
                   float* y, cudaStream_t stream) {
  run(x, m, w, n, k, y, CUDA_R_32F, stream);
}

}  // namespace flowrank::engine::cuda
