#pragma once
// FlashInfer's FA2-generation paged attention, as this backend instantiates it: bf16 q/kv/out,
// int32 indices, NHD pages whose K and V have identical strides, no positional encoding inside the
// kernels (RoPE is applied before store_kv). One attention variant serves every layer: the sliding
// window is compiled in and window_left = -1 attends to the whole context. The launchers are
// defined and explicitly instantiated in the fa2_*.cu and decode_*.cu units (C++17, the wheel's
// CCCL); everything else only sees these declarations.
#include <cuda_bf16.h>
#include <flashinfer/attention/default_decode_params.cuh>
#include <flashinfer/attention/default_prefill_params.cuh>
#include <flashinfer/attention/mask.cuh>
#include <flashinfer/attention/scheduler.cuh>
#include <flashinfer/attention/variants.cuh>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace flowrank::engine::cuda::fa2 {

using DType = nv_bfloat16;
using PrefillParams = flashinfer::BatchPrefillPagedParams<DType, DType, DType, int32_t>;
using DecodeParams = flashinfer::BatchDecodeParams<DType, DType, DType, int32_t>;
using Variant = flashinfer::DefaultAttention</*use_custom_mask=*/false, /*use_sliding_window=*/true,
                                             /*use_logits_soft_cap=*/false, /*use_alibi=*/false>;
constexpr auto kPosEncoding = flashinfer::PosEncodingMode::kNone;

// The cta_tile_q values PrefillPlan may pick for head sizes 64 and 128 on sm_80+
// (FA2DetermineCtaTileQ: 128 for long rows, 64, or 16 when the packed rows are few); each is
// instantiated, and prefill() refuses any other.
using CtaTilesQ = std::integer_sequence<uint32_t, 16, 64, 128>;

template <uint32_t... kTiles>
constexpr bool instantiated_tile(uint32_t tile, std::integer_sequence<uint32_t, kTiles...>) {
  return ((tile == kTiles) || ...);
}
constexpr bool instantiated_tile(uint32_t tile) {
  return instantiated_tile(tile, CtaTilesQ{});
}

// Paged prefill on tensor cores for the plan's cta_tile_q. tmp_v/tmp_s: the plan's split-KV
// buffers (null when the plan did not split). Returns cudaErrorInvalidValue for a cta_tile_q
// outside CtaTilesQ.
template <uint32_t HEAD_DIM, flashinfer::MaskMode MASK>
cudaError_t prefill(PrefillParams params, uint32_t cta_tile_q, DType* tmp_v, float* tmp_s,
                    cudaStream_t stream);

// Paged decode on CUDA cores (one query row per sequence). decode_plan schedules it for
// group_size query heads per KV head (only 1 is offered: grouped heads use prefill()).
template <uint32_t HEAD_DIM>
cudaError_t decode_plan(void* float_buffer, std::size_t float_bytes, void* int_buffer,
                        void* pinned_int_buffer, std::size_t int_bytes,
                        flashinfer::DecodePlanInfo& info, int32_t* kv_indptr_host,
                        uint32_t batch_size, uint32_t n_head, uint32_t group_size,
                        uint32_t page_size, bool cuda_graph, cudaStream_t stream);
template <uint32_t HEAD_DIM>
cudaError_t decode(DecodeParams params, DType* tmp_v, float* tmp_s, cudaStream_t stream);

}  // namespace flowrank::engine::cuda::fa2
