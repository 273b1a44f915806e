#pragma once
// The body of fa2::prefill, included by one unit per (head size, mask) so that the kernels of
// several units compile in parallel.
#include <flashinfer/attention/prefill.cuh>

#include "fa2.cuh"

namespace flowrank::engine::cuda::fa2 {

template <uint32_t HEAD_DIM, flashinfer::MaskMode MASK, uint32_t... kTiles>
cudaError_t prefill_tiles(const PrefillParams& params, uint32_t cta_tile_q, DType* tmp_v,
                          float* tmp_s, cudaStream_t stream,
                          std::integer_sequence<uint32_t, kTiles...>) {
  constexpr bool kSameKvStrides = true;  // K and V pools share one layout
  constexpr bool kFp16QkReduction = false;
  cudaError_t status = cudaErrorInvalidValue;
  (void)((cta_tile_q == kTiles &&
          (status = flashinfer::BatchPrefillWithPagedKVCacheDispatched<
               kSameKvStrides, kTiles, HEAD_DIM, HEAD_DIM, kPosEncoding, kFp16QkReduction, MASK,
               Variant, PrefillParams>(params, tmp_v, tmp_s, /*enable_pdl=*/false, stream),
           true)) ||
         ...);
  return status;
}

template <uint32_t HEAD_DIM, flashinfer::MaskMode MASK>
cudaError_t prefill(PrefillParams params, uint32_t cta_tile_q, DType* tmp_v, float* tmp_s,
                    cudaStream_t stream) {
  return prefill_tiles<HEAD_DIM, MASK>(params, cta_tile_q, tmp_v, tmp_s, stream, CtaTilesQ{});
}

}  // namespace flowrank::engine::cuda::fa2
