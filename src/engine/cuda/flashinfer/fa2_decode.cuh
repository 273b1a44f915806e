#pragma once
// The body of fa2::decode_plan and fa2::decode (paged decode on CUDA cores), included by one unit
// per head size. The plan's work estimation takes the kernel's address, so both live here.
#include <flashinfer/attention/decode.cuh>

#include "fa2.cuh"

namespace flowrank::engine::cuda::fa2 {

template <uint32_t HEAD_DIM>
cudaError_t decode_plan(void* float_buffer, std::size_t float_bytes, void* int_buffer,
                        void* pinned_int_buffer, std::size_t int_bytes,
                        flashinfer::DecodePlanInfo& info, int32_t* kv_indptr_host,
                        uint32_t batch_size, uint32_t n_head, uint32_t group_size,
                        uint32_t page_size, bool cuda_graph, cudaStream_t stream) {
  if (group_size != 1) return cudaErrorInvalidValue;
  auto work_estimation =
      flashinfer::BatchDecodeWithPagedKVCacheWorkEstimationDispatched<1, HEAD_DIM, kPosEncoding,
                                                                      Variant, DecodeParams>;
  return flashinfer::DecodePlan<HEAD_DIM, kPosEncoding, Variant, DecodeParams>(
      float_buffer, float_bytes, int_buffer, pinned_int_buffer, int_bytes, info, kv_indptr_host,
      batch_size, n_head, page_size, cuda_graph, stream, work_estimation);
}

template <uint32_t HEAD_DIM>
cudaError_t decode(DecodeParams params, DType* tmp_v, float* tmp_s, cudaStream_t stream) {
  return flashinfer::BatchDecodeWithPagedKVCacheDispatched<HEAD_DIM, kPosEncoding, Variant,
                                                           DecodeParams>(
      params, tmp_v, tmp_s, /*enable_pdl=*/false, stream);
}

}  // namespace flowrank::engine::cuda::fa2
