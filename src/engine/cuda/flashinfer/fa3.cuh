#pragma once
// FlashInfer's Hopper (FA3) paged causal prefill behind plain types. Its headers and the FA2 ones
// both define flashinfer::BatchPrefillPagedParams and flashinfer::DefaultAttention, so the units
// that include them (fa3_hd*.cu, built for sm_90a only) talk to the rest through this header
// alone. plan() is host code, defined with the backend in attention_flashinfer.cu.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace flowrank::engine::cuda::fa3 {

// PrefillSM90Plan's schedule: offsets of its arrays in the plan's int workspace.
struct Plan {
  int64_t qo_tile_indices = 0;
  int64_t qo_indptr = 0;
  int64_t kv_indptr = 0;
  int64_t qo_len = 0;
  int64_t kv_len = 0;
  int64_t head_indices = 0;
  int64_t work_indptr = 0;
  int64_t batch_indices = 0;
  bool same_schedule_for_all_heads = false;  // only false is instantiated
};

struct Shape {
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  int32_t page_size = 0;
};

// Query rows per work tile, as the plan and the kernel both fix it for a head size.
constexpr int32_t cta_tile_q(int32_t head_dim) {
  return head_dim == 64 ? 192 : 128;
}

// The plan flips to one schedule for all heads (not instantiated) beyond this many works per head;
// the backend uses FA3 only when its maxima cannot reach it.
constexpr int64_t kMaxWorksPerHead = 4096;

// Schedules a causal prefill over paged KV: host arrays of `batch` requests (query rows CSR, page
// CSR, KV lengths in tokens), copied to int_ws on `stream` from `pinned`. May throw
// flashinfer::Error (a std::exception) for inconsistent input or a workspace too small.
cudaError_t plan(const Shape& shape, void* int_ws, void* pinned, std::size_t int_bytes,
                 int32_t* q_indptr, int32_t* kv_indptr, int32_t* kv_len, int32_t batch,
                 int32_t total_rows, Plan& out, cudaStream_t stream);

// One layer's launch over a planned schedule: bf16 q rows q_row_stride elements apart, NHD pages,
// contiguous out; window_left >= 0 keeps positions [pos - window_left, pos] (the kernel is built
// with the sliding window: kFullWindow masks nothing).
constexpr int32_t kFullWindow = 1 << 30;
struct Launch {
  Shape shape;
  const void* q = nullptr;
  int64_t q_row_stride = 0;
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  void* out = nullptr;
  const int32_t* kv_indices = nullptr;  // device
  int32_t total_rows = 0;
  int32_t window_left = kFullWindow;
  float scale = 0.0f;
  void* int_ws = nullptr;
  Plan plan;
};

template <int HEAD_DIM>
cudaError_t prefill(const Launch& launch, cudaStream_t stream);

}  // namespace flowrank::engine::cuda::fa3
