// FA3's host-side scheduler (no kernels): kept apart from the kernel units, whose Hopper headers
// must not meet the FA2 ones.
#include <flashinfer/attention/scheduler.cuh>

#include "fa3.cuh"

namespace flowrank::engine::cuda::fa3 {

cudaError_t plan(const Shape& shape, void* int_ws, void* pinned, std::size_t int_bytes,
                 int32_t* q_indptr, int32_t* kv_indptr, int32_t* kv_len, int32_t batch,
                 int32_t total_rows, Plan& out, cudaStream_t stream) {
  flashinfer::PrefillPlanSM90Info info;
  const cudaError_t status = flashinfer::PrefillSM90Plan<int32_t>(
      /*float_buffer=*/nullptr, /*float_workspace_size_in_bytes=*/0, int_ws, pinned, int_bytes,
      info, q_indptr, kv_indptr, kv_len, static_cast<uint32_t>(total_rows),
      static_cast<uint32_t>(batch), static_cast<uint32_t>(shape.n_head),
      static_cast<uint32_t>(shape.n_head_kv), static_cast<uint32_t>(shape.head_dim),
      static_cast<uint32_t>(shape.head_dim), static_cast<uint32_t>(shape.page_size),
      /*causal=*/true, /*enable_cuda_graph=*/false, /*sizeof_dtype_o=*/2, stream);
  out.qo_tile_indices = info.qo_tile_indices_offset;
  out.qo_indptr = info.qo_indptr_offset;
  out.kv_indptr = info.kv_indptr_offset;
  out.qo_len = info.qo_len_offset;
  out.kv_len = info.kv_len_offset;
  out.head_indices = info.head_indices_offset;
  out.work_indptr = info.work_indptr_offset;
  out.batch_indices = info.batch_indices_offset;
  out.same_schedule_for_all_heads = info.same_schedule_for_all_heads;
  return status;
}

}  // namespace flowrank::engine::cuda::fa3
