#include "gemm.cuh"

#include <algorithm>
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

namespace {

int64_t bucket_of(int64_t m) {
  int64_t b = 1;
  while (b < m) b *= 2;
  return b;
}

bool capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(stream, &status), "cudaStreamIsCapturing");
  return status != cudaStreamCaptureStatusNone;
}

}  // namespace

std::vector<cublasLtMatmulAlgo_t> Gemm::candidates(const Plan& p, int count) {
  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<std::size_t>(count));
  int found = 0;
  check(cublasLtMatmulAlgoGetHeuristic(handle_, desc_, p.a, p.b, p.c, p.c, preference_, count,
                                       results.data(), &found),
        "cublasLtMatmulAlgoGetHeuristic");
  std::vector<cublasLtMatmulAlgo_t> out;
  for (int i = 0; i < found; ++i)
    if (results[static_cast<std::size_t>(i)].state == CUBLAS_STATUS_SUCCESS)
      out.push_back(results[static_cast<std::size_t>(i)].algo);
  return out;
}

Gemm::Plan& Gemm::plan(int64_t m, int64_t n, int64_t k, cudaDataType_t out) {
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
  check(cublasLtMatrixLayoutCreate(&p.c, out, static_cast<uint64_t>(n), static_cast<uint64_t>(m),
                                   n),
        "matrix layout (output)");
  const std::vector<cublasLtMatmulAlgo_t> first = candidates(p, 1);
  if (first.empty())
    throw RunError("cublasLt: no algorithm for a " + std::to_string(m) + " x " +
                   std::to_string(n) + " x " + std::to_string(k) + " bf16 product");
  p.algo = first[0];
  p.settled = m > kTunedRows;
  if (!p.settled) {
    // A bucket already tuned lends its algorithm when it fits this m.
    const auto tuned = tuned_.find(Shape{bucket_of(m), n, k, static_cast<int>(out)});
    cublasLtMatmulHeuristicResult_t check_result{};
    if (tuned != tuned_.end() &&
        cublasLtMatmulAlgoCheck(handle_, desc_, p.a, p.b, p.c, p.c, &tuned->second,
                                &check_result) == CUBLAS_STATUS_SUCCESS &&
        check_result.workspaceSize <= workspace_.bytes()) {
      p.algo = tuned->second;
      p.settled = true;
    }
  }
  return plans_.emplace(shape, p).first->second;
}

void Gemm::tune(Plan& p, const Shape& bucket, const void* x, const void* w, void* y,
                cudaStream_t stream) {
  p.settled = true;
  const std::vector<cublasLtMatmulAlgo_t> algos = candidates(p, 8);
  if (algos.size() < 2) return;
  cudaEvent_t a = nullptr, b = nullptr;
  check(cudaEventCreate(&a), "cudaEventCreate");
  check(cudaEventCreate(&b), "cudaEventCreate");
  // The weights must come from memory, as they do in a step, not from the L2 cache the previous
  // repetition left them in: a buffer of twice the L2 is written between repetitions.
  if (flush_.bytes() == 0) {
    int device = 0, l2 = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device), "L2 size");
    flush_ = DeviceBuffer(2 * static_cast<std::size_t>(std::max(l2, 1 << 20)),
                          "cuBLASLt tuning (L2 flush)");
  }
  const float alpha = 1.0f, beta = 0.0f;
  std::vector<float> best(algos.size(), 1e30f);
  for (std::size_t i = 0; i < algos.size(); ++i) {
    for (int rep = 0; rep < 3; ++rep) {  // the first call warms up
      check(cudaMemsetAsync(flush_.as(), rep, flush_.bytes(), stream), "L2 flush");
      check(cudaEventRecord(a, stream), "cudaEventRecord");
      const cublasStatus_t st =
          cublasLtMatmul(handle_, desc_, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &algos[i],
                         workspace_.as(), workspace_.bytes(), stream);
      check(cudaEventRecord(b, stream), "cudaEventRecord");
      check(cudaEventSynchronize(b), "gemm tuning");
      if (st != CUBLAS_STATUS_SUCCESS) break;
      float ms = 0;
      check(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
      if (rep > 0) best[i] = std::min(best[i], ms);
    }
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::size_t pick = 0;
  for (std::size_t i = 1; i < algos.size(); ++i)
    if (best[i] < best[pick]) pick = i;
  if (best[pick] > 0.9f * best[0]) pick = 0;
  p.algo = algos[pick];
  tuned_[bucket] = p.algo;
}

void Gemm::run(const void* x, int64_t m, const void* w, int64_t n, int64_t k, void* y,
               cudaDataType_t out, cudaStream_t stream) {
  if (m == 0) return;
  Plan& p = plan(m, n, k, out);
  if (!p.settled && !capturing(stream))
    tune(p, Shape{bucket_of(m), n, k, static_cast<int>(out)}, x, w, y, stream);
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
