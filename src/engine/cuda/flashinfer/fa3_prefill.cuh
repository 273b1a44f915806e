#pragma once
// The body of fa3::prefill, included by one unit per head size (each about 110 s and 3.3 GB of
// compiler memory: they build in parallel).
// CUTLASS's sm100 tile scheduler (reached through its headers) trips nvcc's front-end diagnostic
// 20012 (__host__ __device__ on a defaulted constructor), which -isystem does not silence: it is
// switched off for these includes only.
#pragma nv_diag_suppress 20012
#include <flashinfer/attention/hopper/default_params.cuh>
#include <flashinfer/attention/hopper/prefill_sm90.cuh>
#include <flashinfer/attention/hopper/variants.cuh>
#include <flashinfer/attention/mask.cuh>
#pragma nv_diag_default 20012

#include "fa3.cuh"

namespace flowrank::engine::cuda::fa3 {

template <int HEAD_DIM>
cudaError_t prefill(const Launch& a, cudaStream_t stream) {
  using DType = cutlass::bfloat16_t;
  using Params = flashinfer::BatchPrefillPagedParams<DType, DType, DType, int32_t>;
  const auto at = [&](int64_t offset) {
    return reinterpret_cast<int32_t*>(static_cast<char*>(a.int_ws) + offset);
  };
  const Shape& s = a.shape;
  Params p{};
  p.q_ptr = static_cast<DType*>(const_cast<void*>(a.q));
  p.k_ptr = static_cast<DType*>(const_cast<void*>(a.k_cache));
  p.v_ptr = static_cast<DType*>(const_cast<void*>(a.v_cache));
  p.o_ptr = static_cast<DType*>(a.out);
  p.lse_ptr = nullptr;
  p.qo_tile_indices = at(a.plan.qo_tile_indices);
  p.qo_indptr = at(a.plan.qo_indptr);
  p.kv_indptr = at(a.plan.kv_indptr);
  p.kv_indices = const_cast<int32_t*>(a.kv_indices);
  p.qo_lens = at(a.plan.qo_len);
  p.kv_lens = at(a.plan.kv_len);
  p.head_indices = at(a.plan.head_indices);
  p.work_indptr = at(a.plan.work_indptr);
  p.batch_indices = at(a.plan.batch_indices);
  p.additional_params.logits_soft_cap = 0.0f;
  p.additional_params.sm_scale = a.scale;
  p.q_stride_n = a.q_row_stride;
  p.q_stride_h = s.head_dim;
  p.k_stride_n = p.v_stride_n = int64_t{s.n_head_kv} * s.head_dim;
  p.k_stride_h = p.v_stride_h = s.head_dim;
  p.o_stride_n = int64_t{s.n_head} * s.head_dim;
  p.o_stride_h = s.head_dim;
  p.nnz_qo = a.total_rows;
  p.k_page_stride = p.v_page_stride = int64_t{s.page_size} * s.n_head_kv * s.head_dim;
  p.num_qo_heads = s.n_head;
  p.num_kv_heads = s.n_head_kv;
  p.group_size = s.n_head / s.n_head_kv;
  p.page_size = s.page_size;
  p.window_left = a.window_left;
  p.causal = true;
  if (a.plan.same_schedule_for_all_heads) return cudaErrorNotSupported;
  return flashinfer::BatchPrefillWithPagedKVCacheDispatched<
      HEAD_DIM, HEAD_DIM, flashinfer::MaskMode::kCausal, /*LEFT_SLIDING_WINDOW=*/true,
      /*SAME_SCHEDULE_FOR_ALL_HEADS=*/false, flashinfer::StandardAttention, Params>(
      p, /*enable_pdl=*/false, stream);
}

}  // namespace flowrank::engine::cuda::fa3
